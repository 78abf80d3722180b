"""Momentum (EMA) encoders and their schedules (MoCo, BYOL, ALBEF, GenView)."""

from __future__ import annotations

import copy
import math
from typing import Any

import torch
from torch import Tensor, nn


class MomentumEncoder(nn.Module):
    r"""An exponential moving average of an encoder's parameters (a "momentum encoder").

    After each optimizer step, :meth:`update` sets
    :math:`\theta_m \leftarrow m \, \theta_m + (1 - m) \, \theta` for every parameter and copies
    the buffers (e.g. batch-norm statistics). The copy never requires grad; calling the module
    runs it under ``torch.no_grad()``. Under DDP the online parameters are identical on every
    rank after the step, so the momentum copies stay identical too.

    Args:
        encoder: The online encoder (a ``DistributedDataParallel`` wrapper is unwrapped).
        momentum: Default :math:`m \in [0, 1]` (ALBEF: 0.995; MoCo v3: 0.99 rising to 1 with
            :func:`cosine_momentum`).

    Example:
        >>> import torch
        >>> net = torch.nn.Linear(3, 2)
        >>> ema = MomentumEncoder(net, momentum=0.9)
        >>> ema.update(net)
        >>> ema(torch.randn(4, 3)).requires_grad
        False
    """

    def __init__(self, encoder: nn.Module, momentum: float = 0.999) -> None:
        super().__init__()
        _check_momentum(momentum)
        self.momentum = momentum
        self.encoder = copy.deepcopy(_unwrap(encoder))
        for p in self.encoder.parameters():
            p.requires_grad_(False)

    @torch.no_grad()
    def update(self, encoder: nn.Module, momentum: float | None = None) -> None:
        """Move the copy towards ``encoder`` (call after ``optimizer.step()``)."""
        m = self.momentum if momentum is None else momentum
        _check_momentum(m)
        online = _unwrap(encoder)
        ours: list[Tensor] = [p.data for p in self.encoder.parameters()]
        theirs: list[Tensor] = [p.detach() for p in online.parameters()]
        if len(ours) != len(theirs):
            raise ValueError(
                "`encoder` does not have the parameters of the encoder copied at init."
            )
        torch._foreach_mul_(ours, m)
        torch._foreach_add_(ours, theirs, alpha=1.0 - m)
        for b, ob in zip(self.encoder.buffers(), online.buffers(), strict=True):
            b.copy_(ob)

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        """Run the momentum copy without gradients."""
        with torch.no_grad():
            return self.encoder(*args, **kwargs)


def cosine_momentum(step: int, total_steps: int, base: float = 0.99, final: float = 1.0) -> float:
    r"""BYOL / MoCo v3 schedule: :math:`m_t = f - (f - b)(\cos(\pi t / T) + 1) / 2`.

    Rises from ``base`` at step 0 to ``final`` at ``total_steps`` (clamped beyond it).
    """
    t = min(max(step, 0), total_steps) / max(total_steps, 1)
    return final - (final - base) * (math.cos(math.pi * t) + 1) / 2


def linear_warmup(step: int, warmup_steps: int, value: float) -> float:
    """``value`` reached linearly over ``warmup_steps`` (ALBEF's distillation ``alpha``)."""
    if warmup_steps <= 0:
        return value
    return value * min(max(step, 0), warmup_steps) / warmup_steps


def _unwrap(module: nn.Module) -> nn.Module:
    inner = getattr(module, "module", None)
    return inner if isinstance(inner, nn.Module) and hasattr(module, "process_group") else module


def _check_momentum(m: float) -> None:
    if isinstance(m, bool) or not isinstance(m, int | float) or not 0.0 <= m <= 1.0:
        raise ValueError(f"`momentum` must be a float in [0, 1]; got {m!r}.")
