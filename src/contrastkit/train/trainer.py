r"""A small, exact-resume training loop for contrastive objectives.

:class:`Trainer` runs a :class:`Task` (a module that turns a batch of dataset indices into a
loss, and evaluates itself) for a number of epochs:

- **Seeded.** The order of epoch ``e`` is a permutation drawn from ``(seed, e)`` and the random
  state of step ``t`` (augmentations, dropout) from ``(seed, t)``, so a run is a function of its
  configuration, and a run resumed from any checkpoint continues exactly as the uninterrupted
  run would have (same batches, same augmentations, same weights).
- **Checkpoints** (``checkpoint.pt`` in the output folder) are written atomically (a temporary
  file, flushed and synced, then renamed over the old one) at every epoch end, every
  ``checkpoint_every`` steps and on ``Ctrl-C``; ``resume=True`` continues from the last one.
- **Logs**: every ``log_every`` steps and at every evaluation a record goes to ``log.jsonl``
  (one JSON object per line) and ``log.csv``; on resume, records after the checkpoint are
  dropped so the logs read as one run.
- **Progress**: a tqdm bar with the loss and the throughput (samples per second).
- **Evaluation**: ``task.evaluate()`` every ``eval_every`` epochs and at the end.
"""

from __future__ import annotations

import contextlib
import csv
import json
import math
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Literal

import torch
from torch import Tensor, nn

from contrastkit.core import validation as v

Optimizer = Literal["adamw", "adam", "sgd"]
Schedule = Literal["cosine", "constant"]

CHECKPOINT = "checkpoint.pt"
LOG_JSONL = "log.jsonl"
LOG_CSV = "log.csv"
_FORMAT = 1


class Task(nn.Module):
    """What the trainer trains: the encoders, the loss and how a batch becomes a loss.

    Subclasses implement :meth:`batch_loss` and :meth:`evaluate` and set ``num_samples``.
    Every trainable parameter (encoders, heads, a learnable temperature) and every buffer
    (per-sample loss state) is a submodule's, so ``state_dict()`` checkpoints all of it.
    """

    num_samples: int

    def batch_loss(self, index: Tensor, generator: torch.Generator) -> Tensor:
        """The loss of the training items ``index`` (shape ``(B,)``, int64).

        Args:
            index: Dataset indices of the batch.
            generator: A CPU generator seeded for this step: draw every random number from it.
        """
        raise NotImplementedError

    def evaluate(self) -> dict[str, float]:
        """Metrics of the current model (called in eval mode under ``torch.no_grad``)."""
        raise NotImplementedError

    def test_embeddings(self) -> tuple[Tensor, Tensor, Tensor | None]:
        """Embeddings of the positive pairs of the test split ``(a, b)`` and their labels.

        Optional: used by the report's plots (similarity histograms, embedding map).
        """
        raise NotImplementedError


@dataclass
class TrainConfig:
    """Optimization settings of a :class:`Trainer` run.

    Attributes:
        epochs: Passes over the training set.
        batch_size: Items per step (the last incomplete batch of an epoch is dropped).
        lr: Peak learning rate.
        weight_decay: Decoupled weight decay (AdamW) or L2 (SGD, Adam).
        optimizer: ``"adamw"``, ``"adam"`` or ``"sgd"`` (with momentum 0.9, Nesterov).
        schedule: ``"cosine"`` decay to zero after warm-up, or ``"constant"``.
        warmup_epochs: Linear warm-up length in epochs (may be fractional).
        seed: Seeds the initialization's caller, the data order and every step's randomness.
        eval_every: Evaluate every this many epochs (``0``: only at the end).
        checkpoint_every: Also checkpoint every this many steps (``0``: epoch ends only).
        log_every: Log the loss every this many steps.
    """

    epochs: int = 20
    batch_size: int = 256
    lr: float = 2e-3
    weight_decay: float = 1e-4
    optimizer: Optimizer = "adamw"
    schedule: Schedule = "cosine"
    warmup_epochs: float = 0.0
    seed: int = 0
    eval_every: int = 0
    checkpoint_every: int = 0
    log_every: int = 10

    def __post_init__(self) -> None:
        v.check_int("epochs", self.epochs, minimum=1)
        v.check_int("batch_size", self.batch_size, minimum=1)
        v.check_positive_float("lr", self.lr)
        v.check_nonnegative_float("weight_decay", self.weight_decay)
        v.check_choice("optimizer", self.optimizer, ("adamw", "adam", "sgd"))
        v.check_choice("schedule", self.schedule, ("cosine", "constant"))
        v.check_nonnegative_float("warmup_epochs", self.warmup_epochs)
        v.check_int("seed", self.seed, minimum=0)
        v.check_int("eval_every", self.eval_every, minimum=0)
        v.check_int("checkpoint_every", self.checkpoint_every, minimum=0)
        v.check_int("log_every", self.log_every, minimum=1)


@dataclass
class History:
    """What a run produced: the log records (as written) and the final evaluation."""

    records: list[dict[str, Any]] = field(default_factory=list)
    final: dict[str, float] = field(default_factory=dict)


def _step_seed(seed: int, step: int) -> int:
    return (seed * 1_000_003 + step * 7_919 + 17) % (2**62)


def epoch_order(num_samples: int, seed: int, epoch: int) -> Tensor:
    """The item order of epoch ``epoch``: a permutation drawn from ``(seed, epoch)``."""
    gen = torch.Generator().manual_seed(_step_seed(seed, -1 - epoch) % (2**62))
    return torch.randperm(num_samples, generator=gen)


class Trainer:
    """Train a :class:`Task` with seeded order, atomic checkpoints and exact resume.

    Args:
        config: The optimization settings.
        out: Output folder for the checkpoint and logs (``None``: keep nothing on disk;
            then ``resume`` is impossible).
        progress: Show a tqdm progress bar (needs ``tqdm``; silently off when absent).
        device: Where the task runs (``None``: where its parameters are).
        run_config: The whole configuration the task was built from (data, model, loss, ...),
            stored in the checkpoint; ``resume`` refuses a checkpoint made with another one.

    Example:
        >>> from contrastkit.train.trainer import Task, TrainConfig, Trainer
        >>> class Toy(Task):
        ...     def __init__(self) -> None:
        ...         super().__init__()
        ...         self.w = torch.nn.Parameter(torch.ones(3))
        ...         self.num_samples = 8
        ...     def batch_loss(self, index, generator):
        ...         return (self.w**2).sum() * index.numel()
        ...     def evaluate(self):
        ...         return {"norm": float(self.w.norm())}
        >>> cfg = TrainConfig(epochs=2, batch_size=4, lr=0.1, schedule="constant")
        >>> history = Trainer(cfg, progress=False).fit(Toy())
        >>> history.final["norm"] < 3**0.5
        True
    """

    def __init__(
        self,
        config: TrainConfig,
        *,
        out: str | os.PathLike[str] | None = None,
        progress: bool = True,
        device: torch.device | str | None = None,
        run_config: Mapping[str, Any] | None = None,
    ) -> None:
        self.config = config
        self.run_config = _plain(run_config) if run_config is not None else None
        self.out = Path(out) if out is not None else None
        self.progress = progress
        self.device = torch.device(device) if device is not None else None
        self.on_step: Callable[[int, float], None] | None = None

    # ------------------------------------------------------------------ setup
    def _optimizer(self, task: Task) -> torch.optim.Optimizer:
        cfg = self.config
        params = [p for p in task.parameters() if p.requires_grad]
        if not params:
            raise ValueError("task: it has no trainable parameters")
        if cfg.optimizer == "adamw":
            return torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
        if cfg.optimizer == "adam":
            return torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
        return torch.optim.SGD(
            params, lr=cfg.lr, momentum=0.9, nesterov=True, weight_decay=cfg.weight_decay
        )

    def _lr_factor(self, step: int, total: int, per_epoch: int) -> float:
        warm = self.config.warmup_epochs * per_epoch
        if warm > 0 and step < warm:
            return (step + 1) / warm
        if self.config.schedule == "constant":
            return 1.0
        progress = (step - warm) / max(1.0, total - warm)
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))

    # ------------------------------------------------------------ checkpoints
    def _save(self, task: Task, opt: torch.optim.Optimizer, step: int) -> None:
        if self.out is None:
            return
        state = {
            "format": _FORMAT,
            "step": step,
            "config": asdict(self.config),
            "run_config": self.run_config,
            "task": task.state_dict(),
            "optimizer": opt.state_dict(),
        }
        save_atomic(state, self.out / CHECKPOINT)

    def _load(self, task: Task, opt: torch.optim.Optimizer) -> int:
        assert self.out is not None
        path = self.out / CHECKPOINT
        if not path.exists():
            raise FileNotFoundError(
                f"resume: no checkpoint at {path}; run once without --resume to start one"
            )
        state = torch.load(path, map_location="cpu", weights_only=False)
        if state.get("format") != _FORMAT:
            raise ValueError(f"resume: {path} is not a contrastkit checkpoint of this version")
        saved = {k: val for k, val in state["config"].items() if k != "epochs"}
        now = {k: val for k, val in asdict(self.config).items() if k != "epochs"}
        if saved != now:
            diff = sorted(k for k in now if saved.get(k) != now[k])
            raise ValueError(
                f"resume: the configuration differs from the checkpoint's in {', '.join(diff)}; "
                "resume with the same settings (only epochs may grow) or start a new --out"
            )
        if self.run_config is not None and state.get("run_config") is not None:
            diff = _differences(state["run_config"], self.run_config)
            if diff:
                raise ValueError(
                    f"resume: the run differs from the checkpoint's in {', '.join(diff)}; "
                    "resume with the same settings or start a new --out"
                )
        before = state["config"]["epochs"]
        if before != self.config.epochs and self.config.schedule == "cosine":
            raise ValueError(
                f"resume: epochs changed from {before} to {self.config.epochs}, but the cosine "
                "learning-rate schedule depends on the total; resume with the same epochs, or "
                "train with schedule = 'constant' to extend a run"
            )
        task.load_state_dict(state["task"])
        opt.load_state_dict(state["optimizer"])
        return int(state["step"])

    # ------------------------------------------------------------------- logs
    def _open_logs(self, resume_step: int) -> list[dict[str, Any]]:
        if self.out is None:
            return []
        self.out.mkdir(parents=True, exist_ok=True)
        records: list[dict[str, Any]] = []
        path = self.out / LOG_JSONL
        if resume_step > 0 and path.exists():
            for line in path.read_text().splitlines():
                if line.strip():
                    rec = json.loads(line)
                    # evaluations at the resume step are redone (they may not have finished)
                    if rec["step"] < resume_step or (
                        rec["step"] == resume_step and rec["kind"] == "train"
                    ):
                        records.append(rec)
        self._rewrite_logs(records)
        return records

    def _rewrite_logs(self, records: list[dict[str, Any]]) -> None:
        if self.out is None:
            return
        with open(self.out / LOG_JSONL, "w") as f:
            f.writelines(json.dumps(r) + "\n" for r in records)
        write_csv(self.out / LOG_CSV, records)

    def _log(self, records: list[dict[str, Any]], rec: dict[str, Any]) -> None:
        records.append(rec)
        if self.out is None:
            return
        with open(self.out / LOG_JSONL, "a") as f:
            f.write(json.dumps(rec) + "\n")
        write_csv(self.out / LOG_CSV, records)

    # -------------------------------------------------------------------- fit
    def fit(self, task: Task, *, resume: bool = False) -> History:
        """Train ``task`` for ``config.epochs`` epochs (from the last checkpoint if ``resume``).

        Args:
            task: The task; its modules are trained in place.
            resume: Continue from ``out/checkpoint.pt``.

        Returns:
            The log records and the final evaluation.

        Raises:
            ValueError: If the batch size exceeds the training set, or ``resume`` without
                ``out`` or with a different configuration.
            KeyboardInterrupt: After writing a checkpoint, when interrupted.
        """
        cfg = self.config
        n = int(task.num_samples)
        if n < cfg.batch_size:
            raise ValueError(
                f"batch_size: {cfg.batch_size} exceeds the {n} training items; lower it"
            )
        if resume and self.out is None:
            raise ValueError("resume: needs an output folder (out=...) holding a checkpoint")
        if self.device is not None:
            task.to(self.device)
        opt = self._optimizer(task)
        per_epoch = n // cfg.batch_size
        total = per_epoch * cfg.epochs
        step = self._load(task, opt) if resume else 0
        records = self._open_logs(step)
        bar = _progress_bar(total, step, enabled=self.progress)
        window_start, window_items = time.perf_counter(), 0
        consistent = True  # False while a step is half done (weights and step disagree)
        with _deferred_interrupt() as interrupt:
            try:
                if 0 < step < total and self._eval_due(step, per_epoch):
                    self._log(records, self._evaluate(task, step, per_epoch))
                while step < total:
                    epoch, offset = divmod(step, per_epoch)
                    order = epoch_order(n, cfg.seed, epoch)
                    task.train()
                    for b in range(offset, per_epoch):
                        index = order[b * cfg.batch_size : (b + 1) * cfg.batch_size]
                        consistent = False
                        loss_value = self._step(task, opt, index, step, total, per_epoch)
                        step += 1
                        consistent = True
                        window_items += cfg.batch_size
                        if bar is not None:
                            bar.update(1)
                        if step % cfg.log_every == 0 or step == total:
                            now = time.perf_counter()
                            rate = window_items / max(now - window_start, 1e-9)
                            window_start, window_items = now, 0
                            rec = {
                                "kind": "train",
                                "step": step,
                                "epoch": step / per_epoch,
                                "loss": loss_value,
                                "lr": opt.param_groups[0]["lr"],
                                "samples_per_s": round(rate, 1),
                            }
                            self._log(records, rec)
                            if bar is not None:
                                bar.set_postfix(loss=f"{loss_value:.4f}", rate=f"{rate:.0f}/s")
                        if self.on_step is not None:
                            self.on_step(step, loss_value)
                        if cfg.checkpoint_every and step % cfg.checkpoint_every == 0:
                            self._save(task, opt, step)
                        if interrupt.requested:
                            raise KeyboardInterrupt
                    self._save(task, opt, step)
                    if step < total and self._eval_due(step, per_epoch):
                        self._log(records, self._evaluate(task, step, per_epoch))
                    if interrupt.requested:
                        raise KeyboardInterrupt
            except KeyboardInterrupt:
                if bar is not None:
                    bar.close()
                where = f" in {self.out}" if self.out is not None else ""
                if consistent:
                    self._save(task, opt, step)
                    print(f"\ninterrupted at step {step}; checkpoint saved{where}", file=sys.stderr)
                else:
                    print(
                        f"\ninterrupted inside step {step + 1}; the last checkpoint{where} stands",
                        file=sys.stderr,
                    )
                raise
        if bar is not None:
            bar.close()
        final = self._evaluate(task, step, per_epoch)
        self._log(records, final)
        metrics = {k: val for k, val in final.items() if k not in ("kind", "step", "epoch")}
        return History(records=records, final=metrics)

    def _eval_due(self, step: int, per_epoch: int) -> bool:
        every = self.config.eval_every
        return bool(every) and step % per_epoch == 0 and (step // per_epoch) % every == 0

    def _step(
        self,
        task: Task,
        opt: torch.optim.Optimizer,
        index: Tensor,
        step: int,
        total: int,
        per_epoch: int,
    ) -> float:
        factor = self._lr_factor(step, total, per_epoch)
        for group in opt.param_groups:
            group["lr"] = self.config.lr * factor
        seed = _step_seed(self.config.seed, step)
        gen = torch.Generator().manual_seed(seed)
        with _fork_rng(seed ^ 0x2545F4914F6CDD1D):  # a stream apart from the generator's
            loss = task.batch_loss(index, gen)
        if loss.dim() != 0 or not torch.isfinite(loss):
            raise FloatingPointError(
                f"step {step}: the loss is {loss.detach().cpu().tolist()}, not a finite "
                "scalar; lower the learning rate or raise the temperature"
            )
        opt.zero_grad(set_to_none=True)
        loss.backward()  # type: ignore[no-untyped-call]
        opt.step()
        return float(loss.detach())

    def _evaluate(self, task: Task, step: int, per_epoch: int) -> dict[str, Any]:
        task.eval()
        with torch.no_grad():
            metrics = task.evaluate()
        task.train()
        return {"kind": "eval", "step": step, "epoch": step / per_epoch, **metrics}


class _Interrupt:
    requested = False


@contextlib.contextmanager
def _deferred_interrupt() -> Iterator[_Interrupt]:
    """Turn the first Ctrl-C into a request honoured at the next step boundary.

    A second Ctrl-C interrupts at once. Outside the main thread (no signal handlers there)
    Ctrl-C keeps its default behaviour.
    """
    state = _Interrupt()
    if threading.current_thread() is not threading.main_thread():
        yield state
        return

    def handler(signum: int, frame: object) -> None:
        if state.requested:
            raise KeyboardInterrupt
        state.requested = True
        print("\nstopping after this step (Ctrl-C again to stop at once)", file=sys.stderr)

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield state
    finally:
        signal.signal(signal.SIGINT, previous)


def _plain(obj: Any) -> Any:
    """A deep copy of nested mappings / sequences as plain dicts and lists."""
    if isinstance(obj, Mapping):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_plain(v) for v in obj]
    return obj


def _differences(saved: Mapping[str, Any], now: Mapping[str, Any]) -> list[str]:
    """Dotted keys whose values differ (``train.epochs`` is checked separately)."""
    out = []
    for section in sorted(set(saved) | set(now)):
        a, b = saved.get(section, {}), now.get(section, {})
        if not isinstance(a, Mapping) or not isinstance(b, Mapping):
            if a != b:
                out.append(section)
            continue
        out.extend(
            f"{section}.{key}"
            for key in sorted(set(a) | set(b))
            if (section, key) != ("train", "epochs") and a.get(key) != b.get(key)
        )
    return out


@contextlib.contextmanager
def _fork_rng(seed: int) -> Iterator[None]:
    """Run a block with the global torch RNG seeded, restoring the caller's state after."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


def save_atomic(obj: object, path: Path) -> None:
    """``torch.save`` to ``path`` atomically: a synced temporary file renamed over it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with open(tmp, "wb") as f:
        torch.save(obj, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def write_csv(path: Path, records: list[dict[str, Any]]) -> None:
    """Write ``records`` as CSV with the union of their keys as columns (first-seen order)."""
    columns: list[str] = []
    for rec in records:
        columns.extend(k for k in rec if k not in columns)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns)
        writer.writeheader()
        writer.writerows(records)
    os.replace(tmp, path)


def _progress_bar(total: int, initial: int, *, enabled: bool) -> Any:
    if not enabled:
        return None
    try:
        from tqdm.auto import tqdm
    except ImportError:  # pragma: no cover - tqdm is a dependency of the CLI
        return None
    return tqdm(total=total, initial=initial, unit="step", dynamic_ncols=True, leave=False)


def config_fields() -> list[str]:
    """The names of :class:`TrainConfig`'s fields."""
    return [f.name for f in fields(TrainConfig)]
