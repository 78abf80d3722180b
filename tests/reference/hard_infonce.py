"""Float64 reference for hard-negative InfoNCE (Wang & Liu, 2021, CVPR).

"Understanding the Behaviour of Contrastive Loss": only each anchor's top-k hardest negatives
enter the denominator.
"""

from __future__ import annotations

import torch
from torch import Tensor


def _embed64(x: Tensor, normalize: bool) -> Tensor:
    """Casts to float64 (differentiably) and optionally L2-normalizes each row."""
    x = x.to(torch.float64)
    if normalize:
        x = x / x.norm(dim=1, keepdim=True)
    return x


def _scalar64(x: float | Tensor) -> Tensor:
    """A float or 0-dim tensor as a float64 0-dim tensor (differentiably for tensors)."""
    if isinstance(x, Tensor):
        return x.to(torch.float64)
    return torch.tensor(float(x), dtype=torch.float64)


def hard_infonce(
    query: Tensor,
    key: Tensor,
    *,
    k: int = 4095,
    temperature: float | Tensor = 0.2,
    normalize: bool = True,
    reduction: str = "mean",
) -> Tensor:
    """InfoNCE with the k hardest negatives per anchor, transcribed densely in float64.

    With ``s_ij = <q_i, k_j> / temperature``, the positive of anchor ``i`` is key ``i`` and its
    negatives are all ``j != i`` (``j < M``). ``TopK_i`` is the ``k`` negatives with the largest
    ``s_ij`` (all of them when there are fewer than ``k``; among exact ties the lower index
    is taken, which does not change the value):

        l_i = -s_ii + log( exp(s_ii) + sum_{j in TopK_i} exp(s_ij) )

    The selection itself carries no gradient (it is piecewise constant).

    Args:
        query: Anchors, shape (N, D).
        key: Positives (row i for query i) followed by extra negatives, shape (M, D), M >= N.
        k: Number of hard negatives kept per anchor (>= 1).
        temperature: Softmax temperature (float or 0-dim tensor).
        normalize: L2-normalize rows before the dot products.
        reduction: ``"mean"`` (over the N anchors), ``"sum"`` or ``"none"``.

    Returns:
        A float64 scalar, or shape (N,) for ``reduction="none"``.
    """
    q = _embed64(query, normalize)
    keys = _embed64(key, normalize)
    t = _scalar64(temperature)
    n, m = q.shape[0], keys.shape[0]
    terms = []
    for i in range(n):
        row = (keys @ q[i]) / t  # s_ij for all j < M
        negatives = [j for j in range(m) if j != i]
        values = row.detach().tolist()
        hardest = sorted(negatives, key=lambda j: (-values[j], j))[:k]
        kept = [i, *hardest]  # the positive and TopK_i
        terms.append(-row[i] + torch.logsumexp(row[kept], dim=0))
    per_anchor = torch.stack(terms)
    if reduction == "none":
        return per_anchor
    if reduction == "sum":
        return per_anchor.sum()
    return per_anchor.sum() / n
