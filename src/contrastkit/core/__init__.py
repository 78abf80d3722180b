r"""The engine: exact reductions over the score matrix, dense or in tiles.

A loss is plain PyTorch composed of a few reductions. For anchors ``a (N, D)`` and candidates
``b (M, D)`` with scores :math:`s_{ij} = \text{scale} \cdot m_{ij} \langle a_i, b_j \rangle`:

- :func:`score_stats` (and :func:`logsumexp`): :math:`\log \sum_{j \in C_i} e^{s_{ij}}` per row
  and/or per column and the paired scores :math:`s_{i, p(i)}`, from one pass over the tiles;
- :func:`pair_softplus`: :math:`\sum_{j \in C_i} \operatorname{softplus}(\sigma (s_{ij} + r_i))`
  per row;
- :func:`paired_scores`: :math:`s_{i, p(i)}` for one given partner per row (``O(N D)``).

``C_i`` is described compactly by a :class:`PairMask`. Both implementations return the same
values and gradients; ``impl="auto"`` picks the dense one for small matrices.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor

from contrastkit.core.dense import dense_logsumexp, dense_pair_softplus
from contrastkit.core.dispatch import DENSE_MAX_PAIRS, resolve_impl
from contrastkit.core.pairs import GroupRule, PairMask
from contrastkit.core.tiled import TiledLogSumExp, TiledPairSoftplus, stats_dtype
from contrastkit.core.validation import Impl, Reduction

__all__ = [
    "DENSE_MAX_PAIRS",
    "GroupRule",
    "Impl",
    "PairMask",
    "Reduction",
    "ScoreStats",
    "as_scale",
    "logsumexp",
    "pair_softplus",
    "paired_scores",
    "reduce",
    "resolve_impl",
    "score_stats",
    "stats_dtype",
]


def as_scale(value: float | Tensor, like: Tensor) -> Tensor:
    """A 0-dim scale tensor on ``like``'s device in its statistics dtype (keeps autograd)."""
    dt = stats_dtype(like.dtype)
    if isinstance(value, Tensor):
        return value.reshape(()).to(device=like.device, dtype=dt)
    return torch.tensor(float(value), dtype=dt, device=like.device)


class ScoreStats(NamedTuple):
    r"""What one pass over the score matrix returns (an unrequested field is empty).

    Attributes:
        rows: Shape ``(N,)``, :math:`\log \sum_{j \in C_i} e^{s_{ij}}`.
        cols: Shape ``(M,)``, :math:`\log \sum_{i : j \in C_i} e^{s_{ij}}`.
        paired: Shape ``(N,)``, :math:`s_{i, p(i)}` (without the multiplier).
    """

    rows: Tensor
    cols: Tensor
    paired: Tensor


def score_stats(
    a: Tensor,
    b: Tensor,
    scale: Tensor,
    *,
    mask: PairMask | None = None,
    multiplier: Tensor | None = None,
    rows: bool = True,
    cols: bool = False,
    paired: bool = False,
    partner: Tensor | None = None,
    normalize: bool = False,
    chunk_size: int | None = None,
    impl: Impl = "auto",
) -> ScoreStats:
    r"""Row and column log-sum-exp of the masked scores, and paired scores, in one pass.

    .. math::

        \text{rows}_i = \log \sum_{j \in C_i} e^{s_{ij}}, \qquad
        \text{cols}_j = \log \sum_{i : j \in C_i} e^{s_{ij}}, \qquad
        \text{paired}_i = s_{i, p(i)}

    Equivalent to ``torch.logsumexp((scale * a @ b.T).masked_fill(~keep, -inf), dim)`` but,
    tiled, without materializing the ``N x M`` matrix: memory ``O((N + M) D)`` plus one tile
    in forward and backward. A row or column with no kept pair gets ``-inf`` and no gradient.

    Args:
        a: Anchors, shape ``(N, D)``.
        b: Candidates, shape ``(M, D)``.
        scale: 0-dim tensor (may require grad), e.g. ``1 / temperature``.
        mask: Which pairs are kept; ``None`` keeps all.
        multiplier: Shape ``(N,)``; multiplies the scores of each anchor's positive pairs (same
            group, or the diagonal without groups) inside the log-sum-exp. A constant (no
            gradient).
        rows: Compute the row statistics.
        cols: Compute the column statistics (from the same pass over the tiles).
        paired: Compute the paired scores :math:`s_{i, p(i)}` (``O(N D)``; their gradient is
            added into the same accumulators, so they cost no extra memory).
        partner: Shape ``(N,)``, :math:`p(i)`; ``None`` means the diagonal ``p(i) = i``.
        normalize: Use L2-normalized rows of ``a`` and ``b`` (cosine similarity). The tiled
            path normalizes on the fly and keeps no normalized copy between forward and
            backward; gradients flow as through ``F.normalize``.
        chunk_size: Rows and columns per tile; ``None`` chooses.
        impl: ``"auto"``, ``"dense"`` or ``"tiled"``.

    Returns:
        A :class:`ScoreStats` in the statistics dtype (float32 for low-precision inputs).
    """
    mask = PairMask() if mask is None else mask
    if resolve_impl(impl, a.shape[0], b.shape[0]) == "dense":
        lse_r, lse_c = dense_logsumexp(a, b, scale, mask, multiplier, rows, cols, normalize)
        pos = (
            paired_scores(a, b, scale, partner, normalize=normalize)
            if paired
            else lse_r.new_empty(0)
        )
        return ScoreStats(lse_r, lse_c, pos)
    out = TiledLogSumExp.apply(
        a, b, scale, mask, multiplier, rows, cols, paired, partner, normalize, chunk_size
    )
    return ScoreStats(*out)


def logsumexp(
    a: Tensor,
    b: Tensor,
    scale: Tensor,
    *,
    mask: PairMask | None = None,
    multiplier: Tensor | None = None,
    rows: bool = True,
    cols: bool = False,
    normalize: bool = False,
    chunk_size: int | None = None,
    impl: Impl = "auto",
) -> tuple[Tensor, Tensor]:
    """Row and column log-sum-exp only; see :func:`score_stats` for the arguments.

    Returns:
        ``(rows (N,), cols (M,))``; an unrequested one is empty.
    """
    stats = score_stats(
        a,
        b,
        scale,
        mask=mask,
        multiplier=multiplier,
        rows=rows,
        cols=cols,
        normalize=normalize,
        chunk_size=chunk_size,
        impl=impl,
    )
    return stats.rows, stats.cols


def pair_softplus(
    a: Tensor,
    b: Tensor,
    scale: Tensor,
    offset: Tensor,
    *,
    sign: float,
    mask: PairMask | None = None,
    chunk_size: int | None = None,
    impl: Impl = "auto",
) -> Tensor:
    r"""Per-row sums :math:`\sum_{j \in C_i} \operatorname{softplus}(\sigma (s_{ij} + r_i))`.

    Equivalent to ``softplus(sign * (scale * a @ b.T + offset[:, None]))[keep].sum(1)`` without
    materializing the ``N x M`` matrix when tiled.

    Args:
        a: Anchors, shape ``(N, D)``.
        b: Candidates, shape ``(M, D)``.
        scale: 0-dim tensor (may require grad).
        offset: Shape ``(N,)`` per-row offsets :math:`r_i` (may require grad).
        sign: :math:`\sigma`, ``+1.0`` or ``-1.0``.
        mask: Which pairs are summed; ``None`` sums all.
        chunk_size: Rows and columns per tile; ``None`` chooses.
        impl: ``"auto"``, ``"dense"`` or ``"tiled"``.

    Returns:
        Shape ``(N,)`` in the statistics dtype.
    """
    mask = PairMask() if mask is None else mask
    if resolve_impl(impl, a.shape[0], b.shape[0]) == "dense":
        return dense_pair_softplus(a, b, scale, offset, sign, mask)
    out: Tensor = TiledPairSoftplus.apply(a, b, scale, offset, sign, mask, chunk_size)
    return out


def paired_scores(
    a: Tensor,
    b: Tensor,
    scale: Tensor,
    index: Tensor | None = None,
    *,
    normalize: bool = False,
) -> Tensor:
    r"""Scores :math:`s_{i, p(i)} = \text{scale} \langle a_i, b_{p(i)} \rangle`, shape ``(N,)``.

    Args:
        a: Anchors, shape ``(N, D)``.
        b: Candidates, shape ``(M, D)``.
        scale: 0-dim scale tensor.
        index: Shape ``(N,)`` partner of each row; ``None`` means ``p(i) = i``.
        normalize: Cosine instead of dot product (as ``F.normalize`` with ``eps=1e-12``),
            computed without keeping normalized copies of the inputs.
    """
    cdt = stats_dtype(a.dtype)
    a = a.to(cdt)
    partner = (b[: a.shape[0]] if index is None else b[index]).to(cdt)
    dots = (a * partner).sum(1)
    if normalize:
        dots = dots / (a.norm(dim=1).clamp_min(1e-12) * partner.norm(dim=1).clamp_min(1e-12))
    return dots * scale


def reduce(
    per_row: Tensor,
    reduction: Reduction,
    *,
    valid: Tensor | None = None,
    denominator: float | Tensor | None = None,
) -> Tensor:
    """Reduce per-row losses: ``"mean"``, ``"sum"`` or ``"none"``.

    Rows where ``valid`` is False contribute exactly zero (also to gradients, even if their value
    is ``inf``) and are excluded from the mean; with no valid row the mean is ``0``.

    Args:
        per_row: Shape ``(N,)``.
        reduction: How rows combine.
        valid: Shape ``(N,)`` bool, rows that count.
        denominator: Overrides the mean's denominator (default: number of valid rows).
    """
    if valid is not None:
        per_row = torch.where(valid, per_row, 0.0)
    if reduction == "none":
        return per_row
    total = per_row.sum()
    if reduction == "sum":
        return total
    if denominator is None:
        denominator = per_row.shape[0] if valid is None else valid.sum()
    if isinstance(denominator, Tensor):
        return total / denominator.clamp(min=1).to(total.dtype)
    return total / max(float(denominator), 1.0)
