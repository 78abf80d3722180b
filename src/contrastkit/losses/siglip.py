"""SigLIP: a sigmoid loss on every image-text pair, with a learnable scale and bias."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from contrastkit import core
from contrastkit.core import validation as v
from contrastkit.core.pairmap import pair_reduce
from contrastkit.core.validation import Impl, Reduction
from contrastkit.distributed import ProcessGroup, shard
from contrastkit.losses._base import ContrastiveLoss, Paper
from contrastkit.losses._inputs import check_common, prepare_pair, requires_grad

LOG_10 = math.log(10.0)


def siglip(
    image: Tensor,
    text: Tensor,
    *,
    logit_scale: float | Tensor = LOG_10,
    logit_bias: float | Tensor = -10.0,
    gamma: float = 0.0,
    normalize: bool = True,
    reduction: Reduction = "mean",
    chunk_size: int | None = None,
    impl: Impl = "auto",
    gather_distributed: bool = False,
    process_group: ProcessGroup | None = None,
) -> Tensor:
    r"""Pairwise sigmoid loss of SigLIP (Zhai et al.), optionally focal.

    With :math:`x_{ij} = e^{t'} \langle u_i, v_j \rangle + b` and :math:`z_{ij} = 1` on the
    diagonal, :math:`-1` elsewhere,

    .. math::

        \ell_i = \sum_{j=1}^{N} -\log \sigma(z_{ij} x_{ij}), \qquad
        \ell^{focal}_i = \sum_{j=1}^{N} -(1 - \sigma(z_{ij} x_{ij}))^{\gamma}
            \log \sigma(z_{ij} x_{ij})

    ``"mean"`` is :math:`\sum_i \ell_i / N`, the paper's (and open_clip's) normalization: the
    sum over all :math:`N^2` pairs divided by the batch size. Without the focal term the sum
    factorizes as :math:`\sum_j \operatorname{softplus}(x_{ij}) - x_{ii}` (one tiled pass);
    ``gamma > 0`` is the focal sigmoid of RO-ViT / DITO (no :math:`\alpha` balancing).

    Args:
        image: Shape ``(N, D)``.
        text: Shape ``(N, D)``; row ``i`` is the positive of image ``i``.
        logit_scale: :math:`t'`, the log of the scale (init ``log 10``); float or 0-dim tensor.
        logit_bias: :math:`b` (init ``-10``); float or 0-dim tensor.
        gamma: Focal exponent :math:`\gamma \ge 0`; ``0`` is the plain sigmoid loss.
        normalize: L2-normalize both inputs first (the paper's setting).
        reduction: ``"mean"`` (sum over pairs / N), ``"sum"`` or ``"none"`` (shape ``(N,)``).
        chunk_size: Rows and columns per tile; ``None`` chooses.
        impl: ``"auto"``, ``"dense"`` or ``"tiled"``.
        gather_distributed: Loss of the global batch over all ranks: each rank's images
            against every rank's texts (the work is split by rows; see
            :mod:`contrastkit.distributed`).
        process_group: The group to gather over; ``None`` is the default group.

    Example:
        >>> import torch
        >>> siglip(torch.randn(4, 8), torch.randn(4, 8)).shape
        torch.Size([])

    References:
        Zhai et al., 2023, "Sigmoid Loss for Language Image Pre-Training", arXiv:2303.15343.

    Peers: ``open_clip.loss.SigLipLoss`` (takes the scale itself, ``logit_scale.exp()``).
    """

    def check() -> tuple[Tensor, Tensor]:
        v.check_finite_scalar("logit_scale", logit_scale)
        v.check_finite_scalar("logit_bias", logit_bias)
        v.check_nonnegative_float("gamma", gamma)
        check_common(reduction, chunk_size, impl)
        return prepare_pair("image", image, "text", text, normalize=normalize, same_batch=True)

    (x, y), sh = shard(
        gather_distributed,
        process_group,
        check,
        lambda r: {"image": r[0], "text": r[1]},
        {
            "reduction": reduction,
            "gamma": gamma,
            "scale_grad": requires_grad(logit_scale),
            "bias_grad": requires_grad(logit_bias),
        },
    )
    scale = core.as_scale(logit_scale, x).exp()
    bias = core.as_scale(logit_bias, x)
    n = x.shape[0]
    # This rank's images against every rank's texts; `own` is each image's text column.
    own = torch.arange(n, device=x.device)
    if sh is not None:
        scale, bias = sh.sync_scale(scale), sh.sync_scale(bias)
        own, y = sh.global_index("text", own), sh.gather("text", y)
    if gamma == 0.0:
        every = core.pair_softplus(
            x, y, scale, bias.expand(n), sign=1.0, chunk_size=chunk_size, impl=impl
        )
        per_row = every - (core.paired_scores(x, y, scale, own) + bias)
    else:
        per_row, _ = pair_reduce(
            lambda r, c, p, ri, ci: _focal(r[0] @ c[0].T * p[0] + p[1], r[1], ci, gamma),
            [x, own],
            [y],
            [scale, bias],
            chunk_size=chunk_size,
            impl=impl,
        )
    if sh is None:
        return core.reduce(per_row, reduction)
    return sh.reduce(per_row, reduction, sh.total("image"))


def _focal(logits: Tensor, own: Tensor, ci: Tensor, gamma: float) -> Tensor:
    """``-(1 - sigmoid(z x))^gamma log sigmoid(z x)`` for one tile, ``z = +1`` at ``own``."""
    u = torch.where(own[:, None] == ci[None, :], -logits, logits)  # -z x
    return torch.exp(gamma * F.logsigmoid(u)) * F.softplus(u)


class SigLIPLoss(ContrastiveLoss):
    """Module form of :func:`siglip`, owning the learnable ``logit_scale`` and ``logit_bias``.

    Args:
        scale_init: Initial scale :math:`e^{t'}` (``logit_scale`` starts at its log).
        bias_init: Initial bias :math:`b`.
        learnable: Train the scale and bias (else they are fixed buffers).
        gamma: Focal exponent; see :func:`siglip` for the other arguments.
    """

    catalog_id = "siglip"
    family = "E. sigmoid and binary"
    paper = Paper("Zhai et al.", 2023, "2303.15343", "Sigmoid Loss for Language Image Pre-Training")
    inputs = ("image", "text")
    peers = ("open_clip.loss.SigLipLoss",)
    supports_distributed = True
    distributed = "split"

    logit_scale: Tensor
    logit_bias: Tensor

    def __init__(
        self,
        *,
        scale_init: float = 10.0,
        bias_init: float = -10.0,
        learnable: bool = True,
        gamma: float = 0.0,
        normalize: bool = True,
        reduction: Reduction = "mean",
        chunk_size: int | None = None,
        impl: Impl = "auto",
        gather_distributed: bool = False,
        process_group: ProcessGroup | None = None,
    ) -> None:
        super().__init__()
        v.check_positive_float("scale_init", scale_init)
        v.check_finite_scalar("bias_init", bias_init)
        v.check_nonnegative_float("gamma", gamma)
        check_common(reduction, chunk_size, impl)
        scale = torch.tensor(math.log(scale_init))
        bias = torch.tensor(float(bias_init))
        if learnable:
            self.logit_scale = nn.Parameter(scale)
            self.logit_bias = nn.Parameter(bias)
        else:
            self.register_buffer("logit_scale", scale)
            self.register_buffer("logit_bias", bias)
        self.gamma, self.normalize = gamma, normalize
        self.set_common(reduction, chunk_size, impl, gather_distributed, process_group)

    def forward(self, image: Tensor, text: Tensor) -> Tensor:
        """Compute the loss; see :func:`siglip`."""
        return siglip(
            image,
            text,
            logit_scale=self.logit_scale,
            logit_bias=self.logit_bias,
            gamma=self.gamma,
            normalize=self.normalize,
            **self.common(),
        )
