"""The seeded, optionally stratified split shared by ``contrastkit.data`` and the metrics."""

from __future__ import annotations

import math

import torch
from torch import Tensor


def check_test_fraction(test_fraction: object) -> None:
    """A ``ValueError`` unless ``test_fraction`` is a number in ``(0, 1)``."""
    if isinstance(test_fraction, bool) or not isinstance(test_fraction, int | float):
        raise ValueError(f"`test_fraction` must be a float in (0, 1); got {test_fraction!r}.")
    if not 0.0 < float(test_fraction) < 1.0:
        raise ValueError(f"`test_fraction` must be in (0, 1); got {test_fraction!r}.")


def split_positions(
    n: int, labels: Tensor | None, test_fraction: float, generator: torch.Generator
) -> tuple[Tensor, Tensor]:
    """Training and test positions of ``range(n)``, each class (or all rows) split on its own.

    For each class (all rows when ``labels`` is ``None``) of ``n_c`` rows, a permutation is
    drawn from ``generator`` and its first ``floor(test_fraction * n_c + 0.5)`` rows, but at
    most ``n_c - 1`` (at least 1 without labels), go to the test part. The parts are in class
    order, each class's rows in the drawn order.

    Args:
        n: Number of rows.
        labels: Shape ``(n,)`` integer class ids, or ``None`` for a plain split.
        test_fraction: Fraction held out, in ``(0, 1)``.
        generator: A CPU generator; the split depends on its state only.

    Returns:
        ``(train, test)`` int64 positions on the CPU.

    Raises:
        ValueError: If ``test_fraction`` is not a number in ``(0, 1)``.

    Example:
        >>> g = torch.Generator().manual_seed(0)
        >>> train, test = split_positions(4, torch.tensor([0, 0, 1, 1]), 0.5, g)
        >>> sorted(test.tolist()) in ([0, 2], [0, 3], [1, 2], [1, 3])
        True
    """
    check_test_fraction(test_fraction)
    y = labels.detach().cpu() if labels is not None else None
    groups = (
        [torch.nonzero(y == c).flatten() for c in torch.unique(y)]
        if y is not None
        else [torch.arange(n)]
    )
    train_parts, test_parts = [], []
    for members in groups:
        size = members.numel()
        n_test = min(math.floor(float(test_fraction) * size + 0.5), size - 1)
        if y is None:
            n_test = max(1, n_test)
        perm = members[torch.randperm(size, generator=generator)]
        test_parts.append(perm[:n_test])
        train_parts.append(perm[n_test:])
    return torch.cat(train_parts), torch.cat(test_parts)
