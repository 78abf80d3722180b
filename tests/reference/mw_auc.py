"""Float64 reference for the MW loss (Sheikholeslami et al., 2025, arXiv:2510.00137)."""

from __future__ import annotations

import torch
from torch import Tensor


def _embed64(x: Tensor, normalize: bool) -> Tensor:
    """Casts to float64 (differentiably) and optionally L2-normalizes each row."""
    x = x.to(torch.float64)
    if normalize:
        x = x / x.norm(dim=1, keepdim=True)
    return x


def mw_auc(
    query: Tensor,
    doc: Tensor,
    *,
    temperature: float | Tensor = 1.0,
    scope: str = "batch",
    normalize: bool = True,
    reduction: str = "mean",
) -> Tensor:
    """Mann-Whitney (AUC) loss, a softplus over every (positive, negative) pair, in float64.

    From "Optimizing What Matters: AUC-Driven Learning for Robust Neural Retrieval"
    (arXiv:2510.00137): binary cross-entropy on score differences, softplus(s_neg - s_pos).

    With ``s_ij = <q_i, d_j>`` (cosine similarity when ``normalize``), positives ``s_ii``
    (i < N) and negatives ``(i, j)`` with ``j != i``, ``j < M``:

        batch: l_i = (1 / (N (M - 1))) sum_{p < N} sum_{j != i} softplus((s_ij - s_pp) / t)
               (query i's negatives against every positive of the batch)
        query: l_i = (1 / (M - 1)) sum_{j != i} softplus((s_ij - s_ii) / t)

    The loss is ``mean_i l_i`` (batch: the mean over all (positive, negative) pairs of the
    batch) and 0 when ``M == 1`` (no negatives).

    Args:
        query: Queries, shape (N, D).
        doc: Documents, shape (M, D) with M >= N; doc i is the positive of query i and
            rows N..M-1 are extra negatives.
        temperature: Divides the score differences (float or 0-dim tensor).
        scope: ``"batch"`` (all pairs of the batch) or ``"query"`` (per query).
        normalize: L2-normalize rows before the dot products.
        reduction: ``"mean"`` (over the N queries), ``"sum"`` or ``"none"``.

    Returns:
        A float64 scalar, or shape (N,) for ``reduction="none"`` (the l's).
    """
    q = _embed64(query, normalize)
    d = _embed64(doc, normalize)
    t = temperature.to(torch.float64) if isinstance(temperature, Tensor) else temperature
    n, m = q.shape[0], d.shape[0]

    s = [[(q[i] * d[j]).sum() for j in range(m)] for i in range(n)]  # s_ij, pair by pair
    positives = torch.stack([s[p][p] for p in range(n)])
    terms = []
    for i in range(n):
        l_i = 0.0 * (q[i].sum() + d.sum() + positives.sum() / t)  # in the graph when M == 1
        if m > 1:
            negatives = torch.stack([s[i][j] for j in range(m) if j != i])  # query i's
            if scope == "batch":  # every positive of the batch against them
                diff = negatives[:, None] - positives[None, :]
            else:
                diff = negatives - s[i][i]
            # mean: 1 / ((M - 1) N) for batch, 1 / (M - 1) for query
            l_i = l_i + torch.nn.functional.softplus(diff / t).mean()
        terms.append(l_i)
    per_anchor = torch.stack(terms)
    if reduction == "none":
        return per_anchor
    if reduction == "sum":
        return per_anchor.sum()
    return per_anchor.sum() / n
