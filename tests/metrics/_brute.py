"""Brute-force metrics: plain Python loops over rows and pairs in float64, nothing from contrastkit.

Each function states the metric's definition as directly as possible; the tests hold the tiled
implementations to them.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor


def unit(x: Tensor) -> np.ndarray:
    """Rows scaled to unit length, float64 numpy."""
    a = x.double().numpy()
    return a / np.linalg.norm(a, axis=1, keepdims=True)


def rows(x: Tensor, normalize: bool) -> np.ndarray:
    return unit(x) if normalize else x.double().numpy()


def alignment(x: Tensor, y: Tensor, alpha: float, normalize: bool) -> float:
    a, b = rows(x, normalize), rows(y, normalize)
    total = 0.0
    for i in range(a.shape[0]):
        total += math.sqrt(sum((a[i, d] - b[i, d]) ** 2 for d in range(a.shape[1]))) ** alpha
    return total / a.shape[0]


def uniformity(x: Tensor, t: float, normalize: bool) -> float:
    a = rows(x, normalize)
    n = a.shape[0]
    total = 0.0
    for i in range(n):
        for j in range(n):
            if i != j:
                total += math.exp(-t * float(((a[i] - a[j]) ** 2).sum()))
    return math.log(total / (n * (n - 1)))


def tolerance(x: Tensor, labels: Tensor, normalize: bool) -> float:
    a = rows(x, normalize)
    y = labels.tolist()
    sims = [
        float(a[i] @ a[j]) for i in range(len(y)) for j in range(len(y)) if i != j and y[i] == y[j]
    ]
    return sum(sims) / len(sims)


def effective_rank(x: Tensor, center: bool) -> float:
    a = x.double().numpy()
    if center:
        a = a - a.mean(0, keepdims=True)
    sigma = np.linalg.svd(a, compute_uv=False)
    if sigma.sum() == 0:
        return 0.0
    p = sigma / sigma.sum()
    p = p[p > 1e-12]
    return math.exp(-float((p * np.log(p)).sum()))


def knn_predict(
    bank: Tensor,
    bank_labels: Tensor,
    query: Tensor,
    k: int,
    temperature: float,
    weighting: str,
    exclude_self: bool,
) -> list[int]:
    b, q = unit(bank), unit(query)
    yb = bank_labels.tolist()
    out = []
    for i in range(q.shape[0]):
        cand = [(float(q[i] @ b[j]), j) for j in range(b.shape[0]) if not (exclude_self and i == j)]
        cand.sort(key=lambda sj: -sj[0])
        votes: dict[int, float] = {}
        for s, j in cand[:k]:
            w = math.exp(s / temperature) if weighting == "exp" else 1.0
            votes[yb[j]] = votes.get(yb[j], 0.0) + w
        best = max(votes.values())
        out.append(min(c for c, w in votes.items() if w == best))
    return out


def ranking(
    query: Tensor, gallery: Tensor, relevant: list[set[int]], normalize: bool, exclude_self: bool
) -> list[dict[str, float] | None]:
    """Per query: the first rank, RR, AP and the ranks of the relevant items (None: no relevant).

    Rank of item j: the number of candidates l with s_l >= s_j (ties pessimistic).
    """
    q, g = rows(query, normalize), rows(gallery, normalize)
    out: list[dict[str, float] | None] = []
    for i in range(q.shape[0]):
        cand = [j for j in range(g.shape[0]) if not (exclude_self and i == j)]
        s = {j: float(q[i] @ g[j]) for j in cand}
        rel = [j for j in cand if j in relevant[i]]
        if not rel:
            out.append(None)
            continue
        rank = {j: sum(1 for c in cand if s[c] >= s[j]) for j in rel}
        precisions = [sum(1 for r in rel if s[r] >= s[j]) / rank[j] for j in rel]
        first = min(rank.values())
        out.append(
            {
                "first": first,
                "rr": 1.0 / first,
                "ap": sum(precisions) / len(rel),
                "ranks": sorted(rank.values()),
                "n": len(rel),
            }
        )
    return out


def recall(per: dict[str, float], k: int, mode: str) -> float:
    ranks = per["ranks"]
    assert isinstance(ranks, list)
    if mode == "hit":
        return 1.0 if per["first"] <= k else 0.0
    return sum(1 for r in ranks if r <= k) / per["n"]


def roc_auc(pos: list[float], neg: list[float]) -> float:
    total = 0.0
    for p in pos:
        for n in neg:
            total += 1.0 if p > n else 0.5 if p == n else 0.0
    return total / (len(pos) * len(neg))


def as_sets(
    n_query: int,
    n_gallery: int,
    positives: Tensor | None = None,
    query_labels: Tensor | None = None,
    gallery_labels: Tensor | None = None,
    relevant: list[list[int]] | None = None,
) -> list[set[int]]:
    """Relevance in every compact form, as one set of gallery indices per query."""
    if positives is not None:
        return [{int(p)} for p in positives]
    if relevant is not None:
        return [set(r) for r in relevant]
    assert query_labels is not None
    assert gallery_labels is not None
    return [
        {j for j in range(n_gallery) if int(gallery_labels[j]) == int(query_labels[i])}
        for i in range(n_query)
    ]


def dense_scores(query: Tensor, gallery: Tensor, normalize: bool) -> np.ndarray:
    return rows(query, normalize) @ rows(gallery, normalize).T


def random_sets(gen: torch.Generator, n_query: int, n_gallery: int, most: int) -> list[list[int]]:
    """Between 0 and ``most`` relevant gallery indices per query (some queries get none)."""
    out = []
    for _ in range(n_query):
        size = int(torch.randint(0, most + 1, (1,), generator=gen))
        out.append(torch.randperm(n_gallery, generator=gen)[:size].tolist())
    return out
