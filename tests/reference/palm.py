"""Float64 reference for PALM (Lu et al., 2024, "Learning with Mixture of Prototypes for OOD")."""

from __future__ import annotations

import torch
from torch import Tensor


def palm(
    embeddings: Tensor,
    labels: Tensor,
    prototypes: Tensor,
    *,
    temperature: float = 0.1,
    prototype_temperature: float = 0.5,
    lambda_pcon: float = 1.0,
    k: int = 5,
    epsilon: float = 0.05,
    sinkhorn_iterations: int = 3,
    normalize: bool = True,
    reduction: str = "mean",
) -> Tensor:
    """PALM's MLE term plus its prototype contrast, transcribed from the authors' code.

    Prototype ``c * M + m`` of the flattened ``(C, M, D)`` bank belongs to class ``c``.
    Sinkhorn-Knopp as in the authors' code (exp domain, prototypes then samples), no
    gradient; each anchor keeps its ``k`` largest assignments among its class's prototypes,
    normalized to sum 1, as targets of a cross-entropy over all prototypes (detached). The
    prototype contrast is SupCon (positives averaged outside the log) over the prototypes at
    ``prototype_temperature``; a prototype without positive keeps its log-sum-exp; a single
    prototype gives 0. The batch-level contrast is added to every row.

    Returns:
        A float64 scalar, or shape (N,) for ``reduction="none"``.
    """
    z = embeddings.to(torch.float64)
    mu = prototypes.to(torch.float64)
    if normalize:
        z = z / z.norm(dim=1, keepdim=True)
        mu = mu / mu.norm(dim=-1, keepdim=True)
    n_classes, per_class, dim = mu.shape
    total = n_classes * per_class
    flat = mu.reshape(total, dim)
    owner = [p // per_class for p in range(total)]
    n = z.shape[0]
    with torch.no_grad():
        q = torch.exp(z @ flat.T / epsilon).T  # (K, N), as in the authors' code
        q = q / q.sum()
        for _ in range(sinkhorn_iterations):
            q = q / q.sum(dim=1, keepdim=True) / total  # each prototype: mass 1 / K
            q = q / q.sum(dim=0, keepdim=True) / n  # each sample: mass 1 / N
        q = (q * n).T  # (N, K)
    y = labels.tolist()
    constant = flat.detach()
    terms = []
    for i in range(n):
        own = [p for p in range(total) if owner[p] == y[i]]
        ranked = sorted(own, key=lambda p, i=i: -float(q[i, p]))
        chosen = ranked[:k] if k > 0 else ranked
        mass = sum(float(q[i, p]) for p in chosen)
        logits = z[i] @ constant.T / temperature
        target = sum(float(q[i, p]) / mass * logits[p] for p in chosen)
        terms.append(torch.logsumexp(logits, 0) - target)
    per_row = torch.stack(terms)
    if total > 1:
        contrast = []
        for a in range(total):
            row = flat[a] @ flat.T / prototype_temperature
            others = [b for b in range(total) if b != a]
            positives = [b for b in others if owner[b] == owner[a]]
            positive = row[positives].mean() if positives else 0.0 * row.sum()
            contrast.append(torch.logsumexp(row[others], 0) - positive)
        pc = torch.stack(contrast).mean()
    else:
        pc = 0.0 * flat.sum()
    per_row = per_row + lambda_pcon * pc
    if reduction == "none":
        return per_row
    return per_row.sum() if reduction == "sum" else per_row.mean()
