"""The training loop: seeded, exact resume after an interruption, atomic checkpoints, logs."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import torch
from torch import Tensor, nn

from contrastkit.train.trainer import CHECKPOINT, Task, TrainConfig, Trainer, epoch_order


class ToyTask(Task):
    """A small network whose loss uses the step generator and the global RNG (dropout)."""

    def __init__(self, seed: int = 0) -> None:
        super().__init__()
        torch.manual_seed(seed)
        self.net = nn.Sequential(
            nn.Linear(6, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Dropout(0.2), nn.Linear(16, 4)
        )
        gen = torch.Generator().manual_seed(99)
        self.data = torch.randn(40, 6, generator=gen)
        self.num_samples = 40
        self.seen: list[list[int]] = []

    def batch_loss(self, index: Tensor, generator: torch.Generator) -> Tensor:
        """Noise from the step generator, dropout from the global RNG."""
        self.seen.append(index.tolist())
        x = self.data[index]
        noisy = x + 0.1 * torch.randn(x.shape, generator=generator)
        z1, z2 = self.net(x), self.net(noisy)
        return ((z1 - z2) ** 2).mean() - 0.1 * z1.std(0).mean()

    def evaluate(self) -> dict[str, float]:
        """The total parameter norm."""
        return {"norm": float(sum(p.norm() for p in self.net.parameters()))}


def _config(**kw: object) -> TrainConfig:
    base: dict[str, object] = {"epochs": 3, "batch_size": 8, "lr": 1e-2, "log_every": 1}
    base.update(kw)
    return TrainConfig(**base)  # type: ignore[arg-type]


def _weights(task: Task) -> dict[str, Tensor]:
    return {k: v.clone() for k, v in task.state_dict().items()}


def test_same_seed_same_run() -> None:
    a, b = ToyTask(), ToyTask()
    Trainer(_config(), progress=False).fit(a)
    Trainer(_config(), progress=False).fit(b)
    for (k, va), vb in zip(_weights(a).items(), _weights(b).values(), strict=True):
        assert torch.equal(va, vb), k


def test_other_seed_other_order() -> None:
    assert not torch.equal(epoch_order(40, 0, 0), epoch_order(40, 1, 0))
    assert not torch.equal(epoch_order(40, 0, 0), epoch_order(40, 0, 1))
    assert sorted(epoch_order(40, 3, 2).tolist()) == list(range(40))


@pytest.mark.parametrize("stop_at", [3, 5, 10])  # mid-epoch, exact epoch end (5 steps), later
def test_resume_after_interrupt_equals_uninterrupted(tmp_path: Path, stop_at: int) -> None:
    full = ToyTask()
    Trainer(_config(), out=tmp_path / "full", progress=False).fit(full)

    broken = ToyTask()
    trainer = Trainer(_config(), out=tmp_path / "cut", progress=False)

    def interrupt(step: int, loss: float) -> None:
        if step == stop_at:
            raise KeyboardInterrupt

    trainer.on_step = interrupt
    with pytest.raises(KeyboardInterrupt):
        trainer.fit(broken)
    assert (tmp_path / "cut" / CHECKPOINT).exists()

    resumed = ToyTask()  # a fresh process would rebuild the task from the same seed
    Trainer(_config(), out=tmp_path / "cut", progress=False).fit(resumed, resume=True)
    assert broken.seen + resumed.seen == full.seen
    for (k, va), vb in zip(_weights(full).items(), _weights(resumed).values(), strict=True):
        assert torch.equal(va, vb), k

    def losses(folder: Path) -> list[tuple[int, float]]:
        lines = (folder / "log.jsonl").read_text().splitlines()
        recs = [json.loads(line) for line in lines]
        return [(r["step"], r["loss"]) for r in recs if r["kind"] == "train"]

    assert losses(tmp_path / "cut") == losses(tmp_path / "full")
    with open(tmp_path / "cut" / "log.csv") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["step"]) for r in rows if r["kind"] == "train"] == list(range(1, 16))


def test_resume_extends_epochs(tmp_path: Path) -> None:
    full = ToyTask()
    Trainer(_config(epochs=4, schedule="constant"), progress=False).fit(full)
    part = ToyTask()
    Trainer(_config(epochs=2, schedule="constant"), out=tmp_path, progress=False).fit(part)
    more = ToyTask()
    cfg = _config(epochs=4, schedule="constant")
    Trainer(cfg, out=tmp_path, progress=False).fit(more, resume=True)
    for (k, va), vb in zip(_weights(full).items(), _weights(more).values(), strict=True):
        assert torch.equal(va, vb), k


def test_resume_refuses_other_settings(tmp_path: Path) -> None:
    Trainer(_config(epochs=1), out=tmp_path, progress=False).fit(ToyTask())
    with pytest.raises(ValueError, match="differs from the checkpoint's in lr"):
        Trainer(_config(lr=0.5), out=tmp_path, progress=False).fit(ToyTask(), resume=True)


def test_resume_needs_checkpoint(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        Trainer(_config(), out=tmp_path, progress=False).fit(ToyTask(), resume=True)
    with pytest.raises(ValueError, match="needs an output folder"):
        Trainer(_config(), progress=False).fit(ToyTask(), resume=True)


def test_checkpoint_is_replaced_atomically(tmp_path: Path) -> None:
    Trainer(_config(epochs=2, checkpoint_every=2), out=tmp_path, progress=False).fit(ToyTask())
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["checkpoint.pt", "log.csv", "log.jsonl"]  # no temporary files left
    state = torch.load(tmp_path / CHECKPOINT, weights_only=False)
    assert state["step"] == 10


def test_eval_records_and_final(tmp_path: Path) -> None:
    history = Trainer(_config(epochs=4, eval_every=2), out=tmp_path, progress=False).fit(ToyTask())
    evals = [r for r in history.records if r["kind"] == "eval"]
    assert [r["step"] for r in evals] == [10, 20]
    assert set(history.final) == {"norm"}


def test_non_finite_loss_is_an_error() -> None:
    class Bad(ToyTask):
        def batch_loss(self, index: Tensor, generator: torch.Generator) -> Tensor:
            return super().batch_loss(index, generator) * float("nan")

    with pytest.raises(FloatingPointError, match="not a finite scalar"):
        Trainer(_config(), progress=False).fit(Bad())


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        ({"epochs": 0}, "epochs"),
        ({"batch_size": 0}, "batch_size"),
        ({"lr": -1.0}, "lr"),
        ({"optimizer": "lamb"}, "optimizer"),
        ({"schedule": "step"}, "schedule"),
    ],
)
def test_bad_config(kw: dict[str, object], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        _config(**kw)


def test_batch_larger_than_data() -> None:
    with pytest.raises(ValueError, match="exceeds the 40 training items"):
        Trainer(_config(batch_size=64), progress=False).fit(ToyTask())


def test_ctrl_c_inside_a_step_stops_after_it(tmp_path: Path) -> None:
    """A SIGINT during a step lets the step finish, then checkpoints a consistent state."""
    import os
    import signal

    full = ToyTask()
    Trainer(_config(), progress=False).fit(full)

    class Interrupted(ToyTask):
        def batch_loss(self, index: Tensor, generator: torch.Generator) -> Tensor:
            """Ctrl-C arrives while the fourth step computes its loss."""
            if len(self.seen) == 3:
                os.kill(os.getpid(), signal.SIGINT)
            return super().batch_loss(index, generator)

    cut = Interrupted()
    with pytest.raises(KeyboardInterrupt):
        Trainer(_config(), out=tmp_path, progress=False).fit(cut)
    assert torch.load(tmp_path / CHECKPOINT, weights_only=False)["step"] == 4
    resumed = ToyTask()
    Trainer(_config(), out=tmp_path, progress=False).fit(resumed, resume=True)
    for (k, va), vb in zip(_weights(full).items(), _weights(resumed).values(), strict=True):
        assert torch.equal(va, vb), k


def test_resume_refuses_more_epochs_under_cosine(tmp_path: Path) -> None:
    Trainer(_config(epochs=1), out=tmp_path, progress=False).fit(ToyTask())
    with pytest.raises(ValueError, match="cosine"):
        Trainer(_config(epochs=2), out=tmp_path, progress=False).fit(ToyTask(), resume=True)


def test_resume_refuses_another_run_config(tmp_path: Path) -> None:
    run = {"loss": {"name": "ntxent", "temperature": 0.2}, "train": {"epochs": 1}}
    Trainer(_config(epochs=1), out=tmp_path, progress=False, run_config=run).fit(ToyTask())
    other = {"loss": {"name": "ntxent", "temperature": 0.5}, "train": {"epochs": 1}}
    with pytest.raises(ValueError, match=r"differs from the checkpoint's in loss\.temperature"):
        Trainer(_config(epochs=1), out=tmp_path, progress=False, run_config=other).fit(
            ToyTask(), resume=True
        )


def test_evaluation_is_redone_after_resume_at_an_epoch_end(tmp_path: Path) -> None:
    cfg = _config(epochs=4, eval_every=1)
    trainer = Trainer(cfg, out=tmp_path, progress=False)

    def interrupt(step: int, loss: float) -> None:
        if step == 10:  # the end of epoch 2, before its evaluation
            raise KeyboardInterrupt

    trainer.on_step = interrupt
    with pytest.raises(KeyboardInterrupt):
        trainer.fit(ToyTask())
    history = Trainer(cfg, out=tmp_path, progress=False).fit(ToyTask(), resume=True)
    evals = [r["step"] for r in history.records if r["kind"] == "eval"]
    assert evals == [5, 10, 15, 20]
