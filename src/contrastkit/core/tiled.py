r"""Tiled reductions over the score matrix, each an autograd Function with its own backward.

The score of anchor ``i`` (a row of ``a``, shape ``(N, D)``) and candidate ``j`` (a row of ``b``,
shape ``(M, D)``) is

.. math::

    s_{ij} = \text{scale} \cdot m_{ij} \cdot \langle a_i, b_j \rangle

where ``m_ij`` is a per-anchor multiplier on positive pairs (1 elsewhere). The matrix ``S`` is
never held: the forward pass walks over tiles of ``row_chunk x col_chunk`` scores and keeps only
per-row / per-column statistics; the backward pass recomputes each tile, forms ``dL/dS`` for it in
closed form and accumulates ``dA += dS B`` and ``dB += dS^T A``. Memory is ``O((N + M) D)`` plus
one tile. Inputs that need no gradient cost no gradient GEMM.

Numerics: statistics are kept in float32 for float32 / bfloat16 / float16 inputs and in float64
for float64 inputs. When the scores are provably bounded (``|s| <= R`` with ``R`` small enough
that ``exp(s)`` neither overflows nor underflows) one unshifted ``exp`` per score serves both the
row and the column statistics; otherwise each direction uses its own running maximum (the usual
online log-sum-exp).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Iterator
from typing import Any

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

from contrastkit.core.pairs import PairMask

_LOG2E = 1.4426950408889634
# Largest score bound for which the unshifted path is exact: e^{±R} and sums of up to 2^31 such
# terms stay in the normal range of the statistics dtype.
_FAST_BOUND = {torch.float32: 60.0, torch.float64: 600.0}

_Backward = Callable[..., tuple[Tensor | None, ...]]


def first_order_only(fn: _Backward) -> _Backward:
    """Mark a backward as not differentiable and fail loudly on ``create_graph=True``.

    Second derivatives through the tiled reductions are not implemented; returning a graph
    that silently treats them as zero would give wrong gradient penalties, so this raises.
    """
    inner = once_differentiable(fn)

    @functools.wraps(fn)
    def wrapper(ctx: Any, *grads: Tensor | None) -> tuple[Tensor | None, ...]:
        if torch.is_grad_enabled():
            raise RuntimeError(
                "contrastkit's tiled reductions support first-order gradients only; double "
                "backward (create_graph=True) is not implemented. Use impl='dense' for "
                "higher-order gradients."
            )
        return inner(ctx, *grads)

    return wrapper


DEFAULT_ROW_CHUNK = 1024
DEFAULT_COL_CHUNK = 2048


def stats_dtype(dtype: torch.dtype) -> torch.dtype:
    """The dtype statistics are accumulated in for inputs of ``dtype``."""
    return torch.float64 if dtype == torch.float64 else torch.float32


def tile_sizes(n: int, m: int, chunk_size: int | None) -> tuple[int, int]:
    """Rows and columns per tile; ``chunk_size`` sets both when given."""
    if chunk_size is not None:
        return max(1, min(chunk_size, n)), max(1, min(chunk_size, m))
    return min(DEFAULT_ROW_CHUNK, n), min(DEFAULT_COL_CHUNK, m)


def _tiles(n: int, m: int, rc: int, cc: int) -> Iterator[tuple[int, int, int, int]]:
    for r0 in range(0, n, rc):
        r1 = min(r0 + rc, n)
        for c0 in range(0, m, cc):
            yield r0, r1, c0, min(c0 + cc, m)


class _Buffers:
    """Reusable tile buffers keyed by shape (avoids a fresh allocation per tile)."""

    def __init__(self, dtype: torch.dtype, device: torch.device) -> None:
        self.dtype, self.device = dtype, device
        self._bufs: dict[tuple[int, int, int], Tensor] = {}

    def get(self, rows: int, cols: int, slot: int = 0) -> Tensor:
        key = (rows, cols, slot)
        buf = self._bufs.get(key)
        if buf is None:
            buf = torch.empty(rows, cols, dtype=self.dtype, device=self.device)
            self._bufs[key] = buf
        return buf


_EPS = 1e-12  # as torch.nn.functional.normalize


class _Operands:
    """Both inputs in the statistics dtype; rows optionally L2-normalized on the fly.

    With ``normalize``, ``b`` is normalized once (one transient ``(M, D)`` copy per pass) and
    ``a`` one row block at a time, so nothing normalized is kept between forward and backward.
    """

    def __init__(self, a: Tensor, b: Tensor, normalize: bool, cdt: torch.dtype) -> None:
        self.same = a is b
        self.a: Tensor = a.detach().to(cdt)
        self.b: Tensor
        self.na: Tensor
        self.nb: Tensor
        b_c = self.a if self.same else b.detach().to(cdt)
        self.b_raw = b_c
        self.normalize = normalize
        if normalize:
            self.na = self.a.norm(dim=1).clamp_min(_EPS)
            self.nb = self.na if self.same else b_c.norm(dim=1).clamp_min(_EPS)
            self.b = b_c / self.nb[:, None]
        else:
            self.b = b_c

    def rows(self, r0: int, r1: int) -> Tensor:
        """Row block ``[r0:r1]`` of ``a`` (normalized if asked)."""
        if self.same:
            return self.b[r0:r1]
        if self.normalize:
            return self.a[r0:r1] / self.na[r0:r1, None]
        return self.a[r0:r1]

    def bound(self, scale: float, mult: Tensor | None) -> float:
        """An upper bound on ``|s_ij|``, in ``O((N + M) D)``."""
        if self.normalize:
            norms = 1.0
        else:
            norms = float(self.a.norm(dim=1).max()) * float(self.b.norm(dim=1).max())
        bound = abs(scale) * norms
        if mult is not None:
            bound *= max(1.0, float(mult.abs().max()))
        return bound

    def row_grad(self, d_hat: Tensor) -> Tensor:
        """Chain rule through the row normalization, in place on ``d_hat`` (the grad of â)."""
        return _through_normalize(d_hat, self.a, self.na) if self.normalize else d_hat

    def col_grad(self, d_hat: Tensor) -> Tensor:
        """Chain rule through the column normalization, in place on ``d_hat``."""
        if not self.normalize:
            return d_hat
        return _through_normalize(d_hat, self.b_raw, self.nb)


def _through_normalize(g: Tensor, x: Tensor, norm: Tensor, block: int = 8192) -> Tensor:
    """Gradient w.r.t. ``x`` of ``x / max(|x|, eps)`` given the gradient ``g`` of the output."""
    for r0 in range(0, x.shape[0], block):
        xs, gs, ns = x[r0 : r0 + block], g[r0 : r0 + block], norm[r0 : r0 + block, None]
        y = xs / ns
        inside = ns > _EPS
        proj = gs - y * (y * gs).sum(1, keepdim=True)
        gs.copy_(torch.where(inside, proj, gs) / ns)
    return g


def _use_fast(cdt: torch.dtype, mask: PairMask, mult: Tensor | None, bound: float) -> bool:
    return mult is None and mask.groups == "any" and bound <= _FAST_BOUND[cdt]


def _zero_self(buf: Tensor, mask: PairMask, r0: int, r1: int, c0: int, c1: int) -> None:
    """Zero each anchor's own column in a tile (the diagonal unless ``mask.self_index``)."""
    if mask.self_index is None:
        if r0 < c1 and c0 < r1:
            buf.diagonal(offset=r0 - c0).zero_()
        return
    own = mask.self_index[r0:r1]
    inside = (own >= c0) & (own < c1)
    col = (own - c0).clamp(0, c1 - c0 - 1)[:, None]  # no host sync (no nonzero) on GPUs
    buf.scatter_(1, col, torch.where(inside[:, None], 0.0, buf.gather(1, col)))


def _scores_tile(
    out: Tensor,
    ar: Tensor,
    b: Tensor,
    scale: float,
    mask: PairMask,
    mult: Tensor | None,
    r0: int,
    r1: int,
    c0: int,
    c1: int,
) -> tuple[Tensor, Tensor | None]:
    """Natural-log scores of a tile with masked pairs at ``-inf``; also the multiplier tile."""
    torch.mm(ar, b[c0:c1].T, out=out)
    out.mul_(scale)
    mtile: Tensor | None = None
    if mult is not None:
        pos = mask.positive_tile(r0, r1, c0, c1, out.device)
        mtile = torch.where(pos, mult[r0:r1, None].to(out.dtype), 1.0)
        out.mul_(mtile)
    keep = mask.tile(r0, r1, c0, c1, out.device)
    if keep is not None:
        out.masked_fill_(~keep, -math.inf)
    return out, mtile


def _lse_forward(
    ops: _Operands,
    scale: float,
    mask: PairMask,
    mult: Tensor | None,
    rows: bool,
    cols: bool,
    rc: int,
    cc: int,
    fast: bool,
) -> tuple[Tensor, Tensor]:
    n, m = ops.a.shape[0], ops.b.shape[0]
    cdt, dev = ops.b.dtype, ops.b.device
    bufs = _Buffers(cdt, dev)
    if fast:
        row_sum = torch.zeros(n, dtype=cdt, device=dev)
        col_sum = torch.zeros(m, dtype=cdt, device=dev)
        for r0 in range(0, n, rc):
            r1 = min(r0 + rc, n)
            # exp2 of log2(e)-scaled scores is e^s; scaling the row block costs O(rc D).
            ar = ops.rows(r0, r1) * (scale * _LOG2E)
            for c0 in range(0, m, cc):
                c1 = min(c0 + cc, m)
                e = bufs.get(r1 - r0, c1 - c0)
                torch.mm(ar, ops.b[c0:c1].T, out=e)
                e.exp2_()
                if mask.exclude_self:
                    _zero_self(e, mask, r0, r1, c0, c1)
                if rows:
                    row_sum[r0:r1] += e.sum(1)
                if cols:
                    col_sum[c0:c1] += e.sum(0)
        return row_sum.log(), col_sum.log()

    neg_inf = -math.inf
    row_max = torch.full((n,), neg_inf, dtype=cdt, device=dev)
    row_sum = torch.zeros(n, dtype=cdt, device=dev)
    col_max = torch.full((m,), neg_inf, dtype=cdt, device=dev)
    col_sum = torch.zeros(m, dtype=cdt, device=dev)
    for r0 in range(0, n, rc):
        r1 = min(r0 + rc, n)
        ar = ops.rows(r0, r1)
        for c0 in range(0, m, cc):
            c1 = min(c0 + cc, m)
            t = bufs.get(r1 - r0, c1 - c0)
            s, _ = _scores_tile(t, ar, ops.b, scale, mask, mult, r0, r1, c0, c1)
            e = bufs.get(r1 - r0, c1 - c0, slot=1)
            if rows:
                _online_update(s, e, row_max, row_sum, r0, r1, dim=1)
            if cols:
                _online_update(s, e, col_max, col_sum, c0, c1, dim=0)
    return _finish(row_max, row_sum), _finish(col_max, col_sum)


def _online_update(
    s: Tensor, e: Tensor, run_max: Tensor, run_sum: Tensor, k0: int, k1: int, dim: int
) -> None:
    """Merge a tile into running (max, sum of exp(s - max)) along ``dim`` (1: rows, 0: cols)."""
    new_max = torch.maximum(run_max[k0:k1], s.amax(dim))
    shift = torch.where(torch.isinf(new_max), 0.0, new_max)
    old = run_sum[k0:k1] * torch.exp(run_max[k0:k1] - shift)
    torch.sub(s, shift[:, None] if dim == 1 else shift[None, :], out=e)
    e.exp_()
    run_sum[k0:k1] = torch.where(torch.isinf(run_max[k0:k1]), 0.0, old) + e.sum(dim)
    run_max[k0:k1] = new_max


def _finish(run_max: Tensor, run_sum: Tensor) -> Tensor:
    shift = torch.where(torch.isinf(run_max), 0.0, run_max)
    return torch.where(run_sum > 0, shift + run_sum.log(), -math.inf)


def _coeffs(grad: Tensor | None, lse: Tensor) -> Tensor | None:
    """Upstream gradient per row (or column), zero where the row has no candidate."""
    if grad is None:
        return None
    return torch.where(torch.isfinite(lse), grad.to(lse.dtype), 0.0)


def _unit_coeffs(
    g_r: Tensor | None, lse_r: Tensor, g_c: Tensor | None, lse_c: Tensor
) -> tuple[Tensor | None, Tensor | None, float]:
    """The fast path's factors ``g e^{-lse}``, divided by their largest magnitude ``unit``.

    Formed in log space, so that a tiny upstream gradient times a tiny ``e^{-lse}`` cannot
    underflow before the rescaling; the caller multiplies its result by ``unit`` (a Python
    float, which has the range float32 lacks).
    """
    logs: list[Tensor | None] = []
    for g, lse in ((g_r, lse_r), (g_c, lse_c)):
        if g is None:
            logs.append(None)
            continue
        finite = torch.isfinite(lse) & (g != 0)
        logs.append(torch.where(finite, g.abs().log() - torch.where(finite, lse, 0.0), -math.inf))
    top = max((float(x.max()) for x in logs if x is not None and x.numel()), default=-math.inf)
    if not math.isfinite(top):
        return g_r, g_c, 1.0
    out = [
        None if g is None or x is None else torch.sign(g) * torch.exp(x - top)
        for g, x in zip((g_r, g_c), logs, strict=True)
    ]
    return out[0], out[1], math.exp(top)


def _lse_backward(
    ops: _Operands,
    scale: float,
    mask: PairMask,
    mult: Tensor | None,
    lse_r: Tensor,
    lse_c: Tensor,
    u: Tensor | None,
    v: Tensor | None,
    rc: int,
    cc: int,
    fast: bool,
    need_a: bool,
    need_b: bool,
) -> tuple[Tensor, Tensor]:
    """Return ``dS B̂`` and ``dS^T Â``, ``dS`` the gradient w.r.t. the unscaled dot products."""
    n, m = ops.a.shape[0], ops.b.shape[0]
    cdt, dev = ops.b.dtype, ops.b.device
    bufs = _Buffers(cdt, dev)
    da = torch.zeros(n, ops.b.shape[1], dtype=cdt, device=dev) if need_a else ops.b.new_empty(0)
    db = torch.zeros_like(ops.b) if need_b else ops.b.new_empty(0)
    if u is None and v is None:
        return da, db
    unit = 1.0
    if fast:
        u, v, unit = _unit_coeffs(u, lse_r, v, lse_c)
    lr = torch.where(torch.isfinite(lse_r), lse_r, 0.0)
    lc = torch.where(torch.isfinite(lse_c), lse_c, 0.0)
    for r0 in range(0, n, rc):
        r1 = min(r0 + rc, n)
        ar = ops.rows(r0, r1)
        ar_fast = ar * (scale * _LOG2E) if fast else ar
        for c0 in range(0, m, cc):
            c1 = min(c0 + cc, m)
            t = bufs.get(r1 - r0, c1 - c0)
            if fast:
                torch.mm(ar_fast, ops.b[c0:c1].T, out=t)
                t.exp2_()
                if mask.exclude_self:
                    _zero_self(t, mask, r0, r1, c0, c1)
                if u is not None and v is not None:
                    w = bufs.get(r1 - r0, c1 - c0, slot=1)
                    torch.add(u[r0:r1, None], v[None, c0:c1], out=w)
                    t.mul_(w)
                elif u is not None:
                    t.mul_(u[r0:r1, None])
                elif v is not None:
                    t.mul_(v[None, c0:c1])
                ds = t
            else:
                s, mtile = _scores_tile(t, ar, ops.b, scale, mask, mult, r0, r1, c0, c1)
                ds = bufs.get(r1 - r0, c1 - c0, slot=1)
                ds.zero_()
                e = bufs.get(r1 - r0, c1 - c0, slot=2)
                if u is not None:
                    torch.sub(s, lr[r0:r1, None], out=e)
                    ds.addcmul_(e.exp_(), u[r0:r1, None])
                if v is not None:
                    torch.sub(s, lc[None, c0:c1], out=e)
                    ds.addcmul_(e.exp_(), v[None, c0:c1])
                if mtile is not None:
                    ds.mul_(mtile)
            if need_a:
                da[r0:r1].addmm_(ds, ops.b[c0:c1])
            if need_b:
                db[c0:c1].addmm_(ds.T, ar)
    if unit != 1.0:
        da.mul_(unit)
        db.mul_(unit)
    return da, db


def _row_dot(ops: _Operands, da: Tensor, block: int = 8192) -> Tensor:
    """``sum_i <â_i, da_i>`` in row blocks (the scale gradient), without a full copy of Â."""
    total = da.new_zeros(())
    for r0 in range(0, da.shape[0], block):
        r1 = min(r0 + block, da.shape[0])
        total += (ops.rows(r0, r1) * da[r0:r1]).sum()
    return total


def _partner_block(partner: Tensor | None, r0: int, r1: int, device: torch.device) -> Tensor:
    return torch.arange(r0, r1, device=device) if partner is None else partner[r0:r1]


def _paired_forward(
    ops: _Operands, partner: Tensor | None, scale: float, block: int = 8192
) -> Tensor:
    """``scale <â_i, b̂_{p(i)}>`` in row blocks, shape ``(N,)``."""
    n = ops.a.shape[0]
    out = ops.b.new_empty(n)
    for r0 in range(0, n, block):
        r1 = min(r0 + block, n)
        idx = _partner_block(partner, r0, r1, ops.b.device)
        out[r0:r1] = (ops.rows(r0, r1) * ops.b[idx]).sum(1)
    return out.mul_(scale)


def _paired_backward(
    ops: _Operands,
    partner: Tensor | None,
    gp: Tensor,
    da: Tensor,
    db: Tensor,
    need_a: bool,
    need_b: bool,
    block: int = 8192,
) -> None:
    """Add the paired scores' gradients (w.r.t. the unscaled dots) into ``da`` and ``db``."""
    n = ops.a.shape[0]
    for r0 in range(0, n, block):
        r1 = min(r0 + block, n)
        idx = _partner_block(partner, r0, r1, ops.b.device)
        g = gp[r0:r1, None]
        if need_a:
            da[r0:r1].addcmul_(ops.b[idx], g)
        if need_b:
            db.index_add_(0, idx, ops.rows(r0, r1) * g)


class TiledLogSumExp(torch.autograd.Function):
    """Row / column log-sum-exp of the masked scores and the paired scores, in tiles."""

    @staticmethod
    def forward(
        ctx: Any,
        a: Tensor,
        b: Tensor,
        scale: Tensor,
        mask: PairMask,
        mult: Tensor | None,
        rows: bool,
        cols: bool,
        paired: bool,
        partner: Tensor | None,
        normalize: bool,
        chunk_size: int | None,
    ) -> tuple[Tensor, Tensor, Tensor]:
        """Compute ``(lse_rows (N,), lse_cols (M,), paired (N,))``; unrequested ones are empty."""
        cdt = stats_dtype(a.dtype)
        with torch.autocast(device_type=a.device.type, enabled=False):
            ops = _Operands(a, b, normalize, cdt)
            mult_c = None if mult is None else mult.detach().to(cdt)
            sc = float(scale)
            fast = _use_fast(cdt, mask, mult_c, ops.bound(sc, mult_c))
            rc, cc = tile_sizes(a.shape[0], b.shape[0], chunk_size)
            if rows or cols:
                lse_r, lse_c = _lse_forward(ops, sc, mask, mult_c, rows, cols, rc, cc, fast)
            else:
                lse_r, lse_c = ops.b.new_empty(0), ops.b.new_empty(0)
            pos = _paired_forward(ops, partner, sc) if paired else ops.b.new_empty(0)
        del ops
        ctx.save_for_backward(a, b, scale, lse_r, lse_c)
        ctx.mask, ctx.mult, ctx.rows, ctx.cols = mask, mult_c, rows, cols
        ctx.paired, ctx.partner = paired, partner
        ctx.normalize, ctx.same = normalize, a is b
        ctx.tiles, ctx.fast = (rc, cc), fast
        if not rows:
            lse_r = lse_r.new_empty(0)
        if not cols:
            lse_c = lse_c.new_empty(0)
        unused = [t for t, used in ((lse_r, rows), (lse_c, cols), (pos, paired)) if not used]
        ctx.mark_non_differentiable(*unused)
        return lse_r, lse_c, pos

    @staticmethod
    @first_order_only
    def backward(
        ctx: Any, grad_r: Tensor | None, grad_c: Tensor | None, grad_p: Tensor | None
    ) -> tuple[Tensor | None, ...]:
        """Recompute each tile and accumulate the input gradients."""
        a, b, scale, lse_r, lse_c = ctx.saved_tensors
        need_a, need_b, need_s = ctx.needs_input_grad[:3]
        none = (None,) * 11
        u = _coeffs(grad_r if ctx.rows else None, lse_r)
        v = _coeffs(grad_c if ctx.cols else None, lse_c)
        gp = grad_p if ctx.paired else None
        if u is None and v is None and gp is None:
            return none
        sc = float(scale)
        rc, cc = ctx.tiles
        with torch.autocast(device_type=a.device.type, enabled=False):
            ops = _Operands(a, b if not ctx.same else a, ctx.normalize, lse_r.dtype)
            da, db = _lse_backward(
                ops,
                sc,
                ctx.mask,
                ctx.mult,
                lse_r,
                lse_c,
                u,
                v,
                rc,
                cc,
                ctx.fast,
                need_a or need_s,
                need_b,
            )
            if gp is not None:
                _paired_backward(
                    ops, ctx.partner, gp.to(da.dtype), da, db, need_a or need_s, need_b
                )
            grad_scale = None
            if need_s:
                grad_scale = _row_dot(ops, da).to(scale.dtype).reshape(scale.shape)
            grad_a = ops.row_grad(da.mul_(sc)).to(a.dtype) if need_a else None
            grad_b = ops.col_grad(db.mul_(sc)).to(b.dtype) if need_b else None
        return grad_a, grad_b, grad_scale, *none[3:]


def _softplus_tile(
    out: Tensor,
    a: Tensor,
    b: Tensor,
    scale: float,
    offset: Tensor,
    sign: float,
    mask: PairMask,
    r0: int,
    r1: int,
    c0: int,
    c1: int,
) -> tuple[Tensor, Tensor | None]:
    """``z = sign * (s + offset_i)`` for a tile, and the tile's keep-mask."""
    torch.mm(a[r0:r1], b[c0:c1].T, out=out)
    out.mul_(scale).add_(offset[r0:r1, None]).mul_(sign)
    return out, mask.tile(r0, r1, c0, c1, out.device)


class TiledPairSoftplus(torch.autograd.Function):
    r"""Per-row sums :math:`\sum_{j \in C_i} \operatorname{softplus}(\sigma (s_{ij} + r_i))`."""

    @staticmethod
    def forward(
        ctx: Any,
        a: Tensor,
        b: Tensor,
        scale: Tensor,
        offset: Tensor,
        sign: float,
        mask: PairMask,
        chunk_size: int | None,
    ) -> Tensor:
        """Compute the per-row sums, shape ``(N,)``."""
        cdt = stats_dtype(a.dtype)
        n, m = a.shape[0], b.shape[0]
        rc, cc = tile_sizes(n, m, chunk_size)
        out = torch.zeros(n, dtype=cdt, device=a.device)
        with torch.autocast(device_type=a.device.type, enabled=False):
            a_c, b_c, off = a.detach().to(cdt), b.detach().to(cdt), offset.detach().to(cdt)
            bufs = _Buffers(cdt, a.device)
            sc = float(scale)
            for r0, r1, c0, c1 in _tiles(n, m, rc, cc):
                z, keep = _softplus_tile(
                    bufs.get(r1 - r0, c1 - c0), a_c, b_c, sc, off, sign, mask, r0, r1, c0, c1
                )
                sp = torch.logaddexp(z, torch.zeros((), dtype=z.dtype))  # exact, no threshold
                if keep is not None:
                    sp.masked_fill_(~keep, 0.0)
                out[r0:r1] += sp.sum(1)
        ctx.save_for_backward(a, b, scale, offset)
        ctx.sign, ctx.mask, ctx.tiles = sign, mask, (rc, cc)
        return out

    @staticmethod
    @first_order_only
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor | None, ...]:
        """Recompute each tile; ``d/ds = sign * sigmoid(z)`` on kept pairs."""
        a, b, scale, offset = ctx.saved_tensors
        need_a, need_b, need_s, need_o = ctx.needs_input_grad[:4]
        cdt = stats_dtype(a.dtype)
        n, m = a.shape[0], b.shape[0]
        rc, cc = ctx.tiles
        sign: float = ctx.sign
        with torch.autocast(device_type=a.device.type, enabled=False):
            a_c, b_c, off = a.detach().to(cdt), b.detach().to(cdt), offset.detach().to(cdt)
            g = grad.to(cdt)
            sc = float(scale)
            bufs = _Buffers(cdt, a.device)
            da = torch.zeros_like(a_c)
            db = torch.zeros_like(b_c)
            d_off = torch.zeros(n, dtype=cdt, device=a.device)
            for r0, r1, c0, c1 in _tiles(n, m, rc, cc):
                z, keep = _softplus_tile(
                    bufs.get(r1 - r0, c1 - c0), a_c, b_c, sc, off, sign, ctx.mask, r0, r1, c0, c1
                )
                ds = z.sigmoid_().mul_(g[r0:r1, None] * sign)
                if keep is not None:
                    ds.masked_fill_(~keep, 0.0)
                if need_o:
                    d_off[r0:r1] += ds.sum(1)
                if need_a or need_s:
                    da[r0:r1].addmm_(ds, b_c[c0:c1])
                if need_b:
                    db[c0:c1].addmm_(ds.T, a_c[r0:r1])
        grad_scale = (a_c * da).sum().to(scale.dtype).reshape(scale.shape) if need_s else None
        return (
            da.mul_(sc).to(a.dtype) if need_a else None,
            db.mul_(sc).to(b.dtype) if need_b else None,
            grad_scale,
            d_off.to(offset.dtype) if need_o else None,
            None,
            None,
            None,
        )
