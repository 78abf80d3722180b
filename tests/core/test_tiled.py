"""The engine's primitives, dense and tiled, against pair-by-pair float64 references."""

from __future__ import annotations

import math
from typing import Any

import pytest
import torch
from torch import Tensor

from contrastkit import core
from contrastkit.core import PairMask
from tests.reference import core as ref

MASKS = {
    "all": {},
    "no-self": {"exclude_self": True},
    "same": {"groups": "same"},
    "different-no-self": {"groups": "different", "exclude_self": True},
    "multiplier": {"multiplier": True},
    "self-index": {"exclude_self": True, "self_index": True},
}


def build(
    n: int, m: int, d: int, rule: dict[str, Any], gen: torch.Generator
) -> tuple[Tensor, Tensor, dict[str, Any]]:
    a = torch.randn(n, d, generator=gen, dtype=torch.float64)
    b = torch.randn(m, d, generator=gen, dtype=torch.float64)
    kw: dict[str, Any] = {"exclude_self": rule.get("exclude_self", False)}
    if "self_index" in rule:
        kw["self_index"] = torch.randint(0, m, (n,), generator=gen)
    if "groups" in rule or "multiplier" in rule:
        kw["row_groups"] = torch.randint(-1, 3, (n,), generator=gen)
        kw["col_groups"] = torch.randint(0, 3, (m,), generator=gen)
        kw["groups"] = rule.get("groups", "any")
    if "multiplier" in rule:
        kw["multiplier"] = torch.rand(n, generator=gen, dtype=torch.float64) + 0.5
    return a, b, kw


def split(kw: dict[str, Any]) -> tuple[PairMask, Tensor | None]:
    mult = kw.get("multiplier")
    rest = {k: v for k, v in kw.items() if k != "multiplier"}
    return PairMask(**rest), mult


def finite(x: Tensor) -> Tensor:
    return torch.where(torch.isfinite(x), x, 0.0)


def value_and_grads(fn: Any, a: Tensor, b: Tensor, scale: Tensor) -> list[Tensor]:
    a, b, scale = (t.detach().clone().requires_grad_() for t in (a, b, scale))
    rows, cols = fn(a, b, scale)
    w_r = torch.linspace(-1, 1, rows.numel(), dtype=torch.float64)
    w_c = torch.linspace(0.5, 2, cols.numel(), dtype=torch.float64)
    total = (finite(rows) * w_r).sum() + (finite(cols) * w_c).sum()
    total = total + 0.0 * (a.sum() + b.sum() + scale)  # keeps all-empty cases differentiable
    return [rows.detach(), cols.detach(), *torch.autograd.grad(total, (a, b, scale))]


def unit(x: Tensor) -> Tensor:
    return x / x.norm(dim=1, keepdim=True)


@pytest.mark.parametrize("normalize", [False, True], ids=["dot", "cosine"])
@pytest.mark.parametrize("scale", [2.0, 80.0], ids=["bounded", "large-scale"])
@pytest.mark.parametrize("rule", list(MASKS), ids=list(MASKS))
@pytest.mark.parametrize(("n", "m", "d"), [(1, 1, 2), (5, 7, 3), (9, 9, 4)], ids=str)
def test_logsumexp_matches_reference(
    n: int, m: int, d: int, rule: str, scale: float, normalize: bool, gen: torch.Generator
) -> None:
    """Row and column LSE and their gradients (inputs and scale) equal the reference."""
    a, b, kw = build(n, m, d, MASKS[rule], gen)
    mask, mult = split(kw)
    s = torch.tensor(scale, dtype=torch.float64)
    prep = unit if normalize else (lambda x: x)
    expected = value_and_grads(lambda x, y, t: ref.logsumexp(prep(x), prep(y), t, **kw), a, b, s)
    for impl, chunk in [("dense", None), ("tiled", 1), ("tiled", 4), ("tiled", None)]:
        got = value_and_grads(
            lambda x, y, t, i=impl, c=chunk: core.logsumexp(
                x,
                y,
                t,
                mask=mask,
                multiplier=mult,
                rows=True,
                cols=True,
                normalize=normalize,
                chunk_size=c,
                impl=i,
            ),
            a,
            b,
            s,
        )
        for g, e in zip(got, expected, strict=True):
            torch.testing.assert_close(g, e)


@pytest.mark.parametrize("rule", ["all", "same", "different-no-self"])
@pytest.mark.parametrize("sign", [1.0, -1.0])
def test_pair_softplus_matches_reference(rule: str, sign: float, gen: torch.Generator) -> None:
    """Per-row softplus sums and gradients (inputs, scale, offsets) equal the reference."""
    a, b, kw = build(7, 6, 3, MASKS[rule], gen)
    mask, _ = split(kw)
    off = torch.randn(7, generator=gen, dtype=torch.float64)
    s = torch.tensor(1.7, dtype=torch.float64)

    def grads(fn: Any) -> list[Tensor]:
        xs = [t.detach().clone().requires_grad_() for t in (a, b, s, off)]
        out = fn(*xs)
        w = torch.linspace(-1, 1, 7, dtype=torch.float64)
        return [out.detach(), *torch.autograd.grad((out * w).sum(), xs)]

    expected = grads(lambda x, y, t, o: ref.pair_softplus(x, y, t, o, sign=sign, **kw))
    for impl, chunk in [("dense", None), ("tiled", 1), ("tiled", 4)]:
        got = grads(
            lambda x, y, t, o, i=impl, c=chunk: core.pair_softplus(
                x, y, t, o, sign=sign, mask=mask, chunk_size=c, impl=i
            )
        )
        for g, e in zip(got, expected, strict=True):
            torch.testing.assert_close(g, e)


@pytest.mark.parametrize("normalize", [False, True], ids=["dot", "cosine"])
@pytest.mark.parametrize("scale", [1.5, 120.0], ids=["bounded", "large-scale"])
@pytest.mark.parametrize("rule", ["all", "no-self", "multiplier"])
def test_logsumexp_gradcheck(
    rule: str, scale: float, normalize: bool, gen: torch.Generator
) -> None:
    """The tiled backward passes gradcheck for both directions at once."""
    a, b, kw = build(5, 6, 3, MASKS[rule], gen)
    mask, mult = split(kw)
    s = torch.tensor(scale / 10, dtype=torch.float64, requires_grad=True)

    def f(x: Tensor, y: Tensor, t: Tensor) -> tuple[Tensor, Tensor]:
        r, c = core.logsumexp(
            x,
            y,
            t * 10,
            mask=mask,
            multiplier=mult,
            rows=True,
            cols=True,
            normalize=normalize,
            chunk_size=4,
            impl="tiled",
        )
        return finite(r), finite(c)

    assert torch.autograd.gradcheck(f, (a.requires_grad_(), b.requires_grad_(), s))


@pytest.mark.parametrize("normalize", [False, True], ids=["dot", "cosine"])
def test_logsumexp_same_tensor_both_sides(normalize: bool, gen: torch.Generator) -> None:
    """Passing one tensor as anchors and candidates (SimCLR, SupCon) sums both gradients."""
    z = torch.randn(7, 3, generator=gen, dtype=torch.float64)
    s = torch.tensor(2.5, dtype=torch.float64)
    prep = unit if normalize else (lambda x: x)
    mask = PairMask(exclude_self=True)

    def grads(fn: Any) -> list[Tensor]:
        x = z.detach().clone().requires_grad_()
        rows, _ = fn(x)
        return [rows.detach(), *torch.autograd.grad((rows * torch.arange(7.0)).sum(), x)]

    expected = grads(lambda x: ref.logsumexp(prep(x), prep(x), s, exclude_self=True))
    got = grads(
        lambda x: core.logsumexp(
            x, x, s, mask=mask, normalize=normalize, chunk_size=3, impl="tiled"
        )
    )
    for g, e in zip(got, expected, strict=True):
        torch.testing.assert_close(g, e)


@pytest.mark.parametrize("normalize", [False, True], ids=["dot", "cosine"])
@pytest.mark.parametrize("partner", ["diagonal", "index"])
def test_score_stats_paired_scores(normalize: bool, partner: str, gen: torch.Generator) -> None:
    """Paired scores s_{i,p(i)} come out of the same pass with exact gradients."""
    a = torch.randn(6, 3, generator=gen, dtype=torch.float64)
    b = torch.randn(9, 3, generator=gen, dtype=torch.float64)
    index = None if partner == "diagonal" else torch.tensor([8, 0, 0, 3, 5, 1])
    s = torch.tensor(1.3, dtype=torch.float64)
    prep = unit if normalize else (lambda x: x)

    def grads(fn: Any) -> list[Tensor]:
        xs = [t.detach().clone().requires_grad_() for t in (a, b, s)]
        rows, pos = fn(*xs)
        total = (rows * torch.arange(6.0)).sum() + (pos * torch.linspace(-2, 1, 6)).sum()
        return [rows.detach(), pos.detach(), *torch.autograd.grad(total, xs)]

    def reference(x: Tensor, y: Tensor, t: Tensor) -> tuple[Tensor, Tensor]:
        rows, _ = ref.logsumexp(prep(x), prep(y), t)
        idx = torch.arange(6) if index is None else index
        return rows, t * (prep(x) * prep(y)[idx]).sum(1)

    expected = grads(reference)
    for impl, chunk in [("dense", None), ("tiled", 4), ("tiled", 1)]:
        got = grads(
            lambda x, y, t, i=impl, c=chunk: core.score_stats(
                x, y, t, paired=True, partner=index, normalize=normalize, chunk_size=c, impl=i
            )[::2]
        )
        for g, e in zip(got, expected, strict=True):
            torch.testing.assert_close(g, e)


def test_tiny_upstream_gradient_does_not_underflow(gen: torch.Generator) -> None:
    """A loss scaled by 1e-13 at scale 60 keeps its relative gradient accuracy (float32)."""
    a = torch.randn(5, 3, generator=gen)
    b = torch.randn(7, 3, generator=gen)

    def grads(x: Tensor, y: Tensor, impl: str) -> list[Tensor]:
        xs = [x.clone().requires_grad_(), y.clone().requires_grad_()]
        s = torch.tensor(60.0, dtype=x.dtype, requires_grad=True)
        rows, cols = core.logsumexp(*xs, s, cols=True, normalize=True, impl=impl, chunk_size=4)
        ((rows.sum() + cols.sum()) * 1e-13).backward()
        return [xs[0].grad, xs[1].grad, s.grad]

    expected = grads(a.double(), b.double(), "dense")
    for g, e in zip(grads(a, b, "tiled"), expected, strict=True):
        torch.testing.assert_close(g.double() / 1e-13, e / 1e-13, rtol=1e-4, atol=1e-4)


def test_pair_softplus_gradcheck(gen: torch.Generator) -> None:
    """The tiled pair-softplus backward passes gradcheck."""
    a, b, kw = build(5, 4, 3, MASKS["same"], gen)
    mask, _ = split(kw)
    off = torch.randn(5, generator=gen, dtype=torch.float64, requires_grad=True)
    s = torch.tensor(0.9, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(
        lambda x, y, t, o: core.pair_softplus(
            x, y, t, o, sign=-1.0, mask=mask, chunk_size=3, impl="tiled"
        ),
        (a.requires_grad_(), b.requires_grad_(), s, off),
    )


def test_empty_rows_give_minus_inf_and_no_nan_gradient(gen: torch.Generator) -> None:
    """A row with no kept candidate gets -inf and a zero gradient, never NaN."""
    a = torch.randn(3, 2, generator=gen, dtype=torch.float64, requires_grad=True)
    groups = torch.tensor([0, 1, 5])
    mask = PairMask(exclude_self=True, row_groups=groups, col_groups=groups, groups="same")
    for impl in ("dense", "tiled"):
        rows, _ = core.logsumexp(
            a, a, torch.tensor(2.0, dtype=torch.float64), mask=mask, impl=impl, chunk_size=2
        )
        assert torch.isneginf(rows).all()
        (grad,) = torch.autograd.grad(torch.where(torch.isfinite(rows), rows, 0.0).sum(), a)
        assert torch.equal(grad, torch.zeros_like(grad))


def test_input_without_grad_gets_none_and_others_exact(gen: torch.Generator) -> None:
    """Only the inputs that require grad receive one (a frozen key bank costs no GEMM)."""
    a = torch.randn(6, 3, generator=gen, dtype=torch.float64, requires_grad=True)
    bank = torch.randn(10, 3, generator=gen, dtype=torch.float64)
    s = torch.tensor(3.0, dtype=torch.float64)
    rows, _ = core.logsumexp(a, bank, s, impl="tiled", chunk_size=4)
    (g,) = torch.autograd.grad(rows.sum(), a)
    r_ref, _ = ref.logsumexp(a, bank, s)
    (g_ref,) = torch.autograd.grad(r_ref.sum(), a)
    torch.testing.assert_close(g, g_ref)


def test_double_backward_is_a_clear_error(gen: torch.Generator) -> None:
    """Differentiating the tiled gradient again raises instead of returning wrong numbers."""
    a = torch.randn(4, 3, generator=gen, dtype=torch.float64, requires_grad=True)
    rows, _ = core.logsumexp(a, a, torch.tensor(1.0, dtype=torch.float64), impl="tiled")
    with pytest.raises(RuntimeError, match="double backward"):
        torch.autograd.grad(rows.sum(), a, create_graph=True)


def test_float32_statistics_for_bfloat16(gen: torch.Generator) -> None:
    """bf16 inputs give float32 statistics close to the float64 result on the same inputs."""
    a = torch.randn(40, 16, generator=gen).bfloat16()
    b = torch.randn(50, 16, generator=gen).bfloat16()
    s = torch.tensor(0.5)
    rows, cols = core.logsumexp(a, b, s, rows=True, cols=True, impl="tiled", chunk_size=16)
    r64, c64 = ref.logsumexp(a.double(), b.double(), s.double())
    assert rows.dtype == torch.float32
    torch.testing.assert_close(rows.double(), r64, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(cols.double(), c64, rtol=1e-5, atol=1e-5)


def test_autocast_runs_in_float32(gen: torch.Generator) -> None:
    """Under CPU autocast (bf16) the tiled and dense paths still compute in float32."""
    a = torch.randn(20, 8, generator=gen, requires_grad=True)
    b = torch.randn(20, 8, generator=gen, requires_grad=True)
    s = torch.tensor(5.0)
    plain = core.logsumexp(a, b, s, cols=True, impl="tiled", chunk_size=7)
    for impl in ("dense", "tiled"):
        with torch.autocast(device_type="cpu", dtype=torch.bfloat16):
            auto = core.logsumexp(a, b, s, cols=True, impl=impl, chunk_size=7)
        assert auto[0].dtype == torch.float32
        torch.testing.assert_close(auto[0], plain[0])
        torch.testing.assert_close(auto[1], plain[1])


def test_auto_picks_dense_for_small_and_tiled_for_large() -> None:
    """``impl="auto"`` resolves by matrix size; explicit choices are kept."""
    assert core.resolve_impl("auto", 64, 64) == "dense"
    assert core.resolve_impl("auto", 256, 256) == "dense"
    assert core.resolve_impl("auto", 4096, 4096) == "tiled"
    assert core.resolve_impl("tiled", 2, 2) == "tiled"
    assert core.resolve_impl("dense", 10**5, 10**5) == "dense"


def test_reduce_excludes_invalid_rows_without_nan() -> None:
    """Invalid rows (even infinite) add nothing to value or gradient; empty mean is 0."""
    x = torch.tensor([1.0, math.inf, 3.0], requires_grad=True)
    valid = torch.tensor([True, False, True])
    out = core.reduce(x, "mean", valid=valid)
    out.backward()
    assert float(out.detach()) == 2.0
    assert x.grad is not None
    assert x.grad.tolist() == [0.5, 0.0, 0.5]
    none = core.reduce(x.detach(), "mean", valid=torch.zeros(3, dtype=torch.bool))
    assert float(none) == 0.0
