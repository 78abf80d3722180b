"""Float64 reference for pair-weighted NT-Xent (Lin et al., 2025, SiMHand).

"SiMHand: Mining Similar Hands for Large-Scale 3D Hand Pose Pre-training".
"""

from __future__ import annotations

import torch
from torch import Tensor


def _scalar64(x: float | Tensor) -> Tensor:
    """A float or 0-dim tensor as a float64 0-dim tensor (differentiably for tensors)."""
    if isinstance(x, Tensor):
        return x.to(torch.float64)
    return torch.tensor(float(x), dtype=torch.float64)


def pair_weighted(
    a: Tensor,
    b: Tensor,
    *,
    attributes_a: Tensor,
    attributes_b: Tensor,
    temperature: float | Tensor = 0.5,
    normalize: bool = True,
    reduction: str = "mean",
) -> Tensor:
    """NT-Xent with per-pair logit multipliers from attribute distances, densely in float64.

    Over the 2N views ``z = [a; b]`` with attributes ``x = [attributes_a; attributes_b]``:

        d_uv = mean_j ||x_uj - x_vj||_2    (3-D attributes (2N, J, C): MPJPE over joints)
        d_uv = ||x_u - x_v||_2             (2-D attributes (2N, P))

    ``d_min`` and ``d_max`` are taken over all pairs ``u != v``, and

        m_uv  = (d_max - d_uv) / (d_max - d_min)       (all 1 when d_max == d_min)
        s_uv  = m_uv <z_u, z_v> / temperature
        l_u   = -s_{u,u'} + log sum_{v != u} exp(s_uv),     u' = (u + N) mod 2N

    The attributes are constants (no gradient).

    Args:
        a: First views, shape (N, D).
        b: Second views, shape (N, D); ``b_i`` is the positive of ``a_i``.
        attributes_a: Attributes of the first views, shape (N, J, C) or (N, P).
        attributes_b: Attributes of the second views, same shape as ``attributes_a``.
        temperature: Softmax temperature (float or 0-dim tensor).
        normalize: L2-normalize rows before the dot products.
        reduction: ``"mean"`` (over the 2N views), ``"sum"`` or ``"none"``.

    Returns:
        A float64 scalar, or shape (2N,) in view order (a's views, then b's) for
        ``reduction="none"``.
    """
    z = torch.cat([a, b]).to(torch.float64)
    if normalize:
        z = z / z.norm(dim=1, keepdim=True)
    t = _scalar64(temperature)
    x = torch.cat([attributes_a, attributes_b]).detach().to(torch.float64)
    if x.dim() not in (2, 3):
        raise ValueError("attributes must have shape (N, J, C) or (N, P).")
    two_n = z.shape[0]
    n = two_n // 2

    def distance(u: int, v: int) -> float:  # d_uv
        if x.dim() == 3:
            return (x[u] - x[v]).norm(dim=-1).mean().item()
        return (x[u] - x[v]).norm().item()

    d = [[distance(u, v) for v in range(two_n)] for u in range(two_n)]
    off_diagonal = [d[u][v] for u in range(two_n) for v in range(two_n) if u != v]
    d_min, d_max = min(off_diagonal), max(off_diagonal)

    def multiplier(u: int, v: int) -> float:  # m_uv
        if d_max == d_min:
            return 1.0
        return (d_max - d[u][v]) / (d_max - d_min)

    terms = []
    for u in range(two_n):
        others = [v for v in range(two_n) if v != u]
        m_u = torch.tensor([multiplier(u, v) for v in others], dtype=torch.float64)
        s_u = m_u * (z[others] @ z[u]) / t  # s_uv for v != u
        partner = (u + n) % two_n
        position = others.index(partner)
        terms.append(-s_u[position] + torch.logsumexp(s_u, dim=0))
    per_anchor = torch.stack(terms)
    if reduction == "none":
        return per_anchor
    if reduction == "sum":
        return per_anchor.sum()
    return per_anchor.sum() / two_n
