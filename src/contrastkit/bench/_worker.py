"""Worker side of :mod:`contrastkit.bench.infonce_scaling`: one case per fresh process.

The parent starts ``python -m contrastkit.bench.infonce_scaling --worker SPEC`` where ``SPEC``
is a JSON object; the worker runs the case and prints one line ``RESULT_MARKER + json`` on
stdout. Anything else a library prints is ignored by the parent.
"""

from __future__ import annotations

import json
import resource
import statistics
import sys
import time
import traceback
from typing import Any

import torch

from contrastkit.bench._impls import IMPLS, make_inputs

RESULT_MARKER = "CONTRASTKIT_BENCH_RESULT "
"""Prefix of the one stdout line that carries a worker's JSON result."""

JSON = dict[str, Any]


def max_rss_bytes() -> int:
    """Peak resident set size of this process so far, in bytes.

    Returns:
        ``getrusage(RUSAGE_SELF).ru_maxrss`` converted to bytes (KiB on Linux, bytes on macOS).
    """
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(rss) if sys.platform == "darwin" else int(rss) * 1024


def auto_repeats(seconds: float) -> int:
    """Number of timed repeats after a warm-up run that took ``seconds``.

    Args:
        seconds: Duration of the warm-up run.

    Returns:
        5 below 2 s, 3 below 30 s, else 1.
    """
    if seconds < 2.0:
        return 5
    if seconds < 30.0:
        return 3
    return 1


def run_loss_case(spec: JSON) -> JSON:
    """Time forward + backward of one implementation at one size.

    Args:
        spec: ``impl``, ``n``, ``dim``, ``seed``, ``repeats`` (int, or None for adaptive),
            ``time_budget`` (seconds for warm-up plus repeats) and ``threads`` (int or None).

    Returns:
        ``status`` ("ok", "not installed" or "error") and, when ok, ``times`` (seconds of each
        timed repeat), ``warmup`` (seconds), ``loss`` (its value), ``baseline_rss`` (peak RSS in
        bytes after imports and input creation) and ``peak_rss`` (peak RSS at the end).
    """
    start = time.perf_counter()
    if spec.get("threads"):
        torch.set_num_threads(int(spec["threads"]))
    impl = IMPLS[str(spec["impl"])]
    try:
        loss_fn = impl.build()
    except ImportError as exc:
        return {"status": "not installed", "message": f"{type(exc).__name__}: {exc}"}
    n, dim = int(spec["n"]), int(spec["dim"])
    generator = torch.Generator().manual_seed(int(spec["seed"]))
    q, k = make_inputs(impl.family, n, dim, generator)
    baseline = max_rss_bytes()

    def once() -> tuple[float, float]:
        q.grad = None
        k.grad = None
        t0 = time.perf_counter()
        loss = loss_fn(q, k)
        torch.autograd.backward(loss)
        elapsed = time.perf_counter() - t0
        return elapsed, float(loss.detach())

    warmup, value = once()
    repeats = auto_repeats(warmup) if spec.get("repeats") is None else int(spec["repeats"])
    remaining = float(spec["time_budget"]) - (time.perf_counter() - start)
    fitting = int(remaining // (1.1 * warmup)) if warmup > 0 else repeats
    repeats = max(0, min(repeats, fitting))
    times = [once()[0] for _ in range(repeats)]
    return {
        "status": "ok",
        "times": times,
        "warmup": warmup,
        "loss": value,
        "baseline_rss": baseline,
        "peak_rss": max_rss_bytes(),
        "threads": torch.get_num_threads(),
    }


def _blas_info() -> str:
    for line in torch.__config__.show().splitlines():
        line = line.strip()
        for key in ("BLAS_INFO=", "LAPACK_INFO="):
            if key in line:
                return line[line.index(key) + len(key) :].split(",")[0]
    return "unknown"


def _time_mm(m: int, k: int, n: int, repeats: int, transpose_a: bool) -> JSON:
    a = torch.randn(k, m).T if transpose_a else torch.randn(m, k)
    b = torch.randn(k, n)
    out = torch.empty(m, n)
    torch.mm(a, b, out=out)  # warm-up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        torch.mm(a, b, out=out)
        times.append(time.perf_counter() - t0)
    median = statistics.median(times)
    return {
        "m": m,
        "k": k,
        "n": n,
        "transpose_a": transpose_a,
        "times": times,
        "gflops": 2.0 * m * k * n / median / 1e9,
    }


def run_gemm_case(spec: JSON) -> JSON:
    """Measure float32 ``torch.mm`` throughput: the square ceiling and the tiled-loss shapes.

    Args:
        spec: ``square`` (side of the square GEMM), ``dim`` (embedding dimension D), ``tile``
            (rows of a tile), ``width`` (columns of a tile), ``repeats`` and ``threads``.

    Returns:
        ``status``, ``shapes`` (one entry per GEMM: sizes, times, GFLOP/s; the first is the
        square one) and machine facts: ``torch``, ``threads``, ``blas``, ``mkldnn``.
    """
    if spec.get("threads"):
        torch.set_num_threads(int(spec["threads"]))
    torch.manual_seed(0)
    repeats = int(spec["repeats"])
    side, dim, tile, width = (int(spec[key]) for key in ("square", "dim", "tile", "width"))
    shapes = [
        _time_mm(side, side, side, repeats, transpose_a=False),
        _time_mm(tile, dim, width, repeats, transpose_a=False),
        _time_mm(tile, width, dim, repeats, transpose_a=False),
        _time_mm(width, tile, dim, repeats, transpose_a=True),
    ]
    return {
        "status": "ok",
        "shapes": shapes,
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "interop_threads": torch.get_num_interop_threads(),
        "blas": _blas_info(),
        "mkldnn": bool(torch.backends.mkldnn.is_available()),  # type: ignore[no-untyped-call]
    }


def worker_main(spec_json: str) -> int:
    """Run one case described by ``spec_json`` and print its result line.

    Args:
        spec_json: JSON object with ``kind`` ("loss" or "gemm") and the case's parameters.

    Returns:
        Process exit code: 0, also when the case failed (the failure is in the result).
    """
    spec: JSON = json.loads(spec_json)
    try:
        result = run_gemm_case(spec) if spec["kind"] == "gemm" else run_loss_case(spec)
    except Exception as exc:
        last = traceback.format_exc().strip().splitlines()[-3:]
        result = {"status": "error", "message": f"{type(exc).__name__}: {exc}", "trace": last}
    sys.stdout.write(RESULT_MARKER + json.dumps(result) + "\n")
    sys.stdout.flush()
    return 0
