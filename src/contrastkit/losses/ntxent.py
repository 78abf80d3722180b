"""NT-Xent (SimCLR): 2N views, each view's partner is its positive among the 2N - 1 others."""

from __future__ import annotations

from torch import Tensor

from contrastkit.core import validation as v
from contrastkit.core.validation import Impl, Reduction
from contrastkit.distributed import ProcessGroup, shard
from contrastkit.losses._base import ContrastiveLoss, Paper
from contrastkit.losses._inputs import (
    check_common,
    inverse_temperature,
    prepare_pair,
    requires_grad,
)
from contrastkit.losses._views import reduce_views, two_view_stats


def ntxent(
    z1: Tensor,
    z2: Tensor,
    *,
    temperature: float | Tensor = 0.5,
    normalize: bool = True,
    reduction: Reduction = "mean",
    chunk_size: int | None = None,
    impl: Impl = "auto",
    gather_distributed: bool = False,
    process_group: ProcessGroup | None = None,
) -> Tensor:
    r"""SimCLR's normalized temperature-scaled cross-entropy over 2N views.

    With :math:`z = [z^1; z^2]` (2N rows), :math:`p(k)` the other view of the same item and
    :math:`s_{kl} = \langle z_k, z_l \rangle / \tau`,

    .. math::

        \ell_k = -s_{k, p(k)} + \log \sum_{l \ne k} e^{s_{kl}}, \qquad
        \mathcal{L} = \frac{1}{2N} \sum_{k=1}^{2N} \ell_k

    Equivalent to ``F.cross_entropy(logits.fill_diagonal_(-inf), partner)`` on the
    ``2N x 2N`` logits, without materializing them when tiled.

    Args:
        z1: First views, shape ``(N, D)``.
        z2: Second views, shape ``(N, D)``; row ``i`` is the partner of ``z1[i]``.
        temperature: :math:`\tau > 0` (SimCLR's default 0.5).
        normalize: L2-normalize first.
        reduction: ``"mean"``, ``"sum"`` or ``"none"`` (shape ``(2N,)``: first views, then
            second views).
        chunk_size: Rows and columns per tile; ``None`` chooses.
        impl: ``"auto"``, ``"dense"`` or ``"tiled"``.
        gather_distributed: Loss of the global batch over all ranks of ``process_group``;
            see :mod:`contrastkit.distributed`.
        process_group: The group to gather over; ``None`` is the default group.

    Example:
        >>> import torch
        >>> ntxent(torch.randn(4, 8), torch.randn(4, 8)).shape
        torch.Size([])

    References:
        Chen et al. (SimCLR), 2020, arXiv:2002.05709.

    Peers: ``lightly.loss.NTXentLoss``, ``pytorch_metric_learning.losses.NTXentLoss`` with
    ``SelfSupervisedLoss``.
    """

    def check() -> tuple[Tensor, Tensor]:
        v.check_temperature("temperature", temperature)
        check_common(reduction, chunk_size, impl)
        return prepare_pair("z1", z1, "z2", z2, normalize=False, same_batch=True)

    (a, b), sh = shard(
        gather_distributed,
        process_group,
        check,
        lambda r: {"z1": r[0], "z2": r[1]},
        {"reduction": reduction, "temperature_grad": requires_grad(temperature)},
    )
    scale = inverse_temperature(temperature, a, sh)
    lse, pos = two_view_stats(
        a, b, scale, decoupled=False, normalize=normalize, chunk_size=chunk_size, impl=impl, sh=sh
    )
    return reduce_views(lse - pos, lse, reduction, sh)


class NTXentLoss(ContrastiveLoss):
    """Module form of :func:`ntxent`; the arguments are the same."""

    catalog_id = "ntxent"
    family = "A. softmax cross-entropy, one positive"
    paper = Paper("Chen et al.", 2020, "2002.05709", "SimCLR")
    inputs = ("z1", "z2")
    symmetric_inputs = True
    peers = ("lightly.loss.NTXentLoss", "pytorch_metric_learning.losses.NTXentLoss")
    supports_distributed = True
    distributed = "split"

    def __init__(
        self,
        *,
        temperature: float = 0.5,
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

    def forward(self, z1: Tensor, z2: Tensor) -> Tensor:
        """Compute the loss; see :func:`ntxent`."""
        return ntxent(
            z1,
            z2,
            temperature=self.temperature,
            normalize=self.normalize,
            **self.common(),
        )
