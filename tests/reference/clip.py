"""Float64 reference for the CLIP loss (Radford et al., 2021, "Learning Transferable ...")."""

from __future__ import annotations

import math

import torch
from torch import Tensor

DEFAULT_LOGIT_SCALE = math.log(1 / 0.07)


def clip(
    image: Tensor,
    text: Tensor,
    *,
    logit_scale: float | Tensor = DEFAULT_LOGIT_SCALE,
    max_scale: float = 100.0,
    normalize: bool = True,
    reduction: str = "mean",
) -> Tensor:
    """Symmetric image-text InfoNCE with a learnable, clamped logit scale, in float64.

    With ``scale = min(exp(logit_scale), max_scale)`` and ``s_ij = scale * <x_i, t_j>``,

        l_i = 0.5 * ((-s_ii + log sum_j exp(s_ij)) + (-s_ii + log sum_j exp(s_ji))).

    The gradient with respect to ``logit_scale`` flows through the clamp (zero above it).

    Args:
        image: Image embeddings, shape (N, D).
        text: Text embeddings, shape (N, D); row i is image i's caption.
        logit_scale: Log of the inverse temperature, a float or a 0-dim tensor.
        max_scale: Upper clamp on ``exp(logit_scale)``.
        normalize: L2-normalize rows before the dot products.
        reduction: ``"mean"``, ``"sum"`` or ``"none"``.

    Returns:
        A float64 scalar, or shape (N,) for ``reduction="none"``.
    """
    x = image.to(torch.float64)
    t = text.to(torch.float64)
    if normalize:
        x = x / x.norm(dim=1, keepdim=True)
        t = t / t.norm(dim=1, keepdim=True)
    if isinstance(logit_scale, Tensor):
        log_scale = logit_scale.to(torch.float64)
    else:
        log_scale = torch.tensor(logit_scale, dtype=torch.float64)
    scale = torch.clamp(torch.exp(log_scale), max=max_scale)
    n = x.shape[0]
    terms = []
    for i in range(n):
        row = scale * (x[i] @ t.T)  # s_ij, image i against every text
        col = scale * (x @ t[i])  # s_ji, text i against every image
        image_to_text = -row[i] + torch.logsumexp(row, dim=0)
        text_to_image = -col[i] + torch.logsumexp(col, dim=0)
        terms.append(0.5 * (image_to_text + text_to_image))
    per_anchor = torch.stack(terms)
    if reduction == "none":
        return per_anchor
    if reduction == "sum":
        return per_anchor.sum()
    return per_anchor.mean()
