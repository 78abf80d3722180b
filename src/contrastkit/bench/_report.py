"""Results and Markdown rendering for :mod:`contrastkit.bench.infonce_scaling`."""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from typing import Any

from contrastkit.bench._impls import FAMILY_VIEWS, IMPLS, SUPCON_CLASSES, Family

GIB = float(2**30)

FAMILY_REFERENCES: dict[Family, tuple[str, str]] = {
    "clip": ("dense", "open_clip"),
    "ntxent": ("lightly", "pml"),
    "siglip": ("dense-siglip", "open_clip-siglip"),
    "supcon": ("dense-supcon", "pml-supcon"),
}
"""Per family, the two implementations the speed-up columns compare against."""

FAMILY_TITLES: dict[Family, str] = {
    "clip": "CLIP loss: symmetric InfoNCE over N pairs (N x N logits, temperature 0.07)",
    "ntxent": (
        "NT-Xent (SimCLR): the 2N views cat(q, k) against each other (2N x 2N logits, "
        "self-similarities removed, temperature 0.07); a different, 4x larger loss than the "
        "CLIP table"
    ),
    "siglip": (
        "SigLIP: sigmoid loss over all N x N image-text pairs (logit scale exp(log 10) = 10, "
        "bias -10, both 0-dim tensors requiring grad)"
    ),
    "supcon": (
        f"SupCon (L_out): N embeddings with labels drawn uniformly from {SUPCON_CLASSES} classes "
        "(N x N logits, self-similarities removed, temperature 0.1)"
    ),
}

FAMILY_FLOPS: dict[Family, str] = {
    "clip": (
        "Flops counted per forward+backward: 6·N²·D (2·N²·D for the N x N logits GEMM, "
        "4·N²·D for the two gradient GEMMs), whatever an implementation actually computes "
        "(open_clip computes the logits twice; a tiled backward may recompute them)."
    ),
    "ntxent": (
        "Flops counted per forward+backward: 6·(2N)²·D = 24·N²·D (the 2N x 2N logits GEMM and "
        "its two gradient GEMMs), whatever an implementation actually computes."
    ),
    "siglip": (
        "Flops counted per forward+backward: 6·N²·D (2·N²·D for the N x N logits GEMM, "
        "4·N²·D for the two gradient GEMMs w.r.t. image and text), whatever an implementation "
        "actually computes (a tiled backward may recompute the logits)."
    ),
    "supcon": (
        "Flops counted per forward+backward: 6·N²·D (2·N²·D for the N x N logits GEMM z @ z.T, "
        "4·N²·D for its gradient GEMMs), whatever an implementation actually computes (the "
        "positives' term is O(N·D) in contrastkit, a masked N x N sum in the others)."
    ),
}


@dataclass
class CaseRow:
    """One (N, implementation) case: measured, skipped or failed.

    Attributes:
        n: Batch size N (pairs).
        impl: Implementation name (a key of ``IMPLS``).
        status: "ok", "skipped", "not installed", "error", "timeout" or "killed".
        message: Why a case is not "ok" (shown in the table instead of the time).
        times: Seconds of each timed forward+backward repeat.
        warmup: Seconds of the warm-up forward+backward.
        loss: Loss value (from the warm-up).
        baseline_rss: Worker peak RSS in bytes after imports and input creation.
        peak_rss: Worker peak RSS in bytes at the end.
        predicted_rss: Predicted peak RSS in bytes before the case ran.
        predicted_seconds: Predicted seconds of one forward+backward before the case ran.
        wall: Seconds the worker process took, start-up included.
        calibration: True for the small cases run only to fit the memory model.
        others: Cores' worth of CPU other processes used while the worker ran.
        path: For contrastkit with ``impl="auto"``, the path it resolves to at this size.
    """

    n: int
    impl: str
    status: str
    message: str = ""
    times: list[float] = field(default_factory=list)
    warmup: float = 0.0
    loss: float | None = None
    baseline_rss: int = 0
    peak_rss: int = 0
    predicted_rss: float | None = None
    predicted_seconds: float | None = None
    wall: float = 0.0
    calibration: bool = False
    others: float | None = None
    path: str = ""

    @property
    def ok(self) -> bool:
        """Whether the case ran and was timed."""
        return self.status == "ok"

    @property
    def median(self) -> float:
        """Median seconds of the timed repeats (the warm-up if there were none)."""
        return statistics.median(self.times) if self.times else self.warmup

    @property
    def increment(self) -> int:
        """Peak RSS minus the baseline, in bytes: the loss's own memory."""
        return max(0, self.peak_rss - self.baseline_rss)

    def views(self) -> int:
        """Rows of the logits matrix per pair: 2 for NT-Xent, else 1."""
        return FAMILY_VIEWS[IMPLS[self.impl].family]

    def flops(self, dim: int) -> float:
        """Counted flops of one forward+backward: ``6 * (views * N)^2 * D``."""
        return 6.0 * float(self.views() * self.n) ** 2 * dim


@dataclass
class GemmResult:
    """The GEMM throughput measured in its own worker.

    Attributes:
        status: "ok" or the failure.
        message: Failure text.
        shapes: Per GEMM: ``m``, ``k``, ``n``, ``transpose_a``, ``times``, ``gflops``.
        facts: ``torch``, ``threads``, ``interop_threads``, ``blas``, ``mkldnn``.
        when: "start of run" or "end of run".
    """

    status: str
    when: str = ""
    message: str = ""
    shapes: list[dict[str, Any]] = field(default_factory=list)
    facts: dict[str, Any] = field(default_factory=dict)

    @property
    def ceiling(self) -> float | None:
        """GFLOP/s of the square GEMM, or None if it was not measured."""
        return float(self.shapes[0]["gflops"]) if self.shapes else None


def _gib(value: float) -> str:
    return f"{value / GIB:.2f}"


def _seconds(value: float) -> str:
    if value >= 100:
        return f"{value:.0f}"
    if value >= 10:
        return f"{value:.1f}"
    if value >= 1:
        return f"{value:.2f}"
    return f"{value:.3f}"


def _ratio(numerator: CaseRow | None, denominator: CaseRow) -> str:
    if numerator is None or not numerator.ok or not denominator.ok:
        return "-"
    return f"{numerator.median / denominator.median:.2f}x"


def _cell(text: str) -> str:
    """Text safe inside a Markdown table cell."""
    return " ".join(text.split()).replace("|", "\\|")


def _others(row: CaseRow) -> str:
    return "-" if row.others is None else f"{row.others:.2f}"


def _shape_label(shape: dict[str, Any]) -> str:
    m, k, n = shape["m"], shape["k"], shape["n"]
    if shape["transpose_a"]:
        return f"({k} x {m}).T @ ({k} x {n})"
    return f"({m} x {k}) @ ({k} x {n})"


def ceiling_of(gemms: list[GemmResult]) -> float | None:
    """The GEMM ceiling: the best square-GEMM median of the measurements (start and end of run).

    Args:
        gemms: The GEMM measurements of the run.

    Returns:
        GFLOP/s, or None if none succeeded.
    """
    rates = [g.ceiling for g in gemms if g.ceiling is not None]
    return max(rates) if rates else None


FAMILY_NAMES: dict[Family, str] = {
    "clip": "InfoNCE",
    "ntxent": "NT-Xent",
    "siglip": "SigLIP",
    "supcon": "SupCon",
}
"""Short name of each family, for the report's title."""


def report_title(families: list[Family]) -> str:
    """Title of a report on ``families``: "InfoNCE scaling benchmark" for the original two.

    Args:
        families: The families with rows in the run.

    Returns:
        The title, without the Markdown ``#``.
    """
    extra = [FAMILY_NAMES[f] for f in families if f not in ("clip", "ntxent")]
    if not extra:
        return "InfoNCE scaling benchmark"
    return f"Contrastive-loss scaling benchmark: {', '.join(FAMILY_NAMES[f] for f in families)}"


def render_machine(
    cpu: str, cpus: int, gemms: list[GemmResult], dim: int, title: str = "InfoNCE scaling benchmark"
) -> list[str]:
    """Markdown lines: machine facts and the GEMM table.

    Args:
        cpu: CPU model name.
        cpus: Logical CPUs the OS reports.
        gemms: The GEMM measurements (start of run, end of run).
        dim: Embedding dimension D.
        title: The report's title.

    Returns:
        Lines of Markdown.
    """
    measured = [g for g in gemms if g.shapes]
    facts = measured[0].facts if measured else {}
    lines = [
        f"# {title}",
        "",
        f"- CPU: {cpu} ({cpus} logical CPUs)",
        f"- torch {facts.get('torch', '?')}, {facts.get('threads', '?')} intra-op threads, "
        f"BLAS {facts.get('blas', '?')}, mkldnn {facts.get('mkldnn', '?')}",
        f"- float32 on CPU, D = {dim} (loss parameters in each table's title); each case runs in "
        "a fresh process (one warm-up, then timed repeats of loss + backward)",
        "",
        "## GEMM throughput (torch.mm, float32, measured in this run)",
        "",
    ]
    lines += [f"GEMM measurement ({g.when}) failed: {g.message}" for g in gemms if not g.shapes]
    if not measured:
        return [*lines, ""]
    header = " | ".join(f"GFLOP/s, {g.when} (median)" for g in measured)
    lines += [f"| GEMM | {header} | role |", "| --- | " + "---: | " * len(measured) + "--- |"]
    for index, shape in enumerate(measured[0].shapes):
        role = "ceiling (best of the columns)" if index == 0 else "tiled-loss shape (information)"
        rates = " | ".join(f"{g.shapes[index]['gflops']:.1f}" for g in measured)
        lines.append(f"| {_shape_label(shape)} | {rates} | {role} |")
    ceiling = ceiling_of(gemms)
    lines += ["", f"**Ceiling: {ceiling:.1f} GFLOP/s.**", ""]
    return lines


def _family_rows(rows: list[CaseRow], family: Family) -> list[CaseRow]:
    return [r for r in rows if not r.calibration and IMPLS[r.impl].family == family]


def render_family(
    rows: list[CaseRow], family: Family, dim: int, ceiling: float | None
) -> list[str]:
    """Markdown lines: the table of one loss family.

    Args:
        rows: All rows of the run.
        family: Which family's table.
        dim: Embedding dimension D.
        ceiling: GEMM ceiling in GFLOP/s, if measured.

    Returns:
        Lines of Markdown (empty if the family has no rows).
    """
    selected = _family_rows(rows, family)
    if not selected:
        return []
    ref_a, ref_b = FAMILY_REFERENCES[family]
    lines = [
        f"## {FAMILY_TITLES[family]}",
        "",
        FAMILY_FLOPS[family],
        "",
        f"| N | impl | time (s): median [min-max] | reps | peak RSS (GiB) | RSS increment (GiB) "
        f"| GFLOP/s | % of ceiling | speed-up vs {ref_a} | vs {ref_b} | others' CPU |",
        "| ---: | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    by_key = {(r.n, r.impl): r for r in selected}
    for row in selected:
        name = f"{row.impl} (→{row.path})" if row.path else row.impl
        if not row.ok:
            lines.append(
                f"| {row.n} | {name} | {row.status} ({_cell(row.message)}) | - | - | - | - | - "
                "| - | - "
                f"| {_others(row)} |"
            )
            continue
        if row.times:
            time_text = (
                f"{_seconds(row.median)} [{_seconds(min(row.times))}-{_seconds(max(row.times))}]"
            )
            reps = str(len(row.times))
        else:
            time_text = f"{_seconds(row.warmup)} (warm-up only)"
            reps = "0"
        gflops = row.flops(dim) / row.median / 1e9
        share = f"{100 * gflops / ceiling:.1f}" if ceiling else "-"
        lines.append(
            f"| {row.n} | {name} | {time_text} | {reps} | {_gib(row.peak_rss)} "
            f"| +{_gib(row.increment)} | {gflops:.1f} | {share} "
            f"| {_ratio(by_key.get((row.n, ref_a)), row)} "
            f"| {_ratio(by_key.get((row.n, ref_b)), row)} | {_others(row)} |"
        )
    lines += [
        "",
        "speed-up = time(reference) / time(row), same N, same run; "
        "RSS increment = peak RSS - RSS after imports and input creation.",
        "",
    ]
    return lines


def render_ratios(rows: list[CaseRow], reference: str, others: tuple[str, ...]) -> list[str]:
    """Markdown lines: time and memory ratios of ``others`` against ``reference``, per N.

    Args:
        rows: All rows of the run.
        reference: Name of the implementation in the denominators (e.g. "contrastkit").
        others: Names of the implementations in the numerators (same family).

    Returns:
        Lines of Markdown (empty if the reference never ran).
    """
    main = [r for r in rows if not r.calibration]
    by_key = {(r.n, r.impl): r for r in main}
    sizes = sorted({r.n for r in main if r.impl == reference and r.ok})
    present = [o for o in others if any(r.impl == o for r in main)]
    if not sizes or not present:
        return []
    header = ["N"]
    header += [f"time {o} / {reference}" for o in present]
    header += [f"peak RSS {name} (GiB)" for name in (reference, *present)]
    header += [f"RSS increment {o} / {reference}" for o in present]
    lines = [
        f"## Ratios against {reference} (same run)",
        "",
        "| " + " | ".join(header) + " |",
        "| " + " | ".join("---:" for _ in header) + " |",
    ]
    for n in sizes:
        ref = by_key[(n, reference)]
        cells = [str(n)]
        cells += [_ratio(by_key.get((n, o)), ref) for o in present]
        for name in (reference, *present):
            row = by_key.get((n, name))
            cells.append(_gib(row.peak_rss) if row is not None and row.ok else "-")
        for o in present:
            row = by_key.get((n, o))
            ok = row is not None and row.ok and ref.increment > 0
            cells.append(f"{row.increment / ref.increment:.1f}x" if ok and row else "-")
        lines.append("| " + " | ".join(cells) + " |")
    return [*lines, ""]


def check_losses(rows: list[CaseRow], rtol: float = 1e-3) -> list[str]:
    """Compare the loss values of the implementations of one family at each N.

    Args:
        rows: All rows of the run.
        rtol: Relative tolerance.

    Returns:
        One line per (family, N) whose values disagree, or one line saying they all agree.
    """
    problems = []
    checked = 0
    groups: dict[tuple[str, int], list[CaseRow]] = {}
    for row in rows:
        if row.ok and row.loss is not None:
            groups.setdefault((IMPLS[row.impl].family, row.n), []).append(row)
    for (family, n), group in sorted(groups.items()):
        if len(group) < 2:
            continue
        checked += 1
        ref = group[0].loss or 0.0
        if any(abs((r.loss or 0.0) - ref) > rtol * max(1.0, abs(ref)) for r in group):
            values = ", ".join(f"{r.impl}={r.loss:.6f}" for r in group)
            problems.append(f"- loss values DISAGREE ({family}, N={n}): {values}")
    if problems:
        return problems
    if checked:
        return [
            f"- Loss values agree within rtol {rtol:g} in each family at each N ({checked} "
            "groups compared)."
        ]
    return []


def ceiling_note(rows: list[CaseRow], dim: int, ceiling: float | None) -> list[str]:
    """A note when some case beat the GEMM ceiling (the ceiling measurement was disturbed).

    Args:
        rows: All rows of the run.
        dim: Embedding dimension D.
        ceiling: GEMM ceiling in GFLOP/s.

    Returns:
        One Markdown bullet, or nothing.
    """
    if not ceiling:
        return []
    above = [r for r in rows if r.ok and r.flops(dim) / r.median / 1e9 > ceiling]
    if not above:
        return []
    cases = ", ".join(f"{r.impl} at N={r.n}" for r in above)
    return [
        f"- **Above 100% of the ceiling: {cases}.** Each case does at least the counted flops, "
        "so the ceiling GEMM ran slower than the machine can (it was disturbed); treat the "
        "% column as an upper bound."
    ]


def others_note(rows: list[CaseRow], cpus: int, threads: int | None = None) -> list[str]:
    """A note on how much CPU other processes took while the cases ran.

    Args:
        rows: All rows of the run.
        cpus: Logical CPUs.
        threads: torch threads of the workers (None: torch's default, one per core).

    Returns:
        Markdown bullets, or nothing if it was not measured.
    """
    others = [r.others for r in rows if r.others is not None and not r.calibration]
    if not others:
        return []
    lines = [
        "- others' CPU: cores' worth of CPU time that processes other than this benchmark used "
        f"while a case's worker ran (/proc/stat minus the benchmark's own CPU time); this run: "
        f"{min(others):.2f}-{max(others):.2f} of {cpus} cores."
    ]
    idle = max(0, cpus - threads) if threads else 0
    if max(others) > idle + 0.2:
        lines.append(
            f"  **Rows with others' CPU above ~{idle + 0.2:.1f} were disturbed: their times are "
            "inflated and noisy (multi-threaded BLAS and OpenMP suffer most); rerun on a quiet "
            "machine.**"
        )
    elif idle:
        lines.append(
            f"  The workers used {threads} of {cpus} cores, so up to ~{idle} cores' worth of "
            "other work ran beside them rather than on their cores (it still shares memory "
            "bandwidth and caches)."
        )
    return lines
