"""Proxy-based contrastive loss (PCR / HPCR): anchors against learnable class proxies."""

from __future__ import annotations

import math
from typing import Literal

import torch
from torch import Tensor, nn

from contrastkit import core
from contrastkit.core import validation as v
from contrastkit.core.validation import Impl, Reduction
from contrastkit.distributed import ProcessGroup, shard
from contrastkit.losses._base import ContrastiveLoss, Paper, Requires
from contrastkit.losses._inputs import (
    check_common,
    finish,
    gathered,
    prepare_one,
    requires_grad,
)

Prior = Literal["batch", "none"]


def proxy_nce(
    embeddings: Tensor,
    labels: Tensor,
    proxies: Tensor,
    *,
    temperature: float | Tensor = 0.09,
    prior: Prior | Tensor = "batch",
    loss_scale: float = 1.0,
    normalize: bool = True,
    reduction: Reduction = "mean",
    chunk_size: int | None = None,
    impl: Impl = "auto",
    gather_distributed: bool = False,
    process_group: ProcessGroup | None = None,
) -> Tensor:
    r"""Proxy-based contrastive loss: each anchor against the class proxies, its own as target.

    With :math:`s_{ic} = \langle z_i, w_c \rangle / \tau` (cosine by default) for the proxy
    :math:`w_c` of class :math:`c`, and a class multiplicity :math:`n_c \ge 0`,

    .. math::

        \ell_i = \lambda \Big( \log \sum_{c \,:\, n_c > 0} n_c\, e^{s_{ic}} - s_{i y_i} \Big)

    ``prior="batch"`` (PCR, the default): :math:`n_c` is the number of anchors of class
    :math:`c` in the batch, so only the classes present in the batch compete (old classes
    absent from the batch are not pushed down, PCR's remedy for forgetting) and
    :math:`\log n_c` acts as a log-prior on their logits. This equals the authors'
    ``SupConLoss(contrast_mode="proxy")`` on ``(z_i, w_{y_i})`` pairs, whose denominator runs
    over the proxies of all ``B`` batch items with multiplicity. ``prior="none"``: all ``C``
    proxies with :math:`n_c = 1` (a normalized-softmax / ProxyNCE-style classifier). A tensor
    of shape ``(C,)`` gives :math:`n_c` directly (e.g. class counts of the training set);
    classes with :math:`n_c = 0` are left out, and an anchor's own class needs
    :math:`n_{y_i} > 0`. The prior enters the denominator only, as the candidates' multiplicity.

    :math:`\lambda` (``loss_scale``) multiplies the loss outside the softmax: HPCR's
    temperature component sets the softmax sharpness with :math:`\tau` and the gradient size
    with :math:`\lambda = \tau / \tau'`, cycled by :func:`hpcr_loss_scale`.

    Equivalent to ``loss_scale * F.cross_entropy(s + log(n), y) + log(n[y])`` over the kept
    classes; tiled over anchors and proxies, memory ``O((N + C) D)`` plus one tile.

    Not included: HPCR's distillation terms (PCD, SCD) and the conditional anchor-to-sample
    term of the paper (absent from the authors' released code). The authors normalize with
    ``x / (|x| + 1e-6)``; this function with ``F.normalize`` (``eps=1e-12``).

    Args:
        embeddings: Shape ``(N, D)``, the anchors :math:`z_i`.
        labels: Shape ``(N,)`` integer classes in ``0..C-1``; a label without a proxy raises
            ``ValueError``.
        proxies: Shape ``(C, D)``, one learnable proxy per class (in PCR the weights of the
            cosine classifier); it receives the gradient.
        temperature: :math:`\tau > 0` (PCR: 0.09); a float or a 0-dim tensor (may require
            grad).
        prior: ``"batch"``, ``"none"`` or a ``(C,)`` tensor of non-negative class
            multiplicities :math:`n_c`.
        loss_scale: :math:`\lambda \ge 0`, multiplies the loss (PCR: 1; HPCR:
            :func:`hpcr_loss_scale` of the step).
        normalize: L2-normalize the embeddings and the proxies first (cosine).
        reduction: ``"mean"``, ``"sum"`` or ``"none"`` (shape ``(N,)``).
        chunk_size: Rows and columns per tile; ``None`` chooses.
        impl: ``"auto"``, ``"dense"`` or ``"tiled"``.
        gather_distributed: Loss of the global batch over all ranks (every rank evaluates the
            gathered batch; ``"batch"`` counts classes over the global batch). ``proxies`` are
            not gathered: every rank must hold the same ones (as DDP keeps them); they receive
            the full gradient of the global loss on every rank.
        process_group: The group to gather over; ``None`` is the default group.

    Example:
        >>> import torch
        >>> z, proxies = torch.randn(6, 8), torch.randn(10, 8)
        >>> proxy_nce(z, torch.tensor([0, 0, 3, 3, 7, 9]), proxies).shape
        torch.Size([])

    References:
        Lin et al., 2023, "PCR: Proxy-based Contrastive Replay for Online Class-Incremental
        Continual Learning", arXiv:2304.04408. Lin et al., 2023, "HPCR: Holistic Proxy-based
        Contrastive Replay for Online Continual Learning", arXiv:2309.15038.
    """

    def check() -> tuple[Tensor, Tensor, Tensor, Tensor | None]:
        v.check_temperature("temperature", temperature)
        v.check_nonnegative_float("loss_scale", loss_scale)
        check_common(reduction, chunk_size, impl)
        z = prepare_one("embeddings", embeddings, normalize=normalize)
        p = v.check_embeddings("proxies", proxies, shape="(C, D)")
        v.check_same_width("embeddings", z, "proxies", p)
        p = prepare_one("proxies", p, normalize=normalize).to(device=z.device, dtype=z.dtype)
        y = _check_proxy_labels(labels, z.shape[0], p.shape[0]).to(z.device)
        counts = _check_prior(prior, p.shape[0])
        if counts is not None:
            counts = counts.to(device=z.device, dtype=z.dtype)
            _check_own_class_counted(counts, y)
        return z, y, p, counts

    (z, y, p, counts), sh = shard(
        gather_distributed,
        process_group,
        check,
        lambda r: {"embeddings": r[0], "labels": r[1]},
        {
            "reduction": reduction,
            "prior": prior if isinstance(prior, str) else "tensor",
            "loss_scale": float(loss_scale),
            "proxies_shape": tuple(proxies.shape) if isinstance(proxies, Tensor) else None,
            "temperature_grad": requires_grad(temperature),
        },
    )
    z, y = gathered(sh, "embeddings", z), gathered(sh, "labels", y)
    scale = 1.0 / core.as_scale(temperature, z)
    cand, log_mult, target = _candidates(p, y, prior, counts)
    if log_mult is None:
        lse, _ = core.logsumexp(z, cand, scale, chunk_size=chunk_size, impl=impl)
    else:  # <[z s, 1], [w, log n]> = s <z, w> + log n: the prior rides along in the dot product
        a = torch.cat([z * scale, torch.ones_like(z[:, :1])], 1)
        b = torch.cat([cand, log_mult[:, None]], 1)
        one = torch.ones((), dtype=z.dtype, device=z.device)
        lse, _ = core.logsumexp(a, b, one, chunk_size=chunk_size, impl=impl)
    pos = core.paired_scores(z, cand, scale, target)
    return finish(float(loss_scale) * (lse - pos), reduction, sh, "embeddings")


def hpcr_loss_scale(
    step: int, *, scale_min: float = 0.5625, scale_max: float = 1.8, period: int = 500
) -> float:
    r"""HPCR's cyclic loss scale :math:`\lambda = \tau / \tau'` for :func:`proxy_nce`.

    .. math::

        \lambda(i) = \lambda_{min} + (\lambda_{max} - \lambda_{min})
            \tfrac{1}{2} \big(1 - \cos(2 \pi i / T)\big)

    With the authors' defaults (``hpcr_temp_min=0.5625``, ``hpcr_temp_max=1.8``, ``T = 500``)
    and :math:`\tau = 0.09` the gradient temperature :math:`\tau'` cycles between 0.16 and
    0.05. In the authors' loop :math:`i` is the batch index within the epoch (it restarts
    at 0 each epoch).

    Example:
        >>> hpcr_loss_scale(0), hpcr_loss_scale(250)
        (0.5625, 1.8)
    """
    v.check_int("step", step, 0)
    v.check_nonnegative_float("scale_min", scale_min)
    v.check_nonnegative_float("scale_max", scale_max)
    v.check_int("period", period, 1)
    return (scale_max - scale_min) * 0.5 * (1.0 - math.cos(2.0 * math.pi * step / period)) + (
        scale_min
    )


def _check_proxy_labels(labels: object, n: int, num_classes: int) -> Tensor:
    """Check that ``labels`` are ``n`` class ids, each with a proxy (``0 <= y < C``)."""
    y = v.check_labels("labels", labels, n)
    bad = (y < 0) | (y >= num_classes)
    if bool(bad.any()):
        value = int(y[bad][0])
        raise ValueError(
            f"`labels` contains {value}, which has no proxy: there are {num_classes} proxies "
            f"(classes 0..{num_classes - 1}). Remap the labels or create the loss with more "
            "classes."
        )
    return y


def _check_prior(prior: object, num_classes: int) -> Tensor | None:
    """``None`` for ``"batch"`` / ``"none"``, else the validated ``(C,)`` multiplicities."""
    if isinstance(prior, str):
        v.check_choice("prior", prior, ("batch", "none"))
        return None
    if not isinstance(prior, Tensor):
        raise ValueError(
            f"`prior` must be 'batch', 'none' or a tensor of {num_classes} class counts; got "
            f"{type(prior).__name__}."
        )
    if prior.shape != (num_classes,):
        raise ValueError(
            f"`prior` must have shape ({num_classes},), one count per proxy; got "
            f"{tuple(prior.shape)}."
        )
    if prior.dtype == torch.bool or prior.is_complex():
        raise ValueError(f"`prior` must hold real class counts; got dtype {prior.dtype}.")
    counts = prior.detach().double()
    if not bool(torch.isfinite(counts).all()) or bool((counts < 0).any()):
        raise ValueError(
            f"`prior` must hold finite counts >= 0; got min {float(counts.min())}, "
            f"max {float(counts.max())}."
        )
    return counts


def _check_own_class_counted(counts: Tensor, labels: Tensor) -> None:
    own = counts[labels]
    if bool((own <= 0).any()):
        value = int(labels[own <= 0][0])
        raise ValueError(
            f"`prior` gives class {value} a count of 0, but `labels` contains it; an anchor's "
            "own class must have a positive count."
        )


def _candidates(
    proxies: Tensor, labels: Tensor, prior: Prior | Tensor, counts: Tensor | None
) -> tuple[Tensor, Tensor | None, Tensor]:
    """The competing proxies, their log-multiplicities (``None``: all 1) and each target."""
    if counts is not None:
        keep = counts > 0
        index = keep.nonzero().squeeze(1)
        position = keep.long().cumsum(0) - 1
        return proxies[index], counts[index].log(), position[labels]
    if prior == "none":
        return proxies, None, labels
    classes, target, n = torch.unique(labels, return_inverse=True, return_counts=True)
    return proxies[classes], n.to(proxies.dtype).log(), target


class ProxyNCELoss(ContrastiveLoss):
    """Module form of :func:`proxy_nce`; it owns the proxies, an ``nn.Parameter (C, D)``.

    The proxies are initialized like ``nn.Linear(D, C).weight`` (PCR's proxies are its cosine
    classifier's weights); copy other values into ``loss_fn.proxies`` to start elsewhere.
    ``loss_scale`` is an attribute; set ``loss_fn.loss_scale = hpcr_loss_scale(step)`` each
    step for HPCR. Give the proxies to the optimizer with the model's parameters.
    """

    catalog_id = "proxy_nce"
    family = "A. softmax cross-entropy, one positive"
    paper = Paper(
        "Lin et al.",
        2023,
        "2309.15038",
        "HPCR: Holistic Proxy-based Contrastive Replay for Online Continual Learning",
    )
    inputs = ("embeddings", "labels")
    requires = Requires(labels=True)
    supports_distributed = True

    def __init__(
        self,
        num_classes: int,
        embedding_dim: int,
        *,
        temperature: float = 0.09,
        prior: Prior | Tensor = "batch",
        loss_scale: float = 1.0,
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
        v.check_temperature("temperature", temperature)
        v.check_nonnegative_float("loss_scale", loss_scale)
        check_common(reduction, chunk_size, impl)
        counts = _check_prior(prior, num_classes)
        self.proxies = nn.Parameter(torch.empty(num_classes, embedding_dim))
        bound = 1.0 / math.sqrt(embedding_dim)
        nn.init.uniform_(self.proxies, -bound, bound)
        self.prior: Prior | Tensor
        if counts is None:
            self.prior = prior
        else:
            self.register_buffer("prior", counts.clone())
        self.temperature, self.loss_scale, self.normalize = temperature, loss_scale, normalize
        self.set_common(reduction, chunk_size, impl, gather_distributed, process_group)

    def forward(self, embeddings: Tensor, labels: Tensor) -> Tensor:
        """Compute the loss against the module's proxies; see :func:`proxy_nce`."""
        return proxy_nce(
            embeddings,
            labels,
            self.proxies,
            temperature=self.temperature,
            prior=self.prior,
            loss_scale=self.loss_scale,
            normalize=self.normalize,
            **self.common(),
        )
