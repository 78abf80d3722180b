"""Supervised contrastive loss (SupCon): every same-label sample is a positive."""

from __future__ import annotations

from typing import Literal

import torch
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
from contrastkit.losses._labels import class_sums, labeled_batch

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
    gather_distributed: bool = False,
    process_group: ProcessGroup | None = None,
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
        gather_distributed: Loss of the global batch over all ranks of ``process_group``;
            see :mod:`contrastkit.distributed`.
        process_group: The group to gather over; ``None`` is the default group.

    Example:
        >>> import torch
        >>> supcon(torch.randn(6, 8), torch.tensor([0, 0, 1, 1, 2, 2])).shape
        torch.Size([])

    References:
        Khosla et al., 2020, arXiv:2004.11362.

    Peers: ``pytorch_metric_learning.losses.SupConLoss`` (``"out"``).
    """

    def check() -> tuple[Tensor, Tensor]:
        v.check_temperature("temperature", temperature)
        v.check_choice("variant", variant, ("out", "in"))
        check_common(reduction, chunk_size, impl)
        return prepare_labeled(embeddings, labels, normalize=normalize)

    (z, y), sh = shard(
        gather_distributed,
        process_group,
        check,
        lambda r: {"embeddings": r[0], "labels": r[1]},
        {
            "variant": variant,
            "reduction": reduction,
            "temperature_grad": requires_grad(temperature),
        },
    )
    scale = inverse_temperature(temperature, z, sh)
    lb = labeled_batch(z, y, sh)
    everyone = PairMask(exclude_self=True, self_index=lb.self_index)
    lse_all, _ = core.logsumexp(
        lb.anchors, lb.candidates, scale, mask=everyone, chunk_size=chunk_size, impl=impl
    )
    n_pos = lb.row_sizes - 1
    if variant == "out":
        same_class = class_sums(lb.candidates, lb.col_ids)[lb.row_ids] - lb.anchors
        pos_mean = (lb.anchors * same_class).sum(1) * scale / n_pos.clamp(min=1)
        loss = lse_all - pos_mean
    else:
        positives = PairMask(
            exclude_self=True,
            self_index=lb.self_index,
            row_groups=lb.row_ids,
            col_groups=lb.col_ids,
            groups="same",
        )
        lse_pos, _ = core.logsumexp(
            lb.anchors, lb.candidates, scale, mask=positives, chunk_size=chunk_size, impl=impl
        )
        loss = lse_all - lse_pos
    valid = n_pos > 0
    if sh is None:
        return core.reduce(loss, reduction, valid=valid)
    anchors_with_positive = (lb.col_sizes > 1).sum()
    return sh.reduce(torch.where(valid, loss, 0.0), reduction, anchors_with_positive)


class SupConLoss(ContrastiveLoss):
    """Module form of :func:`supcon`; the arguments are the same."""

    catalog_id = "supcon"
    family = "B. several positives per anchor"
    paper = Paper("Khosla et al.", 2020, "2004.11362", "Supervised Contrastive Learning")
    inputs = ("embeddings", "labels")
    requires = Requires(labels=True)
    peers = ("pytorch_metric_learning.losses.SupConLoss",)
    supports_distributed = True
    distributed = "split"

    def __init__(
        self,
        *,
        temperature: float = 0.1,
        variant: Variant = "out",
        normalize: bool = True,
        reduction: Reduction = "mean",
        chunk_size: int | None = None,
        impl: Impl = "auto",
        gather_distributed: bool = False,
        process_group: ProcessGroup | None = None,
    ) -> None:
        super().__init__()
        v.check_temperature("temperature", temperature)
        v.check_choice("variant", variant, ("out", "in"))
        check_common(reduction, chunk_size, impl)
        self.temperature, self.variant, self.normalize = temperature, variant, normalize
        self.set_common(reduction, chunk_size, impl, gather_distributed, process_group)

    def forward(self, embeddings: Tensor, labels: Tensor) -> Tensor:
        """Compute the loss; see :func:`supcon`."""
        return supcon(
            embeddings,
            labels,
            temperature=self.temperature,
            variant=self.variant,
            normalize=self.normalize,
            **self.common(),
        )
