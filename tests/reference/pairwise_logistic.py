"""Float64 reference for the pairwise logistic loss (Sun et al., 2020, "Circle Loss", eq. 1)."""

from __future__ import annotations

import torch
from torch import Tensor


def _embed64(x: Tensor, normalize: bool) -> Tensor:
    """Casts to float64 (differentiably) and optionally L2-normalizes each row."""
    x = x.to(torch.float64)
    if normalize:
        x = x / x.norm(dim=1, keepdim=True)
    return x


def pairwise_logistic(
    embeddings: Tensor,
    labels: Tensor,
    *,
    temperature: float | Tensor = 1.0,
    normalize: bool = False,
    reduction: str = "mean",
) -> Tensor:
    """Pairwise logistic loss over every (positive, negative) pair of an anchor, in float64.

    The unified pair-similarity loss of Circle Loss (eq. 1) with margin 0 and scale
    1 / temperature. With ``s_ij = <z_i, z_j> / temperature``, positives
    ``P(i) = {p != i : y_p == y_i}`` and negatives ``Ng(i) = {n : y_n != y_i}``:

        l_i = log(1 + sum_{p in P(i)} sum_{n in Ng(i)} exp(s_in - s_ip))

    Anchors with empty ``P(i)`` contribute 0 and are left out of the mean (which is 0.0
    when no anchor has a positive). An anchor with positives but no negatives has
    ``l_i = log 1 = 0`` and does count in the mean.

    Args:
        embeddings: Embeddings, shape (N, D).
        labels: Integer class labels, shape (N,).
        temperature: Divides the dot products (float or 0-dim tensor).
        normalize: L2-normalize rows before the dot products.
        reduction: ``"mean"`` (over anchors with a positive), ``"sum"`` or ``"none"``.

    Returns:
        A float64 scalar, or shape (N,) for ``reduction="none"`` (0 for excluded anchors).
    """
    z = _embed64(embeddings, normalize)
    t = temperature.to(torch.float64) if isinstance(temperature, Tensor) else temperature
    y = labels.tolist()
    n = z.shape[0]

    terms = []
    with_positive = 0
    for i in range(n):
        s_i = (z[i] @ z.T) / t  # s_ij for all j
        positives = [p for p in range(n) if p != i and y[p] == y[i]]
        negatives = [k for k in range(n) if y[k] != y[i]]
        inside = 1.0 + 0.0 * s_i.sum()  # the 1 of log(1 + ...), kept in the graph
        if not positives:
            terms.append(torch.log(inside))  # log 1 = 0
            continue
        with_positive += 1
        for p in positives:
            inside = inside + torch.exp(s_i[negatives] - s_i[p]).sum()  # sum over n in Ng(i)
        terms.append(torch.log(inside))
    per_anchor = torch.stack(terms)
    if reduction == "none":
        return per_anchor
    if reduction == "sum":
        return per_anchor.sum()
    if with_positive == 0:
        return per_anchor.sum()  # 0.0
    return per_anchor.sum() / with_positive
