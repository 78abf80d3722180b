"""Float64 reference for the proxy-based contrastive loss of PCR / HPCR (Lin et al., 2023)."""

from __future__ import annotations

import torch
from torch import Tensor


def proxy_nce(
    embeddings: Tensor,
    labels: Tensor,
    proxies: Tensor,
    *,
    temperature: float = 0.09,
    prior: str | Tensor = "batch",
    loss_scale: float = 1.0,
    normalize: bool = True,
    reduction: str = "mean",
) -> Tensor:
    """Each anchor's proxy cross-entropy, anchor by anchor.

    ``s_ic = <z_i, w_c> / temperature``. ``prior="batch"`` is the authors' form
    ``-log(exp(s_{i, y_i}) / sum_{j in batch} exp(s_{i, y_j}))``, the denominator running over
    the proxies of every batch item (with repeats); ``"none"`` runs it over all proxies once;
    a tensor ``n`` over the classes with ``n_c > 0``, each term times ``n_c``. Times
    ``loss_scale``.
    """
    z = embeddings.to(torch.float64)
    w = proxies.to(torch.float64)
    if normalize:
        z = z / z.norm(dim=1, keepdim=True)
        w = w / w.norm(dim=1, keepdim=True)
    y = labels.tolist()
    terms = []
    for i in range(z.shape[0]):
        row = (z[i] @ w.T) / temperature  # s_ic for every class c
        if isinstance(prior, Tensor):
            kept = [c for c in range(w.shape[0]) if float(prior[c]) > 0]
            counts = torch.tensor([float(prior[c]) for c in kept], dtype=torch.float64)
            log_denominator = torch.log((counts * torch.exp(row[kept])).sum())
        elif prior == "batch":
            log_denominator = torch.logsumexp(row[y], dim=0)  # one term per batch item
        else:
            log_denominator = torch.logsumexp(row, dim=0)
        terms.append(loss_scale * (log_denominator - row[y[i]]))
    per_anchor = torch.stack(terms)
    if reduction == "none":
        return per_anchor
    if reduction == "sum":
        return per_anchor.sum()
    return per_anchor.mean()
