"""The contract every registered loss meets, checked against its float64 reference.

For each loss in ``REGISTRY``: value and gradients of every input equal the independent
reference in ``tests/reference`` for the dense path and the tiled path at tile sizes 1, 7 (uneven
last tiles) and the default; ``gradcheck`` of the tiled backward; permutation equivariance;
scale invariance; symmetry where declared; degenerate batches.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import pytest
import torch
from torch import Tensor

import contrastkit.losses as L
from tests.reference import REFERENCES

IDS = sorted(L.REGISTRY)

# Hyper-parameter settings exercised per loss (beyond the defaults).
SETTINGS: dict[str, list[dict[str, Any]]] = {
    "infonce": [{}, {"symmetric": True}, {"temperature": 0.3, "extra": 4}, {"weighted": True}],
    "clip": [{}, {"logit_scale": math.log(200.0)}],
    "ntxent": [{}, {"temperature": 0.1}],
    "supcon": [{}, {"variant": "in"}],
    "multi_positive": [{}],
    "dcl": [{}],
    "dclw": [{}, {"sigma": 0.2}],
}


def make_inputs(
    loss_id: str, n: int, d: int, setting: dict[str, Any], gen: torch.Generator
) -> tuple[list[Tensor], dict[str, Any]]:
    """Inputs (float64 leaves requiring grad, then labels) and keyword arguments for a loss."""
    names = L.REGISTRY[loss_id].inputs
    kwargs = {k: v for k, v in setting.items() if k not in ("extra", "weighted")}
    if names[1] == "labels":
        x = torch.randn(n, d, generator=gen, dtype=torch.float64, requires_grad=True)
        labels = torch.randint(0, max(1, n // 3), (n,), generator=gen)
        return [x, labels], kwargs
    m = n + setting.get("extra", 0)
    a = torch.randn(n, d, generator=gen, dtype=torch.float64)
    b = a.detach()[torch.arange(m) % n] + 0.7 * torch.randn(m, d, generator=gen, dtype=a.dtype)
    if setting.get("weighted"):
        kwargs["weights"] = torch.rand(n, generator=gen, dtype=torch.float64) + 0.5
    return [a.requires_grad_(), b.requires_grad_()], kwargs


def grads(value: Tensor, tensors: list[Tensor]) -> list[Tensor]:
    """Gradients of ``value`` w.r.t. the float inputs (a fixed random cotangent if not scalar)."""
    leaves = [t for t in tensors if t.is_floating_point()]
    if value.dim() > 0:
        cot = torch.linspace(-1.0, 2.0, value.numel(), dtype=value.dtype).reshape(value.shape)
        value = (value * cot).sum()
    return list(torch.autograd.grad(value, leaves, allow_unused=True))


def run(fn: Callable[..., Tensor], tensors: list[Tensor], kwargs: dict[str, Any]) -> list[Tensor]:
    """Value and input gradients of one call."""
    clones = [t.detach().clone().requires_grad_(t.requires_grad) for t in tensors]
    out = fn(*clones, **kwargs)
    return [out.detach(), *grads(out, clones)]


def cases() -> list[Any]:
    out = []
    for loss_id in IDS:
        for k, setting in enumerate(SETTINGS.get(loss_id, [{}])):
            out.append(pytest.param(loss_id, setting, id=f"{loss_id}-{k}"))
    return out


def test_every_registered_loss_has_a_reference_and_settings() -> None:
    """The catalog cannot outgrow its tests: each id has a reference and contract settings."""
    assert set(IDS) <= set(REFERENCES)
    assert set(IDS) <= set(SETTINGS)


@pytest.mark.parametrize(("n", "d"), [(1, 3), (5, 7), (13, 6), (33, 17)], ids=lambda v: str(v))
@pytest.mark.parametrize("reduction", ["mean", "none"])
@pytest.mark.parametrize(("loss_id", "setting"), cases())
def test_matches_reference(
    loss_id: str, setting: dict[str, Any], reduction: str, n: int, d: int, gen: torch.Generator
) -> None:
    """Dense and tiled (tile sizes 1, 7, default) equal the float64 reference, with gradients."""
    tensors, kwargs = make_inputs(loss_id, n, d, setting, gen)
    kwargs["reduction"] = reduction
    expected = run(REFERENCES[loss_id], tensors, kwargs)
    fn = getattr(L, loss_id)
    for impl, chunk in [("dense", None), ("tiled", 1), ("tiled", 7), ("tiled", None)]:
        got = run(fn, tensors, {**kwargs, "impl": impl, "chunk_size": chunk})
        for e, g in zip(expected, got, strict=True):
            torch.testing.assert_close(g, e, msg=lambda m, i=impl, c=chunk: f"{i}/{c}: {m}")


@pytest.mark.parametrize(("loss_id", "setting"), cases())
def test_gradcheck_tiled(loss_id: str, setting: dict[str, Any], gen: torch.Generator) -> None:
    """The tiled backward passes torch.autograd.gradcheck, temperature / scale included.

    Losses with a stop-gradient term by design (DCLW) are checked w.r.t. the temperature only.
    """
    tensors, kwargs = make_inputs(loss_id, 5, 3, setting, gen)
    if loss_id == "clip":
        kwargs["logit_scale"] = torch.tensor(kwargs.get("logit_scale", 1.2), dtype=torch.float64)
        param = kwargs["logit_scale"]
    else:
        kwargs["temperature"] = torch.tensor(kwargs.get("temperature", 0.4), dtype=torch.float64)
        param = kwargs["temperature"]
    param.requires_grad_(loss_id != "clip" or float(param) < math.log(100.0))
    floats = [t for t in tensors if t.is_floating_point()]
    others = [t for t in tensors if not t.is_floating_point()]
    if L.REGISTRY[loss_id].stop_gradient:
        for t in floats:
            t.requires_grad_(False)
    fn = getattr(L, loss_id)
    name = "logit_scale" if loss_id == "clip" else "temperature"

    def f(*xs: Tensor) -> Tensor:
        *embs, p = xs
        return fn(*embs, *others, **{**kwargs, name: p}, impl="tiled", chunk_size=2)

    assert torch.autograd.gradcheck(f, (*floats, param))


@pytest.mark.parametrize(("loss_id", "setting"), cases())
def test_permutation_equivariant(
    loss_id: str, setting: dict[str, Any], gen: torch.Generator
) -> None:
    """Permuting the batch permutes the per-anchor losses and keeps the mean."""
    n = 9
    tensors, kwargs = make_inputs(loss_id, n, 4, {**setting, "extra": 0}, gen)
    perm = torch.randperm(n, generator=gen)
    permuted = [t.detach()[perm] for t in tensors]
    kwargs_p = dict(kwargs)
    if "weights" in kwargs:
        kwargs_p["weights"] = kwargs["weights"][perm]
    fn = getattr(L, loss_id)
    plain = [t.detach() for t in tensors]
    base = fn(*plain, **kwargs, reduction="none", impl="tiled", chunk_size=4)
    moved = fn(*permuted, **kwargs_p, reduction="none", impl="tiled", chunk_size=4)
    views = base.shape[0] // n
    index = torch.cat([perm + k * n for k in range(views)])
    torch.testing.assert_close(moved, base[index])


@pytest.mark.parametrize(("loss_id", "setting"), cases())
def test_scale_invariant_when_normalizing(
    loss_id: str, setting: dict[str, Any], gen: torch.Generator
) -> None:
    """With normalize=True, rescaling the embeddings leaves the loss unchanged."""
    tensors, kwargs = make_inputs(loss_id, 8, 5, setting, gen)
    scaled = [t.detach() * 3.7 if t.is_floating_point() else t for t in tensors]
    fn = getattr(L, loss_id)
    a = fn(*[t.detach() for t in tensors], **kwargs, impl="tiled", chunk_size=3)
    torch.testing.assert_close(fn(*scaled, **kwargs, impl="tiled", chunk_size=3), a)


@pytest.mark.parametrize("loss_id", [i for i in IDS if L.REGISTRY[i].symmetric_inputs])
def test_symmetric_in_its_inputs(loss_id: str, gen: torch.Generator) -> None:
    """Losses declared symmetric give loss(x, y) == loss(y, x)."""
    (a, b), kwargs = make_inputs(loss_id, 7, 4, {}, gen)
    fn = getattr(L, loss_id)
    torch.testing.assert_close(fn(a, b, **kwargs), fn(b, a, **kwargs))


@pytest.mark.parametrize(
    "labels",
    [[0, 0, 0, 0, 0], [0, 1, 2, 3, 4], [0, 0, 1, 2, 3], [7]],
    ids=["all-equal", "no-positives", "some-positives", "single"],
)
@pytest.mark.parametrize("loss_id", [i for i in IDS if L.REGISTRY[i].requires.labels])
@pytest.mark.parametrize("impl", ["dense", "tiled"])
def test_degenerate_labels(
    loss_id: str, labels: list[int], impl: str, gen: torch.Generator
) -> None:
    """All labels equal, no positive, N = 1: finite, equal to the reference, backward runs."""
    y = torch.tensor(labels)
    x = torch.randn(len(labels), 4, generator=gen, dtype=torch.float64, requires_grad=True)
    got = run(getattr(L, loss_id), [x, y], {"impl": impl, "chunk_size": 2})
    expected = run(REFERENCES[loss_id], [x, y], {})
    for g, e in zip(got, expected, strict=True):
        assert torch.isfinite(g).all()
        torch.testing.assert_close(g, e)


@pytest.mark.parametrize("loss_id", IDS)
def test_module_equals_functional(loss_id: str, gen: torch.Generator) -> None:
    """The module form with default arguments computes the functional form."""
    tensors, _ = make_inputs(loss_id, 6, 4, {}, gen)
    module = L.REGISTRY[loss_id]().double()
    torch.testing.assert_close(module(*tensors), getattr(L, loss_id)(*tensors))


@pytest.mark.parametrize("loss_id", IDS)
def test_metadata_is_complete(loss_id: str) -> None:
    """Every registered loss names its paper, inputs and family, and ends in ``Loss``."""
    cls = L.REGISTRY[loss_id]
    assert cls.__name__.endswith("Loss")
    assert cls.paper.arxiv
    assert cls.family
    assert len(cls.inputs) >= 2
    assert cls.__doc__
    assert ".. math::" in str(getattr(L, loss_id).__doc__)
