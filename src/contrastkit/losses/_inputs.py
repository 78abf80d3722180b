"""Shared argument checks and preparation for the loss functions."""

from __future__ import annotations

from typing import TypeVar

import torch
import torch.nn.functional as F
from torch import Tensor

from contrastkit import core
from contrastkit.core import validation as v
from contrastkit.core.tiled import stats_dtype
from contrastkit.core.validation import Impl, Reduction
from contrastkit.distributed import Shard

T = TypeVar("T", Tensor, None)


def requires_grad(x: object) -> bool:
    """Whether ``x`` is a tensor that requires grad (decides which collectives run)."""
    return isinstance(x, Tensor) and x.requires_grad


def check_common(reduction: Reduction, chunk_size: int | None, impl: Impl) -> None:
    """Validate the keyword arguments every loss takes."""
    v.check_reduction(reduction)
    v.check_chunk_size(chunk_size)
    v.check_impl(impl)


def prepare_pair(
    name_a: str, a: Tensor, name_b: str, b: Tensor, *, normalize: bool, same_batch: bool
) -> tuple[Tensor, Tensor]:
    """Validate two embedding matrices, upcast low precision to float32, normalize if asked.

    Statistics are float32 for bfloat16 / float16 inputs, so the embeddings are upcast once
    (``O(N D)``) before anything else; gradients flow back in the input dtype.
    """
    v.check_embeddings(name_a, a)
    v.check_embeddings(name_b, b)
    v.check_same_width(name_a, a, name_b, b)
    if same_batch:
        v.check_same_batch(name_a, a, name_b, b)
    elif b.shape[0] < a.shape[0]:
        raise ValueError(
            f"`{name_b}` must have at least as many rows as `{name_a}` (row i of `{name_a}` is "
            f"positive with row i of `{name_b}`); got {b.shape[0]} < {a.shape[0]}."
        )
    a, b = a.to(stats_dtype(a.dtype)), b.to(stats_dtype(b.dtype))
    if normalize:
        a, b = F.normalize(a, dim=1), F.normalize(b, dim=1)
    return a, b


def prepare_one(name: str, x: Tensor, *, normalize: bool) -> Tensor:
    """Validate one embedding matrix and L2-normalize it if asked."""
    v.check_embeddings(name, x)
    x = x.to(stats_dtype(x.dtype))
    return F.normalize(x, dim=1) if normalize else x


def inverse_temperature(temperature: float | Tensor, like: Tensor, sh: Shard | None) -> Tensor:
    """``1 / temperature`` as a scale tensor; synced over ranks under ``gather_distributed``."""
    scale = 1.0 / core.as_scale(temperature, like)
    return scale if sh is None else sh.sync_scale(scale)


def prepare_labeled(
    embeddings: Tensor, labels: Tensor, *, normalize: bool
) -> tuple[Tensor, Tensor]:
    """Validate embeddings and labels; labels move to the embeddings' device."""
    z = prepare_one("embeddings", embeddings, normalize=normalize)
    return z, v.check_labels("labels", labels, z.shape[0]).to(z.device)


def gathered(sh: Shard | None, name: str, x: T) -> T:
    """``x`` with every rank's rows (differentiable) under ``gather_distributed``, else ``x``."""
    if sh is None or x is None:
        return x
    return sh.gather(name, x)


def finish(
    per_row: Tensor,
    reduction: Reduction,
    sh: Shard | None,
    name: str,
    *,
    valid: Tensor | None = None,
    denominator: float | Tensor | None = None,
) -> Tensor:
    """Reduce per-row terms of the (global) batch.

    Losses that every rank evaluates on the gathered batch use this: the value is the global
    loss on every rank, and the gather's backward already sums every rank's (identical)
    gradient, which is the ``W``-scaled convention of :mod:`contrastkit.distributed`. With
    ``"none"`` each rank gets the terms of its own rows of input ``name``.
    """
    if sh is None or reduction != "none":
        return core.reduce(per_row, reduction, valid=valid, denominator=denominator)
    if valid is not None:
        per_row = core.reduce(per_row, "none", valid=valid)
    return sh.local_rows(name, per_row)


def paired_shapes(name: str, query: Tensor, candidates: Tensor) -> dict[str, Tensor]:
    """The tensors :func:`gather_paired` gathers: ``name`` split into positives and extras."""
    n = query.shape[0]
    return {f"{name}_pos": candidates[:n], f"{name}_extra": candidates[n:]}


def gather_paired(sh: Shard | None, name: str, query: Tensor, candidates: Tensor) -> Tensor:
    """Every rank's candidates: the positives first, in query order, then every rank's extras.

    Row ``i`` of the gathered queries keeps its positive at row ``i``; the extra rows (a queue,
    hard negatives) of all ranks follow. Without a shard, ``candidates`` unchanged.
    """
    if sh is None:
        return candidates
    n = query.shape[0]
    return torch.cat(
        [sh.gather(f"{name}_pos", candidates[:n]), sh.gather(f"{name}_extra", candidates[n:])]
    )
