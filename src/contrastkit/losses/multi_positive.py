"""Multi-positive InfoNCE: one softmax per positive pair, other positives left out."""

from __future__ import annotations

from torch import Tensor

from contrastkit import core
from contrastkit.core import PairMask
from contrastkit.core import validation as v
from contrastkit.core.validation import Impl, Reduction
from contrastkit.distributed import ProcessGroup, shard
from contrastkit.losses._base import ContrastiveLoss, Paper, Requires
from contrastkit.losses._inputs import (
    check_common,
    inverse_temperature,
    prepare_labeled,
    requires_grad,
)
from contrastkit.losses._labels import labeled_batch


def multi_positive(
    embeddings: Tensor,
    labels: Tensor,
    *,
    temperature: float | Tensor = 0.1,
    normalize: bool = True,
    reduction: Reduction = "mean",
    chunk_size: int | None = None,
    impl: Impl = "auto",
    gather_distributed: bool = False,
    process_group: ProcessGroup | None = None,
) -> Tensor:
    r"""InfoNCE with one softmax per positive pair; the other positives are not negatives.

    With :math:`s_{ij} = \langle z_i, z_j \rangle / \tau`, positive pairs
    :math:`(i, p)`, :math:`p \ne i`, :math:`y_p = y_i`, and negatives
    :math:`N(i) = \{n : y_n \ne y_i\}`,

    .. math::

        \ell_{ip} = -\log \frac{e^{s_{ip}}}{e^{s_{ip}} + \sum_{n \in N(i)} e^{s_{in}}}
                  = \operatorname{softplus}\big(L_i - s_{ip}\big), \quad
        L_i = \log \sum_{n \in N(i)} e^{s_{in}}

    and the mean runs over all positive pairs (0 when there is none). Both :math:`L_i` and the
    sum over pairs are tiled reductions, so no ``N x N`` matrix is held.

    Args:
        embeddings: Shape ``(N, D)``.
        labels: Shape ``(N,)`` integer class ids.
        temperature: :math:`\tau > 0`.
        normalize: L2-normalize first.
        reduction: ``"mean"`` over positive pairs, ``"sum"``, or ``"none"`` (shape ``(N,)``,
            each anchor's sum over its positive pairs).
        chunk_size: Rows and columns per tile; ``None`` chooses.
        impl: ``"auto"``, ``"dense"`` or ``"tiled"``.
        gather_distributed: Loss of the global batch over all ranks of ``process_group``;
            see :mod:`contrastkit.distributed`.
        process_group: The group to gather over; ``None`` is the default group.

    Example:
        >>> import torch
        >>> multi_positive(torch.randn(6, 8), torch.tensor([0, 0, 0, 1, 1, 2])).shape
        torch.Size([])

    References:
        Chen et al. (SimCLR), 2020, arXiv:2002.05709 (NT-Xent with labels); the CoDiEmb paper
        (catalog P32) uses it for several positives.

    Peers: ``pytorch_metric_learning.losses.NTXentLoss`` (with labels).
    """

    def check() -> tuple[Tensor, Tensor]:
        v.check_temperature("temperature", temperature)
        check_common(reduction, chunk_size, impl)
        return prepare_labeled(embeddings, labels, normalize=normalize)

    (z, y), sh = shard(
        gather_distributed,
        process_group,
        check,
        lambda r: {"embeddings": r[0], "labels": r[1]},
        {"reduction": reduction, "temperature_grad": requires_grad(temperature)},
    )
    scale = inverse_temperature(temperature, z, sh)
    lb = labeled_batch(z, y, sh)
    negatives = PairMask(row_groups=lb.row_ids, col_groups=lb.col_ids, groups="different")
    lse_neg, _ = core.logsumexp(
        lb.anchors, lb.candidates, scale, mask=negatives, chunk_size=chunk_size, impl=impl
    )
    positives = PairMask(
        exclude_self=True,
        self_index=lb.self_index,
        row_groups=lb.row_ids,
        col_groups=lb.col_ids,
        groups="same",
    )
    per_anchor = core.pair_softplus(
        lb.anchors,
        lb.candidates,
        scale,
        -lse_neg,
        sign=-1.0,
        mask=positives,
        chunk_size=chunk_size,
        impl=impl,
    )
    positive_pairs = (lb.col_sizes - 1).sum()
    if sh is None:
        return core.reduce(per_anchor, reduction, denominator=positive_pairs)
    return sh.reduce(per_anchor, reduction, positive_pairs)


class MultiPositiveLoss(ContrastiveLoss):
    """Module form of :func:`multi_positive`; the arguments are the same."""

    catalog_id = "multi_positive"
    family = "B. several positives per anchor"
    paper = Paper("Chen et al.", 2020, "2002.05709", "SimCLR (NT-Xent with labels)")
    inputs = ("embeddings", "labels")
    requires = Requires(labels=True)
    peers = ("pytorch_metric_learning.losses.NTXentLoss",)
    supports_distributed = True
    distributed = "split"

    def __init__(
        self,
        *,
        temperature: float = 0.1,
        normalize: bool = True,
        reduction: Reduction = "mean",
        chunk_size: int | None = None,
        impl: Impl = "auto",
        gather_distributed: bool = False,
        process_group: ProcessGroup | None = None,
    ) -> None:
        super().__init__()
        v.check_temperature("temperature", temperature)
        check_common(reduction, chunk_size, impl)
        self.temperature, self.normalize = temperature, normalize
        self.set_common(reduction, chunk_size, impl, gather_distributed, process_group)

    def forward(self, embeddings: Tensor, labels: Tensor) -> Tensor:
        """Compute the loss; see :func:`multi_positive`."""
        return multi_positive(
            embeddings,
            labels,
            temperature=self.temperature,
            normalize=self.normalize,
            **self.common(),
        )
