"""Pairwise logistic loss on score differences (the multi-positive loss of IDOL / CTVIS)."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

from contrastkit import core
from contrastkit.core import PairMask
from contrastkit.core import validation as v
from contrastkit.core.validation import Impl, Reduction
from contrastkit.distributed import ProcessGroup, shard
from contrastkit.losses._base import ContrastiveLoss, Paper, Requires
from contrastkit.losses._inputs import (
    check_common,
    finish,
    gathered,
    prepare_labeled,
    requires_grad,
)
from contrastkit.losses._labels import dense_ids


def pairwise_logistic(
    embeddings: Tensor,
    labels: Tensor,
    *,
    temperature: float | Tensor = 1.0,
    normalize: bool = False,
    reduction: Reduction = "mean",
    chunk_size: int | None = None,
    impl: Impl = "auto",
    gather_distributed: bool = False,
    process_group: ProcessGroup | None = None,
) -> Tensor:
    r"""Pairwise logistic loss: every positive is compared with every negative of its anchor.

    With :math:`s_{ij} = \langle z_i, z_j \rangle / \tau`, positives
    :math:`P(i) = \{p \ne i : y_p = y_i\}` and negatives :math:`N(i) = \{n : y_n \ne y_i\}`,

    .. math::

        \ell_i = \log\Big(1 + \sum_{p \in P(i)} \sum_{n \in N(i)} e^{s_{in} - s_{ip}}\Big)
               = \operatorname{softplus}\Big(\log \sum_{n \in N(i)} e^{s_{in}}
                 + \log \sum_{p \in P(i)} e^{-s_{ip}}\Big)

    The double sum factorizes into two masked log-sum-exps, so the cost is that of InfoNCE.
    With one positive it is InfoNCE with the positive in the denominator. Anchors without a
    positive contribute zero and are excluded from the mean; CTVIS uses raw dot products and
    :math:`\tau = 1` (the defaults).

    Args:
        embeddings: Shape ``(N, D)``.
        labels: Shape ``(N,)`` integer ids (instance ids in CTVIS).
        temperature: :math:`\tau > 0`; a float or a 0-dim tensor (may require grad).
        normalize: L2-normalize first (cosine); CTVIS does not.
        reduction: ``"mean"`` (over anchors with a positive), ``"sum"`` or ``"none"``.
        chunk_size: Rows and columns per tile; ``None`` chooses.
        impl: ``"auto"``, ``"dense"`` or ``"tiled"``.
        gather_distributed: Loss of the global batch over all ranks (every rank evaluates the
            gathered batch; see :mod:`contrastkit.distributed`).
        process_group: The group to gather over; ``None`` is the default group.

    Example:
        >>> import torch
        >>> pairwise_logistic(torch.randn(6, 4), torch.tensor([0, 0, 1, 1, 2, 2])).shape
        torch.Size([])

    References:
        Ying et al., 2023, "CTVIS: Consistent Training for Online Video Instance
        Segmentation", arXiv:2307.12616 (after Wu et al., IDOL, and Pang et al., QDTrack).
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
    z, y = gathered(sh, "embeddings", z), gathered(sh, "labels", y)
    ids, size = dense_ids(y)
    scale = 1.0 / core.as_scale(temperature, z)
    negatives = PairMask(row_groups=ids, col_groups=ids, groups="different")
    positives = PairMask(exclude_self=True, row_groups=ids, col_groups=ids, groups="same")
    lse_neg, _ = core.logsumexp(z, z, scale, mask=negatives, chunk_size=chunk_size, impl=impl)
    lse_pos, _ = core.logsumexp(z, z, -scale, mask=positives, chunk_size=chunk_size, impl=impl)
    valid = size > 1
    per_row = F.softplus(lse_neg + lse_pos.masked_fill(~valid, 0.0))
    return finish(per_row, reduction, sh, "embeddings", valid=valid)


class PairwiseLogisticLoss(ContrastiveLoss):
    """Module form of :func:`pairwise_logistic`; the arguments are the same."""

    catalog_id = "pairwise_logistic"
    family = "F. ranking on score differences"
    paper = Paper("Ying et al.", 2023, "2307.12616", "CTVIS: Consistent Training for Online VIS")
    inputs = ("embeddings", "labels")
    requires = Requires(labels=True)
    supports_distributed = True

    def __init__(
        self,
        *,
        temperature: float = 1.0,
        normalize: bool = False,
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
        """Compute the loss; see :func:`pairwise_logistic`."""
        return pairwise_logistic(
            embeddings,
            labels,
            temperature=self.temperature,
            normalize=self.normalize,
            **self.common(),
        )
