"""contrastkit: exact, memory-efficient contrastive losses for PyTorch."""

from contrastkit import core, distributed, losses, metrics, state, train

__version__ = "0.1.0"

__all__ = ["__version__", "core", "distributed", "losses", "metrics", "state", "train"]
