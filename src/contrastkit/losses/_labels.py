"""Label helpers shared by the supervised losses (``O(N D)``, no ``N x N`` matrices)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from contrastkit.distributed import Shard


def dense_ids(labels: Tensor) -> tuple[Tensor, Tensor]:
    """Map arbitrary integer labels to ``0..C-1``; return the ids and each row's class size."""
    ids = torch.unique(labels, return_inverse=True)[1]
    counts = torch.bincount(ids)
    return ids, counts[ids]


def class_sums(x: Tensor, ids: Tensor) -> Tensor:
    """Sum of the rows of ``x`` per class, shape ``(C, D)``."""
    out = x.new_zeros(int(ids.max()) + 1, x.shape[1])
    return out.index_add(0, ids, x)


@dataclass(frozen=True)
class LabeledBatch:
    """This rank's anchors against the (global) labeled candidates.

    Attributes:
        anchors: Local embeddings ``(n, D)``.
        candidates: All embeddings ``(N, D)`` (gathered, or the anchors themselves).
        row_ids: Class ids ``0..C-1`` of the anchors ``(n,)``.
        col_ids: Class ids of the candidates ``(N,)``.
        row_sizes: Class size of each anchor, counted over all candidates ``(n,)``.
        col_sizes: Class size of each candidate ``(N,)``.
        self_index: Column of each anchor among the candidates, ``None`` when they coincide.
    """

    anchors: Tensor
    candidates: Tensor
    row_ids: Tensor
    col_ids: Tensor
    row_sizes: Tensor
    col_sizes: Tensor
    self_index: Tensor | None


def labeled_batch(z: Tensor, labels: Tensor, sh: Shard | None) -> LabeledBatch:
    """Gather embeddings and labels if distributed, and map labels to dense class ids."""
    if sh is None:
        ids, size = dense_ids(labels)
        return LabeledBatch(z, z, ids, ids, size, size, None)
    cands = sh.gather("embeddings", z)
    ids, size = dense_ids(sh.gather("labels", labels))
    off, n = sh.offset("embeddings"), z.shape[0]
    own = torch.arange(off, off + n, device=z.device)
    return LabeledBatch(z, cands, ids[own], ids, size[own], size, own)
