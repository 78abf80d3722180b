"""Float64 reference for NT-Xent (Chen et al., 2020, "A Simple Framework ... SimCLR")."""

from __future__ import annotations

import torch
from torch import Tensor


def ntxent(
    z1: Tensor,
    z2: Tensor,
    *,
    temperature: float = 0.5,
    normalize: bool = True,
    reduction: str = "mean",
) -> Tensor:
    """NT-Xent over the 2N views, transcribed densely in float64.

    With ``z = cat(z1, z2)`` (2N rows) and ``s_kj = <z_k, z_j> / temperature``, anchor ``k``
    has positive ``partner(k) = (k + N) mod 2N`` and

        l_k = -s_{k, partner(k)} + log sum_{j != k} exp(s_kj).

    Args:
        z1: First views, shape (N, D).
        z2: Second views, shape (N, D).
        temperature: Softmax temperature.
        normalize: L2-normalize rows before the dot products.
        reduction: ``"mean"`` (over 2N anchors), ``"sum"`` or ``"none"``.

    Returns:
        A float64 scalar, or shape (2N,) for ``reduction="none"``.
    """
    z = torch.cat([z1, z2]).to(torch.float64)
    if normalize:
        z = z / z.norm(dim=1, keepdim=True)
    two_n = z.shape[0]
    n = two_n // 2
    terms = []
    for k in range(two_n):
        row = (z[k] @ z.T) / temperature  # s_kj for all j
        partner = (k + n) % two_n
        candidates = torch.cat([row[:k], row[k + 1 :]])  # j != k
        terms.append(-row[partner] + torch.logsumexp(candidates, dim=0))
    per_anchor = torch.stack(terms)
    if reduction == "none":
        return per_anchor
    if reduction == "sum":
        return per_anchor.sum()
    return per_anchor.mean()
