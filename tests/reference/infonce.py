"""Float64 reference for InfoNCE (van den Oord et al., 2018, "Representation Learning with CPC")."""

from __future__ import annotations

import torch
from torch import Tensor


def _embed64(x: Tensor, normalize: bool) -> Tensor:
    """Casts to float64 (differentiably) and optionally L2-normalizes each row (or token)."""
    x = x.to(torch.float64)
    if normalize:
        x = x / x.norm(dim=-1, keepdim=True)
    return x


def _similarity(name: str, x: Tensor, y: Tensor, weight: Tensor | None) -> Tensor:
    """sim(x, y) of one query row (or token set) and one key row, from its definition."""
    if name == "dot":
        return (x * y).sum()
    if name == "bilinear":
        assert weight is not None
        return x @ weight.to(torch.float64) @ y
    if name == "neg_sq_l2":
        return -((x - y) ** 2).sum()
    if name == "student_t":
        return -torch.log(1 + ((x - y) ** 2).sum())
    if name == "maxsim":  # each query token's best key token, summed over query tokens
        return torch.stack([torch.stack([(t * u).sum() for u in y]).max() for t in x]).sum()
    raise ValueError(name)


def infonce(
    query: Tensor,
    key: Tensor,
    *,
    temperature: float = 0.07,
    symmetric: bool = False,
    normalize: bool = True,
    weights: Tensor | None = None,
    similarity: str = "dot",
    weight: Tensor | None = None,
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
        similarity: ``<q, k>`` is replaced by ``q W k`` ("bilinear", ``weight`` W),
            ``-|q - k|^2`` ("neg_sq_l2"), ``-log(1 + |q - k|^2)`` ("student_t") or
            ``sum_t max_u <q_t, k_u>`` over token sets (N, T, D) / (M, U, D) ("maxsim").
        weight: The bilinear matrix, shape (D_q, D_k).
        reduction: ``"mean"``, ``"sum"`` or ``"none"``.

    Returns:
        A float64 scalar, or shape (N,) for ``reduction="none"``.
    """
    q = _embed64(query, normalize)
    k = _embed64(key, normalize)
    n, m = q.shape[0], k.shape[0]
    s = [
        [_similarity(similarity, q[i], k[j], weight) / temperature for j in range(m)]
        for i in range(n)
    ]
    terms = []
    for i in range(n):
        row = torch.stack(s[i])  # s_ij for all j < M
        l_i = -row[i] + torch.logsumexp(row, dim=0)
        if symmetric:
            col = torch.stack([s[j][i] for j in range(n)])  # s_ji for all j < N
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
