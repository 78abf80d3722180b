"""Triplet margin loss over all valid triplets of a labeled batch."""

from __future__ import annotations

import math

import torch
from torch import Tensor

from contrastkit.core import validation as v
from contrastkit.core.pairmap import PairFn, pair_reduce
from contrastkit.core.similarity import l2
from contrastkit.core.validation import Impl, Reduction
from contrastkit.distributed import ProcessGroup, shard
from contrastkit.losses._base import ContrastiveLoss, Paper, Requires
from contrastkit.losses._inputs import check_common, finish, gathered, prepare_labeled


def triplet(
    embeddings: Tensor,
    labels: Tensor,
    *,
    margin: float = 0.05,
    normalize: bool = True,
    reduction: Reduction = "mean",
    chunk_size: int | None = None,
    impl: Impl = "auto",
    gather_distributed: bool = False,
    process_group: ProcessGroup | None = None,
) -> Tensor:
    r"""Triplet margin loss over every (anchor, positive, negative) triplet of the batch.

    With Euclidean distances :math:`d_{ij} = \lVert z_i - z_j \rVert` and all triplets
    :math:`T = \{(a, p, n) : a \ne p, y_a = y_p \ne y_n\}`,

    .. math::

        t_{apn} = [d_{ap} - d_{an} + m]_+, \qquad
        L = \frac{\sum_{T} t_{apn}}{|\{T : t_{apn} > 0\}|}

    the mean over the non-zero triplets (``pytorch_metric_learning``'s ``AvgNonZeroReducer``;
    0 when none is active). The :math:`O(N^3)` triplets are never enumerated: per anchor, the
    positives' :math:`d_{ap} + m` are sorted once and every negative sums the ones above its
    :math:`d_{an}` with a binary search and a prefix sum, so the cost is
    :math:`O(N^2 \log N)` and the memory one block of rows of the distance matrix.

    Args:
        embeddings: Shape ``(N, D)``.
        labels: Shape ``(N,)`` integer class ids.
        margin: :math:`m \ge 0`.
        normalize: L2-normalize first (PML's default distance does).
        reduction: ``"mean"`` (over non-zero triplets), ``"sum"`` or ``"none"`` (shape ``(N,)``,
            each anchor's sum over its triplets).
        chunk_size: Anchor rows per block; ``None`` chooses.
        impl: ``"auto"``, ``"dense"`` or ``"tiled"``.
        gather_distributed: Loss of the global batch over all ranks (every rank evaluates the
            gathered batch; see :mod:`contrastkit.distributed`).
        process_group: The group to gather over; ``None`` is the default group.

    Example:
        >>> import torch
        >>> triplet(torch.randn(6, 4), torch.tensor([0, 0, 1, 1, 2, 2])).shape
        torch.Size([])

    References:
        Schroff et al., 2015, "FaceNet", arXiv:1503.03832; used by ST-SSDL.

    Peers: ``pytorch_metric_learning.losses.TripletMarginLoss`` (``triplets_per_anchor="all"``).
    """

    def check() -> tuple[Tensor, Tensor]:
        v.check_nonnegative_float("margin", margin)
        check_common(reduction, chunk_size, impl)
        return prepare_labeled(embeddings, labels, normalize=normalize)

    (z, y), sh = shard(
        gather_distributed,
        process_group,
        check,
        lambda r: {"embeddings": r[0], "labels": r[1]},
        {"reduction": reduction},
    )
    z, y = gathered(sh, "embeddings", z), gathered(sh, "labels", y)
    per_row, _ = pair_reduce(
        _per_negative(margin, False),
        [z, y],
        [z, y],
        full_cols=True,
        chunk_size=chunk_size,
        impl=impl,
    )
    if reduction != "mean":
        return finish(per_row, reduction, sh, "embeddings")
    with torch.no_grad():
        active, _ = pair_reduce(
            _per_negative(margin, True),
            [z, y],
            [z, y],
            full_cols=True,
            chunk_size=chunk_size,
            impl=impl,
        )
    return per_row.sum() / active.sum().clamp(min=1)


def _per_negative(margin: float, count: bool) -> PairFn:
    r"""For whole rows: :math:`\sum_p [d_{ap} + m - d_{an}]_+` (or the count of active terms)."""

    def fn(r: list[Tensor], c: list[Tensor], p: list[Tensor], ri: Tensor, ci: Tensor) -> Tensor:
        d = l2(r[0], c[0])
        same = r[1][:, None] == c[1][None, :]
        positive = same & (ri[:, None] != ci[None, :])
        x, _ = torch.where(positive, d + margin, -math.inf).sort(dim=1)
        prefix = torch.where(torch.isfinite(x), x, 0.0).cumsum(1)
        below = torch.searchsorted(x.detach(), d.detach().contiguous(), right=True)
        above = (x.shape[1] - below).to(d.dtype)  # positives with d_ap + m > d_an
        taken = prefix.gather(1, (below - 1).clamp(min=0))
        upper = prefix[:, -1:] - torch.where(below > 0, taken, 0.0)
        value = above if count else upper - above * d
        return torch.where(~same, value, 0.0)

    return fn


class TripletLoss(ContrastiveLoss):
    """Module form of :func:`triplet`; the arguments are the same."""

    catalog_id = "triplet"
    family = "G. margins"
    paper = Paper("Schroff et al.", 2015, "1503.03832", "FaceNet (triplet loss)")
    inputs = ("embeddings", "labels")
    requires = Requires(labels=True)
    peers = ("pytorch_metric_learning.losses.TripletMarginLoss",)
    supports_distributed = True

    def __init__(
        self,
        *,
        margin: float = 0.05,
        normalize: bool = True,
        reduction: Reduction = "mean",
        chunk_size: int | None = None,
        impl: Impl = "auto",
        gather_distributed: bool = False,
        process_group: ProcessGroup | None = None,
    ) -> None:
        super().__init__()
        v.check_nonnegative_float("margin", margin)
        check_common(reduction, chunk_size, impl)
        self.margin, self.normalize = margin, normalize
        self.set_common(reduction, chunk_size, impl, gather_distributed, process_group)

    def forward(self, embeddings: Tensor, labels: Tensor) -> Tensor:
        """Compute the loss; see :func:`triplet`."""
        return triplet(
            embeddings,
            labels,
            margin=self.margin,
            normalize=self.normalize,
            **self.common(),
        )
