"""Float64 references for alignment and uniformity (Wang & Isola, 2020)."""

from __future__ import annotations

import torch
from torch import Tensor


def _unit(x: Tensor, normalize: bool) -> Tensor:
    x = x.to(torch.float64)
    return x / x.norm(dim=1, keepdim=True) if normalize else x


def uniformity(
    embeddings: Tensor,
    *,
    t: float = 2.0,
    normalize: bool = True,
    reduction: str = "mean",
) -> Tensor:
    """Uniformity, pair by pair in float64.

        mean: log( 1 / (N (N - 1)) sum_{i != j} exp(-t |z_i - z_j|^2) )
        none: l_i = log( 1 / (N - 1) sum_{j != i} exp(-t |z_i - z_j|^2) ),  sum: sum_i l_i

    One row: 0.

    Args:
        embeddings: Shape (N, D).
        t: The Gaussian potential's scale.
        normalize: L2-normalize rows first.
        reduction: ``"mean"``, ``"sum"`` or ``"none"``.
    """
    z = _unit(embeddings, normalize)
    n = z.shape[0]
    if n == 1:
        zero = 0.0 * z.sum()
        return zero.reshape(1) if reduction == "none" else zero
    rows = []
    every = []
    for i in range(n):
        row = [torch.exp(-t * ((z[i] - z[j]) ** 2).sum()) for j in range(n) if j != i]
        every.extend(row)
        rows.append(torch.log(torch.stack(row).mean()))
    if reduction == "mean":
        return torch.log(torch.stack(every).sum() / (n * (n - 1)))
    per_row = torch.stack(rows)
    return per_row if reduction == "none" else per_row.sum()


def alignment(
    x: Tensor,
    y: Tensor,
    *,
    alpha: float = 2.0,
    normalize: bool = True,
    reduction: str = "mean",
) -> Tensor:
    """Alignment in float64: l_i = |x_i - y_i|^alpha, averaged (or summed) over rows.

    Args:
        x: Shape (N, D).
        y: Shape (N, D).
        alpha: The exponent.
        normalize: L2-normalize rows first.
        reduction: ``"mean"``, ``"sum"`` or ``"none"``.
    """
    a, b = _unit(x, normalize), _unit(y, normalize)
    per_row = torch.stack([((a[i] - b[i]) ** 2).sum() ** (alpha / 2) for i in range(a.shape[0])])
    if reduction == "none":
        return per_row
    return per_row.sum() if reduction == "sum" else per_row.mean()
