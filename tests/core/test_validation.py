"""Scalar arguments are validated with clear messages, whatever their type."""

from __future__ import annotations

import pytest
import torch

import contrastkit.losses as L


@pytest.mark.parametrize(
    "value", [torch.ones(2), None, True, "0.1"], ids=["two-elements", "none", "bool", "string"]
)
def test_bad_logit_scale_names_the_argument(value: object) -> None:
    """A non-scalar, None, bool or string logit_scale is a ValueError naming it."""
    with pytest.raises(ValueError, match="logit_scale"):
        L.clip(torch.randn(3, 4), torch.randn(3, 4), logit_scale=value)  # type: ignore[arg-type]


@pytest.mark.parametrize("value", [True, None, torch.ones(3)], ids=["bool", "none", "vector"])
def test_bad_temperature_names_the_argument(value: object) -> None:
    """A bool, None or vector temperature is a ValueError naming it."""
    with pytest.raises(ValueError, match="temperature"):
        L.infonce(torch.randn(3, 4), torch.randn(3, 4), temperature=value)  # type: ignore[arg-type]
