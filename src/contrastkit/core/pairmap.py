r"""Reductions over any per-pair function, exact in tiles (the engine's general path).

A loss term that is a function of pairs, :math:`f_{ij} = f(x_i, y_j; \theta)`, is reduced per row
(and per column) without materializing the ``N x M`` matrix:

- ``mode="sum"``: :math:`r_i = \sum_j f_{ij}`, :math:`c_j = \sum_i f_{ij}`;
- ``mode="lse"``: :math:`r_i = \log \sum_j e^{f_{ij}}`, :math:`c_j = \log \sum_i e^{f_{ij}}`
  (``f = -inf`` drops a pair).

``f`` is plain PyTorch evaluated on one tile of rows and columns at a time (a similarity, a
kernel, a hinge, a sigmoid with soft targets...). The forward pass keeps only the per-row and
per-column results; the backward pass recomputes each tile under autograd and pulls the
incoming gradient through it (``dL/df_ij`` is ``g_i + h_j`` for sums and
``g_i p_ij + h_j q_ij`` for log-sum-exp, with ``p``/``q`` the row/column softmax). Memory is the
inputs plus one tile and its autograd graph. The fixed-form reductions of
:mod:`contrastkit.core.tiled` (dot-product scores) are faster; this path serves every other
score and loss shape.

:func:`pair_topk` is the forward-only companion: the ``k`` largest values of ``f`` per row,
streamed over the tiles (hard-negative selection, row maxima for stable shifts).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any, Literal

import torch
from torch import Tensor

from contrastkit.core.dispatch import resolve_impl
from contrastkit.core.tiled import (
    DEFAULT_COL_CHUNK,
    DEFAULT_ROW_CHUNK,
    _tiles,
    first_order_only,
    tile_sizes,
)
from contrastkit.core.validation import Impl

PairFn = Callable[[list[Tensor], list[Tensor], list[Tensor], Tensor, Tensor], Tensor]
"""``fn(row_slices, col_slices, params, row_index, col_index) -> (n, m)`` values of one tile.

``row_slices`` are the ``rows`` inputs restricted to the tile's rows, ``col_slices`` the ``cols``
inputs restricted to its columns, ``params`` the whole ``params`` inputs, and ``row_index`` /
``col_index`` the global indices of the tile's rows and columns (to find the diagonal).
"""

Mode = Literal["sum", "lse"]


def _tile_shape(
    n: int, m: int, chunk_size: int | None, cost: int, full_cols: bool = False
) -> tuple[int, int]:
    """Rows and columns per tile, shrunk so ``rows * cols * cost`` stays near one default tile."""
    budget = max(1, (DEFAULT_ROW_CHUNK * DEFAULT_COL_CHUNK) // (4 * max(1, cost)))
    if full_cols:
        return (min(n, chunk_size) if chunk_size else min(n, max(1, budget // m))), m
    if chunk_size is not None:
        return tile_sizes(n, m, chunk_size)
    cc = min(m, DEFAULT_COL_CHUNK, max(1, budget))
    rc = min(n, max(1, budget // cc))
    return rc, cc


def pair_reduce(
    fn: PairFn,
    rows: Sequence[Tensor],
    cols: Sequence[Tensor],
    params: Sequence[Tensor] = (),
    *,
    mode: Mode = "sum",
    out_rows: bool = True,
    out_cols: bool = False,
    cost: int = 1,
    full_cols: bool = False,
    chunk_size: int | None = None,
    impl: Impl = "auto",
) -> tuple[Tensor, Tensor]:
    r"""Row and column sums (or log-sum-exps) of ``fn`` over all pairs, dense or in tiles.

    Args:
        fn: The per-pair function of one tile; see :data:`PairFn`. It must return the values in
            the dtype of the statistics (float32 or float64) and may return ``-inf`` (``"lse"``)
            or ``0`` (``"sum"``) for pairs that do not count.
        rows: Tensors with ``N`` leading rows (anchors, per-row data such as labels).
        cols: Tensors with ``M`` leading rows (candidates, per-column data).
        params: Tensors used whole by every tile (a scale, a bias, a bilinear weight).
        mode: ``"sum"`` or ``"lse"``.
        out_rows: Return the per-row results, shape ``(N,)``.
        out_cols: Return the per-column results, shape ``(M,)``.
        cost: Work (and memory) per pair relative to a plain score, e.g. ``T * U`` for MaxSim;
            the default tile shrinks by this factor.
        full_cols: Every tile spans all ``M`` columns (for functions that need a whole row,
            e.g. a sort over the row); ``chunk_size`` then sets the rows per tile only.
        chunk_size: Rows and columns per tile; ``None`` chooses.
        impl: ``"auto"``, ``"dense"`` or ``"tiled"``.

    Returns:
        ``(rows (N,), cols (M,))``; an unrequested one is empty. In ``"lse"`` mode a row or column
        without a finite value is ``-inf`` and receives no gradient.
    """
    n, m = rows[0].shape[0], cols[0].shape[0]
    if resolve_impl(impl, n, m * max(1, cost)) == "dense":
        f = fn(list(rows), list(cols), list(params), _arange(n, rows[0]), _arange(m, cols[0]))
        return _dense(f, mode, out_rows, out_cols)
    spec = _Spec(
        fn,
        mode,
        out_rows,
        out_cols,
        len(rows),
        len(cols),
        _tile_shape(n, m, chunk_size, cost, full_cols),
    )
    r, c = _TiledPairReduce.apply(spec, *rows, *cols, *params)
    return r, c


def pair_topk(
    fn: PairFn,
    rows: Sequence[Tensor],
    cols: Sequence[Tensor],
    params: Sequence[Tensor] = (),
    *,
    k: int,
    cost: int = 1,
    chunk_size: int | None = None,
) -> tuple[Tensor, Tensor]:
    """The ``k`` largest values of ``fn`` per row and their columns (no gradient).

    Rows with fewer than ``k`` finite values are padded with ``-inf`` (column index ``-1``).

    Returns:
        ``(values (N, k), columns (N, k))``, values in descending order.
    """
    n, m = rows[0].shape[0], cols[0].shape[0]
    rc, cc = _tile_shape(n, m, chunk_size, cost)
    with torch.no_grad():
        probe = fn(
            [r[:1] for r in rows],
            [c[:1] for c in cols],
            list(params),
            _arange(1, rows[0]),
            _arange(1, cols[0]),
        )
        vals = torch.full((n, k), -math.inf, dtype=probe.dtype, device=probe.device)
        idx = torch.full((n, k), -1, dtype=torch.long, device=probe.device)
        for r0, r1, c0, c1 in _tiles(n, m, rc, cc):
            f = fn(
                *_slices(rows, cols, r0, r1, c0, c1), list(params), *_index(r0, r1, c0, c1, rows[0])
            )
            cols_idx = torch.arange(c0, c1, device=f.device).expand(r1 - r0, -1)
            both_v = torch.cat([vals[r0:r1], f], 1)
            both_i = torch.cat([idx[r0:r1], cols_idx], 1)
            top_v, pos = both_v.topk(min(k, both_v.shape[1]), dim=1)
            vals[r0:r1, : top_v.shape[1]] = top_v
            idx[r0:r1, : top_v.shape[1]] = both_i.gather(1, pos)
        idx = torch.where(torch.isfinite(vals), idx, -1)
    return vals, idx


def _arange(n: int, like: Tensor) -> Tensor:
    return torch.arange(n, device=like.device)


def _slices(
    rows: Sequence[Tensor], cols: Sequence[Tensor], r0: int, r1: int, c0: int, c1: int
) -> tuple[list[Tensor], list[Tensor]]:
    return [r[r0:r1] for r in rows], [c[c0:c1] for c in cols]


def _index(r0: int, r1: int, c0: int, c1: int, like: Tensor) -> tuple[Tensor, Tensor]:
    return torch.arange(r0, r1, device=like.device), torch.arange(c0, c1, device=like.device)


def _safe_lse(f: Tensor, dim: int) -> Tensor:
    """``logsumexp`` that is ``-inf`` (with zero gradient) where everything is ``-inf``."""
    empty = ~torch.isfinite(f).any(dim)
    filled = f.masked_fill(empty.unsqueeze(dim), 0.0)
    return torch.where(empty, -math.inf, torch.logsumexp(filled, dim))


def _dense(f: Tensor, mode: Mode, out_rows: bool, out_cols: bool) -> tuple[Tensor, Tensor]:
    if mode == "sum":
        r = f.sum(1) if out_rows else f.new_empty(0)
        c = f.sum(0) if out_cols else f.new_empty(0)
    else:
        r = _safe_lse(f, 1) if out_rows else f.new_empty(0)
        c = _safe_lse(f, 0) if out_cols else f.new_empty(0)
    return r, c


class _Spec:
    """The non-tensor arguments of one tiled reduction."""

    def __init__(
        self,
        fn: PairFn,
        mode: Mode,
        out_rows: bool,
        out_cols: bool,
        n_rows: int,
        n_cols: int,
        tiles: tuple[int, int],
    ) -> None:
        self.fn, self.mode, self.out_rows, self.out_cols = fn, mode, out_rows, out_cols
        self.n_rows, self.n_cols, self.tiles = n_rows, n_cols, tiles

    def split(self, tensors: Sequence[Tensor]) -> tuple[list[Tensor], list[Tensor], list[Tensor]]:
        a, b = self.n_rows, self.n_rows + self.n_cols
        return list(tensors[:a]), list(tensors[a:b]), list(tensors[b:])


class _TiledPairReduce(torch.autograd.Function):
    """Forward: stream the tiles, keep row/column results. Backward: recompute each tile."""

    @staticmethod
    def forward(ctx: Any, spec: _Spec, *tensors: Tensor) -> tuple[Tensor, Tensor]:
        rows, cols, params = spec.split([t.detach() for t in tensors])
        n, m = rows[0].shape[0], cols[0].shape[0]
        rc, cc = spec.tiles
        r_out: Tensor | None = None
        c_out: Tensor | None = None
        with torch.no_grad():
            for r0, r1, c0, c1 in _tiles(n, m, rc, cc):
                f = spec.fn(
                    *_slices(rows, cols, r0, r1, c0, c1),
                    list(params),
                    *_index(r0, r1, c0, c1, rows[0]),
                )
                if r_out is None:
                    r_out = _init(n, spec.mode, f)
                    c_out = _init(m, spec.mode, f)
                assert c_out is not None
                if spec.mode == "sum":
                    if spec.out_rows:
                        r_out[r0:r1] += f.sum(1)
                    if spec.out_cols:
                        c_out[c0:c1] += f.sum(0)
                else:
                    if spec.out_rows:
                        r_out[r0:r1] = torch.logaddexp(r_out[r0:r1], _safe_lse(f, 1))
                    if spec.out_cols:
                        c_out[c0:c1] = torch.logaddexp(c_out[c0:c1], _safe_lse(f, 0))
        assert r_out is not None
        assert c_out is not None
        r_out = r_out if spec.out_rows else r_out.new_empty(0)
        c_out = c_out if spec.out_cols else c_out.new_empty(0)
        ctx.spec = spec
        ctx.save_for_backward(*tensors, r_out, c_out)
        ctx.mark_non_differentiable(
            *([] if spec.out_rows else [r_out]), *([] if spec.out_cols else [c_out])
        )
        return r_out, c_out

    @staticmethod
    @first_order_only
    def backward(
        ctx: Any, g_rows: Tensor | None, g_cols: Tensor | None
    ) -> tuple[Tensor | None, ...]:
        spec: _Spec = ctx.spec
        *tensors, r_out, c_out = ctx.saved_tensors
        need = ctx.needs_input_grad[1:]
        rows, cols, params = spec.split(tensors)
        n, m = rows[0].shape[0], cols[0].shape[0]
        rc, cc = spec.tiles
        grads: list[Tensor | None] = [
            torch.zeros_like(t) if need[k] else None for k, t in enumerate(tensors)
        ]
        if not any(need):
            return (None, *grads)
        gr = g_rows if spec.out_rows and g_rows is not None else None
        gc = g_cols if spec.out_cols and g_cols is not None else None
        n_r, n_c = spec.n_rows, spec.n_cols
        for r0, r1, c0, c1 in _tiles(n, m, rc, cc):
            rs = [t[r0:r1].detach().requires_grad_(need[k]) for k, t in enumerate(rows)]
            cs = [t[c0:c1].detach().requires_grad_(need[n_r + k]) for k, t in enumerate(cols)]
            ps = [t.detach().requires_grad_(need[n_r + n_c + k]) for k, t in enumerate(params)]
            with torch.enable_grad():
                f = spec.fn(rs, cs, ps, *_index(r0, r1, c0, c1, rows[0]))
                weight = _tile_weight(f.detach(), spec.mode, gr, gc, r_out, c_out, r0, r1, c0, c1)
                leaves = [x for x in (*rs, *cs, *ps) if x.requires_grad]
                if not leaves or not f.requires_grad:
                    continue
                got: tuple[Tensor | None, ...] = torch.autograd.grad(
                    f, leaves, weight, allow_unused=True
                )
            it = iter(got)
            for k in range(len(tensors)):
                if not need[k]:
                    continue
                g = next(it)
                if g is None:
                    continue
                target = grads[k]
                assert target is not None
                if k < n_r:
                    target[r0:r1] += g
                elif k < n_r + n_c:
                    target[c0:c1] += g
                else:
                    target += g
        return (None, *grads)


def _init(size: int, mode: Mode, like: Tensor) -> Tensor:
    fill = 0.0 if mode == "sum" else -math.inf
    return torch.full((size,), fill, dtype=like.dtype, device=like.device)


def _tile_weight(
    f: Tensor,
    mode: Mode,
    gr: Tensor | None,
    gc: Tensor | None,
    r_out: Tensor,
    c_out: Tensor,
    r0: int,
    r1: int,
    c0: int,
    c1: int,
) -> Tensor:
    """``dL/df`` of one tile from the incoming row / column gradients."""
    w = torch.zeros_like(f)
    if mode == "sum":
        if gr is not None:
            w += gr[r0:r1, None].to(f.dtype)
        if gc is not None:
            w += gc[None, c0:c1].to(f.dtype)
        return w
    if gr is not None:
        w += _softmax_part(f, r_out[r0:r1, None], gr[r0:r1, None].to(f.dtype))
    if gc is not None:
        w += _softmax_part(f, c_out[None, c0:c1], gc[None, c0:c1].to(f.dtype))
    return w


def _softmax_part(f: Tensor, lse: Tensor, g: Tensor) -> Tensor:
    """``g * exp(f - lse)``, zero where ``f`` or ``lse`` is ``-inf``."""
    ok = torch.isfinite(f) & torch.isfinite(lse)
    return torch.where(ok, g * torch.exp(torch.where(ok, f - lse, -math.inf)), 0.0)
