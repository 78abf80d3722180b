"""Supervised contrastive loss (SupCon): every same-label sample is a positive."""

from __future__ import annotations

from typing import Literal

from torch import Tensor

from contrastkit import core
from contrastkit.core import PairMask
from contrastkit.core import validation as v
from contrastkit.core.validation import Impl, Reduction
from contrastkit.losses._base import ContrastiveLoss, Paper, Requires
from contrastkit.losses._inputs import check_common, prepare_one
from contrastkit.losses._labels import class_sums, dense_ids

Variant = Literal["out", "in"]


def supcon(
    embeddings: Tensor,
    labels: Tensor,
    *,
    temperature: float | Tensor = 0.1,
    variant: Variant = "out",
    normalize: bool = True,
    reduction: Reduction = "mean",
    chunk_size: int | None = None,
    impl: Impl = "auto",
) -> Tensor:
    r"""Supervised contrastive loss of Khosla et al., in its two variants.

    With :math:`s_{ij} = \langle z_i, z_j \rangle / \tau`, positives
    :math:`P(i) = \{p \ne i : y_p = y_i\}` and candidates :math:`A(i) = \{j \ne i\}`,

    .. math::

        \ell^{out}_i = -\frac{1}{|P(i)|} \sum_{p \in P(i)}
            \log \frac{e^{s_{ip}}}{\sum_{a \in A(i)} e^{s_{ia}}}, \qquad
        \ell^{in}_i = -\log \frac{\sum_{p \in P(i)} e^{s_{ip}}}{\sum_{a \in A(i)} e^{s_{ia}}}

    An anchor without a positive contributes zero and is excluded from the mean (the mean of
    no anchor is 0). ``"out"`` is the paper's recommended form; the positive average is computed
    from class sums in ``O(N D)``, the log-sum-exp in tiles.

    Args:
        embeddings: Shape ``(N, D)``.
        labels: Shape ``(N,)`` integer class (or group) ids.
        temperature: :math:`\tau > 0`.
        variant: ``"out"`` (positives averaged outside the log) or ``"in"`` (inside).
        normalize: L2-normalize first.
        reduction: ``"mean"`` (over anchors with a positive), ``"sum"`` or ``"none"``
            (shape ``(N,)``, zero for anchors without positive).
        chunk_size: Rows and columns per tile; ``None`` chooses.
        impl: ``"auto"``, ``"dense"`` or ``"tiled"``.

    Example:
        >>> import torch
        >>> supcon(torch.randn(6, 8), torch.tensor([0, 0, 1, 1, 2, 2])).shape
        torch.Size([])

    References:
        Khosla et al., 2020, arXiv:2004.11362.

    Peers: ``pytorch_metric_learning.losses.SupConLoss`` (``"out"``).
    """
    v.check_temperature("temperature", temperature)
    v.check_choice("variant", variant, ("out", "in"))
    check_common(reduction, chunk_size, impl)
    z = prepare_one("embeddings", embeddings, normalize=normalize)
    v.check_labels("labels", labels, z.shape[0])
    ids, size = dense_ids(labels.to(z.device))
    n_pos = size - 1
    scale = 1.0 / core.as_scale(temperature, z)
    lse_all, _ = core.logsumexp(
        z, z, scale, mask=PairMask(exclude_self=True), chunk_size=chunk_size, impl=impl
    )
    if variant == "out":
        pos_sum = (z * (class_sums(z, ids)[ids] - z)).sum(1) * scale
        loss = lse_all - pos_sum / n_pos.clamp(min=1)
    else:
        positives = PairMask(exclude_self=True, row_groups=ids, col_groups=ids, groups="same")
        lse_pos, _ = core.logsumexp(z, z, scale, mask=positives, chunk_size=chunk_size, impl=impl)
        loss = lse_all - lse_pos
    return core.reduce(loss, reduction, valid=n_pos > 0)


class SupConLoss(ContrastiveLoss):
    """Module form of :func:`supcon`; the arguments are the same."""

    catalog_id = "supcon"
    family = "B. several positives per anchor"
    paper = Paper("Khosla et al.", 2020, "2004.11362", "Supervised Contrastive Learning")
    inputs = ("embeddings", "labels")
    requires = Requires(labels=True)
    peers = ("pytorch_metric_learning.losses.SupConLoss",)

    def __init__(
        self,
        *,
        temperature: float = 0.1,
        variant: Variant = "out",
        normalize: bool = True,
        reduction: Reduction = "mean",
        chunk_size: int | None = None,
        impl: Impl = "auto",
    ) -> None:
        super().__init__()
        v.check_temperature("temperature", temperature)
        v.check_choice("variant", variant, ("out", "in"))
        check_common(reduction, chunk_size, impl)
        self.temperature, self.variant, self.normalize = temperature, variant, normalize
        self.reduction, self.chunk_size, self.impl = reduction, chunk_size, impl

    def forward(self, embeddings: Tensor, labels: Tensor) -> Tensor:
        """Compute the loss; see :func:`supcon`."""
        return supcon(
            embeddings,
            labels,
            temperature=self.temperature,
            variant=self.variant,
            normalize=self.normalize,
            reduction=self.reduction,
            chunk_size=self.chunk_size,
            impl=self.impl,
        )
