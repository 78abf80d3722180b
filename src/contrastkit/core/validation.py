"""Input validation shared by every loss: clear errors instead of silent NaNs.

Every check raises :class:`ValueError` with a message that names the argument, says what was
received and how to fix it.
"""

from __future__ import annotations

import math
from typing import Literal, get_args

import torch
from torch import Tensor

Reduction = Literal["mean", "sum", "none"]
Impl = Literal["auto", "dense", "tiled"]


def check_embeddings(name: str, x: object, *, shape: str = "(N, D)") -> Tensor:
    """Check that ``x`` is a non-empty, finite, floating-point tensor of shape ``(N, D)``.

    Args:
        name: Argument name used in the error message.
        x: The value to check.
        shape: The expected shape, e.g. ``"(N, K, D)"``; its rank is checked.

    Returns:
        ``x`` unchanged.

    Raises:
        ValueError: If ``x`` is not a tensor, not 2-D, empty, not floating point or not finite.
    """
    if not isinstance(x, Tensor):
        raise ValueError(
            f"`{name}` must be a torch.Tensor of shape {shape}; got {type(x).__name__}."
        )
    ndim = shape.count(",") + 1
    if x.dim() != ndim:
        hint = (
            "Flatten extra dimensions (x.flatten(1)) or add a batch dimension (x[None])."
            if ndim == 2
            else "Reshape it to that layout."
        )
        raise ValueError(
            f"`{name}` must be {ndim}-D with shape {shape}; got shape {tuple(x.shape)}. {hint}"
        )
    if x.shape[0] == 0:
        raise ValueError(
            f"`{name}` is an empty batch (shape {tuple(x.shape)}); pass at least one row."
        )
    if x.numel() == 0:
        raise ValueError(f"`{name}` has zero width (shape {tuple(x.shape)}); D must be >= 1.")
    if not x.is_floating_point():
        raise ValueError(
            f"`{name}` must be a floating-point tensor; got dtype {x.dtype}. Use x.float()."
        )
    if not bool(torch.isfinite(x).all()):
        bad = int((~torch.isfinite(x)).sum())
        raise ValueError(
            f"`{name}` contains {bad} non-finite value(s) (NaN or inf). Check the encoder output "
            "(e.g. a diverged step or a division by zero) before the loss."
        )
    return x


def check_same_width(name_a: str, a: Tensor, name_b: str, b: Tensor) -> None:
    """Check that two embedding matrices have the same width ``D``."""
    if a.shape[1] != b.shape[1]:
        raise ValueError(
            f"`{name_a}` and `{name_b}` must have the same embedding width; got "
            f"{a.shape[1]} and {b.shape[1]}. Project both to a common dimension first."
        )


def check_same_batch(name_a: str, a: Tensor, name_b: str, b: Tensor) -> None:
    """Check that two tensors have the same number of rows ``N`` (row i pairs with row i)."""
    if a.shape[0] != b.shape[0]:
        raise ValueError(
            f"`{name_a}` and `{name_b}` must have the same batch size (row i of one is paired "
            f"with row i of the other); got {a.shape[0]} and {b.shape[0]}."
        )


def check_labels(name: str, labels: object, n: int) -> Tensor:
    """Check that ``labels`` is an integer vector of length ``n``.

    Args:
        name: Argument name used in the error message.
        labels: The value to check.
        n: Expected length.

    Returns:
        ``labels`` unchanged.

    Raises:
        ValueError: If ``labels`` is not a 1-D integer tensor of length ``n``.
    """
    if not isinstance(labels, Tensor):
        raise ValueError(
            f"`{name}` must be a torch.Tensor of integer class ids with shape ({n},); "
            f"got {type(labels).__name__}."
        )
    if labels.dim() != 1:
        raise ValueError(
            f"`{name}` must be 1-D with shape ({n},); got shape {tuple(labels.shape)}. "
            "Pass class ids, not one-hot rows (use labels.argmax(1))."
        )
    if labels.is_floating_point() or labels.is_complex() or labels.dtype == torch.bool:
        raise ValueError(
            f"`{name}` must hold integer class ids; got dtype {labels.dtype}. Use labels.long()."
        )
    if labels.shape[0] != n:
        raise ValueError(
            f"`{name}` must have one entry per embedding row ({n}); got {labels.shape[0]}."
        )
    return labels


def check_temperature(name: str, value: float | Tensor) -> None:
    """Check that a temperature (or scale) is a finite positive scalar."""
    if isinstance(value, Tensor):
        if value.numel() != 1:
            raise ValueError(
                f"`{name}` must be a scalar (0-dim tensor or float); got shape "
                f"{tuple(value.shape)}."
            )
        v = float(value.detach())
    elif isinstance(value, int | float) and not isinstance(value, bool):
        v = float(value)
    else:
        raise ValueError(f"`{name}` must be a float or a 0-dim tensor; got {value!r}.")
    if not math.isfinite(v) or v <= 0.0:
        raise ValueError(
            f"`{name}` must be a finite number > 0; got {v}. Typical values are 0.05 to 0.5."
        )


def check_finite_scalar(name: str, value: float | Tensor) -> None:
    """Check that ``value`` is a finite scalar (a log-scale may be negative)."""
    if isinstance(value, Tensor):
        if value.numel() != 1:
            raise ValueError(f"`{name}` must be a scalar; got shape {tuple(value.shape)}.")
        v = float(value.detach())
    elif isinstance(value, int | float) and not isinstance(value, bool):
        v = float(value)
    else:
        raise ValueError(f"`{name}` must be a float or a 0-dim tensor; got {value!r}.")
    if not math.isfinite(v):
        raise ValueError(f"`{name}` must be finite; got {v}.")


def check_weights(name: str, weights: object, n: int) -> Tensor:
    """Check that per-anchor ``weights`` form a finite floating vector of length ``n``."""
    if not isinstance(weights, Tensor):
        raise ValueError(
            f"`{name}` must be a tensor of shape ({n},); got {type(weights).__name__}."
        )
    if weights.shape != (n,):
        raise ValueError(
            f"`{name}` must have shape ({n},), one weight per anchor; got {tuple(weights.shape)}."
        )
    if not weights.is_floating_point():
        raise ValueError(f"`{name}` must be floating point; got dtype {weights.dtype}.")
    if not bool(torch.isfinite(weights).all()):
        raise ValueError(f"`{name}` contains non-finite values; weights must be finite.")
    return weights


def check_choice(name: str, value: object, choices: tuple[object, ...]) -> None:
    """Check that ``value`` is one of ``choices``."""
    if value not in choices:
        opts = ", ".join(repr(c) for c in choices)
        raise ValueError(f"`{name}` must be one of {opts}; got {value!r}.")


def check_reduction(value: object) -> None:
    """Check a ``reduction`` argument."""
    check_choice("reduction", value, get_args(Reduction))


def check_impl(value: object) -> None:
    """Check an ``impl`` argument."""
    check_choice("impl", value, get_args(Impl))


def check_chunk_size(value: object) -> None:
    """Check a ``chunk_size`` argument (``None`` or a positive int)."""
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"`chunk_size` must be None (automatic) or a positive int; got {value!r}.")


def check_positive_float(name: str, value: object) -> None:
    """Check that a hyper-parameter is a finite float > 0."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"`{name}` must be a float > 0; got {value!r}.")
    if not math.isfinite(float(value)) or float(value) <= 0:
        raise ValueError(f"`{name}` must be a finite float > 0; got {value!r}.")


def check_nonnegative_float(name: str, value: object) -> None:
    """Check that a hyper-parameter (a margin, a focal exponent) is a finite float >= 0."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"`{name}` must be a float >= 0; got {value!r}.")
    if not math.isfinite(float(value)) or float(value) < 0:
        raise ValueError(f"`{name}` must be a finite float >= 0; got {value!r}.")


def check_int(name: str, value: object, minimum: int) -> None:
    """Check that ``value`` is an int >= ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"`{name}` must be an int >= {minimum}; got {value!r}.")
