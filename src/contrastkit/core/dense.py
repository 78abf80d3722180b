"""The plain dense path: materialize the score matrix and let autograd differentiate it.

It is the obviously-right form of every primitive in :mod:`contrastkit.core.tiled`, and the
faster one for small problems, where :func:`contrastkit.core.dispatch.resolve_impl` picks it.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from contrastkit.core.pairs import PairMask
from contrastkit.core.tiled import stats_dtype


def dense_scores(
    a: Tensor,
    b: Tensor,
    scale: Tensor,
    mask: PairMask,
    mult: Tensor | None,
    normalize: bool = False,
) -> tuple[Tensor, Tensor | None]:
    """The full score matrix ``(N, M)`` in the statistics dtype, and the keep-mask."""
    cdt = stats_dtype(a.dtype)
    a, b = a.to(cdt), b.to(cdt)
    if normalize:
        a, b = F.normalize(a, dim=1), F.normalize(b, dim=1)
    s = (a @ b.T) * scale.to(cdt)
    if mult is not None:
        pos = mask.positive_tile(0, a.shape[0], 0, b.shape[0], a.device)
        s = s * torch.where(pos, mult.detach().to(cdt)[:, None], 1.0)
    return s, mask.dense(a.shape[0], b.shape[0], a.device)


def _masked_lse(s: Tensor, keep: Tensor | None, dim: int) -> Tensor:
    if keep is None:
        return torch.logsumexp(s, dim)
    empty = ~keep.any(dim)
    filled = s.masked_fill(~keep, -math.inf)
    filled = filled.masked_fill(empty.unsqueeze(dim), 0.0)
    return torch.where(empty, -math.inf, torch.logsumexp(filled, dim))


def dense_logsumexp(
    a: Tensor,
    b: Tensor,
    scale: Tensor,
    mask: PairMask,
    mult: Tensor | None,
    rows: bool,
    cols: bool,
    normalize: bool = False,
) -> tuple[Tensor, Tensor]:
    """Row and/or column log-sum-exp of the masked scores (``-inf`` where nothing is kept)."""
    with torch.autocast(device_type=a.device.type, enabled=False):
        s, keep = dense_scores(a, b, scale, mask, mult, normalize)
        lse_r = _masked_lse(s, keep, 1) if rows else s.new_empty(0)
        lse_c = _masked_lse(s, keep, 0) if cols else s.new_empty(0)
    return lse_r, lse_c


def dense_pair_softplus(
    a: Tensor, b: Tensor, scale: Tensor, offset: Tensor, sign: float, mask: PairMask
) -> Tensor:
    """Per-row sums of ``softplus(sign * (s_ij + offset_i))`` over the kept pairs."""
    with torch.autocast(device_type=a.device.type, enabled=False):
        s, keep = dense_scores(a, b, scale, mask, None)
        z = sign * (s + offset.to(s.dtype)[:, None])
        sp = torch.logaddexp(z, torch.zeros((), dtype=z.dtype))  # exact softplus (no threshold)
        if keep is not None:
            sp = sp.masked_fill(~keep, 0.0)
    return sp.sum(1)
