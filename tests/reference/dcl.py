"""Float64 references for DCL and DCLW (Yeh et al., 2022, "Decoupled Contrastive Learning")."""

from __future__ import annotations

import torch
from torch import Tensor


def _dcl_direction(a: Tensor, b: Tensor, temperature: float, positive_weight: Tensor) -> Tensor:
    """Per-anchor decoupled terms for anchors ``a`` whose positives are the rows of ``b``.

    ``l_i = -w_i s(a_i, b_i) + log(sum_{j != i} exp(s(a_i, b_j)) + sum_{j != i} exp(s(a_i, a_j)))``

    With a single item there is no negative: the anchor contributes 0 (and is not counted).
    """
    n = a.shape[0]
    terms = []
    for i in range(n):
        row_ab = (a[i] @ b.T) / temperature  # s(a_i, b_j) for all j
        row_aa = (a[i] @ a.T) / temperature  # s(a_i, a_j) for all j
        negatives = torch.cat([row_ab[:i], row_ab[i + 1 :], row_aa[:i], row_aa[i + 1 :]])
        if negatives.numel() == 0:
            terms.append(0.0 * row_ab.sum())
            continue
        terms.append(-positive_weight[i] * row_ab[i] + torch.logsumexp(negatives, dim=0))
    return torch.stack(terms)


def _reduce(per_anchor: Tensor, reduction: str) -> Tensor:
    """Applies ``"none"`` / ``"sum"`` / ``"mean"`` to the (2N,) per-anchor terms."""
    if reduction == "none":
        return per_anchor
    if reduction == "sum":
        return per_anchor.sum()
    if per_anchor.shape[0] == 2:  # a single item: no anchor has a negative, the mean is 0
        return per_anchor.sum() * 0.0
    return per_anchor.mean()


def _embed64(z1: Tensor, z2: Tensor, normalize: bool) -> tuple[Tensor, Tensor]:
    """Casts both views to float64 (differentiably), optionally L2-normalizing rows."""
    a = z1.to(torch.float64)
    b = z2.to(torch.float64)
    if normalize:
        a = a / a.norm(dim=1, keepdim=True)
        b = b / b.norm(dim=1, keepdim=True)
    return a, b


def dcl(
    z1: Tensor,
    z2: Tensor,
    *,
    temperature: float = 0.1,
    normalize: bool = True,
    reduction: str = "mean",
) -> Tensor:
    """Decoupled contrastive loss (eq. 6 of the paper, both views as anchors), in float64.

    With ``s(u, v) = <u, v> / temperature``, the z1 -> z2 direction is

        l_i = -s(z1_i, z2_i)
              + log(sum_{j != i} exp(s(z1_i, z2_j)) + sum_{j != i} exp(s(z1_i, z1_j)))

    and the z2 -> z1 direction swaps the roles; the positive is not in the denominator.

    Args:
        z1: First views, shape (N, D).
        z2: Second views, shape (N, D).
        temperature: Softmax temperature.
        normalize: L2-normalize rows before the dot products.
        reduction: ``"mean"`` (over 2N terms), ``"sum"`` or ``"none"``.

    Returns:
        A float64 scalar, or shape (2N,) = cat(z1 -> z2, z2 -> z1) for ``"none"``.
    """
    a, b = _embed64(z1, z2, normalize)
    ones = torch.ones(a.shape[0], dtype=torch.float64)
    per_anchor = torch.cat(
        [_dcl_direction(a, b, temperature, ones), _dcl_direction(b, a, temperature, ones)]
    )
    return _reduce(per_anchor, reduction)


def dclw(
    z1: Tensor,
    z2: Tensor,
    *,
    temperature: float = 0.1,
    sigma: float = 0.5,
    normalize: bool = True,
    reduction: str = "mean",
) -> Tensor:
    """Weighted DCL: the positive term carries a negative von Mises-Fisher weight, in float64.

    As :func:`dcl`, with ``-s(z1_i, z2_i)`` (and ``-s(z2_i, z1_i)``) multiplied by

        w_i = 2 - N * exp(<z1_i, z2_i> / sigma) / sum_k exp(<z1_k, z2_k> / sigma),

    computed on the (normalized, if ``normalize``) embeddings and treated as a constant.

    Args:
        z1: First views, shape (N, D).
        z2: Second views, shape (N, D).
        temperature: Softmax temperature.
        sigma: Scale of the von Mises-Fisher weighting.
        normalize: L2-normalize rows before the dot products.
        reduction: ``"mean"`` (over 2N terms), ``"sum"`` or ``"none"``.

    Returns:
        A float64 scalar, or shape (2N,) = cat(z1 -> z2, z2 -> z1) for ``"none"``.
    """
    a, b = _embed64(z1, z2, normalize)
    n = a.shape[0]
    with torch.no_grad():
        positive_sim = (a * b).sum(dim=1) / sigma
        w = 2 - n * torch.softmax(positive_sim, dim=0)
    per_anchor = torch.cat(
        [_dcl_direction(a, b, temperature, w), _dcl_direction(b, a, temperature, w)]
    )
    return _reduce(per_anchor, reduction)
