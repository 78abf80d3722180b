"""Float64 reference for GRAM (Cicchetti et al., 2025, "Gramian Multimodal Representation ...").

"Gramian Multimodal Representation Learning and Alignment", ICLR 2025, arXiv:2412.11959.
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


def _smoothed_ce(scores: Tensor, target: int, eps: float) -> Tensor:
    """Cross-entropy of one row of scores with target ``(1 - eps) onehot + eps / M``."""
    m = scores.shape[0]
    log_p = scores - torch.logsumexp(scores, dim=0)
    weights = torch.full((m,), eps / m, dtype=scores.dtype)
    weights[target] += 1.0 - eps
    return -(weights * log_p).sum()


def gram(
    anchor: Tensor,
    *others: Tensor,
    temperature: float | Tensor = 0.07,
    label_smoothing: float = 0.1,
    symmetric: bool = True,
    normalize: bool = True,
    reduction: str = "mean",
) -> Tensor:
    """GRAM volume InfoNCE, transcribed densely in float64.

    For anchor row ``i`` and candidate ``j``, ``G_ij`` is the k x k Gram matrix of the
    vectors ``(anchor_i, others[0]_j, ..., others[k-2]_j)``, ``V_ij = sqrt(|det G_ij|)``
    (``torch.linalg.det``) and ``s_ij = -V_ij / temperature``. Row term: label-smoothed
    cross-entropy of ``s_i.`` with target ``i``; column term (``symmetric``): the same for
    ``s_.i``; the per-sample term is their average.

    Args:
        anchor: Anchor modality, shape (N, D).
        *others: Candidate modalities, each shape (N, D).
        temperature: Divides the volume.
        label_smoothing: As ``F.cross_entropy``'s.
        symmetric: Average in the column direction.
        normalize: L2-normalize every modality first.
        reduction: ``"mean"``, ``"sum"`` or ``"none"``.

    Returns:
        A float64 scalar, or shape (N,) for ``reduction="none"``.
    """
    a = _embed64(anchor, normalize)
    bs = [_embed64(b, normalize) for b in others]
    t = _scalar64(temperature)
    n = a.shape[0]
    rows_of_s = []
    for i in range(n):
        vectors = torch.stack([a[i].expand(n, -1), *bs], dim=1)  # (N candidates, k, D)
        g = vectors @ vectors.transpose(1, 2)  # (N, k, k)
        vol = torch.sqrt(torch.linalg.det(g).abs())
        rows_of_s.append(-vol / t)
    s = torch.stack(rows_of_s)  # s[i, j]
    eps = float(label_smoothing)
    terms = []
    for i in range(n):
        term = _smoothed_ce(s[i], i, eps)
        if symmetric:
            term = 0.5 * (term + _smoothed_ce(s[:, i], i, eps))
        terms.append(term)
    out = torch.stack(terms)
    if reduction == "none":
        return out
    if reduction == "sum":
        return out.sum()
    return out.mean()
