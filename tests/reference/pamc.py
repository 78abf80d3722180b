"""Float64 reference for PamC (Kulatilleke et al., 2022) and the exact loss it approximates."""

from __future__ import annotations

import torch
from torch import Tensor


def pamc(
    embeddings: Tensor,
    edge_index: Tensor,
    *,
    clusters: Tensor | None = None,
    edge_weight: Tensor | None = None,
    temperature: float = 1.0,
    negatives: str = "meta",
    normalize: bool = True,
    reduction: str = "mean",
) -> Tensor:
    """Graph-MLP's neighbour contrast with PamC's meta-node denominators, node by node.

    ``sim`` is the cosine (vectors of norm below 1e-12 divided by 1e-12, as ``F.normalize``)
    or the dot product; ``s_ij = sim(z_i, z_j) / temperature`` for ``i != j`` and ``0`` on the
    diagonal. ``pos_i = sum_{edges (i, j)} w_ij exp(s_ij)``. Denominators:

        exact: D_i = 1 + sum_{j != i} exp(s_ij)
        meta:  log D = mean_k log sum_l exp(t_kl), t_kl = sim(c_k, c_l) / temperature,
               t_kk = 0, c_k the mean of cluster k (non-empty clusters only)
        sized: D_i = 1 + (n_k - 1) exp(sim(c_k, c_k) / temperature)
                     + sum_{l != k} n_l exp(t_kl), k the cluster of i

    ``l_i = log D_i - log pos_i``; nodes with ``pos_i = 0`` give 0 and leave the mean.

    Returns:
        A float64 scalar, or shape (N,) for ``reduction="none"``.
    """
    z = embeddings.to(torch.float64)
    n = z.shape[0]

    def sim(a: Tensor, b: Tensor) -> Tensor:
        return _cos(a, b) if normalize else a @ b

    src, dst = edge_index.tolist()
    w = [1.0] * len(src) if edge_weight is None else list(edge_weight.to(torch.float64).unbind())
    pos: list[Tensor | float] = [0.0] * n
    for e, (i, j) in enumerate(zip(src, dst, strict=True)):
        s = 0.0 * z.sum() if i == j else sim(z[i], z[j]) / temperature
        pos[i] = pos[i] + w[e] * torch.exp(s)
    den: list[Tensor] = []
    if negatives == "exact":
        for i in range(n):
            row = [torch.exp(sim(z[i], z[j]) / temperature) for j in range(n) if j != i]
            den.append(torch.log(1.0 + sum(row, 0.0 * z.sum())))
    else:
        assert clusters is not None
        ids = clusters.tolist()
        present = sorted(set(ids))
        members = {c: [i for i in range(n) if ids[i] == c] for c in present}
        meta = {c: z[members[c]].mean(0) for c in present}
        if negatives == "meta":
            per_cluster = []
            for a in present:
                row = [
                    torch.exp(0.0 * z.sum() if a == b else sim(meta[a], meta[b]) / temperature)
                    for b in present
                ]
                per_cluster.append(torch.log(sum(row, 0.0 * z.sum())))
            shared = torch.stack(per_cluster).mean()
            den = [shared] * n
        else:
            by_cluster = {}
            for a in present:
                total = 1.0 + (len(members[a]) - 1) * torch.exp(sim(meta[a], meta[a]) / temperature)
                for b in present:
                    if b != a:
                        total = total + len(members[b]) * torch.exp(
                            sim(meta[a], meta[b]) / temperature
                        )
                by_cluster[a] = torch.log(total)
            den = [by_cluster[ids[i]] for i in range(n)]
    terms = []
    valid = 0
    for i in range(n):
        p = pos[i]
        if isinstance(p, float) or float(p.detach()) <= 0.0:
            terms.append(0.0 * z.sum())
            continue
        valid += 1
        terms.append(den[i] - torch.log(p))
    per_row = torch.stack(terms)
    if reduction == "none":
        return per_row
    if reduction == "sum" or valid == 0:
        return per_row.sum()
    return per_row.sum() / valid


def _cos(a: Tensor, b: Tensor) -> Tensor:
    """Cosine as ``F.normalize`` computes it (norms clamped below at 1e-12)."""
    return (a / a.norm().clamp_min(1e-12)) @ (b / b.norm().clamp_min(1e-12))
