"""Alignment, uniformity, tolerance and effective rank equal their brute-force definitions."""

from __future__ import annotations

import math

import pytest
import torch

from contrastkit.losses.uniformity import alignment as alignment_loss
from contrastkit.metrics import (
    EffectiveRank,
    alignment,
    effective_rank,
    tolerance,
    uniformity,
)
from tests.metrics import _brute

CHUNKS = [pytest.param(1, id="chunk1"), pytest.param(7, id="chunk7"), None, 1000]


@pytest.mark.parametrize("alpha", [0.5, 1.0, 2.0, 3.0])
@pytest.mark.parametrize("normalize", [True, False])
def test_alignment_matches_brute_force(gen: torch.Generator, alpha: float, normalize: bool) -> None:
    """Mean ||x_i - y_i||^alpha, with and without normalization."""
    x, y = torch.randn(13, 5, generator=gen), torch.randn(13, 5, generator=gen)
    got = alignment(x, y, alpha=alpha, normalize=normalize)
    assert isinstance(got, float)
    assert got == pytest.approx(_brute.alignment(x, y, alpha, normalize), rel=1e-6)


def test_alignment_equals_the_loss_detached(gen: torch.Generator) -> None:
    """The metric is the loss's value, and no gradient flows from it."""
    x = torch.randn(9, 4, generator=gen, requires_grad=True)
    y = torch.randn(9, 4, generator=gen)
    got = alignment(x, y)
    assert got == pytest.approx(float(alignment_loss(x, y).detach()), rel=1e-6)
    assert x.grad is None


@pytest.mark.parametrize("chunk_size", CHUNKS)
@pytest.mark.parametrize("t", [1.0, 2.0])
def test_uniformity_matches_brute_force(
    gen: torch.Generator, chunk_size: int | None, t: float
) -> None:
    """Log of the mean over i != j of exp(-t ||x_i - x_j||^2), identical at every tile size."""
    x = torch.randn(23, 6, generator=gen, dtype=torch.float64)
    got = uniformity(x, t=t, chunk_size=chunk_size)
    assert got == pytest.approx(_brute.uniformity(x, t, True), rel=1e-10)


def test_uniformity_without_normalization(gen: torch.Generator) -> None:
    """``normalize=False`` uses the raw rows."""
    x = torch.randn(10, 3, generator=gen, dtype=torch.float64) * 0.3
    assert uniformity(x, normalize=False) == pytest.approx(
        _brute.uniformity(x, 2.0, False), rel=1e-10
    )


def test_uniformity_of_low_precision_input(gen: torch.Generator) -> None:
    """bfloat16 rows are upcast; the value is close to the float64 one."""
    x = torch.randn(16, 8, generator=gen)
    got = uniformity(x.bfloat16())
    assert got == pytest.approx(_brute.uniformity(x.bfloat16().float(), 2.0, True), abs=1e-4)


@pytest.mark.parametrize("normalize", [True, False])
def test_tolerance_matches_brute_force(gen: torch.Generator, normalize: bool) -> None:
    """Mean similarity over ordered pairs i != j of the same class (singletons included)."""
    x = torch.randn(31, 7, generator=gen, dtype=torch.float64)
    labels = torch.randint(0, 5, (31,), generator=gen)
    labels[0] = 99  # a class of one sample adds no pair
    assert tolerance(x, labels, normalize=normalize) == pytest.approx(
        _brute.tolerance(x, labels, normalize), rel=1e-10
    )


def test_tolerance_bounds() -> None:
    """Identical same-class rows give 1, opposite ones -1."""
    x = torch.tensor([[1.0, 0.0], [2.0, 0.0], [0.0, 1.0], [0.0, -1.0]])
    assert tolerance(x[:2], torch.tensor([0, 0])) == pytest.approx(1.0)
    assert tolerance(x[2:], torch.tensor([0, 0])) == pytest.approx(-1.0)


@pytest.mark.parametrize("center", [True, False])
@pytest.mark.parametrize("shape", [(40, 6), (5, 12), (64, 64)], ids=["tall", "wide", "square"])
def test_effective_rank_matches_svd(
    gen: torch.Generator, center: bool, shape: tuple[int, int]
) -> None:
    """exp(entropy of the normalized singular values), vs numpy's SVD."""
    x = torch.randn(*shape, generator=gen, dtype=torch.float64) * torch.linspace(0.1, 3, shape[1])
    assert effective_rank(x, center=center) == pytest.approx(
        _brute.effective_rank(x, center), rel=1e-8
    )


def test_effective_rank_of_low_rank_and_collapsed_inputs(gen: torch.Generator) -> None:
    """A rank-3 matrix has erank <= 3; identical rows (centered) give 0; eye(D) gives D."""
    low = torch.randn(50, 3, generator=gen) @ torch.randn(3, 16, generator=gen)
    got = effective_rank(low)
    assert got <= 3.0 + 1e-6
    assert got == pytest.approx(_brute.effective_rank(low, True), rel=1e-5)
    assert effective_rank(torch.ones(8, 4) * 0.3) == 0.0
    assert effective_rank(torch.eye(6), center=False) == pytest.approx(6.0)


@pytest.mark.parametrize("center", [True, False])
def test_effective_rank_accumulator_equals_functional(gen: torch.Generator, center: bool) -> None:
    """Batches merged one at a time give the effective rank of their concatenation."""
    x = torch.randn(57, 9, generator=gen, dtype=torch.float64) + 5.0
    acc = EffectiveRank(center=center)
    for part in x.split([1, 20, 3, 33]):
        acc.update(part)
    assert acc.compute() == pytest.approx(effective_rank(x, center=center), rel=1e-9)
    acc.reset()
    with pytest.raises(RuntimeError, match="update"):
        acc.compute()


BAD = [
    pytest.param(lambda: alignment([[1.0]], torch.ones(1, 1)), "x", id="alignment-list"),  # type: ignore[arg-type]
    pytest.param(
        lambda: alignment(torch.ones(3, 2), torch.ones(4, 2)), "batch", id="alignment-rows"
    ),
    pytest.param(
        lambda: alignment(torch.ones(3, 2), torch.ones(3, 4)), "width", id="alignment-width"
    ),
    pytest.param(
        lambda: alignment(torch.ones(3, 2), torch.ones(3, 2), alpha=0), "alpha", id="alpha"
    ),
    pytest.param(lambda: uniformity(torch.ones(1, 3)), "at least 2", id="uniformity-one-row"),
    pytest.param(lambda: uniformity(torch.ones(3)), "2-D", id="uniformity-1d"),
    pytest.param(lambda: uniformity(torch.ones(3, 2), t=-1.0), "`t`", id="uniformity-t"),
    pytest.param(lambda: uniformity(torch.ones(3, 2), chunk_size=0), "chunk_size", id="chunk"),
    pytest.param(
        lambda: uniformity(torch.tensor([[1.0, math.nan]] * 3)), "non-finite", id="uniformity-nan"
    ),
    pytest.param(lambda: uniformity(torch.ones(3, 2, dtype=torch.long)), "floating", id="int-rows"),
    pytest.param(
        lambda: tolerance(torch.ones(3, 2), torch.tensor([0, 1, 2])), "same class", id="no-pairs"
    ),
    pytest.param(
        lambda: tolerance(torch.ones(3, 2), torch.tensor([0.0, 1.0, 0.0])),
        "labels",
        id="float-labels",
    ),
    pytest.param(
        lambda: tolerance(torch.ones(3, 2), torch.tensor([0, 1])), "labels", id="short-labels"
    ),
    pytest.param(lambda: effective_rank(torch.zeros(0, 3)), "empty", id="erank-empty"),
    pytest.param(lambda: effective_rank(torch.ones(3, 2), center=1), "center", id="erank-center"),  # type: ignore[arg-type]
]


@pytest.mark.parametrize(("call", "match"), BAD)
def test_bad_inputs_raise_clear_errors(call, match: str) -> None:  # type: ignore[no-untyped-def]
    """Every bad input is a ValueError that names the problem."""
    with pytest.raises(ValueError, match=match):
        call()


def test_accumulator_rejects_a_width_change() -> None:
    """A batch of another width than the first is an error."""
    acc = EffectiveRank()
    acc.update(torch.randn(4, 3))
    with pytest.raises(ValueError, match="width"):
        acc.update(torch.randn(4, 5))
