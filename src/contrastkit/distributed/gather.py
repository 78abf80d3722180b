r"""Exact multi-process losses: exchange embeddings, compute the rows a rank owns, route gradients.

The contract (tested with real gloo process groups for every loss in the registry):

- the returned value is the loss of the global batch, the same on every rank;
- the gradient that reaches rank ``r``'s local embeddings is ``W`` times its slice of the
  gradient of the global loss, so that after ``DistributedDataParallel`` averages parameter
  gradients over the ``W`` ranks they equal those of one process holding the global batch;
- a scalar owned by the loss (a learnable temperature or logit scale) receives the full
  gradient of the global loss on every rank, inside a DDP wrapper or not.

Embeddings are exchanged (``O(N_{global} D)`` per rank), never score matrices. Local batch sizes
may differ between ranks. Every rank first shares its local validation errors and the shapes of
its inputs, so a problem on one rank (a different width, dtype, or labels on some ranks only)
raises the same ``ValueError`` on every rank instead of leaving the others waiting.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import torch
import torch.distributed as dist
from torch import Tensor

from contrastkit.core.validation import Reduction

T = TypeVar("T")
ProcessGroup = Any  # torch.distributed.ProcessGroup (kept as Any: its stub varies by version)


def world_of(gather: bool, group: ProcessGroup | None) -> tuple[int, int]:
    """``(rank, world size)`` read now from ``group``; ``(0, 1)`` when not gathering."""
    if not gather or not dist.is_available() or not dist.is_initialized():
        return 0, 1
    return dist.get_rank(group), dist.get_world_size(group)


@dataclass(frozen=True)
class Shard:
    """One rank's place in the global batch, for every input that is gathered.

    Attributes:
        rank: This rank's index in ``group``.
        world: Number of ranks ``W``.
        group: The process group (``None``: the default group).
        sizes: Per input name, the local row counts of all ranks.
    """

    rank: int
    world: int
    group: ProcessGroup | None
    sizes: dict[str, list[int]]

    def offset(self, name: str) -> int:
        """Global index of this rank's first row of input ``name``."""
        return sum(self.sizes[name][: self.rank])

    def total(self, name: str) -> int:
        """Global number of rows of input ``name``."""
        return sum(self.sizes[name])

    def global_index(self, name: str, local: Tensor) -> Tensor:
        """Map local row indices of ``name`` to indices in its gathered tensor."""
        return local + self.offset(name)

    def gather(self, name: str, x: Tensor) -> Tensor:
        """All ranks' rows of ``x``, concatenated in rank order (differentiable)."""
        if x.is_floating_point() and x.requires_grad:
            out: Tensor = _GatherRows.apply(x, self.group, self.sizes[name], self.rank)
            return out
        return gather_rows(x, self.group, self.sizes[name])

    def merge_logsumexp(self, partial: Tensor) -> Tensor:
        """``log sum_r exp(partial_r)`` over ranks, elementwise and differentiable.

        Merges per-rank column statistics (each rank saw its own rows) into the global ones,
        so a symmetric loss needs one pass over its rows instead of a second pass for columns.
        """
        out: Tensor = _LogSumExpOverRanks.apply(partial, self.group)
        return out

    def sync_scale(self, scale: Tensor) -> Tensor:
        """Identity whose backward averages the gradient over ranks (see the module docstring)."""
        if not scale.requires_grad:
            return scale
        out: Tensor = _AverageGrad.apply(scale, self.group, self.world)
        return out

    def all_sum(self, x: Tensor) -> Tensor:
        """Sum of a detached tensor over ranks."""
        y = x.detach().clone()
        dist.all_reduce(y, group=self.group)
        return y

    def local_rows(self, name: str, per_row: Tensor) -> Tensor:
        """This rank's slice of global per-row terms computed identically on every rank.

        For losses evaluated on the gathered (global) batch by every rank: the slice's
        gradient is scaled by ``W`` (each rank's share reaches every rank through the gather's
        backward sum), the same convention as :meth:`reduce` with ``"none"``.
        """
        off = self.offset(name)
        local = per_row[off : off + self.sizes[name][self.rank]]
        return _scaled_value(local, local.detach(), self.world)

    def reduce(self, per_row: Tensor, reduction: Reduction, denominator: float | Tensor) -> Tensor:
        """Global value, ``W``-scaled local gradient.

        ``"mean"`` divides the global sum by ``denominator`` (a global count); ``"none"``
        returns the local per-row terms, exact values with the same gradient scaling, so
        reduce them as a sum over ranks: ``terms.sum() / N_global`` (not ``terms.mean()``).
        """
        if reduction == "none":
            return _scaled_value(per_row, per_row.detach(), self.world)
        local = per_row.sum()
        if reduction == "mean":
            den = torch.as_tensor(denominator, dtype=local.dtype, device=local.device)
            local = local / den.clamp(min=1)
        return _scaled_value(local, self.all_sum(local), self.world)


def _scaled_value(local: Tensor, value: Tensor, world: int) -> Tensor:
    """A tensor equal to ``value`` whose gradient is ``world`` times that of ``local``."""
    return value + world * (local - local.detach())


def shard(
    gather: bool,
    group: ProcessGroup | None,
    check: Callable[[], T],
    shapes: Callable[[T], dict[str, Tensor | None]],
    options: dict[str, object] | None = None,
) -> tuple[T, Shard | None]:
    """Run the local checks, then agree with the other ranks on shapes; one error for all.

    Args:
        gather: ``gather_distributed`` of the loss; without it (or in one process) only
            ``check`` runs.
        group: The process group.
        check: Validates and prepares the local inputs; raises ``ValueError``.
        shapes: The named tensors to be gathered (``None`` for an absent optional input).
        options: Arguments that change which collectives run (``symmetric``, ``reduction``,
            whether the temperature requires grad); every rank must pass the same.

    Returns:
        ``check``'s result and the :class:`Shard`, or ``None`` when not distributed.

    Raises:
        ValueError: On every rank, if any rank's check failed or the ranks disagree.
    """
    rank, world = world_of(gather, group)
    if world == 1:
        return check(), None
    error: str | None = None
    result: T | None = None
    meta: dict[str, _Meta | None] = {}
    try:
        result = check()
        meta = {
            name: None
            if t is None
            else (t.shape[0], tuple(t.shape[1:]), str(t.dtype), t.requires_grad)
            for name, t in shapes(result).items()
        }
    except Exception as exc:  # any local failure must reach the other ranks, or they would wait
        error = str(exc) if isinstance(exc, ValueError) else f"{type(exc).__name__}: {exc}"
    opts = {k: repr(v) for k, v in (options or {}).items()}
    everyone: list[Any] = [None] * world
    dist.all_gather_object(everyone, (error, meta, opts), group=group)
    for r, (err, _, _) in enumerate(everyone):
        if err is not None:
            raise ValueError(f"gather_distributed: rank {r} of {world} rejected its input: {err}")
    for key in opts:
        values = [o[2].get(key) for o in everyone]
        if len(set(values)) > 1:
            raise ValueError(
                f"gather_distributed: `{key}` differs across ranks {values}; every rank must "
                "call the loss with the same arguments."
            )
    sizes: dict[str, list[int]] = {}
    for name in everyone[0][1]:
        seen = [m[1].get(name) for m in everyone]
        _agree(name, seen)
        sizes[name] = [0 if s is None else s[0] for s in seen]
    assert result is not None
    return result, Shard(rank, world, group, sizes)


_Meta = tuple[int, tuple[int, ...], str, bool]


def _agree(name: str, seen: Sequence[_Meta | None]) -> None:
    """Raise (on every rank, since all see the same list) unless the ranks' inputs match."""
    present = [s is not None for s in seen]
    if any(present) and not all(present):
        ranks = [r for r, p in enumerate(present) if p]
        raise ValueError(
            f"gather_distributed: `{name}` was given on ranks {ranks} only; pass it on every "
            "rank or on none."
        )
    shapes = {s[1] for s in seen if s is not None}
    if len(shapes) > 1:
        per_rank = [s[1] if s is not None else None for s in seen]
        raise ValueError(
            f"gather_distributed: `{name}` has different trailing shapes across ranks "
            f"{per_rank}; every rank must use the same embedding width."
        )
    dtypes = {s[2] for s in seen if s is not None}
    if len(dtypes) > 1:
        per_rank_dt = [s[2] if s is not None else None for s in seen]
        raise ValueError(
            f"gather_distributed: `{name}` has different dtypes across ranks {per_rank_dt}; "
            "cast every rank's input to the same dtype."
        )
    grads = {s[3] for s in seen if s is not None}
    if len(grads) > 1:
        raise ValueError(
            f"gather_distributed: `{name}` requires grad on some ranks only "
            f"{[s[3] if s is not None else None for s in seen]}; every rank must backpropagate "
            "through the loss (or none)."
        )


def gather_rows(x: Tensor, group: ProcessGroup | None, sizes: list[int]) -> Tensor:
    """All-gather rows of possibly different counts (padded to the largest, then trimmed)."""
    most = max(sizes)
    padded = x.new_zeros((most, *x.shape[1:]))
    padded[: x.shape[0]] = x
    parts = [torch.empty_like(padded) for _ in sizes]
    dist.all_gather(parts, padded.contiguous(), group=group)
    return torch.cat([p[:n] for p, n in zip(parts, sizes, strict=True)])


class _GatherRows(torch.autograd.Function):
    """Gather rows from every rank; the backward sums the gradient over ranks, keeps a slice.

    Every rank's loss terms may depend on every gathered row, so the gradient of a row is the
    sum over ranks; each rank keeps the slice of its own rows.
    """

    @staticmethod
    def forward(
        ctx: Any, x: Tensor, group: ProcessGroup | None, sizes: list[int], rank: int
    ) -> Tensor:
        ctx.group, ctx.sizes, ctx.rank = group, sizes, rank
        return gather_rows(x.detach(), group, sizes)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor | None, ...]:
        grad = grad.contiguous().clone()
        dist.all_reduce(grad, group=ctx.group)
        start = sum(ctx.sizes[: ctx.rank])
        return grad[start : start + ctx.sizes[ctx.rank]], None, None, None


class _AverageGrad(torch.autograd.Function):
    """Identity; the backward averages the gradient over the ranks."""

    @staticmethod
    def forward(ctx: Any, x: Tensor, group: ProcessGroup | None, world: int) -> Tensor:
        ctx.group, ctx.world = group, world
        return x.clone()

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor | None, ...]:
        grad = grad.contiguous().clone()
        dist.all_reduce(grad, group=ctx.group)
        return grad / ctx.world, None, None


class _LogSumExpOverRanks(torch.autograd.Function):
    """Elementwise log-sum-exp over ranks; the backward all-reduces the incoming gradient.

    Every rank's loss terms may use any merged entry, so the gradient of ``partial_r`` is
    ``(sum over ranks of the incoming gradients) * exp(partial_r - out)``.
    """

    @staticmethod
    def forward(ctx: Any, partial: Tensor, group: ProcessGroup | None) -> Tensor:
        top = partial.detach().clone()
        dist.all_reduce(top, op=dist.ReduceOp.MAX, group=group)
        shift = torch.where(torch.isfinite(top), top, 0.0)
        total = torch.exp(partial.detach() - shift)
        dist.all_reduce(total, group=group)
        out = torch.where(total > 0, shift + total.log(), -math.inf)
        ctx.save_for_backward(partial, out)
        ctx.group = group
        return out

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor | None, ...]:
        partial, out = ctx.saved_tensors
        grad = grad.contiguous().clone()
        dist.all_reduce(grad, group=ctx.group)
        ok = torch.isfinite(out) & torch.isfinite(partial)
        weight = torch.exp(torch.where(ok, partial - torch.where(ok, out, 0.0), -math.inf))
        return grad * weight, None
