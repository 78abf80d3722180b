"""Float64 references of the engine's primitives, written pair by pair (imports no contrastkit)."""

from __future__ import annotations

import math

import torch
from torch import Tensor


def kept(
    i: int,
    j: int,
    exclude_self: bool,
    rg: list[int] | None,
    cg: list[int] | None,
    groups: str,
    own: list[int] | None = None,
) -> bool:
    """Whether pair (i, j) is kept by the rules of ``contrastkit.core.PairMask``."""
    if exclude_self and j == (i if own is None else own[i]):
        return False
    if groups == "same":
        return rg is not None and cg is not None and rg[i] == cg[j] and rg[i] >= 0
    if groups == "different":
        return rg is not None and cg is not None and (rg[i] != cg[j] or rg[i] < 0)
    return True


def score(
    a: Tensor,
    b: Tensor,
    scale: Tensor,
    i: int,
    j: int,
    mult: Tensor | None,
    rg: list[int] | None,
    cg: list[int] | None,
) -> Tensor:
    """s_ij = scale * m_ij * <a_i, b_j> with m_ij = mult_i on positive pairs."""
    s = scale * (a[i].double() * b[j].double()).sum()
    if mult is not None:
        positive = (rg[i] == cg[j] and rg[i] >= 0) if rg is not None and cg is not None else i == j
        if positive:
            s = s * float(mult[i])
    return s


def logsumexp(
    a: Tensor,
    b: Tensor,
    scale: Tensor,
    *,
    exclude_self: bool = False,
    row_groups: Tensor | None = None,
    col_groups: Tensor | None = None,
    groups: str = "any",
    multiplier: Tensor | None = None,
    self_index: Tensor | None = None,
) -> tuple[Tensor, Tensor]:
    """Row and column log-sum-exp over kept pairs; ``-inf`` where nothing is kept."""
    n, m = a.shape[0], b.shape[0]
    rg = None if row_groups is None else row_groups.tolist()
    cg = None if col_groups is None else col_groups.tolist()
    own = None if self_index is None else self_index.tolist()
    s = [[score(a, b, scale, i, j, multiplier, rg, cg) for j in range(m)] for i in range(n)]
    keep = [[kept(i, j, exclude_self, rg, cg, groups, own) for j in range(m)] for i in range(n)]

    def lse(values: list[Tensor]) -> Tensor:
        if not values:
            return torch.tensor(-math.inf, dtype=torch.float64)
        return torch.logsumexp(torch.stack(values), 0)

    rows = torch.stack([lse([s[i][j] for j in range(m) if keep[i][j]]) for i in range(n)])
    cols = torch.stack([lse([s[i][j] for i in range(n) if keep[i][j]]) for j in range(m)])
    return rows, cols


def pair_softplus(
    a: Tensor,
    b: Tensor,
    scale: Tensor,
    offset: Tensor,
    *,
    sign: float,
    exclude_self: bool = False,
    row_groups: Tensor | None = None,
    col_groups: Tensor | None = None,
    groups: str = "any",
) -> Tensor:
    """Per-row sum of softplus(sign * (s_ij + offset_i)) over kept pairs."""
    n, m = a.shape[0], b.shape[0]
    rg = None if row_groups is None else row_groups.tolist()
    cg = None if col_groups is None else col_groups.tolist()
    out = []
    for i in range(n):
        terms = [
            torch.nn.functional.softplus(
                sign * (score(a, b, scale, i, j, None, rg, cg) + offset[i])
            )
            for j in range(m)
            if kept(i, j, exclude_self, rg, cg, groups)
        ]
        out.append(torch.stack(terms).sum() if terms else (0.0 * offset[i]).double())
    return torch.stack(out)
