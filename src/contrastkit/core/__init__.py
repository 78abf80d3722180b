r"""The engine: exact reductions over the score matrix, dense or in tiles.

A loss is plain PyTorch composed of a few reductions. For anchors ``a (N, D)`` and candidates
``b (M, D)`` with scores :math:`s_{ij} = \text{scale} \cdot m_{ij} \langle a_i, b_j \rangle`:

- :func:`logsumexp`: :math:`\log \sum_{j \in C_i} e^{s_{ij}}` per row and/or per column, from one
  pass over the tiles;
- :func:`pair_softplus`: :math:`\sum_{j \in C_i} \operatorname{softplus}(\sigma (s_{ij} + r_i))`
  per row;
- :func:`paired_scores`: :math:`s_{i, p(i)}` for one given partner per row (``O(N D)``).

``C_i`` is described compactly by a :class:`PairMask`. Both implementations return the same
values and gradients; ``impl="auto"`` picks the dense one for small matrices.
"""

from __future__ import annotations

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
    "as_scale",
    "logsumexp",
    "pair_softplus",
    "paired_scores",
    "reduce",
    "resolve_impl",
    "stats_dtype",
]


def as_scale(value: float | Tensor, like: Tensor) -> Tensor:
    """A 0-dim scale tensor on ``like``'s device in its statistics dtype (keeps autograd)."""
    dt = stats_dtype(like.dtype)
    if isinstance(value, Tensor):
        return value.reshape(()).to(device=like.device, dtype=dt)
    return torch.tensor(float(value), dtype=dt, device=like.device)


def logsumexp(
    a: Tensor,
    b: Tensor,
    scale: Tensor,
    *,
    mask: PairMask | None = None,
    multiplier: Tensor | None = None,
    rows: bool = True,
    cols: bool = False,
    chunk_size: int | None = None,
    impl: Impl = "auto",
) -> tuple[Tensor, Tensor]:
    r"""Row and column log-sum-exp of the masked score matrix.

    .. math::

        \text{lse}^{row}_i = \log \sum_{j \in C_i} e^{s_{ij}}, \qquad
        \text{lse}^{col}_j = \log \sum_{i : j \in C_i} e^{s_{ij}}

    Equivalent to ``torch.logsumexp((scale * a @ b.T).masked_fill(~keep, -inf), dim)`` but,
    tiled, without materializing the ``N x M`` matrix. A row or column with no kept pair gets
    ``-inf`` and receives no gradient.

    Args:
        a: Anchors, shape ``(N, D)``.
        b: Candidates, shape ``(M, D)``.
        scale: 0-dim tensor (may require grad), e.g. ``1 / temperature``.
        mask: Which pairs are kept; ``None`` keeps all.
        multiplier: Shape ``(N,)``; multiplies the scores of each anchor's positive pairs (same
            group, or the diagonal without groups). Treated as a constant (no gradient).
        rows: Compute the row statistics.
        cols: Compute the column statistics (from the same pass over the tiles).
        chunk_size: Rows and columns per tile; ``None`` chooses.
        impl: ``"auto"``, ``"dense"`` or ``"tiled"``.

    Returns:
        ``(lse_rows (N,), lse_cols (M,))`` in the statistics dtype; an unrequested one is empty.
    """
    mask = PairMask() if mask is None else mask
    if resolve_impl(impl, a.shape[0], b.shape[0]) == "dense":
        return dense_logsumexp(a, b, scale, mask, multiplier, rows, cols)
    out: tuple[Tensor, Tensor] = TiledLogSumExp.apply(
        a, b, scale, mask, multiplier, rows, cols, chunk_size
    )
    return out


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


def paired_scores(a: Tensor, b: Tensor, scale: Tensor, index: Tensor | None = None) -> Tensor:
    r"""Scores :math:`s_{i, p(i)} = \text{scale} \langle a_i, b_{p(i)} \rangle`, shape ``(N,)``.

    Args:
        a: Anchors, shape ``(N, D)``.
        b: Candidates, shape ``(M, D)``.
        scale: 0-dim scale tensor.
        index: Shape ``(N,)`` partner of each row; ``None`` means ``p(i) = i``.
    """
    cdt = stats_dtype(a.dtype)
    partner = b[: a.shape[0]] if index is None else b[index]
    return (a.to(cdt) * partner.to(cdt)).sum(1) * scale


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
