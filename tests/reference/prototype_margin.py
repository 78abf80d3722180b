"""Float64 reference for ProtoECGNet's prototype contrast (Sethi et al., 2025)."""

from __future__ import annotations

import math

import torch
from torch import Tensor


def prototype_margin(
    prototypes: Tensor,
    class_identity: Tensor,
    *,
    cooccurrence: Tensor,
    normalize: bool = True,
    reduction: str = "mean",
) -> Tensor:
    """``-(sum W+ * S - sum W- * S) / sqrt(P)`` as in ``prototype_loss1d``, pair by pair.

    ``S_pq`` is the cosine clamped to ``[-1 + 1e-6, 1 - 1e-6]`` (``normalize=True``) or the
    dot product; ``M = A J A^T`` with ``A`` the multi-hot class identity and ``J`` the
    co-occurrence (a constant); ``W+ = M / (sum M + 1e-6)``, ``W- = (1 - M) / (sum(1 - M) +
    1e-6)``. Row ``p`` is ``-sqrt(P) sum_q (W+_pq - W-_pq) S_pq`` so the mean is the loss.

    Returns:
        A float64 scalar, or shape (P,) for ``reduction="none"``.
    """
    x = prototypes.to(torch.float64)
    if normalize:
        x = x / x.norm(dim=1, keepdim=True)
    a = class_identity.to(torch.float64)
    j = cooccurrence.to(torch.float64).detach()
    n, c = a.shape
    m = [
        [sum(a[p, u] * j[u, w] * a[q, w] for u in range(c) for w in range(c)) for q in range(n)]
        for p in range(n)
    ]
    positive_mass = sum(float(m[p][q]) for p in range(n) for q in range(n))
    negative_mass = sum(1.0 - float(m[p][q]) for p in range(n) for q in range(n))
    rows = []
    for p in range(n):
        total = 0.0 * x.sum()
        for q in range(n):
            s = x[p] @ x[q]
            if normalize:
                s = s.clamp(-1 + 1e-6, 1 - 1e-6)
            weight = float(m[p][q]) / (positive_mass + 1e-6) - (1.0 - float(m[p][q])) / (
                negative_mass + 1e-6
            )
            total = total + weight * s
        rows.append(-math.sqrt(n) * total)
    per_row = torch.stack(rows)
    if reduction == "none":
        return per_row
    return per_row.sum() if reduction == "sum" else per_row.mean()
