"""Compact descriptions of which (anchor, candidate) pairs a reduction runs over.

A mask over the ``N x M`` score matrix is never materialized. It is described by a few vectors
(group ids per row and per column, a flag for the diagonal) and evaluated one tile at a time.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor

GroupRule = Literal["any", "same", "different"]


@dataclass(frozen=True)
class PairMask:
    r"""Which pairs ``(i, j)`` of anchors ``i < N`` and candidates ``j < M`` are kept.

    A pair is kept when every rule holds:

    - ``exclude_self``: :math:`j \ne \text{self}(i)` where :math:`\text{self}(i) = i` (anchors and
      candidates are the same rows, e.g. SimCLR's 2N views or SupCon's batch) or, when
      ``self_index`` is given, the column holding anchor ``i`` itself (anchors that are a slice
      of the candidates, e.g. one rank's rows of a gathered batch).
    - ``groups="same"``: :math:`g^{row}_i = g^{col}_j` (e.g. the positives of SupCon);
      ``groups="different"``: :math:`g^{row}_i \ne g^{col}_j` (e.g. the negatives).
      A negative group id never matches anything, so ``-1`` marks "no positive".

    Attributes:
        exclude_self: Drop each anchor's own column.
        self_index: Shape ``(N,)``, the column of each anchor; ``None`` means ``i``.
        row_groups: Shape ``(N,)`` integer group ids of the anchors (needed unless
            ``groups == "any"``).
        col_groups: Shape ``(M,)`` integer group ids of the candidates.
        groups: The group rule.
    """

    exclude_self: bool = False
    self_index: Tensor | None = None
    row_groups: Tensor | None = None
    col_groups: Tensor | None = None
    groups: GroupRule = "any"

    def __post_init__(self) -> None:
        if self.groups != "any" and (self.row_groups is None or self.col_groups is None):
            raise ValueError("PairMask: groups='same'/'different' needs row_groups and col_groups.")

    def self_columns(self, r0: int, r1: int, device: torch.device) -> Tensor:
        """The excluded column of each anchor in ``[r0:r1]``."""
        if self.self_index is None:
            return torch.arange(r0, r1, device=device)
        return self.self_index[r0:r1]

    def tile(self, r0: int, r1: int, c0: int, c1: int, device: torch.device) -> Tensor | None:
        """Boolean keep-mask of the tile ``[r0:r1, c0:c1]``, or ``None`` if it keeps everything."""
        keep: Tensor | None = None
        if self.groups != "any":
            assert self.row_groups is not None
            assert self.col_groups is not None
            rg = self.row_groups[r0:r1, None]
            cg = self.col_groups[None, c0:c1]
            keep = (rg == cg) & (rg >= 0) if self.groups == "same" else (rg != cg) | (rg < 0)
        if self.exclude_self and (self.self_index is not None or (r0 < c1 and c0 < r1)):
            own = self.self_columns(r0, r1, device)[:, None]
            off = own != torch.arange(c0, c1, device=device)[None, :]
            keep = off if keep is None else keep & off
        return keep

    def dense(self, n: int, m: int, device: torch.device) -> Tensor | None:
        """The full ``(N, M)`` keep-mask (for the dense path only)."""
        return self.tile(0, n, 0, m, device)

    def positive_tile(self, r0: int, r1: int, c0: int, c1: int, device: torch.device) -> Tensor:
        """Boolean mask of positive pairs in a tile: same group, or the diagonal without groups."""
        if self.row_groups is not None and self.col_groups is not None:
            rg = self.row_groups[r0:r1, None]
            return (rg == self.col_groups[None, c0:c1]) & (rg >= 0)
        rows = torch.arange(r0, r1, device=device)[:, None]
        cols = torch.arange(c0, c1, device=device)[None, :]
        return rows == cols
