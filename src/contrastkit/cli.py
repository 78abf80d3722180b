r"""The ``contrastkit`` command: demo, train, compare, bench, losses.

Run ``contrastkit <command> --help`` for each command's options and examples. Exit codes:
0 success, 1 the run failed (a non-finite loss), 2 a bad argument or configuration, 3 a data
set's package is not installed (the message names the install command), 130 interrupted
(a checkpoint is saved; continue with ``--resume``).
"""

from __future__ import annotations

import argparse
import contextlib
import inspect
import io
import json
import math
import os
import statistics
import sys
import textwrap
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from contrastkit import __version__
from contrastkit.data import DataSourceMissingError
from contrastkit.losses import REGISTRY
from contrastkit.train import plots
from contrastkit.train.config import (
    ConfigError,
    build,
    load_config,
    to_toml,
    train_config,
)
from contrastkit.train.objectives import trainable_losses, unsupported_reason
from contrastkit.train.trainer import CHECKPOINT, Trainer

IMAGE_METRICS = ("knn_accuracy", "linear_accuracy", "alignment", "uniformity")
_HEADINGS = {
    "knn_accuracy": "kNN acc",
    "linear_accuracy": "linear acc",
    "alignment": "alignment",
    "uniformity": "uniformity",
}
EXIT_FAILED, EXIT_USAGE, EXIT_MISSING, EXIT_INTERRUPTED = 1, 2, 3, 130
_EXIT_CODES = (
    "exit codes: 0 success, 1 the run failed (a non-finite loss), 2 a bad argument or\n"
    "configuration, 3 a data set's package is missing (the message names the install command),\n"
    "130 interrupted (a checkpoint is saved; continue with --resume)."
)


class UsageError(ValueError):
    """A bad command-line argument."""


# ----------------------------------------------------------------------------- helpers
def _device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(name)
    except RuntimeError as exc:
        raise UsageError(f"--device: {name!r} is not a device (try cpu, cuda, cuda:1)") from exc
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise UsageError("--device: CUDA is not available here; use --device cpu")
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        raise UsageError(
            f"--device: {name} does not exist; this machine has {torch.cuda.device_count()} GPU(s)"
        )
    return dev


def _say(quiet: bool, text: str) -> None:
    if not quiet:
        print(text, file=sys.stderr, flush=True)


def _fmt(value: float | None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:.3f}"


def metrics_table(rows: Mapping[str, Mapping[str, float]], columns: Sequence[str]) -> str:
    """A markdown table: one row per name, one column per metric."""
    head = "| | " + " | ".join(_HEADINGS.get(c, c) for c in columns) + " |"
    rule = "| --- |" + " ---: |" * len(columns)
    body = [
        f"| {name} | " + " | ".join(_fmt(m.get(c)) for c in columns) + " |"
        for name, m in rows.items()
    ]
    return "\n".join([head, rule, *body])


def _write_json(path: Path, obj: object) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(obj, indent=2) + "\n")
    tmp.replace(path)


# ------------------------------------------------------------------------------- a run
def run(
    cfg: Mapping[str, Mapping[str, Any]],
    *,
    out: Path,
    seed: int,
    device: torch.device,
    resume: bool = False,
    draw: bool = True,
    quiet: bool = False,
) -> dict[str, dict[str, float]]:
    """Train one configuration and write its report folder.

    The folder holds ``config.toml``, ``checkpoint.pt``, ``log.jsonl``, ``log.csv``,
    ``metrics.json`` (``raw`` for image data, ``random`` and ``trained``) and, with ``draw``,
    the plots ``loss.png``, ``similarities.png``, ``alignment_uniformity.png`` and
    ``embedding_map.png``.

    Returns:
        The metrics, as written to ``metrics.json``.
    """
    if resume and not (out / CHECKPOINT).exists():
        raise UsageError(f"--resume: no checkpoint in {out}; run once without --resume first")
    built = build(cfg, seed=seed)
    task = built.task.to(device)
    out.mkdir(parents=True, exist_ok=True)
    result: dict[str, dict[str, float]] = {}
    if built.kind == "images":
        _say(quiet, "evaluating raw pixels ...")
        result["raw"] = built.raw_metrics()
    _say(quiet, "evaluating the random encoder ...")
    task.eval()
    with torch.no_grad():
        result["random"] = task.evaluate()
        random_pairs = task.test_embeddings()
    trainer = Trainer(
        train_config(cfg, seed=seed),
        out=out,
        progress=not quiet,
        device=device,
        run_config={**cfg, "seed": seed},
    )
    if not resume:
        (out / "config.toml").write_text(to_toml(cfg))
    start = time.perf_counter()
    history = trainer.fit(task, resume=resume)
    (out / "config.toml").write_text(to_toml(cfg))
    seconds = time.perf_counter() - start
    result["trained"] = history.final
    _write_json(out / "metrics.json", result)
    _write_json(
        out / "run.json",
        {
            "seconds": round(seconds, 2),
            "seed": seed,
            "device": str(device),
            "contrastkit": __version__,
            "torch": torch.__version__,
            "train_items": len(built.train),
            "test_items": len(built.test),
        },
    )
    if draw:
        task.eval()
        with torch.no_grad():
            a, b, labels = task.test_embeddings()
        plots.loss_curve(history.records, out / "loss.png", title=str(cfg["loss"]["name"]))
        plots.similarity_histograms(
            {"random encoder": random_pairs[:2], "trained": (a, b)}, out / "similarities.png"
        )
        plots.alignment_uniformity(
            {k: m for k, m in result.items() if "alignment" in m}, out / "alignment_uniformity.png"
        )
        plots.embedding_map(a, labels, out / "embedding_map.png", title="trained (test, PCA)")
    _say(quiet, f"trained in {seconds:.1f} s; report in {out}")
    return result


def _describe(cfg: Mapping[str, Mapping[str, Any]], *, loss_name: bool = True) -> str:
    loss = dict(cfg["loss"])
    name = loss.pop("name")
    loss.pop("supervised", None)
    opts = ", ".join(f"{k}={v}" for k, v in loss.items())
    what = f"loss {name}({opts})" if loss_name else f"loss options ({opts})"
    t = cfg["train"]
    return (
        f"data {cfg['data']['name']}, encoder {cfg['model']['encoder']}, {what}, "
        f"{t.get('epochs')} epochs, batch {t.get('batch_size')}"
    )


def _print_result(result: Mapping[str, Mapping[str, float]]) -> None:
    names = {"raw": "raw features", "random": "random encoder", "trained": "trained encoder"}
    rows = {names.get(k, k): m for k, m in result.items()}
    columns = list(next(iter(result.values())).keys())
    if all(c in columns for c in IMAGE_METRICS):
        columns = list(IMAGE_METRICS)
    print(metrics_table(rows, columns))


# ------------------------------------------------------------------------------ commands
def _train_and_report(cfg: dict[str, dict[str, Any]], args: argparse.Namespace, what: str) -> int:
    device = _device(args.device)
    print(f"{what} ({_describe(cfg)}), {device}")
    result = run(
        cfg,
        out=args.out,
        seed=args.seed,
        device=device,
        resume=args.resume,
        draw=not args.no_plots,
        quiet=args.quiet,
    )
    _print_result(result)
    files = "metrics.json, log.jsonl, log.csv, config.toml, checkpoint.pt"
    if not args.no_plots:
        files += ", loss.png, similarities.png, alignment_uniformity.png, embedding_map.png"
    print(f"\nreport: {args.out} ({files})")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    """``contrastkit demo``."""
    extra: dict[str, dict[str, Any]] = {"train": {}}
    if args.epochs is not None:
        extra["train"]["epochs"] = args.epochs
    if args.loss is not None:
        extra["loss"] = {"name": args.loss}
    cfg = load_config(extra=extra)
    return _train_and_report(cfg, args, "contrastkit demo: SimCLR on scikit-learn's digits")


def cmd_train(args: argparse.Namespace) -> int:
    """``contrastkit train``."""
    cfg = load_config(args.config, args.set)
    return _train_and_report(cfg, args, "contrastkit train")


def _split_losses(text: str) -> list[str]:
    names = [part.strip() for part in text.split(",") if part.strip()]
    if not names:
        raise UsageError("--losses: give at least one catalog id, e.g. ntxent,dcl,supcon")
    for name in names:
        if name not in REGISTRY:
            raise UsageError(
                f"--losses: unknown catalog id {name!r}; `contrastkit losses` lists them"
            )
        reason = unsupported_reason(name)
        if reason is not None:
            raise UsageError(f"--losses: {name!r} cannot be trained on two views: {reason}")
    if len(set(names)) != len(names):
        raise UsageError(f"--losses: {text!r} names a loss twice")
    return names


def compare_summary(
    runs: Mapping[str, Sequence[Mapping[str, float]]],
) -> dict[str, dict[str, tuple[float, float]]]:
    """Per name and metric: mean and sample standard deviation over the runs (0 for one)."""
    out: dict[str, dict[str, tuple[float, float]]] = {}
    for name, results in runs.items():
        keys = list(results[0])
        out[name] = {}
        for key in keys:
            values = [r[key] for r in results]
            spread = statistics.stdev(values) if len(values) > 1 else 0.0
            out[name][key] = (statistics.fmean(values), spread)
    return out


def cmd_compare(args: argparse.Namespace) -> int:
    """``contrastkit compare``."""
    names = _split_losses(args.losses)
    if args.seeds < 1:
        raise UsageError(f"--seeds: {args.seeds} runs per loss; give 1 or more")
    base = load_config(args.config, args.set)
    device = _device(args.device)
    options = {k: v for k, v in base["loss"].items() if k not in ("name", "supervised")}
    setup = _describe(base, loss_name=False)
    print(f"contrastkit compare: {', '.join(names)} x {args.seeds} seeds; {setup}")
    configs: dict[str, dict[str, dict[str, Any]]] = {}
    for name in names:
        cfg = {k: dict(v) for k, v in base.items()}
        params = inspect.signature(REGISTRY[name].__init__).parameters
        taken = {k: v for k, v in options.items() if k in params}
        skipped = sorted(set(options) - set(taken))
        if skipped:
            print(f"  note: {name} takes no {', '.join(skipped)}; left out for it")
        supervised = bool(base["loss"].get("supervised", True))
        if REGISTRY[name].requires.labels:
            how = "class labels (supervised)" if supervised else "instance labels (self-supervised)"
            print(f"  note: {name} sees {how}; set loss.supervised={str(not supervised).lower()}")
        cfg["loss"] = {"name": name, "supervised": supervised, **taken}
        configs[name] = cfg
    runs: dict[str, list[dict[str, float]]] = {}
    baselines: dict[str, list[dict[str, float]]] = {}
    total, index, start = len(names) * args.seeds, 0, time.perf_counter()
    for name in names:
        for seed in range(args.seed, args.seed + args.seeds):
            index += 1
            print(f"[{index}/{total}] {name}, seed {seed} ...", flush=True)
            result = run(
                configs[name],
                out=args.out / name / f"seed{seed}",
                seed=seed,
                device=device,
                draw=False,
                quiet=args.quiet,
            )
            runs.setdefault(name, []).append(result["trained"])
            for key in ("raw", "random"):
                if key in result and name == names[0]:
                    baselines.setdefault(key, []).append(result[key])
    summary = compare_summary({**baselines, **runs})
    columns = list(next(iter(summary.values())))
    heads = [_HEADINGS.get(c, c) for c in columns]
    lines = ["| | " + " | ".join(heads) + " |", "| --- |" + " ---: |" * len(columns)]
    for name, stats in summary.items():
        cells = [f"{m:.3f} ± {s:.3f}" for m, s in (stats[c] for c in columns)]
        lines.append(f"| {_row_name(name, configs)} | " + " | ".join(cells) + " |")
    table = "\n".join(lines)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "compare.md").write_text(
        f"{setup}; {args.seeds} seed(s), mean ± standard deviation\n\n{table}\n"
    )
    with open(args.out / "compare.csv", "w") as f:
        f.write("name," + ",".join(f"{c}_mean,{c}_std" for c in columns) + "\n")
        for name, stats in summary.items():
            f.write(name + "," + ",".join(f"{stats[c][0]:.6g},{stats[c][1]:.6g}" for c in columns))
            f.write("\n")
    _write_json(
        args.out / "compare.json",
        {"runs": {**baselines, **runs}, "seeds": args.seeds, "setup": setup},
    )
    if not args.no_plots:
        plots.metric_bars(summary, args.out / "compare.png")
        points = {n: {k: m for k, (m, _) in s.items()} for n, s in summary.items()}
        plots.alignment_uniformity(
            {n: p for n, p in points.items() if "alignment" in p},
            args.out / "alignment_uniformity.png",
        )
    print(table)
    print(
        f"\n{total} runs in {time.perf_counter() - start:.0f} s; "
        f"report: {args.out} (compare.md, compare.csv, compare.json"
        + (", compare.png, alignment_uniformity.png)" if not args.no_plots else ")")
    )
    return 0


def _row_name(name: str, configs: Mapping[str, Mapping[str, Mapping[str, Any]]]) -> str:
    if name in ("raw", "random"):
        return {"raw": "raw features", "random": "random encoder"}[name]
    if REGISTRY[name].requires.labels and configs[name]["loss"]["supervised"]:
        return f"{name} (class labels)"
    return name


BENCHES = {
    "scaling": "contrastkit.bench.infonce_scaling",
    "distributed": "contrastkit.bench.distributed_scaling",
    "pamc": "contrastkit.bench.pamc_error",
}


def cmd_bench(args: argparse.Namespace) -> int:
    """``contrastkit bench``: hand the remaining arguments to a :mod:`contrastkit.bench` run."""
    import importlib

    rest = list(args.rest)
    which = "scaling"
    if rest and rest[0] in BENCHES:
        which = rest.pop(0)
    elif rest and not rest[0].startswith("-"):
        raise UsageError(
            f"bench: unknown benchmark {rest[0]!r}; choose one of {', '.join(sorted(BENCHES))}"
        )
    if rest[:1] == ["--"]:
        rest = rest[1:]
    if _device(args.device).type != "cpu":
        raise UsageError(
            "--device: the benchmarks measure CPU time and peak RSS; run them with --device cpu"
        )
    if args.seed is not None:
        if which == "distributed":
            raise UsageError("--seed: the distributed benchmark has no seed; leave it out")
        rest = ["--seed", str(args.seed), *rest]
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        if which == "scaling":
            rest = [*rest, "--json", str(args.out / "bench.json")]
    module = importlib.import_module(BENCHES[which])
    buffer = io.StringIO()
    with contextlib.redirect_stdout(_Tee(sys.stdout, buffer)):
        code = module.main(rest)
    if args.out is not None:
        (args.out / "bench.md").write_text(buffer.getvalue())
    return int(code) if isinstance(code, int) else 0


class _Tee(io.TextIOBase):
    """Write to several text streams at once."""

    def __init__(self, *streams: Any) -> None:
        self.streams = streams

    def write(self, text: str) -> int:
        for stream in self.streams:
            stream.write(text)
        return len(text)

    def flush(self) -> None:
        for stream in self.streams:
            stream.flush()


def cmd_losses(args: argparse.Namespace) -> int:
    """``contrastkit losses`` (with ``--out FILE``, also written to that file)."""
    if args.out is None:
        return _losses(args)
    buffer = io.StringIO()
    with contextlib.redirect_stdout(_Tee(sys.stdout, buffer)):
        code = _losses(args)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(buffer.getvalue())
    return code


def _losses(args: argparse.Namespace) -> int:
    if args.id is not None:
        if args.id not in REGISTRY:
            raise UsageError(f"losses: unknown catalog id {args.id!r}; run `contrastkit losses`")
        cls = REGISTRY[args.id]
        p = cls.paper
        req = cls.requires
        needs = [k for k in ("labels", "teacher", "index", "state") if getattr(req, k)]
        reason = unsupported_reason(args.id)
        print(f"{args.id}: {cls.__name__} ({cls.family})")
        print(f"paper:   {p.authors} {p.year}, {p.title} (arXiv:{p.arxiv})")
        print(f"inputs:  {', '.join(cls.inputs)}; needs {', '.join(needs) or 'nothing else'}")
        print(f"command line: {'trainable' if reason is None else 'not trainable: ' + reason}")
        print()
        print((cls.__doc__ or "").strip())
        return 0
    ids = trainable_losses() if args.trainable else list(REGISTRY)
    if args.markdown:
        from contrastkit.losses import catalog_markdown

        print(catalog_markdown())
        return 0
    width = max(len(i) for i in ids)
    print(f"{'id':<{width}}  {'paper':<26}  {'needs':<14}  {'trainable':<9}  family")
    for name in ids:
        cls = REGISTRY[name]
        req = cls.requires
        needs_text = ",".join(k for k in ("labels", "teacher", "index", "state") if getattr(req, k))
        paper = f"{cls.paper.authors} {cls.paper.year}"
        where = "yes" if unsupported_reason(name) is None else "no"
        needs_cell = needs_text or "-"
        print(f"{name:<{width}}  {paper[:26]:<26}  {needs_cell:<14}  {where:<9}  {cls.family}")
    print(f"\n{len(ids)} losses; `contrastkit losses ID` shows one with its formula")
    return 0


# ------------------------------------------------------------------------------- parser
def _common(p: argparse.ArgumentParser, *, out: str | None) -> None:
    if out is not None:
        p.add_argument(
            "--out", type=Path, default=Path(out), help=f"report folder (default: {out})"
        )
    p.add_argument("--seed", type=int, default=0, help="seed of everything random (default: 0)")
    p.add_argument(
        "--device", default="auto", help="cpu, cuda, cuda:N or auto (default: auto: cuda if any)"
    )
    p.add_argument("--quiet", action="store_true", help="no progress output")


def _wrap(text: str) -> str:
    return textwrap.fill(text, width=88)


def _config_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", type=Path, default=None, help="a TOML file")
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="SECTION.KEY=VALUE",
        help="override one field (repeatable), e.g. train.epochs=50",
    )
    p.add_argument("--no-plots", action="store_true", help="skip the PNG plots")


def build_parser() -> argparse.ArgumentParser:
    """The ``contrastkit`` argument parser."""
    fmt = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(
        prog="contrastkit",
        description=_wrap("Exact, memory-efficient contrastive losses: train, compare, benchmark."),
        epilog="examples:\n  contrastkit demo\n  contrastkit losses --trainable\n"
        "  contrastkit compare --losses ntxent,dcl,supcon --seeds 3\n"
        "  contrastkit bench -- --sizes 1024 4096 --impls contrastkit dense\n\n" + _EXIT_CODES,
        formatter_class=fmt,
    )
    parser.add_argument("--version", action="version", version=f"contrastkit {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="command")

    p = sub.add_parser(
        "demo",
        help="SimCLR on scikit-learn's digits: random vs raw vs trained, report with plots",
        description=_wrap(
            "Train the default loss (NT-Xent) on scikit-learn's bundled digits for about "
            "a minute on 2 CPU cores; print kNN and linear-probe accuracy, alignment and "
            "uniformity of raw pixels, the random encoder and the trained one; write a report "
            "folder."
        ),
        epilog="examples:\n  contrastkit demo\n  contrastkit demo --out runs/demo --epochs 50\n"
        "  contrastkit demo --loss dcl\n  contrastkit demo --resume   # after Ctrl-C",
        formatter_class=fmt,
    )
    _common(p, out="runs/demo")
    p.add_argument("--epochs", type=int, default=None, help="epochs (default: 100)")
    p.add_argument("--loss", default=None, help="a trainable catalog id (default: ntxent)")
    p.add_argument("--resume", action="store_true", help="continue from --out's checkpoint")
    p.add_argument("--no-plots", action="store_true", help="skip the PNG plots")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser(
        "train",
        help="train from a TOML config; any field overridable with --set",
        description=_wrap(
            "Train one configuration. The config has tables [data], [model], [loss], "
            "[augment], [train]; see contrastkit.train.config. Missing keys take the demo's values."
        ),
        epilog="examples:\n  contrastkit train --config run.toml\n"
        "  contrastkit train --set loss.name=supcon --set loss.temperature=0.1\n"
        '  contrastkit train --set data.name=multifeature --set \'data.views=["pix","fou"]\' '
        "--set loss.name=clip\n  contrastkit train --config run.toml --resume",
        formatter_class=fmt,
    )
    _common(p, out="runs/train")
    _config_options(p)
    p.add_argument("--resume", action="store_true", help="continue from --out's checkpoint")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser(
        "compare",
        help="the same setup for several losses and seeds: mean and spread per metric",
        description=_wrap(
            "Train the same configuration with each loss and seed; write compare.md, "
            "compare.csv, compare.json and a plot. Loss options of the config ([loss] / --set "
            "loss.X=...) apply to every loss that takes them."
        ),
        epilog="examples:\n  contrastkit compare --losses ntxent,dcl,supcon --seeds 3\n"
        "  contrastkit compare --losses ntxent,dclw --seeds 2 --set train.epochs=50",
        formatter_class=fmt,
    )
    _common(p, out="runs/compare")
    p.add_argument("--losses", required=True, help="comma-separated catalog ids")
    p.add_argument("--seeds", type=int, default=3, help="runs per loss (default: 3)")
    _config_options(p)
    p.set_defaults(func=cmd_compare)

    p = sub.add_parser(
        "bench",
        help="engine benchmark: time and peak memory vs the dense computation and the peers",
        description=_wrap(
            "Run a benchmark of contrastkit.bench (the code the benchmarks/ scripts "
            "call); arguments after the benchmark's name (or after --) go to it, see "
            "`contrastkit bench scaling -- --help`."
        ),
        epilog="examples:\n  contrastkit bench -- --sizes 1024 4096\n"
        "  contrastkit bench scaling -- --sizes 8192 --impls contrastkit dense open_clip\n"
        "  contrastkit bench distributed -- --help\n  contrastkit bench pamc\n"
        "  contrastkit bench --out runs/bench --seed 1 scaling -- --sizes 2048",
        formatter_class=fmt,
    )
    p.add_argument(
        "--out",
        type=Path,
        default=None,
        help="also write the table to OUT/bench.md (scaling: and OUT/bench.json)",
    )
    p.add_argument("--seed", type=int, default=None, help="seed of the random inputs")
    p.add_argument("--device", default="cpu", help="cpu only: the benchmarks measure CPU time")
    p.add_argument(
        "rest",
        nargs=argparse.REMAINDER,
        metavar="[scaling|distributed|pamc] [-- ARGS]",
        help="which benchmark (default: scaling) and its own arguments",
    )
    p.set_defaults(func=cmd_bench)

    p = sub.add_parser(
        "losses",
        help="the catalog: papers and what each loss needs",
        description=_wrap("List the catalog losses, or show one with its formula."),
        epilog="examples:\n  contrastkit losses\n  contrastkit losses --trainable\n"
        "  contrastkit losses supcon\n  contrastkit losses --markdown",
        formatter_class=fmt,
    )
    p.add_argument("id", nargs="?", default=None, help="show this loss")
    p.add_argument("--trainable", action="store_true", help="only losses the trainer can use")
    p.add_argument("--markdown", action="store_true", help="the README's catalog table")
    p.add_argument("--out", type=Path, default=None, help="also write the listing to this file")
    p.set_defaults(func=cmd_losses)
    return parser


def _run_command(func: Callable[[argparse.Namespace], int], args: argparse.Namespace) -> int:
    try:
        return func(args)
    except DataSourceMissingError as exc:
        print(f"contrastkit: error: {exc}", file=sys.stderr)
        return EXIT_MISSING
    except (UsageError, ConfigError, ValueError, FileNotFoundError) as exc:
        print(f"contrastkit: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except ImportError as exc:  # an optional package (matplotlib for the plots, ...)
        print(f"contrastkit: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except (FloatingPointError, RuntimeError) as exc:
        print(f"contrastkit: run failed: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        print("contrastkit: interrupted; continue with --resume", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # the reader went away (`contrastkit losses | head`)
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``contrastkit`` command line.

    Args:
        argv: Arguments without the program name; ``None`` for ``sys.argv[1:]``.

    Returns:
        The exit code.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return EXIT_USAGE
    return _run_command(args.func, args)


if __name__ == "__main__":
    sys.exit(main())
