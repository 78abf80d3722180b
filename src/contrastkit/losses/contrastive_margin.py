"""The classic pairwise contrastive loss: positives pulled in, negatives pushed past a margin."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from contrastkit.core import validation as v
from contrastkit.core.pairmap import PairFn, pair_reduce
from contrastkit.core.similarity import l2
from contrastkit.core.validation import Impl, Reduction
from contrastkit.distributed import ProcessGroup, shard
from contrastkit.losses._base import ContrastiveLoss, Paper, Requires
from contrastkit.losses._inputs import check_common, finish, gathered, prepare_labeled


def contrastive_margin(
    embeddings: Tensor,
    labels: Tensor,
    *,
    pos_margin: float = 0.0,
    neg_margin: float = 1.0,
    normalize: bool = True,
    reduction: Reduction = "mean",
    chunk_size: int | None = None,
    impl: Impl = "auto",
    gather_distributed: bool = False,
    process_group: ProcessGroup | None = None,
) -> Tensor:
    r"""Contrastive loss with margins (Hadsell, Chopra & LeCun), as in pytorch-metric-learning.

    With Euclidean distances :math:`d_{ij} = \lVert z_i - z_j \rVert` (not squared),
    positive pairs :math:`P = \{(i, p) : i \ne p, y_i = y_p\}` and negative pairs
    :math:`N = \{(i, n) : y_i \ne y_n\}` (ordered pairs),

    .. math::

        L = \frac{\sum_{P} [d_{ip} - m_{pos}]_+}{|\{P : [d_{ip} - m_{pos}]_+ > 0\}|}
          + \frac{\sum_{N} [m_{neg} - d_{in}]_+}{|\{N : [m_{neg} - d_{in}]_+ > 0\}|}

    Each part averages its non-zero terms only (0 when it has none), which is
    ``pytorch_metric_learning``'s default ``AvgNonZeroReducer``.

    Args:
        embeddings: Shape ``(N, D)``.
        labels: Shape ``(N,)`` integer class ids.
        pos_margin: :math:`m_{pos}`; positive pairs closer than this cost nothing.
        neg_margin: :math:`m_{neg}`; negative pairs farther than this cost nothing.
        normalize: L2-normalize first (PML's default distance does).
        reduction: ``"mean"`` (the formula), ``"sum"`` (all terms) or ``"none"`` (shape
            ``(N,)``: each anchor's positive plus negative terms).
        chunk_size: Rows and columns per tile; ``None`` chooses.
        impl: ``"auto"``, ``"dense"`` or ``"tiled"``.
        gather_distributed: Loss of the global batch over all ranks (every rank evaluates the
            gathered batch; see :mod:`contrastkit.distributed`).
        process_group: The group to gather over; ``None`` is the default group.

    Example:
        >>> import torch
        >>> contrastive_margin(torch.randn(6, 4), torch.tensor([0, 0, 1, 1, 2, 2])).shape
        torch.Size([])

    References:
        Hadsell, Chopra & LeCun, 2006, "Dimensionality Reduction by Learning an Invariant
        Mapping" (CVPR). Used as a baseline in MapFormer (arXiv:2303.17859).

    Peers: ``pytorch_metric_learning.losses.ContrastiveLoss``.
    """

    def check() -> tuple[Tensor, Tensor]:
        v.check_finite_scalar("pos_margin", pos_margin)
        v.check_finite_scalar("neg_margin", neg_margin)
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

    def part(positive: bool, count: bool) -> PairFn:
        def fn(r: list[Tensor], c: list[Tensor], p: list[Tensor], ri: Tensor, ci: Tensor) -> Tensor:
            d = l2(r[0], c[0])
            same = r[1][:, None] == c[1][None, :]
            if positive:
                keep = same & (ri[:, None] != ci[None, :])
                t = F.relu(d - pos_margin)
            else:
                keep = ~same
                t = F.relu(neg_margin - d)
            t = torch.where(keep, t, 0.0)
            return (t > 0).to(t.dtype) if count else t

        return fn

    def total(positive: bool) -> tuple[Tensor, Tensor]:
        terms, _ = pair_reduce(
            part(positive, False), [z, y], [z, y], chunk_size=chunk_size, impl=impl
        )
        with torch.no_grad():
            nonzero, _ = pair_reduce(
                part(positive, True), [z, y], [z, y], chunk_size=chunk_size, impl=impl
            )
        return terms, nonzero.sum()

    pos, n_pos = total(True)
    neg, n_neg = total(False)
    if reduction == "mean":
        return pos.sum() / n_pos.clamp(min=1) + neg.sum() / n_neg.clamp(min=1)
    return finish(pos + neg, reduction, sh, "embeddings")


class ContrastiveMarginLoss(ContrastiveLoss):
    """Module form of :func:`contrastive_margin`; the arguments are the same."""

    catalog_id = "contrastive_margin"
    family = "G. margins"
    paper = Paper("Bernhard et al.", 2023, "2303.17859", "MapFormer (margin loss baseline)")
    inputs = ("embeddings", "labels")
    requires = Requires(labels=True)
    peers = ("pytorch_metric_learning.losses.ContrastiveLoss",)
    supports_distributed = True

    def __init__(
        self,
        *,
        pos_margin: float = 0.0,
        neg_margin: float = 1.0,
        normalize: bool = True,
        reduction: Reduction = "mean",
        chunk_size: int | None = None,
        impl: Impl = "auto",
        gather_distributed: bool = False,
        process_group: ProcessGroup | None = None,
    ) -> None:
        super().__init__()
        v.check_finite_scalar("pos_margin", pos_margin)
        v.check_finite_scalar("neg_margin", neg_margin)
        check_common(reduction, chunk_size, impl)
        self.pos_margin, self.neg_margin, self.normalize = pos_margin, neg_margin, normalize
        self.set_common(reduction, chunk_size, impl, gather_distributed, process_group)

    def forward(self, embeddings: Tensor, labels: Tensor) -> Tensor:
        """Compute the loss; see :func:`contrastive_margin`."""
        return contrastive_margin(
            embeddings,
            labels,
            pos_margin=self.pos_margin,
            neg_margin=self.neg_margin,
            normalize=self.normalize,
            **self.common(),
        )
