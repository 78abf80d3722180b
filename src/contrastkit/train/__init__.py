"""Training: the loop, the tasks, any catalog loss on two views, and gradient caching.

- :class:`Trainer` / :class:`TrainConfig` / :class:`Task` (:mod:`~contrastkit.train.trainer`):
  seeded training with atomic checkpoints, exact resume and JSON-lines / CSV logs;
- :class:`ViewsTask` and :class:`PairedTask` (:mod:`~contrastkit.train.tasks`): SimCLR-style
  image runs and CLIP-style paired runs, judged by :mod:`contrastkit.metrics`;
- :func:`two_view_loss` and :func:`build_loss` (:mod:`~contrastkit.train.objectives`);
- :mod:`~contrastkit.train.config` (the command line's TOML runs) and
  :mod:`~contrastkit.train.plots` (the report's figures);
- :class:`GradCache`: exact contrastive steps with batches larger than the encoder's memory.
"""

from contrastkit.train.grad_cache import GradCache
from contrastkit.train.objectives import build_loss, two_view_loss
from contrastkit.train.tasks import PairedTask, ViewsTask
from contrastkit.train.trainer import History, Task, TrainConfig, Trainer

__all__ = [
    "GradCache",
    "History",
    "PairedTask",
    "Task",
    "TrainConfig",
    "Trainer",
    "ViewsTask",
    "build_loss",
    "two_view_loss",
]
