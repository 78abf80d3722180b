"""CLIP: symmetric InfoNCE with a learnable, clamped logit scale."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from contrastkit import core
from contrastkit.core import validation as v
from contrastkit.core.validation import Impl, Reduction
from contrastkit.distributed import ProcessGroup, shard
from contrastkit.losses._base import ContrastiveLoss, Paper
from contrastkit.losses._inputs import check_common, prepare_pair, requires_grad
from contrastkit.losses.infonce import infonce_scaled

_DEFAULT_LOGIT_SCALE = math.log(1 / 0.07)


def clip(
    image: Tensor,
    text: Tensor,
    *,
    logit_scale: float | Tensor = _DEFAULT_LOGIT_SCALE,
    max_scale: float = 100.0,
    normalize: bool = True,
    reduction: Reduction = "mean",
    chunk_size: int | None = None,
    impl: Impl = "auto",
    gather_distributed: bool = False,
    process_group: ProcessGroup | None = None,
) -> Tensor:
    r"""CLIP's symmetric contrastive loss with a log-parametrized logit scale.

    With :math:`\alpha = \min(e^{\text{logit\_scale}}, \alpha_{max})` and
    :math:`s_{ij} = \alpha \langle x_i, t_j \rangle`,

    .. math::

        \ell_i = \tfrac12 \Big( -s_{ii} + \log \sum_j e^{s_{ij}}
                 - s_{ii} + \log \sum_j e^{s_{ji}} \Big)

    i.e. :func:`~contrastkit.losses.infonce` with ``symmetric=True`` and scale :math:`\alpha`
    in place of :math:`1/\tau`. The gradient of ``logit_scale`` flows as through ``clamp``: zero
    while :math:`e^{\text{logit\_scale}} > \alpha_{max}`.

    Args:
        image: Shape ``(N, D)``.
        text: Shape ``(N, D)``.
        logit_scale: :math:`\log \alpha`, float or 0-dim tensor (may require grad); default
            ``log(1 / 0.07)``.
        max_scale: :math:`\alpha_{max}`, the clamp (CLIP uses 100).
        normalize: L2-normalize both inputs first.
        reduction: ``"mean"``, ``"sum"`` or ``"none"`` (shape ``(N,)``).
        chunk_size: Rows and columns per tile; ``None`` chooses.
        impl: ``"auto"``, ``"dense"`` or ``"tiled"``.
        gather_distributed: Loss of the global batch over all ranks; ``logit_scale`` then gets
            the global gradient on every rank. See :mod:`contrastkit.distributed`.
        process_group: The group to gather over; ``None`` is the default group.

    Example:
        >>> import torch
        >>> clip(torch.randn(4, 8), torch.randn(4, 8)).shape
        torch.Size([])

    References:
        Radford et al., 2021, arXiv:2103.00020. Jia et al. (ALIGN), 2021, arXiv:2102.05918.

    Peers: ``open_clip.loss.ClipLoss``.
    """

    def check() -> tuple[Tensor, Tensor]:
        v.check_finite_scalar("logit_scale", logit_scale)
        v.check_positive_float("max_scale", max_scale)
        check_common(reduction, chunk_size, impl)
        return prepare_pair("image", image, "text", text, normalize=False, same_batch=True)

    (x, t), sh = shard(
        gather_distributed,
        process_group,
        check,
        lambda r: {"query": r[0], "key": r[1]},
        {"reduction": reduction, "logit_scale_grad": requires_grad(logit_scale)},
    )
    scale = core.as_scale(logit_scale, x).exp().clamp(max=max_scale)
    return infonce_scaled(x, t, scale, True, normalize, None, reduction, chunk_size, impl, sh)


class CLIPLoss(ContrastiveLoss):
    """Module form of :func:`clip`; owns ``logit_scale`` = log(1 / temperature).

    Args:
        temperature: Initial temperature; ``logit_scale`` starts at ``log(1 / temperature)``.
        learnable: Make ``logit_scale`` an ``nn.Parameter`` (otherwise a buffer).
        max_scale: Clamp of ``exp(logit_scale)``.
        normalize: L2-normalize both inputs first.
        reduction: See :func:`clip`.
        chunk_size: See :func:`clip`.
        impl: See :func:`clip`.
        gather_distributed: See :func:`clip`.
        process_group: See :func:`clip`.
    """

    catalog_id = "clip"
    family = "A. softmax cross-entropy, one positive"
    paper = Paper("Radford et al.", 2021, "2103.00020", "CLIP")
    inputs = ("image", "text")
    symmetric_inputs = True
    peers = ("open_clip.loss.ClipLoss",)
    supports_distributed = True
    distributed = "split"

    logit_scale: Tensor

    def __init__(
        self,
        *,
        temperature: float = 0.07,
        learnable: bool = True,
        max_scale: float = 100.0,
        normalize: bool = True,
        reduction: Reduction = "mean",
        chunk_size: int | None = None,
        impl: Impl = "auto",
        gather_distributed: bool = False,
        process_group: ProcessGroup | None = None,
    ) -> None:
        super().__init__()
        v.check_temperature("temperature", temperature)
        v.check_positive_float("max_scale", max_scale)
        v.check_reduction(reduction)
        v.check_chunk_size(chunk_size)
        v.check_impl(impl)
        init = torch.tensor(math.log(1.0 / temperature))
        if learnable:
            self.logit_scale = nn.Parameter(init)
        else:
            self.register_buffer("logit_scale", init)
        self.max_scale, self.normalize = max_scale, normalize
        self.set_common(reduction, chunk_size, impl, gather_distributed, process_group)

    def forward(self, image: Tensor, text: Tensor) -> Tensor:
        """Compute the loss; see :func:`clip`."""
        return clip(
            image,
            text,
            logit_scale=self.logit_scale,
            max_scale=self.max_scale,
            normalize=self.normalize,
            **self.common(),
        )
