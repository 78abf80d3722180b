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
from tests.losses.cases import PARAM, Case, make_case, module_case
from tests.reference import REFERENCES

IDS = sorted(L.REGISTRY)

# Hyper-parameter settings exercised per loss (beyond the defaults).
SETTINGS: dict[str, list[dict[str, Any]]] = {
    "infonce": [
        {},
        {"symmetric": True},
        {"temperature": 0.3, "extra": 4},
        {"weighted": True},
        {"similarity": "bilinear", "normalize": False, "extra": 2},
        {"similarity": "neg_sq_l2", "symmetric": True},
        {"similarity": "student_t", "normalize": False, "temperature": 0.5},
        {"similarity": "maxsim", "symmetric": True, "temperature": 0.3},
    ],
    "clip": [{}, {"logit_scale": math.log(200.0)}],
    "ntxent": [{}, {"temperature": 0.1}],
    "supcon": [{}, {"variant": "in"}],
    "multi_positive": [{}],
    "dcl": [{}],
    "dclw": [{}, {"sigma": 0.2}],
    "listwise": [{}, {"multi": True, "cand_weights": True, "ids": True}, {"temperature": 0.5}],
    "hard_infonce": [{}, {"k": 2}, {"k": 3, "extra": 4, "temperature": 0.5}],
    "focal_supcon": [{}, {"gamma": 2.0}, {"gamma": 0.5, "temperature": 0.3}],
    "cwcl": [{}, {"temperature": 0.3}],
    "soft_target": [
        {},
        {"alpha": 0.4, "teacher_temperature": 0.5},
        {"symmetric": False, "extra": 3, "teacher_b": True, "alpha": 0.7},
    ],
    "mixco": [{}, {"symmetric": False, "temperature": 0.3}],
    "pair_weighted": [{}, {"temperature": 0.2}],
    "siglip": [{}, {"gamma": 1.0}, {"logit_scale": 0.5, "logit_bias": 1.0, "gamma": 2.0}],
    "soft_bce": [{}, {"nu": 2.0, "sigma": 0.5, "nu_reference": 5.0, "sigma_reference": 2.0}],
    "mw_auc": [{}, {"scope": "query"}, {"extra": 3, "temperature": 0.5}],
    "pairwise_logistic": [{}, {"normalize": True, "temperature": 0.5}],
    "contrastive_margin": [{}, {"pos_margin": 0.2, "neg_margin": 1.5}],
    "triplet": [{}, {"margin": 0.4}],
    "koleo": [{}, {"eps": 0.1}],
    "palm": [
        {},
        {"k": 1, "temperature": 0.3, "lambda_pcon": 0.5, "prototype_temperature": 0.2},
        {"k": 0, "epsilon": 0.2, "sinkhorn_iterations": 1, "per_class": 1},
        {"normalize": False, "per_class": 2, "k": 1},
    ],
    "pamc": [
        {},
        {"negatives": "sized", "temperature": 0.5},
        {"negatives": "exact", "weighted": True},
        {"negatives": "sized", "normalize": False, "weighted": True},
        {"normalize": False, "temperature": 2.0},
    ],
    "prototype_margin": [{}, {"normalize": False}],
    "sogclr": [
        {},
        {"temperature": 0.3, "estimates": True},
        {"normalize": False, "temperature": 0.5},
    ],
    "isogclr": [
        {},
        {"row_temperatures": True, "estimates": True},
        {"row_temperatures": True, "rho": 1.0},
    ],
    "sogclr_bimodal": [
        {},
        {"temperature_image": 0.3, "temperature_text": 0.5, "estimates": True, "rho": 6.0},
        {"row_temperatures": True, "temperature_text": 0.2},
    ],
    "patchnce": [{}, {"ids": True}, {"ids": True, "temperature": 0.3, "normalize": False}],
    "asp": [
        {"progress": 0.9},
        {"progress": 0.4, "schedule": "sigmoid", "lookup": "top", "ids": True},
        {"progress": 0.6, "schedule": "linear", "lookup": "bell", "ids": True},
        {"progress": 0.95, "decay_start": 0.5, "lookup": "uniform"},
    ],
    "proxy_nce": [
        {},
        {"prior": "none"},
        {"counts": True, "loss_scale": 1.7},
        {"normalize": False, "temperature": 0.5},
    ],
    "gram": [
        {},
        {"modalities": 2, "label_smoothing": 0.0},
        {"modalities": 4, "symmetric": False, "temperature": 0.3},
        {"modalities": 5, "normalize": False, "temperature": 2.0, "label_smoothing": 0.2},
    ],
    "multimodal_pairwise": [
        {},
        {"modalities": 2},
        {"modalities": 4, "aggregate": "mean", "temperature": 0.3},
        {"modalities": 3, "symmetric": False, "normalize": False, "temperature": 2.0},
    ],
    "uniformity": [{}, {"t": 0.5}],
    "alignment": [{}, {"alpha": 1.5}],
}


def grads(value: Tensor, leaves: list[Tensor]) -> list[Tensor]:
    """Gradients of ``value`` w.r.t. ``leaves`` (a fixed random cotangent if not scalar)."""
    if value.dim() > 0:
        cot = torch.linspace(-1.0, 2.0, value.numel(), dtype=value.dtype).reshape(value.shape)
        value = (value * cot).sum()
    return list(torch.autograd.grad(value, leaves, allow_unused=True))


def run(fn: Callable[..., Tensor], case: Case, **extra: Any) -> list[Tensor]:
    """Value and input gradients of one call (on fresh copies of the inputs)."""
    fresh = case.clone()
    out = fresh.call(fn, **extra)
    return [out.detach(), *grads(out, fresh.leaves())]


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
    case = make_case(loss_id, n, d, setting, gen)
    expected = run(REFERENCES[loss_id], case, reduction=reduction)
    fn = getattr(L, loss_id)
    for impl, chunk in [("dense", None), ("tiled", 1), ("tiled", 7), ("tiled", None)]:
        got = run(fn, case, reduction=reduction, impl=impl, chunk_size=chunk)
        for e, g in zip(expected, got, strict=True):
            torch.testing.assert_close(g, e, msg=lambda m, i=impl, c=chunk: f"{i}/{c}: {m}")


@pytest.mark.parametrize(("loss_id", "setting"), cases())
def test_gradcheck_tiled(loss_id: str, setting: dict[str, Any], gen: torch.Generator) -> None:
    """The tiled backward passes torch.autograd.gradcheck, temperature / scale included.

    Losses with a stop-gradient term by design (DCLW) are checked w.r.t. the temperature only;
    margin losses and SAN's kernel loss have no such scalar.
    """
    case = make_case(loss_id, 5, 3, setting, gen)
    name = PARAM.get(loss_id, "temperature")
    params: list[Tensor] = []
    if name is not None:
        default = 1.2 if name == "logit_scale" else 0.4
        param = torch.tensor(float(case.kwargs.pop(name, default)), dtype=torch.float64)
        param.requires_grad_(loss_id != "clip" or float(param) < math.log(100.0))
        params.append(param)
    if L.REGISTRY[loss_id].stop_gradient:
        for t in case.leaves():
            t.requires_grad_(False)
    leaves = case.leaves()
    fn = getattr(L, loss_id)

    def f(*xs: Tensor) -> Tensor:
        swapped = case.clone()
        it = iter(xs)
        swapped.args = [
            next(it) if t.is_floating_point() and t.requires_grad else t for t in case.args
        ]
        swapped.tensors = {
            k: next(it) if t.is_floating_point() and t.requires_grad else t
            for k, t in case.tensors.items()
        }
        extra = {name: next(it)} if name is not None else {}
        return swapped.call(fn, impl="tiled", chunk_size=2, **extra)

    assert torch.autograd.gradcheck(f, (*leaves, *params))


@pytest.mark.parametrize(("loss_id", "setting"), cases())
def test_permutation_equivariant(
    loss_id: str, setting: dict[str, Any], gen: torch.Generator
) -> None:
    """Permuting the batch permutes the per-anchor losses and keeps the mean."""
    n = 9
    case = make_case(loss_id, n, 4, {**setting, "extra": 0}, gen)
    perm = torch.randperm(n, generator=gen)
    fn = getattr(L, loss_id)
    base = case.rows(torch.arange(n), n).call(fn, reduction="none", impl="tiled", chunk_size=4)
    moved = case.rows(perm, n).call(fn, reduction="none", impl="tiled", chunk_size=4)
    views = base.shape[0] // n
    index = torch.cat([perm + k * n for k in range(views)])
    torch.testing.assert_close(moved, base[index])


@pytest.mark.parametrize(
    ("loss_id", "setting"),
    # SAN's Student-t kernel is on raw distances (its scale is sigma), not normalized ones.
    [c for c in cases() if c.values[0] != "soft_bce"],
)
def test_scale_invariant_when_normalizing(
    loss_id: str, setting: dict[str, Any], gen: torch.Generator
) -> None:
    """With normalize=True, rescaling the embeddings leaves the loss unchanged."""
    case = make_case(loss_id, 8, 5, {**setting, "normalize": True}, gen)
    fn = getattr(L, loss_id)
    plain = case.rows(torch.arange(8), 8)
    scaled = case.rows(torch.arange(8), 8)
    scaled.args = [t * 3.7 if t.is_floating_point() else t for t in scaled.args]
    a = plain.call(fn, impl="tiled", chunk_size=3)
    torch.testing.assert_close(scaled.call(fn, impl="tiled", chunk_size=3), a)


@pytest.mark.parametrize("loss_id", [i for i in IDS if L.REGISTRY[i].symmetric_inputs])
def test_symmetric_in_its_inputs(loss_id: str, gen: torch.Generator) -> None:
    """Losses declared symmetric give loss(x, y) == loss(y, x)."""
    case = make_case(loss_id, 7, 4, {}, gen)
    a, b = case.args
    fn = getattr(L, loss_id)
    torch.testing.assert_close(fn(a, b, **case.kwargs), fn(b, a, **case.kwargs))


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
    tensors: dict[str, Tensor] = {}
    if loss_id == "proxy_nce":  # 8 proxies: the "single" case uses label 7
        tensors["proxies"] = torch.randn(8, 4, generator=gen, dtype=torch.float64)
    if loss_id == "palm":  # two prototypes for every class up to the largest label
        shape = (max(labels) + 1, 2, 4)
        tensors["prototypes"] = torch.randn(*shape, generator=gen, dtype=torch.float64)
    for t in tensors.values():
        t.requires_grad_()
    got = run(getattr(L, loss_id), Case([x, y], tensors), impl=impl, chunk_size=2)
    expected = run(REFERENCES[loss_id], Case([x, y], tensors))
    for g, e in zip(got, expected, strict=True):
        assert torch.isfinite(g).all()
        torch.testing.assert_close(g, e)


@pytest.mark.parametrize("loss_id", IDS)
def test_module_equals_functional(loss_id: str, gen: torch.Generator) -> None:
    """The module form with default arguments computes the functional form."""
    case = make_case(loss_id, 6, 4, {}, gen)
    cls = L.REGISTRY[loss_id]
    if cls.requires.index:  # stateful: on first visits the module is the functional alone
        stateful = cls(num_samples=9).double()  # type: ignore[call-arg]
        index = torch.tensor([8, 0, 3, 5, 1, 2])
        torch.testing.assert_close(stateful(*case.args, index), case.call(getattr(L, loss_id)))
        return
    module, call = module_case(loss_id, case)
    torch.testing.assert_close(call.call(module), case.call(getattr(L, loss_id)))


@pytest.mark.parametrize("loss_id", IDS)
def test_metadata_is_complete(loss_id: str) -> None:
    """Every registered loss names its paper, inputs and family, and ends in ``Loss``."""
    cls = L.REGISTRY[loss_id]
    assert cls.__name__.endswith("Loss")
    assert cls.paper.arxiv
    assert cls.family
    assert len(cls.inputs) >= 1
    assert cls.__doc__
    assert ".. math::" in str(getattr(L, loss_id).__doc__)
