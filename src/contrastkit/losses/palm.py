"""PALM: a mixture of prototypes per class, soft assignments and a prototype-level contrast."""

from __future__ import annotations

import math

import torch
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


def palm(
    embeddings: Tensor,
    labels: Tensor,
    prototypes: Tensor,
    *,
    temperature: float | Tensor = 0.1,
    prototype_temperature: float | Tensor = 0.5,
    lambda_pcon: float = 1.0,
    k: int = 5,
    epsilon: float = 0.05,
    sinkhorn_iterations: int = 3,
    normalize: bool = True,
    reduction: Reduction = "mean",
    chunk_size: int | None = None,
    impl: Impl = "auto",
    gather_distributed: bool = False,
    process_group: ProcessGroup | None = None,
) -> Tensor:
    r"""PALM loss (Lu et al.): soft-assignment MLE over class prototypes plus prototype contrast.

    Every class :math:`c` has :math:`M` prototypes :math:`\mu_{c,1..M}` (``prototypes`` of
    shape ``(C, M, D)``, :math:`K = CM` in all). Soft assignments :math:`q_{ik}` come from
    Sinkhorn-Knopp on :math:`e^{\langle z_i, \mu_k \rangle / \epsilon}` over the batch and all
    :math:`K` prototypes (``sinkhorn_iterations`` alternations; each prototype gets mass
    :math:`1/K`, each sample mass 1), without gradient. Each anchor keeps the ``k`` largest
    :math:`q_{ik}` among its own class's prototypes :math:`S_i` and renormalizes them:
    :math:`w_{ik} = q_{ik} / \sum_{k' \in S_i} q_{ik'}`. With
    :math:`l_{ik} = \langle z_i, \operatorname{sg}(\mu_k) \rangle / \tau`,

    .. math::

        \ell^{mle}_i = \log \sum_{k=1}^{K} e^{l_{ik}} - \sum_{k \in S_i} w_{ik}\, l_{ik}

    (soft-target cross-entropy over all prototypes; the prototypes are constants here, as in
    PALM). The prototype contrast is SupCon over the prototypes themselves, with
    :math:`p_{kk'} = \langle \mu_k, \mu_{k'} \rangle / \tau_p`, positives :math:`P(k)` the other
    prototypes of the same class:

    .. math::

        L^{pc} = \frac{1}{K} \sum_{k} \Big( \log \sum_{k' \ne k} e^{p_{kk'}}
            - \frac{1}{|P(k)|} \sum_{k' \in P(k)} p_{kk'} \Big), \qquad
        \ell_i = \ell^{mle}_i + \lambda\, L^{pc}

    The batch-level :math:`L^{pc}` is added to every row, so the mean is
    :math:`L^{mle} + \lambda L^{pc}` (``"sum"`` counts it ``N`` times). As in the authors' code a
    prototype without positive (``M = 1``) keeps its log-sum-exp term (the positive part is 0,
    CIDER's dispersion loss); a single prototype in all (:math:`K = 1`) gives
    :math:`L^{pc} = 0`. The prototypes receive gradient from :math:`L^{pc}` only.

    :class:`PALMLoss` keeps the prototypes and updates them by EMA before the loss (see
    :func:`palm_update`); this function is the loss for given prototypes. Memory is
    ``O(N K + N D + K D)``: the Sinkhorn assignment couples the whole batch to all prototypes
    (``K`` is the number of prototypes, not the batch); the prototype log-sum-exps are tiled.
    Sinkhorn runs in the log domain (the authors' runs on ``exp`` values; equal up to rounding).

    Args:
        embeddings: Shape ``(N, D)``; several views are stacked (``torch.cat(views)``, labels
            repeated), as PALM's two views are.
        labels: Shape ``(N,)`` integer classes in ``[0, C)``.
        prototypes: Shape ``(C, M, D)``: ``M`` prototypes per class, same width as the
            embeddings (gradients reach them through :math:`L^{pc}` if they require grad).
        temperature: :math:`\tau > 0` of the MLE term (PALM: 0.1).
        prototype_temperature: :math:`\tau_p > 0` of the prototype contrast (PALM: 0.5,
            hard-coded there).
        lambda_pcon: :math:`\lambda \ge 0`, weight of the prototype contrast (PALM: 1).
        k: Prototypes kept per anchor (PALM: 5); ``0`` keeps all ``M`` of its class.
        epsilon: :math:`\epsilon > 0`, the Sinkhorn entropy temperature (PALM: 0.05).
        sinkhorn_iterations: Row/column normalization rounds (PALM: 3).
        normalize: L2-normalize the embeddings and the prototypes first (PALM's are unit).
        reduction: ``"mean"``, ``"sum"`` or ``"none"`` (shape ``(N,)``).
        chunk_size: Rows and columns per tile; ``None`` chooses.
        impl: ``"auto"``, ``"dense"`` or ``"tiled"``.
        gather_distributed: Loss of the global batch over all ranks (every rank evaluates the
            gathered batch, Sinkhorn included; see :mod:`contrastkit.distributed`). Every rank
            must pass the same prototypes; they get the global gradient on every rank.
        process_group: The group to gather over; ``None`` is the default group.

    Example:
        >>> import torch
        >>> z, y = torch.randn(8, 4), torch.tensor([0, 0, 1, 1, 2, 2, 0, 1])
        >>> palm(z, y, torch.randn(3, 2, 4)).shape
        torch.Size([])

    References:
        Lu et al., 2024, "Learning with Mixture of Prototypes for Out-of-Distribution
        Detection" (PALM), arXiv:2402.02653; code github.com/jeff024/PALM.
    """

    def check() -> tuple[Tensor, Tensor, Tensor]:
        v.check_temperature("temperature", temperature)
        v.check_temperature("prototype_temperature", prototype_temperature)
        v.check_nonnegative_float("lambda_pcon", lambda_pcon)
        _check_assignment(k, epsilon, sinkhorn_iterations)
        check_common(reduction, chunk_size, impl)
        z, y = prepare_labeled(embeddings, labels, normalize=normalize)
        mu = _check_prototypes(prototypes, z, y, normalize=normalize)
        return z, y, mu

    (z, y, mu), sh = shard(
        gather_distributed,
        process_group,
        check,
        lambda r: {"embeddings": r[0], "labels": r[1]},
        {
            "reduction": reduction,
            "k": k,
            "grads": (requires_grad(temperature), requires_grad(prototype_temperature)),
        },
    )
    z, y = gathered(sh, "embeddings", z), gathered(sh, "labels", y)
    n_classes, per_class, _ = mu.shape
    flat = mu.reshape(n_classes * per_class, -1)
    scale = 1.0 / core.as_scale(temperature, z)
    const = flat.detach()
    w = _assignments(z, y, const, per_class, k, epsilon, sinkhorn_iterations)
    lse, _ = core.logsumexp(z, const, scale, chunk_size=chunk_size, impl=impl)
    target = scale * (z * torch.einsum("nm,nmd->nd", w, mu.detach()[y])).sum(1)
    per_row = lse - target
    if lambda_pcon > 0:
        pc = _prototype_contrast(flat, per_class, prototype_temperature, chunk_size, impl)
        per_row = per_row + lambda_pcon * pc
    return finish(per_row, reduction, sh, "embeddings")


def palm_update(
    embeddings: Tensor,
    labels: Tensor,
    prototypes: Tensor,
    *,
    momentum: float = 0.999,
    k: int = 5,
    epsilon: float = 0.05,
    sinkhorn_iterations: int = 3,
    normalize: bool = True,
    gather_distributed: bool = False,
    process_group: ProcessGroup | None = None,
) -> Tensor:
    r"""PALM's EMA update of the prototypes from one batch (differentiable, as in PALM).

    With the assignment weights :math:`w_{ik}` of :func:`palm` (Sinkhorn, own class, top-``k``,
    rows summing to 1) computed against the current prototypes, each prototype moves toward the
    :math:`w`-weighted mean of the anchors assigned to it:

    .. math::

        \mu_k \leftarrow \frac{m \mu_k + (1 - m) u_k}{\lVert m \mu_k + (1 - m) u_k \rVert},
        \qquad u_k = \frac{\sum_i w_{ik} z_i}{\sum_i w_{ik}}

    (:math:`u_k = 0` for a prototype no anchor is assigned to). The result depends on the
    embeddings through :math:`u_k`, so a loss on it (PALM's prototype contrast) sends a gradient
    of size :math:`(1 - m)` into the encoder; PALM keeps this path and detaches the prototypes
    only after the step (:class:`PALMLoss` does the same). Detach the result to cut it.

    Args:
        embeddings: Shape ``(N, D)``.
        labels: Shape ``(N,)`` integer classes in ``[0, C)``.
        prototypes: Shape ``(C, M, D)``, the current prototypes.
        momentum: :math:`m \in [0, 1]` (PALM's runs: 0.999; its argument default 0.99).
        k: Prototypes per anchor, as in :func:`palm`.
        epsilon: Sinkhorn entropy temperature, as in :func:`palm`.
        sinkhorn_iterations: As in :func:`palm`.
        normalize: L2-normalize the embeddings and the current prototypes first.
        gather_distributed: Update from the global batch (the same result on every rank).
        process_group: The group to gather over; ``None`` is the default group.

    Returns:
        The new prototypes, shape ``(C, M, D)``, unit norm, in the embeddings' statistics dtype.

    Example:
        >>> import torch
        >>> mu = torch.nn.functional.normalize(torch.randn(3, 2, 4), dim=-1)
        >>> palm_update(torch.randn(6, 4), torch.tensor([0, 1, 2, 0, 1, 2]), mu).shape
        torch.Size([3, 2, 4])
    """

    def check() -> tuple[Tensor, Tensor, Tensor]:
        if (
            isinstance(momentum, bool)
            or not isinstance(momentum, int | float)
            or not 0 <= momentum <= 1
        ):
            raise ValueError(f"`momentum` must be a float in [0, 1]; got {momentum!r}.")
        _check_assignment(k, epsilon, sinkhorn_iterations)
        z, y = prepare_labeled(embeddings, labels, normalize=normalize)
        mu = _check_prototypes(prototypes, z, y, normalize=normalize)
        return z, y, mu

    (z, y, mu), sh = shard(
        gather_distributed,
        process_group,
        check,
        lambda r: {"embeddings": r[0], "labels": r[1]},
        {"k": k, "momentum": momentum},
    )
    z, y = gathered(sh, "embeddings", z), gathered(sh, "labels", y)
    n_classes, per_class, dim = mu.shape
    w = _assignments(z, y, mu.detach().reshape(-1, dim), per_class, k, epsilon, sinkhorn_iterations)
    mass = w.new_zeros(n_classes, per_class).index_add(0, y, w)
    pulled = z.new_zeros(n_classes, per_class, dim).index_add(0, y, w[:, :, None] * z[:, None, :])
    mean = pulled / torch.where(mass > 0, mass, 1.0)[:, :, None]
    return F.normalize(momentum * mu + (1.0 - momentum) * mean, dim=-1)


def _check_assignment(k: int, epsilon: float, iterations: int) -> None:
    v.check_int("k", k, 0)
    v.check_positive_float("epsilon", epsilon)
    v.check_int("sinkhorn_iterations", iterations, 0)


def _check_prototypes(prototypes: Tensor, z: Tensor, y: Tensor, *, normalize: bool) -> Tensor:
    """Validate ``(C, M, D)`` prototypes against the embeddings and labels."""
    mu = v.check_embeddings("prototypes", prototypes, shape="(C, M, D)")
    if mu.shape[1] == 0:
        raise ValueError(
            f"`prototypes` has no prototype per class (shape {tuple(mu.shape)}); M must be >= 1."
        )
    if mu.shape[2] != z.shape[1]:
        raise ValueError(
            f"`prototypes` must have the embeddings' width {z.shape[1]} (shape (C, M, D)); got "
            f"shape {tuple(mu.shape)}."
        )
    low, high = int(y.min()), int(y.max())
    if low < 0 or high >= mu.shape[0]:
        bad = low if low < 0 else high
        raise ValueError(
            f"`labels` must be classes in [0, {mu.shape[0]}) to have prototypes (`prototypes` "
            f"has C={mu.shape[0]}); got label {bad}. Give every class its prototypes."
        )
    mu = mu.to(device=z.device, dtype=z.dtype)
    return F.normalize(mu, dim=-1) if normalize else mu


def _assignments(
    z: Tensor, y: Tensor, flat: Tensor, per_class: int, k: int, epsilon: float, iterations: int
) -> Tensor:
    """Weights ``(N, M)`` of each anchor over its own class's prototypes (no gradient)."""
    with torch.no_grad():
        n, total = z.shape[0], flat.shape[0]
        logq = (z.detach() @ flat.T) / epsilon
        logq = logq - torch.logsumexp(logq.reshape(-1), 0)
        for _ in range(iterations):
            logq = logq - torch.logsumexp(logq, 0, keepdim=True) - math.log(total)
            logq = logq - torch.logsumexp(logq, 1, keepdim=True) - math.log(n)
        own = logq.reshape(n, -1, per_class)[torch.arange(n, device=z.device), y]
        if 0 < k < per_class:
            order = torch.sort(own, dim=1, descending=True, stable=True).indices
            keep = torch.zeros_like(own, dtype=torch.bool)
            keep.scatter_(1, order[:, :k], True)  # ties: the lower index, deterministically
            own = own.masked_fill(~keep, -math.inf)
        return torch.softmax(own, dim=1)


def _prototype_contrast(
    flat: Tensor,
    per_class: int,
    temperature: float | Tensor,
    chunk_size: int | None,
    impl: Impl,
) -> Tensor:
    """:math:`L^{pc}`, SupCon over the ``K`` prototypes (0-dim)."""
    total = flat.shape[0]
    if total == 1:
        return 0.0 * flat.sum()
    scale = 1.0 / core.as_scale(temperature, flat)
    lse, _ = core.logsumexp(
        flat, flat, scale, mask=PairMask(exclude_self=True), chunk_size=chunk_size, impl=impl
    )
    grouped = flat.reshape(-1, per_class, flat.shape[1])
    others = (grouped.sum(1, keepdim=True) - grouped).reshape(total, -1)
    positive = scale * (flat * others).sum(1) / max(per_class - 1, 1)
    return (lse - positive).mean()


class PALMLoss(ContrastiveLoss):
    """Module form of :func:`palm`; it keeps the prototypes and updates them as PALM does.

    The prototypes are a buffer ``prototypes`` of shape ``(num_classes,
    prototypes_per_class, embedding_dim)``, initialized as in PALM (uniform in ``[0, 1)``,
    then normalized) and not trained by the optimizer. In training mode each forward first
    applies :func:`palm_update` with the batch (PALM's order), computes :func:`palm` on the
    updated prototypes, whose :math:`L^{pc}` gradient reaches the encoder through the update
    (PALM's behaviour), and stores the updated prototypes detached. In eval mode the
    prototypes are used as they are and not updated. Under ``gather_distributed`` the update
    is computed from the global batch, so the buffer stays identical on every rank; it is
    saved and restored with ``state_dict``.

    Deviation: PALM selects each anchor's top-``k`` prototypes from the assignment computed
    before the update and weights them with the one after; here both come from the updated
    prototypes (the sets differ only when an update of weight ``1 - momentum`` reorders them).
    """

    catalog_id = "palm"
    family = "I. prototypes, proxies, approximations"
    paper = Paper(
        "Lu et al.",
        2024,
        "2402.02653",
        "Learning with Mixture of Prototypes for Out-of-Distribution Detection (PALM)",
    )
    inputs = ("embeddings", "labels")
    requires = Requires(labels=True, state=True)
    supports_distributed = True
    stop_gradient = True  # the Sinkhorn assignments and the MLE's prototypes are constants

    prototypes: Tensor

    def __init__(
        self,
        num_classes: int,
        embedding_dim: int,
        *,
        prototypes_per_class: int = 6,
        momentum: float = 0.999,
        temperature: float = 0.1,
        prototype_temperature: float = 0.5,
        lambda_pcon: float = 1.0,
        k: int = 5,
        epsilon: float = 0.05,
        sinkhorn_iterations: int = 3,
        normalize: bool = True,
        reduction: Reduction = "mean",
        chunk_size: int | None = None,
        impl: Impl = "auto",
        gather_distributed: bool = False,
        process_group: ProcessGroup | None = None,
    ) -> None:
        super().__init__()
        v.check_int("num_classes", num_classes, 1)
        v.check_int("embedding_dim", embedding_dim, 1)
        v.check_int("prototypes_per_class", prototypes_per_class, 1)
        if (
            isinstance(momentum, bool)
            or not isinstance(momentum, int | float)
            or not 0 <= momentum <= 1
        ):
            raise ValueError(f"`momentum` must be a float in [0, 1]; got {momentum!r}.")
        v.check_temperature("temperature", temperature)
        v.check_temperature("prototype_temperature", prototype_temperature)
        v.check_nonnegative_float("lambda_pcon", lambda_pcon)
        _check_assignment(k, epsilon, sinkhorn_iterations)
        check_common(reduction, chunk_size, impl)
        init = torch.rand(num_classes, prototypes_per_class, embedding_dim)
        self.register_buffer("prototypes", F.normalize(init, dim=-1))
        self.momentum, self.temperature = momentum, temperature
        self.prototype_temperature, self.lambda_pcon = prototype_temperature, lambda_pcon
        self.k, self.epsilon, self.sinkhorn_iterations = k, epsilon, sinkhorn_iterations
        self.normalize, self.reduction, self.chunk_size, self.impl = (
            normalize,
            reduction,
            chunk_size,
            impl,
        )
        self.gather_distributed, self.process_group = gather_distributed, process_group

    def forward(self, embeddings: Tensor, labels: Tensor) -> Tensor:
        """Update the prototypes (training mode) and compute the loss; see :func:`palm`."""
        prototypes = self.prototypes
        if self.training:
            prototypes = palm_update(
                embeddings,
                labels,
                prototypes,
                momentum=self.momentum,
                k=self.k,
                epsilon=self.epsilon,
                sinkhorn_iterations=self.sinkhorn_iterations,
                normalize=self.normalize,
                gather_distributed=self.gather_distributed,
                process_group=self.process_group,
            )
        loss = palm(
            embeddings,
            labels,
            prototypes,
            temperature=self.temperature,
            prototype_temperature=self.prototype_temperature,
            lambda_pcon=self.lambda_pcon,
            k=self.k,
            epsilon=self.epsilon,
            sinkhorn_iterations=self.sinkhorn_iterations,
            normalize=self.normalize,
            **self.common(),
        )
        if self.training:
            with torch.no_grad():
                self.prototypes.copy_(prototypes.to(self.prototypes.dtype))
        return loss
