"""Float64 reference for focal SupCon (Zhang et al., 2021, Core-tuning).

"Unleashing the Power of Contrastive Self-Supervised Visual Models via Contrast-Regularized
Fine-Tuning".
"""

from __future__ import annotations

import torch
from torch import Tensor


def _scalar64(x: float | Tensor) -> Tensor:
    """A float or 0-dim tensor as a float64 0-dim tensor (differentiably for tensors)."""
    if isinstance(x, Tensor):
        return x.to(torch.float64)
    return torch.tensor(float(x), dtype=torch.float64)


def focal_supcon(
    embeddings: Tensor,
    labels: Tensor,
    *,
    temperature: float | Tensor = 0.07,
    gamma: float = 1.0,
    normalize: bool = True,
    reduction: str = "mean",
) -> Tensor:
    """Supervised contrastive loss with a focal weight per positive, densely in float64.

    With ``s_ij = <z_i, z_j> / temperature``, ``p_ij = exp(s_ij) / sum_{k != i} exp(s_ik)`` and
    positives ``P(i) = {p != i : y_p == y_i}``:

        l_i = -(1 / |P(i)|) sum_{p in P(i)} (1 - p_ip)^gamma log p_ip

    The focal weight ``(1 - p_ip)^gamma`` is not detached. ``gamma = 0`` is SupCon L_out.
    Anchors with empty ``P(i)`` contribute 0 and are left out of the mean (which is 0.0 when
    no anchor has a positive). An anchor whose only candidate is its positive has
    ``p_ip = 1`` and ``log p_ip = 0``; its term is written as 0 directly (same value,
    and no ``0^(gamma - 1)`` in the gradient).

    Args:
        embeddings: Embeddings, shape (N, D).
        labels: Integer class labels, shape (N,).
        temperature: Softmax temperature (float or 0-dim tensor).
        gamma: Focal exponent (>= 0).
        normalize: L2-normalize rows before the dot products.
        reduction: ``"mean"`` (over anchors with a positive), ``"sum"`` or ``"none"``.

    Returns:
        A float64 scalar, or shape (N,) for ``reduction="none"`` (0 for excluded anchors).
    """
    z = embeddings.to(torch.float64)
    if normalize:
        z = z / z.norm(dim=1, keepdim=True)
    t = _scalar64(temperature)
    y = labels.tolist()
    n = z.shape[0]
    terms = []
    with_positive = 0
    for i in range(n):
        row = (z @ z[i]) / t  # s_ij for all j
        positives = [p for p in range(n) if p != i and y[p] == y[i]]
        if not positives:
            terms.append(0.0 * row.sum())  # zero, but still part of the graph
            continue
        with_positive += 1
        candidates = [j for j in range(n) if j != i]
        if len(candidates) == 1:  # p_ip = 1 exactly: log p_ip = 0
            terms.append(0.0 * row.sum())
            continue
        log_p = row[positives] - torch.logsumexp(row[candidates], dim=0)  # log p_ip
        focal = (1.0 - torch.exp(log_p)) ** gamma
        terms.append(-(focal * log_p).sum() / len(positives))
    per_anchor = torch.stack(terms)
    if reduction == "none":
        return per_anchor
    if reduction == "sum":
        return per_anchor.sum()
    if with_positive == 0:
        return per_anchor.sum()  # 0.0
    return per_anchor.sum() / with_positive
