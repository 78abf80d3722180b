"""Shared pieces of the two-view losses (NT-Xent, DCL): 2N anchors against 2N candidates."""

from __future__ import annotations

import torch
from torch import Tensor

from contrastkit import core
from contrastkit.core import PairMask
from contrastkit.core.validation import Impl, Reduction
from contrastkit.distributed import Shard


def two_view_stats(
    a: Tensor,
    b: Tensor,
    scale: Tensor,
    *,
    decoupled: bool,
    normalize: bool,
    chunk_size: int | None,
    impl: Impl,
    sh: Shard | None,
) -> tuple[Tensor, Tensor]:
    r"""Per-anchor log-sum-exp and partner score for the views :math:`z = [z^1; z^2]`.

    Anchor :math:`k` (a row of this rank's ``[a; b]``) meets every view of the (global) batch
    except itself; ``decoupled`` also drops its partner (the other view of the same item).

    Returns:
        ``(lse (2N,), partner_score (2N,))`` for this rank's anchors, first views first.
    """
    n = a.shape[0]
    local = torch.arange(n, device=a.device)
    if sh is None:
        total, off = n, 0
        anchors = candidates = torch.cat([a, b])
    else:
        total, off = sh.total("z1"), sh.offset("z1")
        anchors = torch.cat([a, b])
        candidates = torch.cat([sh.gather("z1", a), sh.gather("z2", b)])
    own = torch.cat([off + local, total + off + local])
    partner = torch.cat([total + off + local, off + local])
    if decoupled:
        items = torch.arange(total, device=a.device).repeat(2)
        mask = PairMask(row_groups=items[own], col_groups=items, groups="different")
    else:
        mask = PairMask(exclude_self=True, self_index=None if sh is None else own)
    lse, _, pos = core.score_stats(
        anchors,
        candidates,
        scale,
        mask=mask,
        paired=True,
        partner=partner,
        normalize=normalize,
        chunk_size=chunk_size,
        impl=impl,
    )
    return lse, pos


def reduce_views(per_anchor: Tensor, lse: Tensor, reduction: Reduction, sh: Shard | None) -> Tensor:
    """Mean over the (global) anchors that have a candidate, sum, or per-anchor terms.

    An anchor without any candidate (DCL with a single item) contributes zero and is left out
    of the mean.
    """
    valid = torch.isfinite(lse)
    if sh is None:
        return core.reduce(per_anchor, reduction, valid=valid)
    total = sh.total("z1")
    counted = 2 * total if total > 1 or bool(valid.all()) else 0
    return sh.reduce(torch.where(valid, per_anchor, 0.0), reduction, counted)
