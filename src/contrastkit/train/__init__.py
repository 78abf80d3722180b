"""Training helpers: gradient caching for batches larger than the encoder's memory."""

from contrastkit.train.grad_cache import GradCache

__all__ = ["GradCache"]
