"""MixCo: InfoNCE on mixup samples whose targets are split between their two sources."""

from __future__ import annotations

import torch
from torch import Tensor

from contrastkit import core
from contrastkit.core import validation as v
from contrastkit.core.validation import Impl, Reduction
from contrastkit.distributed import ProcessGroup, shard
from contrastkit.losses._base import ContrastiveLoss, Paper
from contrastkit.losses._inputs import check_common, finish, gathered, prepare_pair, requires_grad


def mixco(
    mixed: Tensor,
    other: Tensor,
    *,
    lam: Tensor,
    partner: Tensor,
    temperature: float | Tensor = 0.1,
    symmetric: bool = True,
    normalize: bool = True,
    reduction: Reduction = "mean",
    chunk_size: int | None = None,
    impl: Impl = "auto",
    gather_distributed: bool = False,
    process_group: ProcessGroup | None = None,
) -> Tensor:
    r"""MixCo / mixup InfoNCE (M3CoL, after MindEye): sparse two-source targets.

    ``mixed[i]`` embeds :math:`\lambda_i x_i + (1 - \lambda_i) x_{\pi(i)}` (see :func:`mixup`);
    its targets among ``other`` are :math:`T_{ij} = \lambda_i [j = i] + (1 - \lambda_i)
    [j = \pi(i)]` (the two terms add when :math:`\pi(i) = i`). With
    :math:`s_{ij} = \langle m_i, o_j \rangle / \tau`,

    .. math::

        \ell^{r}_i = -\sum_j T_{ij} \log \operatorname{softmax}_j(s_{i \cdot}), \qquad
        \ell^{c}_j = -\sum_i T_{ij} \log \operatorname{softmax}_i(s_{\cdot j})

    (column targets are not renormalized, as in the authors' code), averaged over the two
    directions when symmetric. Only two target entries per row exist, so besides the tiled
    log-sum-exps the loss is ``O(N D)``. The authors' code overwrites instead of adding the
    two targets when :math:`\pi(i) = i`, which gives an unmixed row target 0 on its own
    positive; this adds them.

    Args:
        mixed: Shape ``(N, D)``, embeddings of the mixed inputs.
        other: Shape ``(N, D)``, the other modality (or view), unmixed.
        lam: Shape ``(N,)`` mixing weights :math:`\lambda_i \in [0, 1]` (no gradient).
        partner: Shape ``(N,)`` integer :math:`\pi(i)`, indices into this batch.
        temperature: :math:`\tau > 0` (M3CoL: 0.1).
        symmetric: Average with the column direction.
        normalize: L2-normalize first.
        reduction: ``"mean"``, ``"sum"`` or ``"none"`` (shape ``(N,)``).
        chunk_size: Rows and columns per tile; ``None`` chooses.
        impl: ``"auto"``, ``"dense"`` or ``"tiled"``.
        gather_distributed: Loss of the global batch over all ranks; ``partner`` indexes each
            rank's own rows. See :mod:`contrastkit.distributed`.
        process_group: The group to gather over; ``None`` is the default group.

    Example:
        >>> import torch
        >>> x, y = torch.randn(4, 8), torch.randn(4, 8)
        >>> mixco(x, y, lam=torch.full((4,), 0.7), partner=torch.tensor([1, 0, 3, 2])).shape
        torch.Size([])

    References:
        Kim et al., 2020, "MixCo", arXiv:2010.06300. Kumar et al., 2024, M3CoL,
        arXiv:2409.17777.
    """

    def check() -> tuple[Tensor, Tensor, Tensor, Tensor]:
        v.check_temperature("temperature", temperature)
        check_common(reduction, chunk_size, impl)
        x, y = prepare_pair("mixed", mixed, "other", other, normalize=normalize, same_batch=True)
        n = x.shape[0]
        if not isinstance(lam, Tensor) or not lam.is_floating_point() or tuple(lam.shape) != (n,):
            raise ValueError(f"`lam` must be a float tensor of shape ({n},); got {_desc(lam)}.")
        if not bool(((lam >= 0) & (lam <= 1)).all()):
            raise ValueError("`lam` must lie in [0, 1] (mixing weights).")
        pi = v.check_labels("partner", partner, n)
        if bool(((pi < 0) | (pi >= n)).any()):
            raise ValueError(f"`partner` must hold row indices in [0, {n}); got {pi.tolist()}.")
        return x, y, lam.detach().to(device=x.device, dtype=x.dtype), pi.to(x.device)

    (x, y, lm, pi), sh = shard(
        gather_distributed,
        process_group,
        check,
        lambda r: {"mixed": r[0], "other": r[1], "lam": r[2], "partner": r[3]},
        {
            "reduction": reduction,
            "symmetric": symmetric,
            "temperature_grad": requires_grad(temperature),
        },
    )
    if sh is not None:
        pi = sh.global_index("mixed", pi)
    x, y, lm, pi = (
        gathered(sh, "mixed", x),
        gathered(sh, "other", y),
        gathered(sh, "lam", lm),
        gathered(sh, "partner", pi),
    )
    scale = 1.0 / core.as_scale(temperature, x)
    stats = core.score_stats(
        x, y, scale, cols=symmetric, paired=True, chunk_size=chunk_size, impl=impl
    )
    cross = core.paired_scores(x, y, scale, pi)
    target = lm * stats.paired + (1 - lm) * cross
    per_row = stats.rows - target
    if symmetric:
        mass = lm + torch.zeros_like(lm).index_add(0, pi, 1 - lm)
        col_target = lm * stats.paired + torch.zeros_like(target).index_add(0, pi, (1 - lm) * cross)
        per_row = 0.5 * (per_row + mass * stats.cols - col_target)
    return finish(per_row, reduction, sh, "mixed")


def mixup(
    x: Tensor, *, beta: float = 0.15, prob: float = 0.5, generator: torch.Generator | None = None
) -> tuple[Tensor, Tensor, Tensor]:
    r"""Mix rows of a batch for :func:`mixco`: ``(mixed, lam, partner)``.

    A random permutation :math:`\pi` pairs rows; each row is mixed with probability ``prob``
    with :math:`\lambda \sim \text{Beta}(\beta, \beta)`, else :math:`\lambda = 1` (M3CoL:
    ``beta=0.15``, ``prob=0.5``).

    Args:
        x: Inputs (or features) of shape ``(N, ...)``.
        beta: Beta distribution parameter.
        prob: Probability that a row is mixed.
        generator: Random generator for the permutation and the selection (the Beta draw uses
            the global generator).
    """
    v.check_positive_float("beta", beta)
    n = x.shape[0]
    partner = torch.randperm(n, generator=generator, device="cpu").to(x.device)
    chosen = torch.rand(n, generator=generator).to(x.device) < prob
    draw = torch.distributions.Beta(beta, beta).sample((n,)).to(device=x.device, dtype=x.dtype)
    lam = torch.where(chosen, draw, torch.ones_like(draw))
    shape = (n,) + (1,) * (x.dim() - 1)
    return lam.view(shape) * x + (1 - lam.view(shape)) * x[partner], lam, partner


def _desc(x: object) -> str:
    return f"{tuple(x.shape)} {x.dtype}" if isinstance(x, Tensor) else type(x).__name__


class MixCoLoss(ContrastiveLoss):
    """Module form of :func:`mixco`; ``lam`` and ``partner`` go to forward."""

    catalog_id = "mixco"
    family = "D. soft targets"
    paper = Paper(
        "Kumar et al.", 2024, "2409.17777", "M3CoL: Multimodal Mixup Contrastive Learning"
    )
    inputs = ("mixed", "other")
    supports_distributed = True

    def __init__(
        self,
        *,
        temperature: float = 0.1,
        symmetric: bool = True,
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
        self.temperature, self.symmetric, self.normalize = temperature, symmetric, normalize
        self.set_common(reduction, chunk_size, impl, gather_distributed, process_group)

    def forward(self, mixed: Tensor, other: Tensor, *, lam: Tensor, partner: Tensor) -> Tensor:
        """Compute the loss; see :func:`mixco`."""
        return mixco(
            mixed,
            other,
            lam=lam,
            partner=partner,
            temperature=self.temperature,
            symmetric=self.symmetric,
            normalize=self.normalize,
            **self.common(),
        )
