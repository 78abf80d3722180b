"""KoLeo: the Kozachenko-Leonenko spreading regularizer (nearest-neighbour distances)."""

from __future__ import annotations

import math

import torch
from torch import Tensor

from contrastkit.core import validation as v
from contrastkit.core.pairmap import pair_topk
from contrastkit.core.similarity import sq_l2
from contrastkit.core.validation import Impl, Reduction
from contrastkit.distributed import ProcessGroup, shard
from contrastkit.losses._base import ContrastiveLoss, Paper
from contrastkit.losses._inputs import check_common, finish, gathered, prepare_one


def koleo(
    embeddings: Tensor,
    *,
    eps: float = 1e-8,
    normalize: bool = True,
    reduction: Reduction = "mean",
    chunk_size: int | None = None,
    impl: Impl = "auto",
    gather_distributed: bool = False,
    process_group: ProcessGroup | None = None,
) -> Tensor:
    r"""KoLeo regularizer: push each embedding away from its nearest neighbour in the batch.

    With :math:`d_i = \min_{j \ne i} \lVert z_i - z_j \rVert`,

    .. math::

        \ell_i = -\log(d_i + \epsilon), \qquad L = \frac{1}{N} \sum_i \ell_i

    the differential-entropy estimator of Kozachenko & Leonenko, as used by Sablayrolles et al.
    and DINOv2 (weight 0.1 there) and the wearable-biosignals foundation models. The nearest
    neighbour is found exactly in tiles (no gradient through the choice); the distance is then
    differentiated w.r.t. both rows. DINOv2 computes ``||z_i - z_j + 1e-8||``, a negligible
    difference. A batch of one row has no neighbour and contributes 0.

    Args:
        embeddings: Shape ``(N, D)``.
        eps: :math:`\epsilon > 0` inside the log.
        normalize: L2-normalize first (as DINOv2).
        reduction: ``"mean"``, ``"sum"`` or ``"none"`` (shape ``(N,)``).
        chunk_size: Rows and columns per tile; ``None`` chooses.
        impl: ``"auto"``, ``"dense"`` or ``"tiled"`` (the neighbour search is tiled in both).
        gather_distributed: Nearest neighbours over the global batch (every rank evaluates the
            gathered batch; see :mod:`contrastkit.distributed`).
        process_group: The group to gather over; ``None`` is the default group.

    Example:
        >>> import torch
        >>> koleo(torch.randn(8, 4)).shape
        torch.Size([])

    References:
        Sablayrolles et al., 2019, "Spreading vectors for similarity search", arXiv:1806.03198.
        Oquab et al., 2023, DINOv2, arXiv:2304.07193.
    """

    def check() -> Tensor:
        v.check_positive_float("eps", eps)
        check_common(reduction, chunk_size, impl)
        return prepare_one("embeddings", embeddings, normalize=normalize)

    z, sh = shard(
        gather_distributed,
        process_group,
        check,
        lambda r: {"embeddings": r},
        {"reduction": reduction},
    )
    z = gathered(sh, "embeddings", z)
    n = z.shape[0]
    if n == 1:
        return finish(0.0 * z.sum(1), reduction, sh, "embeddings")
    with torch.no_grad():
        _, nearest = pair_topk(_closeness, [z], [z], k=1, chunk_size=chunk_size)
    d = (z - z[nearest[:, 0]]).pow(2).sum(1)
    dist = torch.where(d > 0, torch.where(d > 0, d, 1.0).sqrt(), 0.0)
    return finish(-torch.log(dist + eps), reduction, sh, "embeddings")


def _closeness(r: list[Tensor], c: list[Tensor], p: list[Tensor], ri: Tensor, ci: Tensor) -> Tensor:
    return torch.where(ri[:, None] == ci[None, :], -math.inf, -sq_l2(r[0], c[0]))


class KoLeoLoss(ContrastiveLoss):
    """Module form of :func:`koleo`; the arguments are the same."""

    catalog_id = "koleo"
    family = "J. regularizers"
    paper = Paper("Sablayrolles et al.", 2019, "1806.03198", "Spreading vectors (KoLeo)")
    inputs = ("embeddings",)
    supports_distributed = True

    def __init__(
        self,
        *,
        eps: float = 1e-8,
        normalize: bool = True,
        reduction: Reduction = "mean",
        chunk_size: int | None = None,
        impl: Impl = "auto",
        gather_distributed: bool = False,
        process_group: ProcessGroup | None = None,
    ) -> None:
        super().__init__()
        v.check_positive_float("eps", eps)
        check_common(reduction, chunk_size, impl)
        self.eps, self.normalize = eps, normalize
        self.set_common(reduction, chunk_size, impl, gather_distributed, process_group)

    def forward(self, embeddings: Tensor) -> Tensor:
        """Compute the loss; see :func:`koleo`."""
        return koleo(
            embeddings,
            eps=self.eps,
            normalize=self.normalize,
            **self.common(),
        )
