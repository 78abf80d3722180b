"""CWCL: contrastive loss with continuous targets from a frozen modality's similarities."""

from __future__ import annotations

from torch import Tensor

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
    prepare_pair,
    requires_grad,
)


def cwcl(
    a: Tensor,
    b: Tensor,
    *,
    teacher: Tensor,
    temperature: float | Tensor = 0.07,
    normalize: bool = True,
    reduction: Reduction = "mean",
    chunk_size: int | None = None,
    impl: Impl = "auto",
    gather_distributed: bool = False,
    process_group: ProcessGroup | None = None,
) -> Tensor:
    r"""Continuously weighted contrastive loss (Srinivasa et al.).

    Targets come from the frozen modality's own embeddings :math:`u` (``teacher``):
    :math:`w_{ij} = (1 + \cos(u_i, u_j)) / 2 \in [0, 1]`. With
    :math:`s_{ij} = \langle a_i, b_j \rangle / \tau`,

    .. math::

        \ell^{a \to b}_i = -\frac{\sum_j w_{ij} \log \operatorname{softmax}_j(s_{i \cdot})}
                                 {\sum_j w_{ij}}, \qquad
        \ell^{b \to a}_j = -\frac{\sum_i w_{ij} \log \operatorname{softmax}_i(s_{\cdot j})}
                                 {\sum_i w_{ij}}

    and :math:`L = \frac{1}{N} \sum_i \ell^{a \to b}_i + \frac{1}{N} \sum_j \ell^{b \to a}_j`
    (the directions are summed). Because :math:`w` is affine in a cosine, the weighted sums
    factorize: :math:`\sum_j w_{ij} s_{ij} = \frac{1}{2\tau} (\langle a_i, \textstyle\sum_j
    b_j \rangle + \hat u_i^\top (\sum_j \hat u_j b_j^\top) a_i)`, so besides the tiled
    log-sum-exps the loss costs ``O(N D D')`` and no ``N x N`` matrix, tiled or not.

    When the frozen tower's similarities are mostly positive (common for pre-trained
    encoders), :math:`w` is nearly uniform, the targets carry little signal and the loss can
    do worse than one-hot InfoNCE. :func:`~contrastkit.losses.soft_target` with a teacher
    temperature sharpens such targets.

    The weight :math:`w` and the summed directions follow the paper's description; the
    authors' code is not public, and one re-implementation uses plain one-hot targets in the
    reverse direction (unverified either way).

    Args:
        a: Shape ``(N, D)``, e.g. the projections of the frozen modality.
        b: Shape ``(N, D)``, the trained modality; row ``i`` pairs with ``a_i``.
        teacher: Shape ``(N, D')``, the frozen modality's embeddings :math:`u` (cosine is
            taken; gradients reach it if it requires grad).
        temperature: :math:`\tau > 0`; a float or a 0-dim tensor (may require grad).
        normalize: L2-normalize ``a`` and ``b`` first.
        reduction: ``"mean"``, ``"sum"`` or ``"none"`` (shape ``(N,)``,
            :math:`\ell^{a \to b}_i + \ell^{b \to a}_i`).
        chunk_size: Rows and columns per tile; ``None`` chooses.
        impl: ``"auto"``, ``"dense"`` or ``"tiled"``.
        gather_distributed: Loss of the global batch over all ranks (every rank evaluates the
            gathered batch; see :mod:`contrastkit.distributed`).
        process_group: The group to gather over; ``None`` is the default group.

    Example:
        >>> import torch
        >>> cwcl(torch.randn(4, 8), torch.randn(4, 8), teacher=torch.randn(4, 5)).shape
        torch.Size([])

    References:
        Srinivasa et al., 2023, "CWCL: Cross-Modal Transfer with Continuously Weighted
        Contrastive Loss", arXiv:2309.14580.
    """

    def check() -> tuple[Tensor, Tensor, Tensor]:
        v.check_temperature("temperature", temperature)
        check_common(reduction, chunk_size, impl)
        x, y = prepare_pair("a", a, "b", b, normalize=normalize, same_batch=True)
        u = prepare_one("teacher", teacher, normalize=True)
        v.check_same_batch("a", x, "teacher", u)
        return x, y, u.to(device=x.device)

    (x, y, u), sh = shard(
        gather_distributed,
        process_group,
        check,
        lambda r: {"a": r[0], "b": r[1], "teacher": r[2]},
        {"reduction": reduction, "temperature_grad": requires_grad(temperature)},
    )
    x, y, u = gathered(sh, "a", x), gathered(sh, "b", y), gathered(sh, "teacher", u)
    u = u.to(x.dtype)
    scale = 1.0 / core.as_scale(temperature, x)
    stats = core.score_stats(x, y, scale, rows=True, cols=True, chunk_size=chunk_size, impl=impl)
    n = x.shape[0]
    mass = 0.5 * (n + u @ u.sum(0))  # sum_j w_ij (w is symmetric)
    rows = 0.5 * scale * ((x * y.sum(0)).sum(1) + ((u @ (u.T @ y)) * x).sum(1))
    cols = 0.5 * scale * ((y * x.sum(0)).sum(1) + ((u @ (u.T @ x)) * y).sum(1))
    per_row = stats.rows - rows / mass + stats.cols - cols / mass
    return finish(per_row, reduction, sh, "a")


class CWCLLoss(ContrastiveLoss):
    """Module form of :func:`cwcl`; ``teacher`` is a keyword of forward."""

    catalog_id = "cwcl"
    family = "D. soft targets"
    paper = Paper(
        "Srinivasa et al.", 2023, "2309.14580", "CWCL: Continuously Weighted Contrastive Loss"
    )
    inputs = ("a", "b")
    requires = Requires(teacher=True)
    supports_distributed = True

    def __init__(
        self,
        *,
        temperature: float = 0.07,
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

    def forward(self, a: Tensor, b: Tensor, *, teacher: Tensor) -> Tensor:
        """Compute the loss; see :func:`cwcl`."""
        return cwcl(
            a,
            b,
            teacher=teacher,
            temperature=self.temperature,
            normalize=self.normalize,
            **self.common(),
        )
