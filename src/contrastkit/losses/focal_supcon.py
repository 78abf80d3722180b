"""Focal SupCon (Core-tuning): SupCon with a focal weight on hard positives."""

from __future__ import annotations

import torch
from torch import Tensor

from contrastkit import core
from contrastkit.core import PairMask
from contrastkit.core import validation as v
from contrastkit.core.pairmap import pair_reduce
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


def focal_supcon(
    embeddings: Tensor,
    labels: Tensor,
    *,
    temperature: float | Tensor = 0.07,
    gamma: float = 1.0,
    normalize: bool = True,
    reduction: Reduction = "mean",
    chunk_size: int | None = None,
    impl: Impl = "auto",
    gather_distributed: bool = False,
    process_group: ProcessGroup | None = None,
) -> Tensor:
    r"""Supervised contrastive loss with a focal weight on each positive (Core-tuning).

    With :math:`s_{ij} = \langle z_i, z_j \rangle / \tau`,
    :math:`p_{ij} = e^{s_{ij}} / \sum_{k \ne i} e^{s_{ik}}` and positives
    :math:`P(i) = \{p \ne i : y_p = y_i\}`,

    .. math::

        \ell_i = -\frac{1}{|P(i)|} \sum_{p \in P(i)} (1 - p_{ip})^{\gamma} \log p_{ip}

    The focal weight is part of the graph (not detached), as in the authors' code;
    :math:`\gamma = 0` is SupCon :math:`L^{out}`. Anchors without a positive contribute zero
    and are excluded from the mean. The authors' code uses :math:`\gamma = 1` and divides each
    anchor's sum by the number of all candidates instead of :math:`|P(i)|` (multiply by
    :math:`|P(i)| / N` per anchor to get their numbers); this follows the paper.

    Args:
        embeddings: Shape ``(N, D)``.
        labels: Shape ``(N,)`` integer class ids.
        temperature: :math:`\tau > 0`; a float or a 0-dim tensor (may require grad).
        gamma: Focal exponent :math:`\gamma \ge 0`.
        normalize: L2-normalize first.
        reduction: ``"mean"`` (over anchors with a positive), ``"sum"`` or ``"none"``.
        chunk_size: Rows and columns per tile; ``None`` chooses.
        impl: ``"auto"``, ``"dense"`` or ``"tiled"``.
        gather_distributed: Loss of the global batch over all ranks (every rank evaluates the
            gathered batch; see :mod:`contrastkit.distributed`).
        process_group: The group to gather over; ``None`` is the default group.

    Example:
        >>> import torch
        >>> focal_supcon(torch.randn(6, 4), torch.tensor([0, 0, 1, 1, 2, 2])).shape
        torch.Size([])

    References:
        Zhang et al., 2021, "Unleashing the Power of Contrastive Self-Supervised Visual Models
        via Contrast-Regularized Fine-Tuning", arXiv:2102.06605.
    """

    def check() -> tuple[Tensor, Tensor]:
        v.check_temperature("temperature", temperature)
        v.check_nonnegative_float("gamma", gamma)
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
    lse, _ = core.logsumexp(
        z, z, scale, mask=PairMask(exclude_self=True), chunk_size=chunk_size, impl=impl
    )
    lse = torch.where(torch.isfinite(lse), lse, 0.0)  # N = 1: no candidate, no positive

    def focal(r: list[Tensor], c: list[Tensor], p: list[Tensor], ri: Tensor, ci: Tensor) -> Tensor:
        keep = (r[2][:, None] == c[1][None, :]) & (ri[:, None] != ci[None, :])
        log_p = torch.where(keep, r[0] @ c[0].T * p[0] - r[1][:, None], -1.0)  # finite grads
        miss = (-torch.expm1(log_p)).clamp_min(torch.finfo(log_p.dtype).tiny)  # 1 - p > 0
        return torch.where(keep, -(miss**gamma) * log_p, 0.0)

    terms, _ = pair_reduce(
        focal, [z, lse, ids], [z, ids], [scale], chunk_size=chunk_size, impl=impl
    )
    n_pos = size - 1
    return finish(terms / n_pos.clamp(min=1), reduction, sh, "embeddings", valid=n_pos > 0)


class FocalSupConLoss(ContrastiveLoss):
    """Module form of :func:`focal_supcon`; the arguments are the same."""

    catalog_id = "focal_supcon"
    family = "B. several positives per anchor"
    paper = Paper(
        "Zhang et al.", 2021, "2102.06605", "Contrast-Regularized Fine-Tuning (Core-tuning)"
    )
    inputs = ("embeddings", "labels")
    requires = Requires(labels=True)
    supports_distributed = True

    def __init__(
        self,
        *,
        temperature: float = 0.07,
        gamma: float = 1.0,
        normalize: bool = True,
        reduction: Reduction = "mean",
        chunk_size: int | None = None,
        impl: Impl = "auto",
        gather_distributed: bool = False,
        process_group: ProcessGroup | None = None,
    ) -> None:
        super().__init__()
        v.check_temperature("temperature", temperature)
        v.check_nonnegative_float("gamma", gamma)
        check_common(reduction, chunk_size, impl)
        self.temperature, self.gamma, self.normalize = temperature, gamma, normalize
        self.set_common(reduction, chunk_size, impl, gather_distributed, process_group)

    def forward(self, embeddings: Tensor, labels: Tensor) -> Tensor:
        """Compute the loss; see :func:`focal_supcon`."""
        return focal_supcon(
            embeddings,
            labels,
            temperature=self.temperature,
            gamma=self.gamma,
            normalize=self.normalize,
            **self.common(),
        )
