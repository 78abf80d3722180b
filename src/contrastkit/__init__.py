"""contrastkit: exact, memory-efficient contrastive losses for PyTorch."""

from contrastkit import core, data, distributed, losses, metrics, models, state, train

__version__ = "0.1.0"

__all__ = [
    "__version__",
    "core",
    "data",
    "distributed",
    "losses",
    "metrics",
    "models",
    "state",
    "train",
]
