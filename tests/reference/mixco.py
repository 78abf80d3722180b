"""Float64 reference for MixCo (Kim et al., 2020, "MixCo: Mix-up Contrastive Learning ...").

"MixCo: Mix-up Contrastive Learning for Visual Representation", in the bidirectional form of
M3CoL (Singhal et al., 2025).
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


def mixco(
    mixed: Tensor,
    other: Tensor,
    *,
    lam: Tensor,
    partner: Tensor,
    temperature: float | Tensor = 0.1,
    symmetric: bool = True,
    normalize: bool = True,
    reduction: str = "mean",
) -> Tensor:
    """InfoNCE with two-source mixup targets, transcribed densely in float64.

    With ``s_ij = <mixed_i, other_j> / temperature`` and the target matrix

        T_ij = lam_i [j == i] + (1 - lam_i) [j == partner_i]     (the terms add if partner_i == i)

    the two directions are

        l^r_i = -sum_j T_ij log softmax_j(s_i.)
        l^c_j = -sum_i T_ij log softmax_i(s_.j)                  (column targets not renormalized)

    symmetric: ``loss = (mean_i l^r_i + mean_j l^c_j) / 2``; otherwise ``mean_i l^r_i``.
    ``lam`` enters only the targets and is treated as a constant (no gradient).

    Args:
        mixed: Embeddings of the mixed inputs, shape (N, D).
        other: Embeddings of the other modality (unmixed), shape (N, D).
        lam: Mixing weights in [0, 1], shape (N,).
        partner: Integer partner index of each row in [0, N), shape (N,).
        temperature: Softmax temperature (float or 0-dim tensor).
        symmetric: Average with the column direction.
        normalize: L2-normalize rows before the dot products.
        reduction: ``"mean"`` (over the N rows), ``"sum"`` or ``"none"``.

    Returns:
        A float64 scalar, or shape (N,) for ``reduction="none"`` (``(l^r + l^c) / 2`` when
        symmetric, else ``l^r``).
    """
    x = _embed64(mixed, normalize)
    y = _embed64(other, normalize)
    t = _scalar64(temperature)
    lams = lam.detach().to(torch.float64).tolist()
    pi = partner.tolist()
    n = x.shape[0]
    target = torch.zeros(n, n, dtype=torch.float64)  # T_ij (a constant)
    for i in range(n):
        target[i, i] += lams[i]
        target[i, pi[i]] += 1.0 - lams[i]
    rows = []
    for i in range(n):
        scores = (y @ x[i]) / t  # s_ij for all j
        log_softmax = scores - torch.logsumexp(scores, dim=0)
        rows.append(-(target[i, :] * log_softmax).sum())
    l_r = torch.stack(rows)
    if symmetric:
        cols = []
        for j in range(n):
            scores = (x @ y[j]) / t  # s_ij for all i
            log_softmax = scores - torch.logsumexp(scores, dim=0)
            cols.append(-(target[:, j] * log_softmax).sum())
        per_anchor = (l_r + torch.stack(cols)) / 2.0
    else:
        per_anchor = l_r
    if reduction == "none":
        return per_anchor
    if reduction == "sum":
        return per_anchor.sum()
    return per_anchor.sum() / n
