"""The general tiled reductions equal their dense forms, values and gradients of every input."""

from __future__ import annotations

import math

import pytest
import torch
from torch import Tensor

from contrastkit.core.pairmap import pair_reduce, pair_topk

TILINGS = [
    pytest.param({"impl": "dense"}, id="dense"),
    pytest.param({"impl": "tiled", "chunk_size": 1}, id="tiled-1"),
    pytest.param({"impl": "tiled", "chunk_size": 4}, id="tiled-4"),
    pytest.param({"impl": "tiled"}, id="tiled-default"),
]


def _drop(r: list[Tensor], c: list[Tensor], ri: Tensor, ci: Tensor) -> Tensor:
    """The diagonal and the pairs whose labels sum to a multiple of 3."""
    return (ri[:, None] == ci[None, :]) | ((r[1][:, None] + c[1][None, :]) % 3 == 0)


def _scores(r: list[Tensor], c: list[Tensor], p: list[Tensor], ri: Tensor, ci: Tensor) -> Tensor:
    """Scaled dot products, dropped pairs at -inf."""
    return torch.where(_drop(r, c, ri, ci), -math.inf, r[0] @ c[0].T * p[0])


def _bounded(r: list[Tensor], c: list[Tensor], p: list[Tensor], ri: Tensor, ci: Tensor) -> Tensor:
    """``sin(s_ij) w_i`` on kept pairs, 0 on dropped ones."""
    return torch.where(_drop(r, c, ri, ci), 0.0, torch.sin(r[0] @ c[0].T * p[0]) * r[2][:, None])


def _dense_reference(mode: str, a: Tensor, b: Tensor, w: Tensor, sc: Tensor, ya, yb):
    """The same reductions written directly on the full matrix, pair by pair."""
    n, m = a.shape[0], b.shape[0]
    rows, cols = [], []
    vals = [[None] * m for _ in range(n)]
    for i in range(n):
        for j in range(m):
            if i == j or (int(ya[i]) + int(yb[j])) % 3 == 0:
                continue
            s = (a[i] * b[j]).sum() * sc
            vals[i][j] = torch.sin(s) * w[i] if mode == "sum" else s
    for i in range(n):
        kept = [v for v in vals[i] if v is not None]
        rows.append(_combine(mode, kept, a))
    for j in range(m):
        kept = [vals[i][j] for i in range(n) if vals[i][j] is not None]
        cols.append(_combine(mode, kept, a))
    return torch.stack(rows), torch.stack(cols)


def _combine(mode: str, kept: list[Tensor], like: Tensor) -> Tensor:
    if not kept:
        return like.new_tensor(0.0 if mode == "sum" else -math.inf)
    stacked = torch.stack(kept)
    return stacked.sum() if mode == "sum" else torch.logsumexp(stacked, 0)


@pytest.mark.parametrize("tiling", TILINGS)
@pytest.mark.parametrize("mode", ["sum", "lse"])
@pytest.mark.parametrize(("n", "m"), [(1, 1), (5, 7), (13, 6)], ids=str)
def test_pair_reduce_equals_pair_by_pair(
    mode: str, n: int, m: int, tiling: dict, gen: torch.Generator
) -> None:
    """Rows and columns, with masked pairs, values and gradients (rows, cols, params)."""
    a = torch.randn(n, 4, generator=gen, dtype=torch.float64, requires_grad=True)
    b = torch.randn(m, 4, generator=gen, dtype=torch.float64, requires_grad=True)
    w = torch.rand(n, generator=gen, dtype=torch.float64, requires_grad=True)
    sc = torch.tensor(1.7, dtype=torch.float64, requires_grad=True)
    ya, yb = torch.randint(0, 5, (n,), generator=gen), torch.randint(0, 5, (m,), generator=gen)
    fn = _bounded if mode == "sum" else _scores
    r, c = pair_reduce(fn, [a, ya, w], [b, yb], [sc], mode=mode, out_cols=True, **tiling)  # type: ignore[arg-type]
    er, ec = _dense_reference(mode, a, b, w, sc, ya, yb)
    torch.testing.assert_close(r, er)
    torch.testing.assert_close(c, ec)
    finite_r, finite_c = torch.isfinite(er), torch.isfinite(ec)
    cot_r, cot_c = (
        torch.linspace(-1, 2, n, dtype=torch.float64),
        torch.linspace(1, 3, m, dtype=torch.float64),
    )
    leaves = [a, b, w, sc]

    def total(x: Tensor, y: Tensor) -> Tensor:
        return (torch.where(finite_r, x, 0.0) * cot_r).sum() + (
            torch.where(finite_c, y, 0.0) * cot_c
        ).sum()

    for leaf, g, e in zip(
        leaves, _grads(total(r, c), leaves), _grads(total(er, ec), leaves), strict=True
    ):
        torch.testing.assert_close(g, e, msg=lambda m, s=leaf.shape: f"grad {tuple(s)}: {m}")


def _grads(value: Tensor, leaves: list[Tensor]) -> list[Tensor]:
    """Gradients, zeros for unused leaves (or a constant value)."""
    if not value.requires_grad:
        return [torch.zeros_like(x) for x in leaves]
    got = torch.autograd.grad(value, leaves, allow_unused=True)
    return [torch.zeros_like(x) if g is None else g for x, g in zip(leaves, got, strict=True)]


def test_pair_reduce_gradcheck(gen: torch.Generator) -> None:
    """The tiled backward passes gradcheck in both modes."""
    a = torch.randn(5, 3, generator=gen, dtype=torch.float64, requires_grad=True)
    b = torch.randn(4, 3, generator=gen, dtype=torch.float64, requires_grad=True)
    w = torch.rand(5, generator=gen, dtype=torch.float64, requires_grad=True)
    sc = torch.tensor(0.8, dtype=torch.float64, requires_grad=True)
    ya, yb = torch.arange(5), torch.arange(4) + 1

    def f(x: Tensor, y: Tensor, ww: Tensor, s: Tensor) -> Tensor:
        out = 0.0 * (s + ww.sum())
        for mode, fn in (("sum", _bounded), ("lse", _scores)):
            r, c = pair_reduce(
                fn, [x, ya, ww], [y, yb], [s], mode=mode, out_cols=True, impl="tiled", chunk_size=2
            )  # type: ignore[arg-type]
            out = (
                out
                + torch.where(torch.isfinite(r), r, 0.0).sum()
                + torch.where(torch.isfinite(c), c, 0.0).pow(2).sum()
            )
        return out

    assert torch.autograd.gradcheck(f, (a, b, w, sc))


def test_full_rows_see_every_column(gen: torch.Generator) -> None:
    """``full_cols=True`` hands each tile whole rows (here: a row-wise softmax inside the tile)."""
    a = torch.randn(9, 3, generator=gen, dtype=torch.float64, requires_grad=True)

    def fn(r: list[Tensor], c: list[Tensor], p: list[Tensor], ri: Tensor, ci: Tensor) -> Tensor:
        assert c[0].shape[0] == 9
        return torch.softmax(r[0] @ c[0].T, 1) ** 2

    got, _ = pair_reduce(fn, [a], [a], full_cols=True, impl="tiled", chunk_size=2)
    want = (torch.softmax(a @ a.T, 1) ** 2).sum(1)
    torch.testing.assert_close(got, want)
    (g,) = torch.autograd.grad(got.sum(), a)
    (e,) = torch.autograd.grad(want.sum(), a)
    torch.testing.assert_close(g, e)


def test_double_backward_raises(gen: torch.Generator) -> None:
    """Second derivatives are not silently wrong: they raise."""
    a = torch.randn(4, 3, generator=gen, dtype=torch.float64, requires_grad=True)
    r, _ = pair_reduce(lambda r, c, p, ri, ci: r[0] @ c[0].T, [a], [a], mode="lse", impl="tiled")
    with pytest.raises(RuntimeError, match="first-order"):
        torch.autograd.grad(r.sum(), a, create_graph=True)


@pytest.mark.parametrize("k", [1, 3, 8])
def test_pair_topk_equals_torch_topk(k: int, gen: torch.Generator) -> None:
    """Streaming top-k over tiles equals topk of the full matrix; short rows pad with -inf."""
    a = torch.randn(11, 4, generator=gen, dtype=torch.float64)
    b = torch.randn(7, 4, generator=gen, dtype=torch.float64)
    ya, yb = torch.randint(0, 5, (11,), generator=gen), torch.randint(0, 5, (7,), generator=gen)
    sc = torch.tensor(1.0, dtype=torch.float64)
    vals, idx = pair_topk(_scores, [a, ya], [b, yb], [sc], k=k, chunk_size=3)
    full = _scores([a, ya], [b, yb], [sc], torch.arange(11), torch.arange(7))
    want = torch.cat([full, torch.full((11, k), -math.inf, dtype=full.dtype)], 1).topk(k, 1).values
    torch.testing.assert_close(vals, want)
    finite = torch.isfinite(vals)
    assert bool((idx[~finite] == -1).all())
    rows = torch.arange(11)[:, None].expand(-1, k)
    torch.testing.assert_close(full[rows[finite], idx[finite]], vals[finite])
