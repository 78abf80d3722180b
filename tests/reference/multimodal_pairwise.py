"""Float64 reference for modality-pairwise InfoNCE (Franceschini et al., 2022, MER).

"Multimodal Emotion Recognition with Modality-Pairwise Unsupervised Contrastive Loss",
ICPR 2022, arXiv:2207.11482.
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


def multimodal_pairwise(
    *modalities: Tensor,
    temperature: float | Tensor = 0.07,
    symmetric: bool = True,
    aggregate: str = "sum",
    normalize: bool = True,
    reduction: str = "mean",
) -> Tensor:
    """Pairwise InfoNCE over all modality pairs, transcribed densely in float64.

    For each pair ``m < m'`` and sample ``i``, with ``s_ij = <z^m_i, z^m'_j> / temperature``:

        l^{mm'}_i = -log softmax_j(s_i.)[i]                      (m -> m')
        l'^{mm'}_i = -log softmax_j(s_.i)[i]                     (m' -> m)

    The pair's term is ``l`` alone or ``(l + l') / 2`` when ``symmetric``; the per-sample term
    is the sum over pairs (``aggregate="mean"``: divided by the number of pairs).

    Args:
        *modalities: k tensors of shape (N, D), paired by row.
        temperature: Softmax temperature.
        symmetric: Average both directions within each pair.
        aggregate: ``"sum"`` or ``"mean"`` over pairs.
        normalize: L2-normalize every modality first.
        reduction: ``"mean"``, ``"sum"`` or ``"none"``.

    Returns:
        A float64 scalar, or shape (N,) for ``reduction="none"``.
    """
    zs = [_embed64(z, normalize) for z in modalities]
    t = temperature.to(torch.float64) if isinstance(temperature, Tensor) else float(temperature)
    n = zs[0].shape[0]
    k = len(zs)
    pairs = [(m, mm) for m in range(k) for mm in range(m + 1, k)]
    per_sample = []
    for i in range(n):
        total = torch.zeros((), dtype=torch.float64)
        for m, mm in pairs:
            row = torch.stack([(zs[m][i] * zs[mm][j]).sum() for j in range(n)]) / t
            term = torch.logsumexp(row, 0) - row[i]
            if symmetric:
                col = torch.stack([(zs[m][j] * zs[mm][i]).sum() for j in range(n)]) / t
                term = 0.5 * (term + torch.logsumexp(col, 0) - col[i])
            total = total + term
        if aggregate == "mean":
            total = total / len(pairs)
        per_sample.append(total)
    out = torch.stack(per_sample)
    if reduction == "none":
        return out
    if reduction == "sum":
        return out.sum()
    return out.mean()
