"""Time and peak memory of symmetric InfoNCE (CLIP loss), NT-Xent, SigLIP and SupCon as N grows.

Compares contrastkit with plain PyTorch and peer libraries (open_clip, lightly,
pytorch_metric_learning) at ``D = 256`` for ``N`` from 1024 to 131072, each case in a fresh
worker process, next to the float32 GEMM throughput measured in the same run. Implementations
are named per family: ``contrastkit``, ``dense``, ``open_clip`` (CLIP loss);
``contrastkit-ntxent``, ``lightly``, ``pml`` (NT-Xent); ``contrastkit-siglip``, ``dense-siglip``,
``open_clip-siglip`` (SigLIP); ``contrastkit-supcon``, ``dense-supcon``, ``pml-supcon`` (SupCon);
the contrastkit ones also with a ``-tiled`` or ``-dense`` suffix (forced path). Prints Markdown
tables on stdout and progress on stderr; ``--json`` also writes everything as JSON.

Cases predicted to exceed ``--memory-limit`` (from the N x N matrices an implementation
materializes, fitted on the smaller cases of the run) or ``--time-limit`` are skipped; a worker
that fails, runs out of time or grows past the memory limit is reported in its row.

Example:
    ``python -m contrastkit.bench.infonce_scaling --sizes 1024 2048 4096 --json out.json``
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from contrastkit.bench._impls import DEFAULT_IMPLS, FAMILIES, FAMILY_VIEWS, IMPLS, ImplSpec
from contrastkit.bench._report import (
    GIB,
    CaseRow,
    GemmResult,
    ceiling_note,
    ceiling_of,
    check_losses,
    others_note,
    render_family,
    render_machine,
    render_ratios,
    report_title,
)
from contrastkit.bench._worker import RESULT_MARKER, worker_main

DEFAULT_SIZES = (1024, 2048, 4096, 8192, 16384, 32768, 65536, 131072)
CALIBRATION_SIZES: dict[int, tuple[int, int]] = {1: (4096, 8192), 2: (1024, 2048), 3: (64, 128)}
"""Per memory exponent, the two small N at which an implementation is calibrated."""
EFFICIENCY_GUESS = 0.25
"""Fraction of the GEMM ceiling assumed for an implementation never measured yet."""
GRACE_SECONDS = 60.0
"""Time a worker may run past ``--time-limit`` (start-up, last repeat) before it is killed."""


@dataclass(frozen=True)
class Options:
    """Parsed command line.

    Attributes:
        sizes: Batch sizes N, ascending.
        dim: Embedding dimension D.
        impls: Implementation names.
        repeats: Timed repeats per case, or None for adaptive.
        time_limit: Seconds per case (warm-up and repeats).
        memory_limit: Bytes of peak RSS per case.
        json_path: Where to write the JSON results, or None.
        threads: torch intra-op threads in the workers, or None for torch's default.
        gemm_size: Side of the square GEMM that defines the ceiling.
        gemm_repeats: Timed repeats of each GEMM.
        seed: Seed of the inputs.
        max_sizes: Per implementation, the largest N it runs at (larger N are skipped).
    """

    sizes: tuple[int, ...]
    dim: int
    impls: tuple[str, ...]
    repeats: int | None
    time_limit: float
    memory_limit: float
    json_path: Path | None
    threads: int | None
    gemm_size: int
    gemm_repeats: int
    seed: int
    max_sizes: dict[str, int] = field(default_factory=dict)


def _progress(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def _split(values: Sequence[str]) -> list[str]:
    return [part for value in values for part in value.split(",") if part]


_DEFAULT_SIZES_TEXT = " ".join(str(n) for n in DEFAULT_SIZES)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m contrastkit.bench.infonce_scaling",
        description=__doc__.split("\n\n")[0] if __doc__ else None,
    )
    parser.add_argument(
        "--sizes",
        nargs="+",
        default=[str(n) for n in DEFAULT_SIZES],
        help=f"batch sizes N, space or comma separated (default: {_DEFAULT_SIZES_TEXT})",
    )
    parser.add_argument("--dim", type=int, default=256, help="embedding dimension D")
    parser.add_argument(
        "--impls",
        nargs="+",
        default=list(DEFAULT_IMPLS),
        help=f"implementations (default: {' '.join(DEFAULT_IMPLS)}; known: {' '.join(IMPLS)})",
    )
    parser.add_argument(
        "--repeats",
        default="auto",
        help="timed repeats after one warm-up; 'auto': 5 if a run takes < 2 s, 3 if < 30 s, "
        "else 1 (fewer when the time limit is near)",
    )
    parser.add_argument(
        "--time-limit", type=float, default=600.0, help="seconds per case (default: 600)"
    )
    parser.add_argument(
        "--memory-limit", type=float, default=20.0, help="GiB of peak RSS per case (default: 20)"
    )
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    parser.add_argument("--threads", type=int, default=None, help="torch threads in the workers")
    parser.add_argument(
        "--gemm-size", type=int, default=4096, help="side of the square ceiling GEMM"
    )
    parser.add_argument(
        "--gemm-repeats", type=int, default=5, help="timed repeats of each GEMM (default: 5)"
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the random inputs")
    parser.add_argument(
        "--max-size",
        nargs="+",
        default=[],
        metavar="IMPL=N",
        help="run IMPL only up to N (larger N are reported as skipped), e.g. "
        "'dense-siglip=16384 open_clip-siglip=16384'; space or comma separated",
    )
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    return parser


def parse_options(argv: Sequence[str] | None = None) -> Options | str:
    """Parse the command line.

    Args:
        argv: Arguments without the program name; None for ``sys.argv[1:]``.

    Returns:
        The options, or the worker's JSON spec when started as a worker.
    """
    parser = _parser()
    args = parser.parse_args(argv)
    if args.worker is not None:
        return str(args.worker)
    impls = tuple(_split(args.impls))
    unknown = [name for name in impls if name not in IMPLS]
    if unknown:
        parser.error(f"unknown implementation(s) {unknown}; known: {', '.join(IMPLS)}")
    max_sizes: dict[str, int] = {}
    try:
        sizes = tuple(sorted({int(s) for s in _split(args.sizes)}))
        repeats = None if args.repeats == "auto" else int(args.repeats)
        for item in _split(args.max_size):
            name, _, size = item.partition("=")
            if name not in IMPLS:
                parser.error(f"--max-size: unknown implementation {name!r}")
            max_sizes[name] = int(size)
    except ValueError as exc:
        parser.error(str(exc))
    return Options(
        sizes=sizes,
        dim=args.dim,
        impls=impls,
        repeats=repeats,
        time_limit=args.time_limit,
        memory_limit=args.memory_limit * GIB,
        json_path=args.json,
        threads=args.threads,
        gemm_size=args.gemm_size,
        gemm_repeats=args.gemm_repeats,
        seed=args.seed,
        max_sizes=max_sizes,
    )


def cpu_model() -> str:
    """CPU model name from ``/proc/cpuinfo`` (or the platform's processor string)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    import platform

    return platform.processor() or "unknown"


def _rss_now(pid: int) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        return None
    return None


def _busy_seconds() -> float | None:
    """CPU seconds all processes spent so far (Linux ``/proc/stat``), or None elsewhere."""
    try:
        fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:9]
        user, nice, system, _idle, _iowait, irq, softirq, steal = (int(f) for f in fields)
    except (OSError, ValueError, IndexError):
        return None
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def _own_cpu_seconds() -> float:
    """CPU seconds of this process and its waited-for children (the workers)."""
    total = 0.0
    for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
        usage = resource.getrusage(who)
        total += usage.ru_utime + usage.ru_stime
    return total


@dataclass
class WorkerOutcome:
    """What came back from one worker process.

    Attributes:
        result: The parsed result line, or None if there was none.
        status: "ok" when a result line came back, else "timeout", "killed" or "error".
        message: Failure text for the table.
        wall: Seconds the process ran.
        others: Cores' worth of CPU that other processes used meanwhile (None off Linux).
    """

    result: dict[str, Any] | None
    status: str
    message: str
    wall: float
    others: float | None = None


def run_worker(
    spec: dict[str, Any], timeout: float, memory_limit: float, label: str
) -> WorkerOutcome:
    """Run one case in a fresh ``python -m contrastkit.bench.infonce_scaling --worker``.

    The parent watches the worker's RSS (on Linux) and kills it past ``memory_limit``; it also
    kills it after ``timeout`` seconds.

    Args:
        spec: The worker's JSON spec.
        timeout: Seconds before the worker is killed.
        memory_limit: Bytes of RSS before the worker is killed.
        label: Name of the case for the progress lines.

    Returns:
        The worker's result or why there is none.
    """
    package_root = str(Path(__file__).resolve().parents[2])
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH")) if p)
    command = [sys.executable, "-m", "contrastkit.bench.infonce_scaling", "--worker"]
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        busy, own = _busy_seconds(), _own_cpu_seconds()
        start = time.perf_counter()
        process = subprocess.Popen([*command, json.dumps(spec)], stdout=out, stderr=err, env=env)
        killed = ""
        next_beat = start + 30.0
        while process.poll() is None:
            time.sleep(0.1)
            now = time.perf_counter()
            rss = _rss_now(process.pid)
            if rss is not None and rss > memory_limit:
                killed = f"killed at RSS {rss / GIB:.1f} GiB > {memory_limit / GIB:.1f} GiB limit"
            elif now - start > timeout:
                killed = f"timeout: killed after {now - start:.0f} s"
            if killed:
                process.kill()
                process.wait()
                break
            if now >= next_beat:
                rss_text = f", RSS {rss / GIB:.2f} GiB" if rss is not None else ""
                _progress(f"    ... {label}: {now - start:.0f} s{rss_text}")
                next_beat += 30.0
        wall = time.perf_counter() - start
        busy_end, own_end = _busy_seconds(), _own_cpu_seconds()
        others = None
        if busy is not None and busy_end is not None and wall > 0:
            others = max(0.0, (busy_end - busy) - (own_end - own)) / wall
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
    if killed:
        status = "timeout" if killed.startswith("timeout") else "killed"
        return WorkerOutcome(None, status, killed, wall, others)
    for line in stdout.splitlines():
        if line.startswith(RESULT_MARKER):
            result = json.loads(line[len(RESULT_MARKER) :])
            return WorkerOutcome(result, "ok", "", wall, others)
    tail = " / ".join(stderr.strip().splitlines()[-2:]) or "no output"
    if process.returncode and process.returncode < 0:
        message = f"worker killed by signal {-process.returncode} (out of memory?): {tail}"
        return WorkerOutcome(None, "killed", message, wall, others)
    return WorkerOutcome(None, "error", f"exit code {process.returncode}: {tail}", wall, others)


class Runner:
    """Runs the cases in order, predicting each from the ones measured before it."""

    def __init__(self, options: Options, ceiling: float | None):
        self.options = options
        self.ceiling = ceiling
        self.rows: list[CaseRow] = []
        self.failed_at: dict[str, int] = {}

    def measured(self, impl: str) -> list[CaseRow]:
        """Rows of ``impl`` that ran, calibration included, by ascending N."""
        return sorted((r for r in self.rows if r.impl == impl and r.ok), key=lambda r: r.n)

    def memory_slope(self, spec: ImplSpec) -> tuple[float, list[CaseRow]] | None:
        """Bytes per ``N^p`` of ``spec``'s memory increment, and the rows it was fitted on.

        Fits ``increment = a + b * N^p`` (``p = spec.mem_exponent``) through the two largest
        measured N, or ``b * N^p`` through one; None without a measurement.
        """
        points = self.measured(spec.name)
        if not points:
            return None
        power = spec.mem_exponent
        top = points[-1]
        if len(points) >= 2 and points[-2].n < top.n:
            low = points[-2]
            fitted = (top.increment - low.increment) / (float(top.n) ** power - low.n**power)
            if fitted > 0:
                return fitted, [low, top]
        return top.increment / float(top.n) ** power, [top]

    def predict_rss(self, spec: ImplSpec, n: int) -> float:
        """Predicted peak RSS in bytes of ``spec`` at ``n``.

        Extrapolates the largest measured increment with :meth:`memory_slope`, or uses the
        implementation's prior guess before any measurement.
        """
        fit = self.memory_slope(spec)
        if fit is None:
            baselines = [r.baseline_rss for r in self.rows if r.ok] or [int(GIB)]
            return max(baselines) + spec.prior_bytes(n, self.options.dim)
        slope, used = fit
        top, power = used[-1], spec.mem_exponent
        growth = slope * (float(n) ** power - float(top.n) ** power)
        return top.baseline_rss + max(0.0, top.increment + growth)

    def predict_seconds(self, spec: ImplSpec, n: int) -> float:
        """Predicted seconds of one forward+backward of ``spec`` at ``n``.

        Scales the largest measured N by ``(n / N)^time_exponent``; without a measurement,
        divides the counted flops by the ceiling times ``EFFICIENCY_GUESS``.
        """
        points = self.measured(spec.name)
        if points:
            top = points[-1]
            return top.median * (n / top.n) ** spec.time_exponent
        views = FAMILY_VIEWS[spec.family]
        flops = 6.0 * float(views * n) ** 2 * self.options.dim
        return flops / ((self.ceiling or 50.0) * 1e9 * EFFICIENCY_GUESS)

    def run_case(self, spec: ImplSpec, n: int, calibration: bool = False) -> CaseRow:
        """Run one case in a worker (no prediction) and record its row."""
        options = self.options
        worker_spec = {
            "kind": "loss",
            "impl": spec.name,
            "n": n,
            "dim": options.dim,
            "seed": options.seed,
            "repeats": 1 if calibration else options.repeats,
            "time_budget": options.time_limit,
            "threads": options.threads,
        }
        label = f"N={n} {spec.name}" + (" (calibration)" if calibration else "")
        outcome = run_worker(
            worker_spec, options.time_limit + GRACE_SECONDS, options.memory_limit, label
        )
        result = outcome.result or {}
        status = str(result.get("status", outcome.status))
        row = CaseRow(
            n=n,
            impl=spec.name,
            status=status,
            message=outcome.message or str(result.get("message", "")),
            times=[float(t) for t in result.get("times", [])],
            warmup=float(result.get("warmup", 0.0)),
            loss=result.get("loss"),
            baseline_rss=int(result.get("baseline_rss", 0)),
            peak_rss=int(result.get("peak_rss", 0)),
            wall=outcome.wall,
            calibration=calibration,
            others=outcome.others,
        )
        self.rows.append(row)
        return row

    def calibrate(self, spec: ImplSpec, n: int) -> None:
        """Measure ``spec`` at two small sizes below ``n`` so that its memory can be fitted."""
        for size in CALIBRATION_SIZES[spec.mem_exponent]:
            if size >= n:
                break
            row = self.run_case(spec, size, calibration=True)
            _progress(f"    calibration {spec.name} N={size}: {_describe(row)}")
            if not row.ok:
                break

    def case(self, spec: ImplSpec, n: int) -> CaseRow:
        """Predict, then run or skip, one case; record and return its row."""
        options = self.options
        if importlib.util.find_spec(spec.module) is None:
            row = CaseRow(n=n, impl=spec.name, status="not installed", message=spec.module)
            self.rows.append(row)
            return row
        largest = options.max_sizes.get(spec.name)
        if largest is not None and n > largest:
            row = CaseRow(n=n, impl=spec.name, status="skipped", message=f"--max-size {largest}")
            self.rows.append(row)
            return row
        if spec.name in self.failed_at:
            first = self.failed_at[spec.name]
            missing = any(r.impl == spec.name and r.status == "not installed" for r in self.rows)
            row = CaseRow(
                n=n,
                impl=spec.name,
                status="not installed" if missing else "skipped",
                message=f"see N={first}" if missing else f"failed at N={first}",
            )
            self.rows.append(row)
            return row
        rss, seconds = self.predict_rss(spec, n), self.predict_seconds(spec, n)
        near = rss > options.memory_limit / 4 or seconds > options.time_limit / 4
        if not self.measured(spec.name) and near:
            self.calibrate(spec, n)
            rss, seconds = self.predict_rss(spec, n), self.predict_seconds(spec, n)
        reason = ""
        if rss > options.memory_limit:
            reason = f"predicted {rss / GIB:.1f} GiB > {options.memory_limit / GIB:g} GiB limit"
        elif seconds > options.time_limit:
            reason = f"predicted {seconds:.0f} s per run > {options.time_limit:g} s limit"
        if reason:
            row = CaseRow(n=n, impl=spec.name, status="skipped", message=reason)
            row.predicted_rss, row.predicted_seconds = rss, seconds
            self.rows.append(row)
            return row
        row = self.run_case(spec, n)
        row.predicted_rss, row.predicted_seconds = rss, seconds
        row.path = resolved_path(spec, n)
        if row.status in ("error", "timeout", "killed", "not installed"):
            self.failed_at[spec.name] = n
        return row


def resolved_path(spec: ImplSpec, n: int) -> str:
    """The path contrastkit's ``impl="auto"`` takes at ``n`` ("" for other implementations).

    Asks ``contrastkit.core.dispatch.resolve_impl`` with the logits' shape (``2N x 2N`` for
    NT-Xent, else ``N x N``); "" if that function is not available.
    """
    if spec.variant != "auto":
        return ""
    try:
        resolve = importlib.import_module("contrastkit.core.dispatch").resolve_impl
    except (ImportError, AttributeError):
        return ""
    rows = FAMILY_VIEWS[spec.family] * n
    return str(resolve("auto", rows, rows))


def _describe(row: CaseRow) -> str:
    if not row.ok:
        return f"{row.status} ({row.message})"
    reps = f"{len(row.times)} reps" if row.times else "warm-up only"
    return (
        f"{row.median:.3f} s median ({reps}), peak RSS {row.peak_rss / GIB:.2f} GiB "
        f"(+{row.increment / GIB:.2f})"
    )


def measure_gemm(options: Options, when: str) -> GemmResult:
    """Measure the GEMM ceiling and the tiled-loss GEMM shapes in a fresh worker."""
    spec = {
        "kind": "gemm",
        "square": options.gemm_size,
        "dim": options.dim,
        "tile": 1024,
        "width": 32768,
        "repeats": options.gemm_repeats,
        "threads": options.threads,
    }
    _progress(f"GEMM throughput ({when}): ({options.gemm_size})^3 float32 torch.mm ...")
    outcome = run_worker(spec, options.time_limit + GRACE_SECONDS, options.memory_limit, "gemm")
    result = outcome.result or {}
    if result.get("status") != "ok":
        message = outcome.message or str(result.get("message"))
        _progress(f"    failed: {message}")
        return GemmResult(status="error", message=message, when=when)
    facts = {key: value for key, value in result.items() if key not in ("status", "shapes")}
    gemm = GemmResult(status="ok", shapes=list(result["shapes"]), facts=facts, when=when)
    _progress(f"    {gemm.ceiling:.1f} GFLOP/s")
    return gemm


def memory_model_lines(runner: Runner) -> list[str]:
    """Markdown lines: the per-N^p memory each implementation showed (what skipping uses)."""
    lines = []
    for name in runner.options.impls:
        spec = IMPLS[name]
        fit = runner.memory_slope(spec)
        if fit is None:
            continue
        slope, used = fit
        power = spec.mem_exponent
        unit = {1: "N", 2: "N²", 3: "N³"}[power]
        points = ", ".join(
            f"N={r.n}: +{r.increment / GIB:.3f} GiB{' (calibration)' if r.calibration else ''}"
            for r in used
        )
        extra = ""
        if power == 2:
            views = FAMILY_VIEWS[spec.family]
            side = "N" if views == 1 else f"{views}N"
            extra = f" = {slope / (4.0 * views * views):.1f} float32 {side} x {side} matrices"
        lines.append(f"- {name}: {slope:.1f} bytes per {unit}{extra} (from {points})")
    if not lines:
        return []
    return ["## Memory model (fitted in this run; used to skip larger cases)", "", *lines, ""]


def render(options: Options, gemms: list[GemmResult], runner: Runner) -> str:
    """The whole Markdown report."""
    ceiling = ceiling_of(gemms)
    present = {IMPLS[name].family for name in options.impls}
    families = [f for f in FAMILIES if f in present]
    title = report_title(families)
    lines = render_machine(cpu_model(), os.cpu_count() or 0, gemms, options.dim, title)
    for family in families:
        lines += render_family(runner.rows, family, options.dim, ceiling)
    lines += render_ratios(runner.rows, "contrastkit", ("dense", "open_clip"))
    lines += render_ratios(runner.rows, "contrastkit-ntxent", ("lightly", "pml"))
    lines += render_ratios(runner.rows, "contrastkit-siglip", ("dense-siglip", "open_clip-siglip"))
    lines += render_ratios(runner.rows, "contrastkit-supcon", ("dense-supcon", "pml-supcon"))
    lines += ["## Implementations", ""]
    lines += [f"- **{name}**: {IMPLS[name].description}" for name in options.impls]
    lines += ["", *memory_model_lines(runner), "## Notes", ""]
    lines += check_losses(runner.rows)
    lines += ceiling_note(runner.rows, options.dim, ceiling)
    lines += others_note(runner.rows, os.cpu_count() or 0, options.threads)
    lines += [
        "- Time: forward + backward of the loss w.r.t. float32 (N, D) leaf inputs (normalizing "
        "included; for SigLIP also w.r.t. the logit scale and bias, fresh 0-dim leaves each run; "
        "for SupCon one (N, D) input and fixed int64 labels), grads set to None between runs; "
        "median [min-max] of the timed repeats after "
        "one warm-up. reps 'auto': 5 when the warm-up took < 2 s, 3 when < 30 s, else 1 (fewer "
        "if the time limit would be exceeded).",
        "- Peak RSS: getrusage(RUSAGE_SELF).ru_maxrss of the worker; increment = peak minus the "
        "same value taken after imports and input creation.",
        f"- Limits per case: {options.memory_limit / GIB:g} GiB, {options.time_limit:g} s. "
        "Skips are predictions from the smaller cases of this run (memory: a + b·N^p with "
        "p = 2, or 3 for pml (NT-Xent), 1 for tiled contrastkit; time: previous time x "
        "(N ratio)^p).",
    ]
    if options.max_sizes:
        capped = ", ".join(f"{name} up to N={n}" for name, n in options.max_sizes.items())
        lines.append(f"- Run only up to a size by --max-size (not predicted): {capped}.")
    lines.append("")
    return "\n".join(lines)


def write_json(path: Path, options: Options, gemms: list[GemmResult], runner: Runner) -> None:
    """Write options, machine, GEMM results and all rows (calibration included) as JSON."""
    payload = {
        "options": {**asdict(options), "json_path": str(options.json_path)},
        "cpu": cpu_model(),
        "cpus": os.cpu_count(),
        "gemm": [asdict(gemm) for gemm in gemms],
        "ceiling_gflops": ceiling_of(gemms),
        "flops_counting": (
            "6 * (views * N)^2 * D per forward+backward; views = 2 (ntxent), "
            "1 (clip, siglip, supcon)"
        ),
        "rows": [
            {
                **asdict(row),
                "family": IMPLS[row.impl].family,
                "median": row.median if row.ok else None,
                "increment": row.increment if row.ok else None,
                "gflops": row.flops(options.dim) / row.median / 1e9 if row.ok else None,
            }
            for row in runner.rows
        ],
    }
    path.write_text(json.dumps(payload, indent=2) + "\n")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark (or, with ``--worker``, one case of it).

    Args:
        argv: Arguments without the program name; None for ``sys.argv[1:]``.

    Returns:
        Exit code (0; failed cases are reported in the table).
    """
    parsed = parse_options(argv)
    if isinstance(parsed, str):
        return worker_main(parsed)
    options = parsed
    gemms = [measure_gemm(options, "start of run")]
    runner = Runner(options, ceiling_of(gemms))
    total = len(options.sizes) * len(options.impls)
    index = 0
    for n in options.sizes:
        for name in options.impls:
            index += 1
            _progress(f"[{index}/{total}] N={n} {name} ...")
            row = runner.case(IMPLS[name], n)
            _progress(f"    {_describe(row)}")
    gemms.append(measure_gemm(options, "end of run"))
    report = render(options, gemms, runner)
    print(report)
    if options.json_path is not None:
        write_json(options.json_path, options, gemms, runner)
        _progress(f"wrote {options.json_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
