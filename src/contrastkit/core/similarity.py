r"""Similarities and distances of one tile of rows against one tile of columns.

Each function takes row vectors ``x (n, ...)`` and column vectors ``y (m, ...)`` and returns the
``(n, m)`` matrix; the losses evaluate them one tile at a time through
:func:`contrastkit.core.pairmap.pair_reduce` (or as one GEMM where the score is a dot product).

- :func:`dot`: :math:`\langle x_i, y_j \rangle` (cosine on L2-normalized rows);
- :func:`bilinear`: :math:`x_i^\top W y_j` (TACO);
- :func:`sq_l2` / :func:`neg_sq_l2`: :math:`\pm \lVert x_i - y_j \rVert^2`;
- :func:`l2`: :math:`\lVert x_i - y_j \rVert` with a zero (not infinite) gradient at 0;
- :func:`log_student_t`: the log of the Student-t kernel on squared L2 distance (SAN);
- :func:`maxsim`: :math:`\sum_t \max_u \langle x_{it}, y_{ju} \rangle` over token sets (ColBERT,
  SECLA, SPRC).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor


def dot(x: Tensor, y: Tensor) -> Tensor:
    """``x @ y.T``, shape ``(n, m)``."""
    return x @ y.T


def bilinear(x: Tensor, y: Tensor, weight: Tensor) -> Tensor:
    """``x W y^T`` with ``weight (D_x, D_y)``, shape ``(n, m)``."""
    return (x @ weight.to(x.dtype)) @ y.T


def sq_l2(x: Tensor, y: Tensor) -> Tensor:
    r"""Squared Euclidean distances :math:`\lVert x_i - y_j \rVert^2`, shape ``(n, m)``.

    Computed as :math:`|x_i|^2 + |y_j|^2 - 2 \langle x_i, y_j \rangle` (one GEMM, as
    ``torch.cdist`` does for large inputs) and clamped at 0; near-identical rows therefore get a
    distance accurate to rounding of the norms, not of the difference.
    """
    d2 = x.pow(2).sum(1)[:, None] + y.pow(2).sum(1)[None, :] - 2.0 * (x @ y.T)
    return d2.clamp_min(0.0)


def neg_sq_l2(x: Tensor, y: Tensor) -> Tensor:
    """Negative squared Euclidean distance, a similarity."""
    return -sq_l2(x, y)


def l2(x: Tensor, y: Tensor) -> Tensor:
    """Euclidean distances; the gradient at a zero distance is zero (as a subgradient)."""
    d2 = sq_l2(x, y)
    pos = d2 > 0
    return torch.where(pos, torch.where(pos, d2, 1.0).sqrt(), 0.0)


def student_t_log_norm(nu: float) -> float:
    r"""The log of the SAN kernel's constant, :math:`\log 2 \pi g(\nu)^2`.

    Here :math:`g(\nu) = \Gamma(\frac{\nu+1}{2}) / (\sqrt{\nu \pi}\, \Gamma(\frac{\nu}{2}))`.
    """
    log_g = math.lgamma((nu + 1) / 2) - 0.5 * math.log(nu * math.pi) - math.lgamma(nu / 2)
    return math.log(2 * math.pi) + 2 * log_g


def log_student_t(d2: Tensor, nu: float, sigma: float) -> Tensor:
    r"""Log Student-t kernel :math:`\log c(\nu) - (\nu + 1) \log(1 + d / (\sigma \nu))`.

    Args:
        d2: Squared distances.
        nu: Degrees of freedom :math:`\nu > 0`.
        sigma: Scale :math:`\sigma > 0`.
    """
    return student_t_log_norm(nu) - (nu + 1) * torch.log1p(d2 / (sigma * nu))


def maxsim(x: Tensor, y: Tensor) -> Tensor:
    r"""Late-interaction score :math:`\sum_t \max_u \langle x_{it}, y_{ju} \rangle`.

    Args:
        x: Token sets ``(n, T, D)``.
        y: Token sets ``(m, U, D)``.

    Returns:
        Shape ``(n, m)``. Padding tokens take part in the max; pass zero vectors for padding
        only when a zero similarity cannot win the max (e.g. after a ReLU), or trim them.
    """
    return torch.einsum("itd,jud->ijtu", x, y).amax(-1).sum(-1)


def log_cauchy(x: Tensor, y: Tensor) -> Tensor:
    r"""Log of the Student-t kernel with one degree of freedom, :math:`-\log(1 + d_{ij}^2)`.

    Used as a score, its softmax is t-SNE's heavy-tailed similarity
    :math:`(1 + d_{ij}^2)^{-1} / \sum_k (1 + d_{ik}^2)^{-1}`.
    """
    return -torch.log1p(sq_l2(x, y))


def rowwise(name: str, x: Tensor, y: Tensor, weight: Tensor | None = None) -> Tensor:
    """The similarity of row ``i`` of ``x`` with row ``i`` of ``y``, shape ``(n,)``."""
    if name == "dot":
        return (x * y).sum(-1)
    if name == "bilinear":
        assert weight is not None
        return ((x @ weight.to(x.dtype)) * y).sum(-1)
    if name == "neg_sq_l2":
        return -(x - y).pow(2).sum(-1)
    if name == "student_t":
        return -torch.log1p((x - y).pow(2).sum(-1))
    if name == "maxsim":
        return torch.einsum("itd,iud->itu", x, y).amax(-1).sum(-1)
    raise ValueError(f"unknown similarity {name!r}")


def pairwise(name: str, x: Tensor, y: Tensor, weight: Tensor | None = None) -> Tensor:
    """The ``(n, m)`` similarities of every row of ``x`` with every row of ``y``."""
    if name == "dot":
        return dot(x, y)
    if name == "bilinear":
        assert weight is not None
        return bilinear(x, y, weight)
    if name == "neg_sq_l2":
        return neg_sq_l2(x, y)
    if name == "student_t":
        return log_cauchy(x, y)
    if name == "maxsim":
        return maxsim(x, y)
    raise ValueError(f"unknown similarity {name!r}")


SIMILARITIES = ("dot", "bilinear", "neg_sq_l2", "student_t", "maxsim")
"""The names :func:`pairwise` and :func:`rowwise` accept."""
