"""Modality-pairwise InfoNCE (MER): hand checks, equality with InfoNCE per pair, errors."""

from __future__ import annotations

import math
from itertools import combinations, permutations

import pytest
import torch
from torch import Tensor

from contrastkit.losses.infonce import infonce
from contrastkit.losses.multimodal_pairwise import MultimodalPairwiseLoss, multimodal_pairwise
from tests.reference.multimodal_pairwise import multimodal_pairwise as reference

F64 = torch.float64


def _modalities(k: int, n: int, d: int, gen: torch.Generator) -> list[Tensor]:
    """``k`` correlated (N, D) float64 leaves."""
    base = torch.randn(n, d, generator=gen, dtype=F64)
    mods = [base] + [base + 0.7 * torch.randn(n, d, generator=gen, dtype=F64) for _ in range(k - 1)]
    return [m.requires_grad_() for m in mods]


def test_hand_computed_three_modalities() -> None:
    """Two samples, three modalities on the plane at chosen angles, checked by hand."""
    deg = {"t": [0.0, 90.0], "a": [20.0, 80.0], "v": [-30.0, 150.0]}
    unit = lambda d: [math.cos(math.radians(d)), math.sin(math.radians(d))]  # noqa: E731
    z = {m: torch.tensor([unit(x) for x in deg[m]], dtype=F64) for m in deg}
    tau = 0.5

    def pair(m: str, mm: str) -> float:
        s = [[math.cos(math.radians(deg[mm][j] - deg[m][i])) / tau for j in (0, 1)] for i in (0, 1)]
        total = 0.0
        for i in (0, 1):
            row = math.log(sum(math.exp(x) for x in s[i])) - s[i][i]
            col = math.log(sum(math.exp(s[j][i]) for j in (0, 1))) - s[i][i]
            total += 0.5 * (row + col)
        return total / 2

    expected = pair("t", "a") + pair("t", "v") + pair("a", "v")
    got = multimodal_pairwise(z["t"], z["a"], z["v"], temperature=tau)
    assert float(got) == pytest.approx(expected, rel=1e-12)
    mean = multimodal_pairwise(z["t"], z["a"], z["v"], temperature=tau, aggregate="mean")
    assert float(mean) == pytest.approx(expected / 3, rel=1e-12)


@pytest.mark.parametrize("symmetric", [True, False])
@pytest.mark.parametrize("k", [2, 3, 4])
def test_equals_infonce_summed_over_pairs(k: int, symmetric: bool, gen: torch.Generator) -> None:
    """The loss is the sum of InfoNCE over the k(k-1)/2 pairs (earlier modality as query)."""
    mods = _modalities(k, 6, 5, gen)
    expected = sum(
        infonce(mods[m], mods[mm], temperature=0.2, symmetric=symmetric, reduction="none")
        for m, mm in combinations(range(k), 2)
    )
    got = multimodal_pairwise(
        *mods, temperature=0.2, symmetric=symmetric, reduction="none", impl="tiled", chunk_size=4
    )
    torch.testing.assert_close(got, expected)


def test_symmetric_in_the_order_of_modalities(gen: torch.Generator) -> None:
    """With symmetric pairs, any order of the modalities gives the same per-sample terms."""
    mods = [m.detach() for m in _modalities(3, 7, 4, gen)]
    base = multimodal_pairwise(*mods, reduction="none")
    for order in permutations(range(3)):
        got = multimodal_pairwise(*[mods[i] for i in order], reduction="none")
        torch.testing.assert_close(got, base)


@pytest.mark.parametrize(
    "options",
    [{}, {"aggregate": "mean", "temperature": 0.3}, {"symmetric": False, "normalize": False}],
    ids=["default", "mean", "one-way-unnormalized"],
)
def test_matches_reference_in_tiles(options: dict, gen: torch.Generator) -> None:
    """Dense and tiled (1, 3, default) equal the float64 reference, values and gradients."""
    mods = _modalities(4, 7, 5, gen)
    expected = reference(*mods, reduction="none", **options)
    cot = torch.linspace(-1.0, 2.0, 7, dtype=F64)
    g_exp = torch.autograd.grad((expected * cot).sum(), mods)
    for impl, chunk in [("dense", None), ("tiled", 1), ("tiled", 3), ("tiled", None)]:
        got = multimodal_pairwise(*mods, reduction="none", impl=impl, chunk_size=chunk, **options)
        torch.testing.assert_close(got, expected)
        for x, y in zip(torch.autograd.grad((got * cot).sum(), mods), g_exp, strict=True):
            torch.testing.assert_close(x, y)


def test_gradcheck_with_learned_temperature(gen: torch.Generator) -> None:
    """The tiled path passes gradcheck for the inputs and the temperature."""
    mods = _modalities(3, 4, 3, gen)
    tau = torch.tensor(0.4, dtype=F64, requires_grad=True)

    def f(*xs: Tensor) -> Tensor:
        *ms, t = xs
        return multimodal_pairwise(*ms, temperature=t, impl="tiled", chunk_size=3)

    assert torch.autograd.gradcheck(f, (*mods, tau))


def test_module_equals_functional(gen: torch.Generator) -> None:
    """The module with the same options computes the functional form."""
    mods = _modalities(3, 5, 4, gen)
    module = MultimodalPairwiseLoss(temperature=0.3, aggregate="mean")
    torch.testing.assert_close(
        module(*mods), multimodal_pairwise(*mods, temperature=0.3, aggregate="mean")
    )


@pytest.mark.parametrize("k", [0, 1])
@pytest.mark.parametrize("form", ["functional", "module"])
def test_fewer_than_two_modalities_raises(k: int, form: str) -> None:
    """One modality (or none) has no pair: a ValueError stating k."""
    fn = multimodal_pairwise if form == "functional" else MultimodalPairwiseLoss()
    with pytest.raises(ValueError, match=rf"\bmodalities\b.*k = {k}\b"):
        fn(*[torch.randn(4, 8) for _ in range(k)])


def test_bad_options_and_mismatched_modalities_raise() -> None:
    """Unknown aggregate, a mismatched modality or a bad temperature name the argument."""
    x = torch.randn(4, 8)
    with pytest.raises(ValueError, match=r"\baggregate\b.*'max'"):
        multimodal_pairwise(x, x, aggregate="max")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"\baggregate\b"):
        MultimodalPairwiseLoss(aggregate="max")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"`modalities\[2\]`.*batch size"):
        multimodal_pairwise(x, x, torch.randn(5, 8))
    with pytest.raises(ValueError, match=r"`modalities\[1\]`.*width"):
        multimodal_pairwise(x, torch.randn(4, 9))
    with pytest.raises(ValueError, match=r"\btemperature\b"):
        multimodal_pairwise(x, x, temperature=0.0)
