"""Float64 reference for KoLeo (Sablayrolles et al., 2019; DINOv2's regularizer)."""

from __future__ import annotations

import torch
from torch import Tensor


def koleo(
    embeddings: Tensor,
    *,
    eps: float = 1e-8,
    normalize: bool = True,
    reduction: str = "mean",
) -> Tensor:
    """KoLeo, pair by pair in float64.

        d_i = min_{j != i} |z_i - z_j|,   l_i = -log(d_i + eps)

    One row: 0. The minimum is taken over the distances themselves (the gradient flows
    through the chosen pair).

    Args:
        embeddings: Shape (N, D).
        eps: Added to the distance inside the log.
        normalize: L2-normalize rows first.
        reduction: ``"mean"``, ``"sum"`` or ``"none"``.

    Returns:
        A float64 scalar, or shape (N,) for ``reduction="none"``.
    """
    z = embeddings.to(torch.float64)
    if normalize:
        z = z / z.norm(dim=1, keepdim=True)
    n = z.shape[0]
    terms = []
    for i in range(n):
        dists = [((z[i] - z[j]) ** 2).sum().sqrt() for j in range(n) if j != i]
        if not dists:
            terms.append(0.0 * z[i].sum())
            continue
        terms.append(-torch.log(torch.stack(dists).min() + eps))
    per_row = torch.stack(terms)
    if reduction == "none":
        return per_row
    return per_row.sum() if reduction == "sum" else per_row.mean()
