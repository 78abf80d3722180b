"""Float64 reference for SigLIP (Zhai et al. 2023, "Sigmoid Loss for Language Image Pre-Training").

The focal form (``gamma > 0``) is RO-ViT's focal sigmoid loss (Kim et al., 2023) without alpha.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

LOG_TEN = math.log(10.0)  # default logit_scale: the log of the scale 10


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


def siglip(
    image: Tensor,
    text: Tensor,
    *,
    logit_scale: float | Tensor = LOG_TEN,
    logit_bias: float | Tensor = -10.0,
    gamma: float = 0.0,
    normalize: bool = True,
    reduction: str = "mean",
) -> Tensor:
    """Pairwise sigmoid loss (eq. 1 of the paper; focal form of RO-ViT), densely in float64.

    ``logit_scale`` is the LOG of the scale. With ``x_ij = exp(logit_scale) <image_i, text_j>
    + logit_bias`` (cosine similarity when ``normalize``) and ``z_ij = +1`` if ``i == j`` else
    ``-1``, image ``i`` has the term

        gamma == 0: l_i = sum_j -log sigmoid(z_ij x_ij)
        gamma > 0:  l_i = sum_j -(1 - sigmoid(z_ij x_ij))^gamma log sigmoid(z_ij x_ij)

    (j over all N texts). ``"mean"`` is ``sum_i l_i / N``, open_clip's normalization (the
    total over the N^2 pairs divided by N).

    Args:
        image: Image embeddings, shape (N, D).
        text: Text embeddings, shape (N, D); row i is the match of image i.
        logit_scale: Log of the scale multiplying the similarities (float or 0-dim tensor).
        logit_bias: Bias added to the scaled similarities (float or 0-dim tensor).
        gamma: Focal exponent; 0 gives the plain sigmoid loss.
        normalize: L2-normalize rows before the dot products.
        reduction: ``"mean"`` (sum over pairs / N), ``"sum"`` or ``"none"``.

    Returns:
        A float64 scalar, or shape (N,) for ``reduction="none"`` (the per-image sums l_i).
    """
    a = _embed64(image, normalize)
    b = _embed64(text, normalize)
    scale = torch.exp(_scalar64(logit_scale))
    bias = _scalar64(logit_bias)
    n = a.shape[0]
    terms = []
    for i in range(n):
        l_i = 0.0 * a[i].sum()
        for j in range(n):
            x_ij = scale * (a[i] * b[j]).sum() + bias
            z_ij = 1.0 if i == j else -1.0
            log_p = torch.nn.functional.logsigmoid(z_ij * x_ij)  # log sigmoid(z_ij x_ij)
            if gamma == 0:
                l_i = l_i - log_p
            else:
                l_i = l_i - (1.0 - torch.sigmoid(z_ij * x_ij)) ** gamma * log_p
        terms.append(l_i)
    per_anchor = torch.stack(terms)
    if reduction == "none":
        return per_anchor
    if reduction == "sum":
        return per_anchor.sum()
    return per_anchor.sum() / n
