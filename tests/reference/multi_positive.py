"""Float64 reference for the multi-positive (per positive pair) contrastive loss."""

from __future__ import annotations

import torch
from torch import Tensor


def multi_positive(
    embeddings: Tensor,
    labels: Tensor,
    *,
    temperature: float = 0.1,
    normalize: bool = True,
    reduction: str = "mean",
) -> Tensor:
    """One softmax term per positive pair, negatives only in the denominator, in float64.

    With ``s_ij = <z_i, z_j> / temperature``, every positive pair ``(i, p)`` (``p != i``,
    ``y_p == y_i``) has

        l_ip = -log(exp(s_ip) / (exp(s_ip) + sum_{n : y_n != y_i} exp(s_in))).

    This is the label-aware NT-Xent of pytorch-metric-learning: the other positives of
    ``i`` appear in neither the numerator nor the denominator of ``l_ip``.

    Args:
        embeddings: Embeddings, shape (N, D).
        labels: Integer class labels, shape (N,).
        temperature: Softmax temperature.
        normalize: L2-normalize rows before the dot products.
        reduction: ``"mean"`` over all positive pairs (0.0 if none), ``"sum"`` over all
            pairs, or ``"none"`` for per-anchor sums over the anchor's pairs.

    Returns:
        A float64 scalar, or shape (N,) for ``reduction="none"``.
    """
    z = embeddings.to(torch.float64)
    if normalize:
        z = z / z.norm(dim=1, keepdim=True)
    y = labels.tolist()
    n = z.shape[0]
    per_anchor = []
    num_pairs = 0
    for i in range(n):
        row = (z[i] @ z.T) / temperature  # s_ij for all j
        negatives = [j for j in range(n) if y[j] != y[i]]
        anchor_total = 0.0 * row.sum()  # zero, but still part of the graph
        for p in range(n):
            if p == i or y[p] != y[i]:
                continue
            num_pairs += 1
            logits = torch.cat([row[p : p + 1], row[negatives]])
            anchor_total = anchor_total - (row[p] - torch.logsumexp(logits, dim=0))
        per_anchor.append(anchor_total)
    totals = torch.stack(per_anchor)
    if reduction == "none":
        return totals
    if reduction == "sum":
        return totals.sum()
    if num_pairs == 0:
        return totals.sum()  # 0.0
    return totals.sum() / num_pairs
