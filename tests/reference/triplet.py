"""Float64 reference for the triplet margin loss (Schroff et al., 2015, "FaceNet")."""

from __future__ import annotations

import torch
from torch import Tensor


def _embed64(x: Tensor, normalize: bool) -> Tensor:
    """Casts to float64 (differentiably) and optionally L2-normalizes each row."""
    x = x.to(torch.float64)
    if normalize:
        x = x / x.norm(dim=1, keepdim=True)
    return x


def triplet(
    embeddings: Tensor,
    labels: Tensor,
    *,
    margin: float = 0.05,
    normalize: bool = True,
    reduction: str = "mean",
) -> Tensor:
    """Triplet margin loss over all triplets of the batch, densely in float64.

    In the form of pytorch-metric-learning's ``TripletMarginLoss`` (all triplets,
    ``AvgNonZeroReducer``). With the (non-squared) L2 distance ``d_ij = ||z_i - z_j||_2``,
    every triplet ``(a, p, n)`` with ``y_a == y_p``, ``a != p`` and ``y_n != y_a`` has

        t_apn = relu(d_ap - d_an + margin)

        mean = sum t / #(t > 0)   (0 when no term is non-zero; the count is a constant)

    ``"sum"`` adds every term; ``"none"`` gives each anchor the sum of its triplets' terms.

    Args:
        embeddings: Embeddings, shape (N, D).
        labels: Integer class labels, shape (N,).
        margin: Required gap between anchor-negative and anchor-positive distances.
        normalize: L2-normalize rows before the distances.
        reduction: ``"mean"`` (over non-zero terms), ``"sum"`` or ``"none"``.

    Returns:
        A float64 scalar, or shape (N,) for ``reduction="none"`` (0 for anchors without
        triplets).
    """
    z = _embed64(embeddings, normalize)
    y = labels.tolist()
    n = z.shape[0]

    def dist(i: int, j: int) -> Tensor:
        return ((z[i] - z[j]) ** 2).sum().sqrt()

    per_anchor_terms = []
    nonzero = 0
    for a in range(n):
        l_a = 0.0 * z[a].sum()  # zero, but in the graph
        negatives = [k for k in range(n) if y[k] != y[a]]
        if negatives:
            d_an = torch.stack([dist(a, k) for k in negatives])
            for p in range(n):
                if p == a or y[p] != y[a]:
                    continue
                terms = torch.relu(dist(a, p) - d_an + margin)  # t_apn for every negative n
                nonzero += int((terms > 0).sum())
                l_a = l_a + terms.sum()
        per_anchor_terms.append(l_a)
    per_anchor = torch.stack(per_anchor_terms)
    if reduction == "none":
        return per_anchor
    if reduction == "sum":
        return per_anchor.sum()
    if nonzero == 0:
        return per_anchor.sum()  # 0.0
    return per_anchor.sum() / nonzero
