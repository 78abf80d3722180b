"""One resolver that picks the dense or the tiled implementation of a primitive."""

from __future__ import annotations

from contrastkit.core.validation import Impl

# Up to this many scores the dense path (one GEMM, autograd) is faster than the tiled loop on a
# CPU and its memory (a few N x M matrices) is small; measured with benchmarks/infonce_scaling.py.
DENSE_MAX_PAIRS = 1 << 20


def resolve_impl(impl: Impl, n: int, m: int) -> Impl:
    """Resolve ``"auto"`` to ``"dense"`` for small score matrices and ``"tiled"`` otherwise."""
    if impl != "auto":
        return impl
    return "dense" if n * m <= DENSE_MAX_PAIRS else "tiled"
