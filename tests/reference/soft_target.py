"""Float64 reference for soft-target InfoNCE (Li et al., 2021, "Align before Fuse", ALBEF).

ALBEF momentum distillation; also SoftCLIP of M3CoL, Dialog2Flow and Distill-VQ.
"""

from __future__ import annotations

import torch
from torch import Tensor


def _embed64(x: Tensor, normalize: bool) -> Tensor:
    """Casts to float64 (differentiably) and optionally L2-normalizes each row."""
    x = x.to(torch.float64)
    if normalize:
        x = x / x.norm(dim=1, keepdim=True)
    return x


def _scalar64(x: float | Tensor) -> Tensor:
    """A float or 0-dim tensor as a float64 0-dim tensor (differentiably for tensors)."""
    if isinstance(x, Tensor):
        return x.to(torch.float64)
    return torch.tensor(float(x), dtype=torch.float64)


def _one_hot(index: int, size: int) -> Tensor:
    """The float64 indicator vector [j == index] of length ``size``."""
    e = torch.zeros(size, dtype=torch.float64)
    e[index] = 1.0
    return e


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
    reduction: str = "mean",
) -> Tensor:
    """Cross-entropy against a teacher's softmax mixed with one-hot, densely in float64.

    With student scores ``s_ij = <a_i, b_j> / temperature`` and teacher scores
    ``t_ij = <ta_i, tb_j> / teacher_temperature`` (``tb = ta`` when ``teacher_b`` is None):

        T_ij  = alpha softmax_j(t_i.) + (1 - alpha) [i == j]
        l^r_i = -sum_{j < M} T_ij log softmax_j(s_i.)
        T'_ji = alpha softmax_i(t_.j) + (1 - alpha) [i == j]
        l^c_j = -sum_{i < N} T'_ji log softmax_i(s_.j)          (symmetric only, M == N)

    symmetric: ``loss = (mean_i l^r_i + mean_j l^c_j) / 2``; otherwise ``mean_i l^r_i``.
    The teacher tensors are not detached, so they get gradients if they require grad.

    Args:
        a: Anchors, shape (N, D).
        b: Positives (row i for a_i) followed by extra negatives, shape (M, D), M >= N.
        teacher_a: Teacher view of ``a``, shape (N, D').
        teacher_b: Teacher view of ``b``, shape (M, D'); None uses ``teacher_a`` (M == N).
        temperature: Student softmax temperature (float or 0-dim tensor).
        teacher_temperature: Teacher softmax temperature; None is ``temperature``.
        alpha: Weight of the teacher distribution in the targets.
        symmetric: Average with the column direction (needs M == N).
        normalize: L2-normalize ``a`` and ``b`` before the dot products.
        normalize_teacher: L2-normalize the teacher rows before the dot products.
        reduction: ``"mean"``, ``"sum"`` or ``"none"``.

    Returns:
        A float64 scalar, or shape (N,) for ``reduction="none"`` (``(l^r + l^c) / 2`` when
        symmetric, else ``l^r``).
    """
    x = _embed64(a, normalize)
    y = _embed64(b, normalize)
    tx = _embed64(teacher_a, normalize_teacher)
    ty = tx if teacher_b is None else _embed64(teacher_b, normalize_teacher)
    t = _scalar64(temperature)
    tt = t if teacher_temperature is None else _scalar64(teacher_temperature)
    n, m = x.shape[0], y.shape[0]
    if (teacher_b is None or symmetric) and m != n:
        raise ValueError("M must equal N when teacher_b is None or symmetric=True.")
    rows = []
    for i in range(n):
        scores = (y @ x[i]) / t  # s_ij for all j < M
        teacher_scores = (ty @ tx[i]) / tt  # t_ij for all j < M
        teacher_softmax = torch.exp(teacher_scores - torch.logsumexp(teacher_scores, dim=0))
        target = alpha * teacher_softmax + (1.0 - alpha) * _one_hot(i, m)
        log_softmax = scores - torch.logsumexp(scores, dim=0)
        rows.append(-(target * log_softmax).sum())
    l_r = torch.stack(rows)
    if symmetric:
        cols = []
        for j in range(n):
            scores = (x @ y[j]) / t  # s_ij for all i < N
            teacher_scores = (tx @ ty[j]) / tt  # t_ij for all i < N
            teacher_softmax = torch.exp(teacher_scores - torch.logsumexp(teacher_scores, dim=0))
            target = alpha * teacher_softmax + (1.0 - alpha) * _one_hot(j, n)
            log_softmax = scores - torch.logsumexp(scores, dim=0)
            cols.append(-(target * log_softmax).sum())
        per_anchor = (l_r + torch.stack(cols)) / 2.0
    else:
        per_anchor = l_r
    if reduction == "none":
        return per_anchor
    if reduction == "sum":
        return per_anchor.sum()
    return per_anchor.sum() / n
