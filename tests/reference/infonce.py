"""Float64 reference for InfoNCE (van den Oord et al., 2018, "Representation Learning with CPC")."""

from __future__ import annotations

import torch
from torch import Tensor


def _embed64(x: Tensor, normalize: bool) -> Tensor:
    """Casts to float64 (differentiably) and optionally L2-normalizes each row."""
    x = x.to(torch.float64)
    if normalize:
        x = x / x.norm(dim=1, keepdim=True)
    return x


def infonce(
    query: Tensor,
    key: Tensor,
    *,
    temperature: float = 0.07,
    symmetric: bool = False,
    normalize: bool = True,
    weights: Tensor | None = None,
    reduction: str = "mean",
) -> Tensor:
    """InfoNCE, transcribed densely in float64.

    With s_ij = <q_i, k_j> / temperature (cosine similarity when ``normalize``), anchor
    ``i`` of ``N`` has the term

        l_i = -s_ii + log sum_{j < M} exp(s_ij),

    so rows ``N..M-1`` of ``key`` act as extra negatives. With ``symmetric`` (``M == N``)
    the term is ``0.5 * (l_i + l'_i)`` with ``l'_i = -s_ii + log sum_{j < N} exp(s_ji)``.
    ``weights`` multiply each anchor's term; ``"mean"`` divides the weighted sum by ``N``.

    Args:
        query: Anchors, shape (N, D).
        key: Positives (row i for query i) followed by extra negatives, shape (M, D).
        temperature: Softmax temperature.
        symmetric: Also average the key-to-query direction (needs M == N).
        normalize: L2-normalize rows before the dot products.
        weights: Optional per-anchor weights, shape (N,).
        reduction: ``"mean"``, ``"sum"`` or ``"none"``.

    Returns:
        A float64 scalar, or shape (N,) for ``reduction="none"``.
    """
    q = _embed64(query, normalize)
    k = _embed64(key, normalize)
    n = q.shape[0]
    terms = []
    for i in range(n):
        row = (q[i] @ k.T) / temperature  # s_ij for all j < M
        l_i = -row[i] + torch.logsumexp(row, dim=0)
        if symmetric:
            col = (q @ k[i]) / temperature  # s_ji for all j < N
            l_t = -col[i] + torch.logsumexp(col, dim=0)
            l_i = 0.5 * (l_i + l_t)
        terms.append(l_i)
    per_anchor = torch.stack(terms)
    if weights is not None:
        per_anchor = per_anchor * weights.to(torch.float64)
    if reduction == "none":
        return per_anchor
    if reduction == "sum":
        return per_anchor.sum()
    return per_anchor.sum() / n
