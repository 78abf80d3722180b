"""A FIFO memory bank of past keys (MoCo, ALBEF, CTVIS), consistent across processes."""

from __future__ import annotations

import torch
import torch.distributed as dist
from torch import Tensor, nn

from contrastkit.core import validation as v
from contrastkit.distributed import ProcessGroup, world_of
from contrastkit.distributed.gather import gather_rows


class Queue(nn.Module):
    """First-in-first-out bank of the last ``size`` keys, optionally with their labels.

    Keys are stored detached (they are negatives, not trained through). The bank is a set of
    buffers, so it moves with ``.to(device)`` and is saved and restored by ``state_dict``.

    Typical use (MoCo / ALBEF): the keys of this step are the positives, the queue the extra
    negatives, then the keys are enqueued::

        loss = ck.losses.infonce(q, torch.cat([k, queue.keys()]))
        queue.push(k)

    Under ``gather_distributed`` every rank holds the same bank (:meth:`push` gathers the keys of
    all ranks, in rank order, before enqueueing). A gathered loss collects every rank's keys, so
    pass each rank's share, :meth:`shard`, instead of the whole bank: the ranks' shares
    together are the bank, each row once::

        loss = ck.losses.infonce(q, torch.cat([k, queue.shard()]), gather_distributed=True)
        queue.push(k, gather_distributed=True)

    Args:
        size: Capacity (ALBEF: 65,536; MoCo: 65,536).
        dim: Key width ``D``.
        labels: Also store an integer label per key (e.g. for supervised negatives).
        dtype: Storage dtype of the keys.

    Example:
        >>> import torch
        >>> q = Queue(5, 3)
        >>> q.push(torch.randn(4, 3)); q.push(torch.randn(4, 3))
        >>> q.keys().shape, len(q)
        (torch.Size([5, 3]), 5)
    """

    bank: Tensor
    bank_labels: Tensor
    ptr: Tensor
    count: Tensor

    def __init__(
        self, size: int, dim: int, *, labels: bool = False, dtype: torch.dtype = torch.float32
    ) -> None:
        super().__init__()
        v.check_int("size", size, 1)
        v.check_int("dim", dim, 1)
        self.size, self.dim, self.has_labels = size, dim, labels
        self.register_buffer("bank", torch.zeros(size, dim, dtype=dtype))
        self.register_buffer("bank_labels", torch.full((size if labels else 0,), -1))
        self.register_buffer("ptr", torch.zeros((), dtype=torch.long))
        self.register_buffer("count", torch.zeros((), dtype=torch.long))

    def __len__(self) -> int:
        """Number of keys held (at most ``size``)."""
        return int(self.count)

    def keys(self) -> Tensor:
        """The keys held, shape ``(len, D)``.

        Rows are in storage order (a ring buffer); a loss that uses them as a set of negatives
        does not depend on it.
        """
        return self.bank[: len(self)] if len(self) < self.size else self.bank

    def labels(self) -> Tensor:
        """The labels of :meth:`keys`, shape ``(len,)``."""
        if not self.has_labels:
            raise ValueError("this Queue stores no labels; create it with Queue(..., labels=True).")
        return self.bank_labels[: len(self)] if len(self) < self.size else self.bank_labels

    def shard(self, process_group: ProcessGroup | None = None) -> Tensor:
        """This rank's share of :meth:`keys` (rows ``rank::W``), for gathered losses."""
        rank, world = world_of(True, process_group)
        return self.keys()[rank::world]

    def shard_labels(self, process_group: ProcessGroup | None = None) -> Tensor:
        """The labels of :meth:`shard`."""
        rank, world = world_of(True, process_group)
        return self.labels()[rank::world]

    @torch.no_grad()
    def push(
        self,
        keys: Tensor,
        labels: Tensor | None = None,
        *,
        gather_distributed: bool = False,
        process_group: ProcessGroup | None = None,
    ) -> None:
        """Enqueue ``keys`` (and ``labels``), dropping the oldest beyond ``size``.

        Args:
            keys: Shape ``(n, D)``; stored detached.
            labels: Shape ``(n,)`` integer labels; required iff the queue stores labels.
            gather_distributed: Enqueue the keys of every rank (in rank order), so the banks
                stay identical; every rank must call it.
            process_group: The group to gather over.
        """
        v.check_embeddings("keys", keys)
        if keys.shape[1] != self.dim:
            raise ValueError(
                f"`keys` must have width {self.dim} (the queue's dim); got {keys.shape[1]}."
            )
        if self.has_labels != (labels is not None):
            need = "needs `labels`" if self.has_labels else "stores no labels; drop `labels`"
            raise ValueError(f"this Queue {need}.")
        y = None if labels is None else v.check_labels("labels", labels, keys.shape[0])
        _, world = world_of(gather_distributed, process_group)
        if world > 1:
            keys = _gather(keys.detach(), process_group, world)
            y = None if y is None else _gather(y.to(keys.device), process_group, world)
        keys = keys.detach().to(self.bank.dtype)
        if keys.shape[0] >= self.size:  # only the newest `size` keys survive
            keys = keys[-self.size :]
            y = None if y is None else y[-self.size :]
        n, start = keys.shape[0], int(self.ptr)
        rows = (torch.arange(n, device=self.bank.device) + start) % self.size
        self.bank[rows] = keys.to(self.bank.device)
        if y is not None:
            self.bank_labels[rows] = y.to(self.bank_labels.device)
        self.ptr.fill_((start + n) % self.size)
        self.count.fill_(min(self.size, int(self.count) + n))


def _gather(x: Tensor, group: ProcessGroup | None, world: int) -> Tensor:
    """All ranks' rows of ``x`` in rank order (local counts may differ)."""
    counts = [torch.zeros((), dtype=torch.long, device=x.device) for _ in range(world)]
    dist.all_gather(counts, torch.tensor(x.shape[0], device=x.device), group=group)
    return gather_rows(x, group, [int(c) for c in counts])
