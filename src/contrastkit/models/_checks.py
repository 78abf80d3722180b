"""Argument checks shared by the encoders."""

from __future__ import annotations


def positive_int(name: str, value: object) -> int:
    """``value`` if it is an ``int >= 1`` (not a bool); otherwise a ``ValueError`` naming it."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"`{name}` must be an int >= 1; got {value!r}.")
    return value
