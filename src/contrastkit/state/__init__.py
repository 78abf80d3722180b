"""Stateful pieces kept outside the pure losses: memory banks and momentum encoders.

- :class:`Queue`: a FIFO memory bank of past keys (optionally with labels), identical on every
  rank under ``gather_distributed``, used as extra negatives by any loss that takes them.
- :class:`MomentumEncoder`: an exponential-moving-average copy of an encoder, with the usual
  momentum schedules (:func:`cosine_momentum`, :func:`linear_warmup`).

Per-sample estimator state (SogCLR's moving averages, iSogCLR's temperatures) lives in the
buffers of those loss modules, keyed by dataset index.
"""

from contrastkit.state.momentum import MomentumEncoder, cosine_momentum, linear_warmup
from contrastkit.state.queue import Queue

__all__ = ["MomentumEncoder", "Queue", "cosine_momentum", "linear_warmup"]
