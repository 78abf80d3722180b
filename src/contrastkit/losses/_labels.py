"""Label helpers shared by the supervised losses (``O(N D)``, no ``N x N`` matrices)."""

from __future__ import annotations

import torch
from torch import Tensor


def dense_ids(labels: Tensor) -> tuple[Tensor, Tensor]:
    """Map arbitrary integer labels to ``0..C-1``; return the ids and each row's class size."""
    ids = torch.unique(labels, return_inverse=True)[1]
    counts = torch.bincount(ids)
    return ids, counts[ids]


def class_sums(x: Tensor, ids: Tensor) -> Tensor:
    """Sum of the rows of ``x`` per class, shape ``(C, D)``."""
    out = x.new_zeros(int(ids.max()) + 1, x.shape[1])
    return out.index_add(0, ids, x)
