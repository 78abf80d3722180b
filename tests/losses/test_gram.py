"""GRAM (volume InfoNCE): hand checks, the k = 2 sine form, quirks, k range and other errors."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor

from contrastkit.losses.gram import GRAMLoss, gram
from tests.reference.gram import gram as gram_ref

F64 = torch.float64


def _modalities(k: int, n: int, d: int, gen: torch.Generator) -> list[Tensor]:
    """``k`` correlated (N, D) float64 leaves: a shared base plus noise."""
    base = torch.randn(n, d, generator=gen, dtype=F64)
    mods = [base] + [base + 0.7 * torch.randn(n, d, generator=gen, dtype=F64) for _ in range(k - 1)]
    return [m.requires_grad_() for m in mods]


def _authors_loss(mods: list[Tensor], temperature: float, eps: float) -> Tensor:
    """The authors' recipe: all-pairs Gram matrices, LU determinant, two smoothed CEs averaged."""
    a, *bs = (F.normalize(m, dim=1) for m in mods)
    n = a.shape[0]
    cross = [a @ b.T for b in bs]  # <a_i, b_j>
    own = [[(bp * bq).sum(1).expand(n, -1) for bq in bs] for bp in bs]  # <b_j, b'_j>
    aa = (a * a).sum(1)[:, None].expand(-1, n)
    g = torch.stack(
        [
            torch.stack([aa, *cross], -1),
            *[torch.stack([cross[p], *own[p]], -1) for p in range(len(bs))],
        ],
        -2,
    )  # (N, N, k, k)
    vol = torch.sqrt(torch.linalg.det(g).abs()) / temperature
    targets = torch.arange(n)
    return 0.5 * (
        F.cross_entropy(-vol, targets, label_smoothing=eps)
        + F.cross_entropy(-vol.T, targets, label_smoothing=eps)
    )


def test_two_modalities_is_a_sine_infonce() -> None:
    """At k = 2 the score is -|sin(angle)| / tau: checked against angles chosen by hand."""
    # Anchors and candidates on the unit circle at known angles (degrees).
    anchor_deg, cand_deg = [0.0, 90.0, 200.0], [30.0, 100.0, 170.0]
    unit = lambda deg: [math.cos(math.radians(deg)), math.sin(math.radians(deg))]  # noqa: E731
    a = torch.tensor([unit(t) for t in anchor_deg], dtype=F64)
    b = torch.tensor([unit(t) for t in cand_deg], dtype=F64)
    tau, eps = 0.5, 0.1
    s = [[-abs(math.sin(math.radians(u - t))) / tau for u in cand_deg] for t in anchor_deg]

    def smoothed(row: list[float], i: int) -> float:
        lse = math.log(sum(math.exp(x) for x in row))
        return lse - (1 - eps) * row[i] - eps / len(row) * sum(row)

    rows = [smoothed(s[i], i) for i in range(3)]
    cols = [smoothed([s[j][i] for j in range(3)], i) for i in range(3)]
    expected = sum(0.5 * (r + c) for r, c in zip(rows, cols, strict=True)) / 3
    got = gram(a, b, temperature=tau, label_smoothing=eps)
    assert float(got) == pytest.approx(expected, rel=1e-12)
    # The same through F.cross_entropy on the sine matrix.
    sine = torch.sqrt((1 - (a @ b.T) ** 2).clamp_min(0))
    ce = 0.5 * (
        F.cross_entropy(-sine / tau, torch.arange(3), label_smoothing=eps)
        + F.cross_entropy(-sine.T / tau, torch.arange(3), label_smoothing=eps)
    )
    torch.testing.assert_close(got, ce)


def test_three_orthonormal_vectors_span_unit_volume() -> None:
    """Hand values at k = 3: orthonormal tuples have volume 1, a repeated vector volume 0."""
    e = torch.eye(3, dtype=F64)
    # Sample 0: (e0, e1, e2), volume 1 with itself. Sample 1: (e0, e0, e1), volume 0.
    text = torch.stack([e[0], e[0]])
    video = torch.stack([e[1], e[0]])
    audio = torch.stack([e[2], e[1]])
    # V[i, j] = vol(text_i, video_j, audio_j): all four tuples by hand.
    vol = [[1.0, 0.0], [1.0, 0.0]]
    tau = 1.0
    rows = [math.log(sum(math.exp(-x / tau) for x in vol[i])) + vol[i][i] / tau for i in (0, 1)]
    got = gram(text, video, audio, temperature=tau, label_smoothing=0.0, symmetric=False)
    assert float(got) == pytest.approx(sum(rows) / 2, rel=1e-12)
    per_row = gram(text, video, audio, temperature=tau, label_smoothing=0.0, reduction="none")
    cols = [math.log(sum(math.exp(-vol[j][i] / tau) for j in (0, 1))) + vol[i][i] for i in (0, 1)]
    expected = [0.5 * (r + c) for r, c in zip(rows, cols, strict=True)]
    torch.testing.assert_close(per_row, torch.tensor(expected, dtype=F64))


@pytest.mark.parametrize("k", [3, 4, 5])
def test_matches_the_authors_dense_recipe(k: int, gen: torch.Generator) -> None:
    """Equal to the authors' construction (N x N x k x k Gram, LU det, smoothed CE both ways)."""
    mods = _modalities(k, 9, 8, gen)
    expected = _authors_loss(mods, 0.07, 0.1)
    g_exp = torch.autograd.grad(expected, mods)
    for impl, chunk in [("dense", None), ("tiled", 4)]:
        got = gram(*mods, impl=impl, chunk_size=chunk)
        torch.testing.assert_close(got, expected)
        g_got = torch.autograd.grad(got, mods)
        for x, y in zip(g_got, g_exp, strict=True):
            torch.testing.assert_close(x, y)


def test_volume_is_zero_for_anti_aligned_vectors(gen: torch.Generator) -> None:
    """Flipping a modality's sign changes no volume: anti-aligned counts as aligned (a quirk)."""
    a, b, c = _modalities(3, 6, 5, gen)
    base = gram(a, b, c, reduction="none")
    torch.testing.assert_close(gram(a, -b, c, reduction="none"), base)
    torch.testing.assert_close(gram(-a, b, -c, reduction="none"), base)
    # k = 2: a candidate equal to -anchor scores like a candidate equal to the anchor.
    x = torch.randn(4, 3, generator=gen, dtype=F64)
    torch.testing.assert_close(gram(x, -x, reduction="none"), gram(x, x, reduction="none"))


@pytest.mark.parametrize("k", [2, 3, 4, 5])
@pytest.mark.parametrize(
    "options",
    [{}, {"symmetric": False, "label_smoothing": 0.0}, {"normalize": False, "temperature": 1.5}],
    ids=["default", "one-way", "unnormalized"],
)
def test_matches_reference_in_tiles(k: int, options: dict, gen: torch.Generator) -> None:
    """Dense and tiled (1, 3, default) equal the float64 reference, values and gradients."""
    mods = _modalities(k, 7, 6, gen)
    expected = gram_ref(*mods, reduction="none", **options)
    cot = torch.linspace(-1.0, 2.0, 7, dtype=F64)
    g_exp = torch.autograd.grad((expected * cot).sum(), mods)
    for impl, chunk in [("dense", None), ("tiled", 1), ("tiled", 3), ("tiled", None)]:
        got = gram(*mods, reduction="none", impl=impl, chunk_size=chunk, **options)
        torch.testing.assert_close(got, expected)
        for x, y in zip(torch.autograd.grad((got * cot).sum(), mods), g_exp, strict=True):
            torch.testing.assert_close(x, y)


@pytest.mark.parametrize("k", [2, 3, 5])
def test_gradcheck_with_learned_temperature(k: int, gen: torch.Generator) -> None:
    """The tiled path passes gradcheck for the inputs and the temperature."""
    mods = _modalities(k, 4, k + 1, gen)
    tau = torch.tensor(0.4, dtype=F64, requires_grad=True)

    def f(*xs: Tensor) -> Tensor:
        *ms, t = xs
        return gram(*ms, temperature=t, impl="tiled", chunk_size=3)

    assert torch.autograd.gradcheck(f, (*mods, tau))


def test_single_sample_and_degenerate_tuples_stay_finite(gen: torch.Generator) -> None:
    """N = 1 gives 0; tuples of identical vectors (volume 0) give finite gradients."""
    one = [torch.randn(1, 4, generator=gen, dtype=F64, requires_grad=True) for _ in range(3)]
    loss = gram(*one, impl="tiled")
    assert float(loss.detach()) == pytest.approx(0.0, abs=1e-12)
    x = torch.randn(5, 4, generator=gen, dtype=F64)
    same = [x.clone().requires_grad_() for _ in range(3)]
    loss = gram(*same, impl="tiled", chunk_size=2)
    grads = torch.autograd.grad(loss, same)
    assert torch.isfinite(loss)
    assert all(bool(torch.isfinite(g).all()) for g in grads)


def test_bf16_inputs_use_float32_statistics(gen: torch.Generator) -> None:
    """bf16 inputs give a float32 loss close to the float64 reference on the same values."""
    mods = [m.detach().bfloat16() for m in _modalities(3, 32, 16, gen)]
    got = gram(*mods, impl="tiled", chunk_size=8)
    assert got.dtype == torch.float32
    ref = gram_ref(*[m.double() for m in mods])
    assert float(got) == pytest.approx(float(ref), rel=1e-5)


def test_module_learns_the_temperature(gen: torch.Generator) -> None:
    """GRAMLoss(learnable=True) owns the temperature as a parameter and gives it a gradient."""
    mods = _modalities(3, 6, 5, gen)
    module = GRAMLoss(learnable=True).double()
    assert isinstance(module.temperature, torch.nn.Parameter)
    loss = module(*mods)
    loss.backward()
    assert module.temperature.grad is not None
    tau = torch.tensor(0.07, dtype=F64, requires_grad=True)
    expected = gram(*[m.detach() for m in mods], temperature=tau)
    (g_tau,) = torch.autograd.grad(expected, tau)
    torch.testing.assert_close(loss.detach(), expected.detach())
    torch.testing.assert_close(module.temperature.grad, g_tau)
    torch.testing.assert_close(GRAMLoss()(*mods), gram(*mods))


@pytest.mark.parametrize("k", [1, 6, 7])
@pytest.mark.parametrize("form", ["functional", "module"])
def test_number_of_modalities_outside_2_to_5_raises(k: int, form: str) -> None:
    """A number of modalities outside 2..5 raises a ValueError that states k."""
    mods = [torch.randn(4, 8) for _ in range(k)]
    fn = gram if form == "functional" else GRAMLoss()
    with pytest.raises(ValueError, match=rf"k = {k}\b") as info:
        fn(*mods)
    assert "2..5" in str(info.value)


def test_width_below_k_raises() -> None:
    """Fewer dimensions than modalities (D < k) always give volume 0: a clear error."""
    with pytest.raises(ValueError, match=r"D >= k.*D = 3.*k = 4"):
        gram(*[torch.randn(5, 3) for _ in range(4)])


@pytest.mark.parametrize("value", [-0.1, 1.5, math.nan, True])
def test_bad_label_smoothing_raises(value: object) -> None:
    """label_smoothing outside [0, 1] is rejected by the functional and the constructor."""
    x = torch.randn(4, 8)
    with pytest.raises(ValueError, match=r"\blabel_smoothing\b"):
        gram(x, x, label_smoothing=value)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"\blabel_smoothing\b"):
        GRAMLoss(label_smoothing=value)  # type: ignore[arg-type]


def test_mismatched_modality_is_named() -> None:
    """A candidate modality of the wrong batch or width is named by its position."""
    a, b = torch.randn(4, 8), torch.randn(4, 8)
    with pytest.raises(ValueError, match=r"`others\[1\]`.*batch size"):
        gram(a, b, torch.randn(5, 8))
    with pytest.raises(ValueError, match=r"`others\[0\]`.*width"):
        gram(a, torch.randn(4, 9), b)
    with pytest.raises(ValueError, match=r"`anchor`.*non-finite"):
        gram(torch.full((4, 8), math.nan), b)
