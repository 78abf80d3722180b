"""Soft-target InfoNCE: targets from a teacher's similarities (ALBEF, SoftCLIP, D2F, Distill-VQ)."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from contrastkit import core
from contrastkit.core import validation as v
from contrastkit.core.pairmap import pair_reduce
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


def soft_target(
    a: Tensor,
    b: Tensor,
    *,
    teacher_a: Tensor,
    teacher_b: Tensor | None = None,
    temperature: float | Tensor = 0.07,
    teacher_temperature: float | Tensor | None = None,
    alpha: float = 1.0,
    symmetric: bool = True,
    normalize: bool = True,
    normalize_teacher: bool = True,
    reduction: Reduction = "mean",
    chunk_size: int | None = None,
    impl: Impl = "auto",
    gather_distributed: bool = False,
    process_group: ProcessGroup | None = None,
) -> Tensor:
    r"""Cross-entropy of the student's softmax against a teacher's softmax, mixed with one-hot.

    With student scores :math:`s_{ij} = \langle a_i, b_j \rangle / \tau`, teacher scores
    :math:`t_{ij} = \langle \tilde a_i, \tilde b_j \rangle / \tau_t` and targets
    :math:`T_{ij} = \alpha \operatorname{softmax}_j(t_{i \cdot}) + (1 - \alpha) [i = j]`,

    .. math::

        \ell_i = -\sum_{j=1}^{M} T_{ij} \log \operatorname{softmax}_j(s_{i \cdot})
               = \log \sum_j e^{s_{ij}} - \alpha \sum_j \frac{e^{t_{ij}}}{\sum_k e^{t_{ik}}}
                 s_{ij} - (1 - \alpha) s_{ii}

    and, when symmetric, the same over columns with
    :math:`T'_{ji} = \alpha \operatorname{softmax}_i(t_{\cdot j}) + (1 - \alpha)[i = j]`, the
    two directions averaged. The targets are never materialized: one tiled pass gives the
    teacher's log-sum-exp, a second sums :math:`e^{t_{ij} - \text{lse}_i} s_{ij}` tile by tile.

    It covers: ALBEF momentum distillation (``teacher_a, teacher_b`` = the momentum encoders'
    features, ``alpha=0.4``; queues are extra rows of ``b`` / ``teacher_b`` with
    ``symmetric=False``), SoftCLIP of M3CoL / MindEye (``teacher_a = b``, not detached,
    ``alpha=1``, ``temperature = teacher_temperature = 0.125``), Dialog2Flow soft labels
    (``teacher_a`` = the label-text embedding of each row's label, ``teacher_temperature=0.25``
    or ``0.35``, ``temperature=0.05``) and Distill-VQ (``teacher_a, teacher_b`` = the dense
    embeddings, ``symmetric=False``, ``normalize=False``; its KL differs from this cross-entropy
    by the teacher's entropy, a constant for a detached teacher). Teacher inputs get
    gradients if they require grad; detach them for a fixed teacher.

    Args:
        a: Shape ``(N, D)``.
        b: Shape ``(M, D)``, ``M >= N``; row ``i`` pairs with ``a_i``.
        teacher_a: Shape ``(N, D')``, the teacher's view of ``a``.
        teacher_b: Shape ``(M, D')``; ``None`` uses ``teacher_a`` on both sides (needs
            ``M == N``).
        temperature: :math:`\tau > 0` of the student.
        teacher_temperature: :math:`\tau_t > 0`; ``None`` is ``temperature``.
        alpha: Weight :math:`\alpha \in [0, 1]` of the teacher's distribution.
        symmetric: Average with the column direction (needs ``M == N``).
        normalize: L2-normalize ``a`` and ``b`` first.
        normalize_teacher: L2-normalize the teacher embeddings first.
        reduction: ``"mean"``, ``"sum"`` or ``"none"`` (shape ``(N,)``).
        chunk_size: Rows and columns per tile; ``None`` chooses.
        impl: ``"auto"``, ``"dense"`` or ``"tiled"``.
        gather_distributed: Loss of the global batch over all ranks (every rank evaluates the
            gathered batch; see :mod:`contrastkit.distributed`).
        process_group: The group to gather over; ``None`` is the default group.

    Example:
        >>> import torch
        >>> x, y = torch.randn(4, 8), torch.randn(4, 8)
        >>> soft_target(x, y, teacher_a=y).shape
        torch.Size([])

    References:
        Li et al., 2021, "Align before Fuse" (ALBEF), arXiv:2107.07651. Kumar et al., 2024,
        M3CoL, arXiv:2409.17777. Burdisso et al., 2024, Dialog2Flow, arXiv:2410.18481.
        Xiao et al., 2022, Distill-VQ, arXiv:2204.00185.
    """
    t_temp = temperature if teacher_temperature is None else teacher_temperature

    def check() -> tuple[Tensor, Tensor, Tensor, Tensor]:
        v.check_temperature("temperature", temperature)
        v.check_temperature("teacher_temperature", t_temp)
        if isinstance(alpha, bool) or not isinstance(alpha, int | float) or not 0 <= alpha <= 1:
            raise ValueError(f"`alpha` must be a float in [0, 1]; got {alpha!r}.")
        check_common(reduction, chunk_size, impl)
        x, y = prepare_pair("a", a, "b", b, normalize=normalize, same_batch=False)
        ta = prepare_one("teacher_a", teacher_a, normalize=normalize_teacher)
        v.check_same_batch("a", x, "teacher_a", ta)
        if teacher_b is None:
            if y.shape[0] != x.shape[0]:
                raise ValueError(
                    f"`b` has {y.shape[0]} rows but `a` has {x.shape[0]}; pass `teacher_b` for "
                    "the extra rows (teacher_a is only used for both sides when M == N)."
                )
            tb = ta
        else:
            tb = prepare_one("teacher_b", teacher_b, normalize=normalize_teacher)
            v.check_same_batch("b", y, "teacher_b", tb)
            v.check_same_width("teacher_a", ta, "teacher_b", tb)
        if symmetric and y.shape[0] != x.shape[0]:
            raise ValueError(
                f"symmetric=True needs `b` with as many rows as `a` ({x.shape[0]}); got "
                f"{y.shape[0]}. Use symmetric=False with extra rows (a queue)."
            )
        return x, y, ta.to(x.device), tb.to(x.device)

    (x, y, ta, tb), sh = shard(
        gather_distributed,
        process_group,
        check,
        lambda r: {"a": r[0], "b": r[1], "teacher_a": r[2], "teacher_b": r[3]},
        {
            "reduction": reduction,
            "symmetric": symmetric,
            "alpha": alpha,
            "grads": (requires_grad(temperature), requires_grad(t_temp)),
        },
    )
    x, y = gathered(sh, "a", x), gathered(sh, "b", y)
    ta, tb = gathered(sh, "teacher_a", ta), gathered(sh, "teacher_b", tb)
    ta, tb = ta.to(x.dtype), tb.to(x.dtype)
    scale, t_scale = 1.0 / core.as_scale(temperature, x), 1.0 / core.as_scale(t_temp, x)
    opts: dict[str, Any] = {"chunk_size": chunk_size, "impl": impl}
    student = core.score_stats(x, y, scale, cols=symmetric, paired=True, **opts)
    teacher = core.score_stats(ta, tb, t_scale, cols=symmetric, **opts)
    per_row = student.rows - _target_scores(
        x, y, ta, tb, teacher.rows, scale, t_scale, alpha, student.paired, **opts
    )
    if symmetric:
        col = student.cols - _target_scores(
            y, x, tb, ta, teacher.cols, scale, t_scale, alpha, student.paired, **opts
        )
        per_row = 0.5 * (per_row + col)
    return finish(per_row, reduction, sh, "a")


def _target_scores(
    x: Tensor,
    y: Tensor,
    tx: Tensor,
    ty: Tensor,
    t_lse: Tensor,
    scale: Tensor,
    t_scale: Tensor,
    alpha: float,
    paired: Tensor,
    chunk_size: int | None,
    impl: Impl,
) -> Tensor:
    r""":math:`\sum_j T_{ij} s_{ij}` per row of ``x`` against ``y``."""
    if alpha == 0.0:
        return paired
    soft, _ = pair_reduce(
        lambda r, c, p, ri, ci: (
            torch.exp(r[1] @ c[1].T * p[1] - r[2][:, None]) * (r[0] @ c[0].T * p[0])
        ),
        [x, tx, t_lse],
        [y, ty],
        [scale, t_scale],
        chunk_size=chunk_size,
        impl=impl,
    )
    return alpha * soft + (1.0 - alpha) * paired


class SoftTargetLoss(ContrastiveLoss):
    """Module form of :func:`soft_target`; ``teacher_a`` / ``teacher_b`` go to forward."""

    catalog_id = "soft_target"
    family = "D. soft targets"
    paper = Paper("Li et al.", 2021, "2107.07651", "Align before Fuse (momentum distillation)")
    inputs = ("a", "b")
    requires = Requires(teacher=True)
    supports_distributed = True

    def __init__(
        self,
        *,
        temperature: float = 0.07,
        teacher_temperature: float | None = None,
        alpha: float = 1.0,
        symmetric: bool = True,
        normalize: bool = True,
        normalize_teacher: bool = True,
        reduction: Reduction = "mean",
        chunk_size: int | None = None,
        impl: Impl = "auto",
        gather_distributed: bool = False,
        process_group: ProcessGroup | None = None,
    ) -> None:
        super().__init__()
        v.check_temperature("temperature", temperature)
        if teacher_temperature is not None:
            v.check_temperature("teacher_temperature", teacher_temperature)
        check_common(reduction, chunk_size, impl)
        self.temperature, self.teacher_temperature, self.alpha = (
            temperature,
            teacher_temperature,
            alpha,
        )
        self.symmetric, self.normalize, self.normalize_teacher = (
            symmetric,
            normalize,
            normalize_teacher,
        )
        self.set_common(reduction, chunk_size, impl, gather_distributed, process_group)

    def forward(
        self, a: Tensor, b: Tensor, *, teacher_a: Tensor, teacher_b: Tensor | None = None
    ) -> Tensor:
        """Compute the loss; see :func:`soft_target`."""
        return soft_target(
            a,
            b,
            teacher_a=teacher_a,
            teacher_b=teacher_b,
            temperature=self.temperature,
            teacher_temperature=self.teacher_temperature,
            alpha=self.alpha,
            symmetric=self.symmetric,
            normalize=self.normalize,
            normalize_teacher=self.normalize_teacher,
            **self.common(),
        )
