"""Alignment and uniformity (Wang & Isola) as losses."""

from __future__ import annotations

import math

import torch
from torch import Tensor

from contrastkit.core import validation as v
from contrastkit.core.pairmap import pair_reduce
from contrastkit.core.similarity import sq_l2
from contrastkit.core.validation import Impl, Reduction
from contrastkit.distributed import ProcessGroup, shard
from contrastkit.losses._base import ContrastiveLoss, Paper
from contrastkit.losses._inputs import check_common, finish, gathered, prepare_one, prepare_pair


def uniformity(
    embeddings: Tensor,
    *,
    t: float = 2.0,
    normalize: bool = True,
    reduction: Reduction = "mean",
    chunk_size: int | None = None,
    impl: Impl = "auto",
    gather_distributed: bool = False,
    process_group: ProcessGroup | None = None,
) -> Tensor:
    r"""Uniformity loss of Wang & Isola: the log of the mean Gaussian potential between pairs.

    .. math::

        L = \log \frac{1}{N (N - 1)} \sum_{i \ne j} e^{-t \lVert z_i - z_j \rVert^2}, \qquad
        \ell_i = \log \frac{1}{N - 1} \sum_{j \ne i} e^{-t \lVert z_i - z_j \rVert^2}

    ``"mean"`` returns :math:`L` (the paper's value; over ordered pairs, which equals their
    mean over unordered pairs), computed from the per-row log-sum-exps in tiles; ``"none"``
    returns the per-row :math:`\ell_i` and ``"sum"`` their sum (:math:`L` is not a mean of the
    :math:`\ell_i`, it is their log-mean-exp). A batch of one row gives 0.

    Args:
        embeddings: Shape ``(N, D)``.
        t: :math:`t > 0` (the paper: 2).
        normalize: L2-normalize first (the paper works on the unit sphere).
        reduction: ``"mean"`` (:math:`L`), ``"sum"`` or ``"none"`` (shape ``(N,)``).
        chunk_size: Rows and columns per tile; ``None`` chooses.
        impl: ``"auto"``, ``"dense"`` or ``"tiled"``.
        gather_distributed: Pairs of the global batch (every rank evaluates the gathered batch;
            see :mod:`contrastkit.distributed`).
        process_group: The group to gather over; ``None`` is the default group.

    Example:
        >>> import torch
        >>> uniformity(torch.randn(8, 4)).shape
        torch.Size([])

    References:
        Wang & Isola, 2020, "Understanding Contrastive Representation Learning through Alignment
        and Uniformity on the Hypersphere", arXiv:2005.10242.
    """

    def check() -> Tensor:
        v.check_positive_float("t", t)
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
        zero = 0.0 * z.sum()
        return zero if reduction != "none" else finish(zero.reshape(1), reduction, sh, "embeddings")

    def potential(
        r: list[Tensor], c: list[Tensor], p: list[Tensor], ri: Tensor, ci: Tensor
    ) -> Tensor:
        return torch.where(ri[:, None] == ci[None, :], -math.inf, -t * sq_l2(r[0], c[0]))

    lse, _ = pair_reduce(potential, [z], [z], mode="lse", chunk_size=chunk_size, impl=impl)
    if reduction == "mean":
        return torch.logsumexp(lse, 0) - math.log(n * (n - 1))
    return finish(lse - math.log(n - 1), reduction, sh, "embeddings")


def alignment(
    x: Tensor,
    y: Tensor,
    *,
    alpha: float = 2.0,
    normalize: bool = True,
    reduction: Reduction = "mean",
    chunk_size: int | None = None,
    impl: Impl = "auto",
    gather_distributed: bool = False,
    process_group: ProcessGroup | None = None,
) -> Tensor:
    r"""Alignment loss of Wang & Isola: the mean distance between positive pairs.

    .. math::

        \ell_i = \lVert x_i - y_i \rVert^{\alpha}, \qquad L = \frac{1}{N} \sum_i \ell_i

    ``O(N D)``; ``chunk_size`` and ``impl`` are accepted for the common signature. For
    :math:`\alpha < 1` the gradient at a zero distance is infinite (use :math:`\alpha \ge 1`).

    Args:
        x: Shape ``(N, D)``.
        y: Shape ``(N, D)``, row ``i`` the positive of ``x_i``.
        alpha: :math:`\alpha > 0` (the paper: 2).
        normalize: L2-normalize first.
        reduction: ``"mean"``, ``"sum"`` or ``"none"`` (shape ``(N,)``).
        chunk_size: Unused.
        impl: Unused.
        gather_distributed: Mean over the global batch (see :mod:`contrastkit.distributed`).
        process_group: The group to gather over; ``None`` is the default group.

    Example:
        >>> import torch
        >>> alignment(torch.randn(8, 4), torch.randn(8, 4)).shape
        torch.Size([])

    References:
        Wang & Isola, 2020, arXiv:2005.10242.
    """

    def check() -> tuple[Tensor, Tensor]:
        v.check_positive_float("alpha", alpha)
        check_common(reduction, chunk_size, impl)
        return prepare_pair("x", x, "y", y, normalize=normalize, same_batch=True)

    (a, b), sh = shard(
        gather_distributed,
        process_group,
        check,
        lambda r: {"x": r[0], "y": r[1]},
        {"reduction": reduction},
    )
    a, b = gathered(sh, "x", a), gathered(sh, "y", b)
    d2 = (a - b).pow(2).sum(1)
    if alpha == 2.0:
        per_row = d2
    else:
        per_row = torch.where(d2 > 0, torch.where(d2 > 0, d2, 1.0).pow(alpha / 2), 0.0)
    return finish(per_row, reduction, sh, "x")


class UniformityLoss(ContrastiveLoss):
    """Module form of :func:`uniformity`; the arguments are the same."""

    catalog_id = "uniformity"
    family = "J. regularizers"
    paper = Paper("Wang & Isola", 2020, "2005.10242", "Alignment and Uniformity on the Hypersphere")
    inputs = ("embeddings",)
    supports_distributed = True

    def __init__(
        self,
        *,
        t: float = 2.0,
        normalize: bool = True,
        reduction: Reduction = "mean",
        chunk_size: int | None = None,
        impl: Impl = "auto",
        gather_distributed: bool = False,
        process_group: ProcessGroup | None = None,
    ) -> None:
        super().__init__()
        v.check_positive_float("t", t)
        check_common(reduction, chunk_size, impl)
        self.t, self.normalize = t, normalize
        self.set_common(reduction, chunk_size, impl, gather_distributed, process_group)

    def forward(self, embeddings: Tensor) -> Tensor:
        """Compute the loss; see :func:`uniformity`."""
        return uniformity(
            embeddings,
            t=self.t,
            normalize=self.normalize,
            **self.common(),
        )


class AlignmentLoss(ContrastiveLoss):
    """Module form of :func:`alignment`; the arguments are the same."""

    catalog_id = "alignment"
    family = "J. regularizers"
    paper = Paper("Wang & Isola", 2020, "2005.10242", "Alignment and Uniformity on the Hypersphere")
    inputs = ("x", "y")
    supports_distributed = True

    def __init__(
        self,
        *,
        alpha: float = 2.0,
        normalize: bool = True,
        reduction: Reduction = "mean",
        chunk_size: int | None = None,
        impl: Impl = "auto",
        gather_distributed: bool = False,
        process_group: ProcessGroup | None = None,
    ) -> None:
        super().__init__()
        v.check_positive_float("alpha", alpha)
        check_common(reduction, chunk_size, impl)
        self.alpha, self.normalize = alpha, normalize
        self.set_common(reduction, chunk_size, impl, gather_distributed, process_group)

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        """Compute the loss; see :func:`alignment`."""
        return alignment(
            x,
            y,
            alpha=self.alpha,
            normalize=self.normalize,
            **self.common(),
        )
