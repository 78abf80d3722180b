"""Float64 reference for SupCon (Khosla et al., 2020, "Supervised Contrastive Learning")."""

from __future__ import annotations

import torch
from torch import Tensor


def supcon(
    embeddings: Tensor,
    labels: Tensor,
    *,
    temperature: float = 0.1,
    variant: str = "out",
    normalize: bool = True,
    reduction: str = "mean",
) -> Tensor:
    """Supervised contrastive loss (eqs. 2 and 3 of the paper), densely in float64.

    With ``s_ij = <z_i, z_j> / temperature``, candidates ``A(i) = {j != i}`` and positives
    ``P(i) = {p != i : y_p == y_i}``:

        out: l_i = -(1 / |P(i)|) sum_{p in P(i)} log(exp(s_ip) / sum_{j in A(i)} exp(s_ij))
        in:  l_i = -log(sum_{p in P(i)} exp(s_ip) / sum_{j in A(i)} exp(s_ij))

    Anchors with empty ``P(i)`` contribute 0 and are left out of the mean (which is 0.0
    when no anchor has a positive).

    Args:
        embeddings: Embeddings, shape (N, D).
        labels: Integer class labels, shape (N,).
        temperature: Softmax temperature.
        variant: ``"out"`` (average outside the log) or ``"in"`` (inside the log).
        normalize: L2-normalize rows before the dot products.
        reduction: ``"mean"`` (over anchors with a positive), ``"sum"`` or ``"none"``.

    Returns:
        A float64 scalar, or shape (N,) for ``reduction="none"`` (0 for excluded anchors).
    """
    z = embeddings.to(torch.float64)
    if normalize:
        z = z / z.norm(dim=1, keepdim=True)
    y = labels.tolist()
    n = z.shape[0]
    terms = []
    with_positive = 0
    for i in range(n):
        row = (z[i] @ z.T) / temperature  # s_ij for all j
        positives = [p for p in range(n) if p != i and y[p] == y[i]]
        if not positives:
            terms.append(0.0 * row.sum())  # zero, but still part of the graph
            continue
        with_positive += 1
        candidates = [j for j in range(n) if j != i]
        log_denominator = torch.logsumexp(row[candidates], dim=0)
        if variant == "out":
            terms.append(-(row[positives] - log_denominator).mean())
        else:
            terms.append(-(torch.logsumexp(row[positives], dim=0) - log_denominator))
    per_anchor = torch.stack(terms)
    if reduction == "none":
        return per_anchor
    if reduction == "sum":
        return per_anchor.sum()
    if with_positive == 0:
        return per_anchor.sum()  # 0.0
    return per_anchor.sum() / with_positive
