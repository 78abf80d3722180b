"""Exact multi-process evaluation of the losses over ``torch.distributed``.

Every loss takes ``gather_distributed: bool = False`` and ``process_group=None``; with
``gather_distributed=True`` it returns the loss of the global batch on every rank and gradients
that, after DDP's averaging, equal those of one process holding the global batch. See
:mod:`contrastkit.distributed.gather` for the contract. With ``reduction="none"`` a rank gets
its own rows' exact terms; reduce them as a sum over ranks (``terms.sum() / N_global``).
"""

from contrastkit.distributed.gather import ProcessGroup, Shard, shard, world_of

__all__ = ["ProcessGroup", "Shard", "shard", "world_of"]
