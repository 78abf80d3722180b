r"""Gradient caching: exact contrastive steps with batches larger than the encoder's memory.

A contrastive loss couples every sample of the batch, so the batch cannot simply be split
into micro-batches. Gradient caching (Gao et al., 2021, arXiv:2101.06983) splits the *encoder*
work instead:

1. embed the batch in chunks without a graph (recording each chunk's random state);
2. compute the loss on the full embedding matrix and its gradient ``dL/dz``
   (memory ``O(N D)`` with contrastkit's tiled losses);
3. re-run each chunk with its random state restored and backpropagate ``dL/dz`` of its rows.

The parameter gradients are those of the uncached step (same dropout masks, same autocast
context as the caller), and parameters of the loss itself (CLIP's ``logit_scale``) get theirs
from the one backward of the loss. Under ``DistributedDataParallel`` every chunk but the last
runs inside ``no_sync()``, so gradients are synchronized once per step.

Limitation: each chunk runs forward twice, so modules that update running statistics in
training mode (BatchNorm) update them twice per step; prefer LayerNorm or frozen statistics.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn


@dataclass
class _ChunkState:
    cpu: Tensor
    devices: list[Tensor] = field(default_factory=list)


def _device_of(module: nn.Module, x: Tensor) -> torch.device:
    """The device whose random stream the module's forward draws from."""
    param = next(module.parameters(), None)
    return param.device if param is not None else x.device


def _capture(device: torch.device) -> _ChunkState:
    devices = []
    if device.type == "cuda":
        devices = [torch.cuda.get_rng_state(device)]
    return _ChunkState(torch.get_rng_state(), devices)


@contextlib.contextmanager
def _replay(state: _ChunkState, device: torch.device) -> Iterator[None]:
    fork = [device] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=fork):
        torch.set_rng_state(state.cpu)
        if device.type == "cuda":
            torch.cuda.set_rng_state(state.devices[0], device)
        yield


class GradCache:
    """One exact training step of ``loss_fn(encoder(x_1), ..., encoder(x_k), *extra)`` in chunks.

    Args:
        encoders: One module per input (the same module may repeat, e.g. SimCLR's two views).
            A ``DistributedDataParallel`` module is synchronized once per step.
        loss_fn: Maps the full embeddings (and ``extra`` tensors such as labels) to a scalar.
        chunk_size: Rows per encoder chunk.

    Example:
        >>> import torch
        >>> from torch import nn
        >>> import contrastkit as ck
        >>> enc = nn.Linear(8, 4)
        >>> step = GradCache([enc, enc], ck.losses.NTXentLoss(), chunk_size=16)
        >>> loss = step(torch.randn(64, 8), torch.randn(64, 8))
        >>> enc.weight.grad.shape
        torch.Size([4, 8])
    """

    def __init__(
        self,
        encoders: Sequence[nn.Module],
        loss_fn: Callable[..., Tensor],
        *,
        chunk_size: int,
    ) -> None:
        if isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1:
            raise ValueError(f"`chunk_size` must be a positive int; got {chunk_size!r}.")
        if len(encoders) == 0:
            raise ValueError("`encoders` must name one module per input; got none.")
        self.encoders = list(encoders)
        self.loss_fn = loss_fn
        self.chunk_size = chunk_size

    def __call__(self, *inputs: Tensor, extra: Sequence[Tensor] = ()) -> Tensor:
        """Run the step: accumulate parameter gradients (``.grad``) and return the loss.

        Args:
            inputs: One batch per encoder, each with the same number of rows ``N``.
            extra: Further loss arguments passed as they are (labels, weights).

        Returns:
            The loss value (detached).
        """
        if len(inputs) != len(self.encoders):
            raise ValueError(
                f"got {len(inputs)} input batch(es) for {len(self.encoders)} encoder(s); pass "
                "one batch per encoder."
            )
        chunks = [torch.split(x, self.chunk_size) for x in inputs]
        states: list[list[_ChunkState]] = []
        cached: list[Tensor] = []
        with torch.no_grad():
            for enc, parts in zip(self.encoders, chunks, strict=True):
                rng, outs = [], []
                device = _device_of(enc, parts[0])
                for part in parts:
                    rng.append(_capture(device))
                    outs.append(enc(part))
                states.append(rng)
                cached.append(torch.cat(outs).detach().requires_grad_())
        loss = self.loss_fn(*cached, *extra)
        # One backward of the loss: dL/dz of the embeddings, and the gradients of the loss's own
        # parameters (e.g. CLIP's logit_scale).
        torch.autograd.backward(loss)
        grads = [z.grad if z.grad is not None else torch.zeros_like(z) for z in cached]
        jobs = [
            (enc, part, state, grad_part)
            for enc, parts, rng, grad in zip(self.encoders, chunks, states, grads, strict=True)
            for part, state, grad_part in zip(
                parts, rng, torch.split(grad, self.chunk_size), strict=True
            )
        ]
        # Each DDP module synchronizes in its last backward only.
        last_use = {id(enc): k for k, (enc, *_) in enumerate(jobs)}
        for k, (enc, part, state, grad_part) in enumerate(jobs):
            no_sync: Callable[[], contextlib.AbstractContextManager[None]] | None
            no_sync = getattr(enc, "no_sync", None)
            skip = no_sync is not None and last_use[id(enc)] != k
            sync = no_sync() if skip and no_sync is not None else contextlib.nullcontext()
            with sync, _replay(state, _device_of(enc, part)):
                torch.autograd.backward(enc(part), grad_part)
        return loss.detach()
