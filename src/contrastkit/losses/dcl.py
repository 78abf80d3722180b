"""Decoupled contrastive learning (DCL) and its von Mises-Fisher weighted form (DCLW)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
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


def _decoupled(
    z1: Tensor,
    z2: Tensor,
    temperature: float | Tensor,
    sigma: float | None,
    normalize: bool,
    reduction: Reduction,
    chunk_size: int | None,
    impl: Impl,
    gather_distributed: bool,
    process_group: ProcessGroup | None,
) -> Tensor:
    def check() -> tuple[Tensor, Tensor]:
        v.check_temperature("temperature", temperature)
        if sigma is not None:
            v.check_positive_float("sigma", sigma)
        check_common(reduction, chunk_size, impl)
        return prepare_pair("z1", z1, "z2", z2, normalize=False, same_batch=True)

    (a, b), sh = shard(
        gather_distributed,
        process_group,
        check,
        lambda r: {"z1": r[0], "z2": r[1]},
        {"reduction": reduction, "sigma": sigma, "temperature_grad": requires_grad(temperature)},
    )
    scale = inverse_temperature(temperature, a, sh)
    lse, pos = two_view_stats(
        a, b, scale, decoupled=True, normalize=normalize, chunk_size=chunk_size, impl=impl, sh=sh
    )
    if sigma is not None:
        w1, w2 = a.detach(), b.detach()
        if normalize:
            w1, w2 = F.normalize(w1, dim=1), F.normalize(w2, dim=1)
        if sh is not None:  # the softmax runs over the global batch
            off, n = sh.offset("z1"), a.shape[0]
            weights = von_mises_fisher_weights(sh.gather("z1", w1), sh.gather("z2", w2), sigma)
            weights = weights[off : off + n]
        else:
            weights = von_mises_fisher_weights(w1, w2, sigma)
        pos = pos * weights.repeat(2)
    return reduce_views(lse - pos, lse, reduction, sh)


def von_mises_fisher_weights(z1: Tensor, z2: Tensor, sigma: float) -> Tensor:
    r"""DCLW's positive-pair weights, detached (no gradient), shape ``(N,)``.

    .. math::

        w_i = 2 - N \operatorname{softmax}_i(\langle z^1_i, z^2_i \rangle / \sigma)
    """
    sim = (z1.detach() * z2.detach()).sum(1) / sigma
    return 2.0 - z1.shape[0] * torch.softmax(sim, dim=0)


def dcl(
    z1: Tensor,
    z2: Tensor,
    *,
    temperature: float | Tensor = 0.1,
    normalize: bool = True,
    reduction: Reduction = "mean",
    chunk_size: int | None = None,
    impl: Impl = "auto",
    gather_distributed: bool = False,
    process_group: ProcessGroup | None = None,
) -> Tensor:
    r"""Decoupled contrastive loss: the positive pair is removed from the denominator.

    With :math:`z = [z^1; z^2]` (2N rows), :math:`p(k)` the other view of item :math:`k` and
    :math:`s_{kl} = \langle z_k, z_l \rangle / \tau`,

    .. math::

        \ell_k = -s_{k, p(k)} + \log \sum_{l \notin \{k, p(k)\}} e^{s_{kl}}, \qquad
        \mathcal{L} = \frac{1}{2N} \sum_{k=1}^{2N} \ell_k

    i.e. both directions averaged, as in the paper's Eq. 6.

    Args:
        z1: First views, shape ``(N, D)``.
        z2: Second views, shape ``(N, D)``.
        temperature: :math:`\tau > 0`.
        normalize: L2-normalize first.
        reduction: ``"mean"``, ``"sum"`` or ``"none"`` (shape ``(2N,)``).
        chunk_size: Rows and columns per tile; ``None`` chooses.
        impl: ``"auto"``, ``"dense"`` or ``"tiled"``.
        gather_distributed: Loss of the global batch over all ranks of ``process_group``;
            see :mod:`contrastkit.distributed`.
        process_group: The group to gather over; ``None`` is the default group.

    Example:
        >>> import torch
        >>> dcl(torch.randn(4, 8), torch.randn(4, 8)).shape
        torch.Size([])

    References:
        Yeh et al., 2022, arXiv:2110.06848.

    Peers: ``lightly.loss.DCLLoss``.
    """
    return _decoupled(
        z1,
        z2,
        temperature,
        None,
        normalize,
        reduction,
        chunk_size,
        impl,
        gather_distributed,
        process_group,
    )


def dclw(
    z1: Tensor,
    z2: Tensor,
    *,
    temperature: float | Tensor = 0.1,
    sigma: float = 0.5,
    normalize: bool = True,
    reduction: Reduction = "mean",
    chunk_size: int | None = None,
    impl: Impl = "auto",
    gather_distributed: bool = False,
    process_group: ProcessGroup | None = None,
) -> Tensor:
    r"""DCL with the positive term weighted by a von Mises-Fisher weight.

    .. math::

        \ell_k = -w_{k} s_{k, p(k)} + \log \sum_{l \notin \{k, p(k)\}} e^{s_{kl}}, \qquad
        w_i = 2 - N \operatorname{softmax}_i\big(\langle z^1_i, z^2_i \rangle / \sigma\big)

    (the same :math:`w_i` for both views of item :math:`i`; :math:`w` is detached, as in the
    authors' and lightly's code). See :func:`dcl` for the other arguments.

    Args:
        z1: First views, shape ``(N, D)``.
        z2: Second views, shape ``(N, D)``.
        temperature: :math:`\tau > 0`.
        sigma: :math:`\sigma > 0` of the weight.
        normalize: L2-normalize first (the weight uses the normalized embeddings).
        reduction: ``"mean"``, ``"sum"`` or ``"none"`` (shape ``(2N,)``).
        chunk_size: Rows and columns per tile; ``None`` chooses.
        impl: ``"auto"``, ``"dense"`` or ``"tiled"``.
        gather_distributed: Loss of the global batch over all ranks of ``process_group``;
            see :mod:`contrastkit.distributed`.
        process_group: The group to gather over; ``None`` is the default group.

    Example:
        >>> import torch
        >>> dclw(torch.randn(4, 8), torch.randn(4, 8)).shape
        torch.Size([])

    References:
        Yeh et al., 2022, arXiv:2110.06848.

    Peers: ``lightly.loss.DCLWLoss``.
    """
    return _decoupled(
        z1,
        z2,
        temperature,
        sigma,
        normalize,
        reduction,
        chunk_size,
        impl,
        gather_distributed,
        process_group,
    )


class DCLLoss(ContrastiveLoss):
    """Module form of :func:`dcl`; the arguments are the same."""

    catalog_id = "dcl"
    family = "C. decoupled denominators"
    paper = Paper("Yeh et al.", 2022, "2110.06848", "Decoupled Contrastive Learning")
    inputs = ("z1", "z2")
    symmetric_inputs = True
    peers = ("lightly.loss.DCLLoss",)
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

    def forward(self, z1: Tensor, z2: Tensor) -> Tensor:
        """Compute the loss; see :func:`dcl`."""
        return dcl(
            z1,
            z2,
            temperature=self.temperature,
            normalize=self.normalize,
            **self.common(),
        )


class DCLWLoss(ContrastiveLoss):
    """Module form of :func:`dclw`; the arguments are the same."""

    catalog_id = "dclw"
    family = "C. decoupled denominators"
    paper = Paper("Yeh et al.", 2022, "2110.06848", "Decoupled Contrastive Learning")
    inputs = ("z1", "z2")
    symmetric_inputs = True
    peers = ("lightly.loss.DCLWLoss",)
    supports_distributed = True
    distributed = "split"
    stop_gradient = True

    def __init__(
        self,
        *,
        temperature: float = 0.1,
        sigma: float = 0.5,
        normalize: bool = True,
        reduction: Reduction = "mean",
        chunk_size: int | None = None,
        impl: Impl = "auto",
        gather_distributed: bool = False,
        process_group: ProcessGroup | None = None,
    ) -> None:
        super().__init__()
        v.check_temperature("temperature", temperature)
        v.check_positive_float("sigma", sigma)
        check_common(reduction, chunk_size, impl)
        self.temperature, self.sigma, self.normalize = temperature, sigma, normalize
        self.set_common(reduction, chunk_size, impl, gather_distributed, process_group)

    def forward(self, z1: Tensor, z2: Tensor) -> Tensor:
        """Compute the loss; see :func:`dclw`."""
        return dclw(
            z1,
            z2,
            temperature=self.temperature,
            sigma=self.sigma,
            normalize=self.normalize,
            **self.common(),
        )
