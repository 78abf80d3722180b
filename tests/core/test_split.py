"""core.split: the seeded split shared by contrastkit.data and the linear probe."""

from __future__ import annotations

import math

import pytest
import torch

from contrastkit.core.split import split_positions


@pytest.mark.parametrize("fraction", [0.1, 0.25, 0.5, 0.9])
def test_each_class_split_in_proportion(fraction: float) -> None:
    labels = torch.tensor([0] * 10 + [1] * 7 + [2] * 3 + [3])
    train, test = split_positions(len(labels), labels, fraction, torch.Generator().manual_seed(3))
    assert sorted(torch.cat([train, test]).tolist()) == list(range(len(labels)))
    for c, size in enumerate([10, 7, 3, 1]):
        expected = min(math.floor(fraction * size + 0.5), size - 1)
        assert int((labels[test] == c).sum()) == expected


def test_plain_split_keeps_one_row_each_side() -> None:
    train, test = split_positions(5, None, 0.01, torch.Generator().manual_seed(0))
    assert (train.numel(), test.numel()) == (4, 1)


def test_same_generator_state_same_split() -> None:
    labels = torch.arange(40) % 4
    a = split_positions(40, labels, 0.3, torch.Generator().manual_seed(7))
    b = split_positions(40, labels, 0.3, torch.Generator().manual_seed(7))
    c = split_positions(40, labels, 0.3, torch.Generator().manual_seed(8))
    assert torch.equal(a[1], b[1])
    assert not torch.equal(a[1], c[1])


@pytest.mark.parametrize("fraction", [0.0, 1.0, -0.2, True, "0.3"])
def test_bad_fraction(fraction: object) -> None:
    with pytest.raises(ValueError, match="test_fraction"):
        split_positions(4, None, fraction, torch.Generator())  # type: ignore[arg-type]
