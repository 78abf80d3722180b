"""Float64 reference for the margin contrastive loss (Hadsell, Chopra & LeCun, 2006, "DrLIM")."""

from __future__ import annotations

import torch
from torch import Tensor


def _embed64(x: Tensor, normalize: bool) -> Tensor:
    """Casts to float64 (differentiably) and optionally L2-normalizes each row."""
    x = x.to(torch.float64)
    if normalize:
        x = x / x.norm(dim=1, keepdim=True)
    return x


def contrastive_margin(
    embeddings: Tensor,
    labels: Tensor,
    *,
    pos_margin: float = 0.0,
    neg_margin: float = 1.0,
    normalize: bool = True,
    reduction: str = "mean",
) -> Tensor:
    """Contrastive loss with margins over all ordered pairs, densely in float64.

    From "Dimensionality Reduction by Learning an Invariant Mapping", in the form of
    pytorch-metric-learning's ``ContrastiveLoss``. With the (non-squared) L2 distance
    ``d_ij = ||z_i - z_j||_2``, over ordered pairs ``(i, j)``, ``i != j``:

        pos terms: relu(d_ip - pos_margin) for y_i == y_p
        neg terms: relu(neg_margin - d_in) for y_i != y_n

        mean = (sum pos terms) / #(pos terms > 0) + (sum neg terms) / #(neg terms > 0)

    each part being 0 when it has no non-zero term (PML's ``AvgNonZeroReducer`` per
    sub-loss; the counts are constants). ``"sum"`` adds every term.

    Args:
        embeddings: Embeddings, shape (N, D).
        labels: Integer class labels, shape (N,).
        pos_margin: Distance below which positive pairs cost nothing.
        neg_margin: Distance above which negative pairs cost nothing.
        normalize: L2-normalize rows before the distances.
        reduction: ``"mean"`` (as above), ``"sum"`` or ``"none"``.

    Returns:
        A float64 scalar, or shape (N,) for ``reduction="none"`` (per anchor, the sum of its
        pos and neg terms).
    """
    z = _embed64(embeddings, normalize)
    y = labels.tolist()
    n = z.shape[0]

    def dist(i: int, j: int) -> Tensor:
        return ((z[i] - z[j]) ** 2).sum().sqrt()

    per_anchor_terms = []
    pos_sum = neg_sum = 0.0 * z.sum()  # zero, but in the graph
    pos_nonzero = neg_nonzero = 0
    for i in range(n):
        l_i = 0.0 * z[i].sum()
        for j in range(n):
            if j == i:
                continue
            if y[j] == y[i]:
                term = torch.relu(dist(i, j) - pos_margin)
                pos_sum = pos_sum + term
                pos_nonzero += int(term.item() > 0)
            else:
                term = torch.relu(neg_margin - dist(i, j))
                neg_sum = neg_sum + term
                neg_nonzero += int(term.item() > 0)
            l_i = l_i + term
        per_anchor_terms.append(l_i)
    per_anchor = torch.stack(per_anchor_terms)
    if reduction == "none":
        return per_anchor
    if reduction == "sum":
        return per_anchor.sum()
    pos_part = pos_sum / pos_nonzero if pos_nonzero > 0 else pos_sum  # pos_sum is 0 then
    neg_part = neg_sum / neg_nonzero if neg_nonzero > 0 else neg_sum
    return pos_part + neg_part
