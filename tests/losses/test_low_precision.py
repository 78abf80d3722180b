"""bf16 inputs at a sharp temperature: contrastkit is at least as accurate as naive bf16 PyTorch.

For each case the error of a quantity is ``max |value - ref64|`` where ``ref64`` is the float64
reference on the same (bf16-rounded) inputs. contrastkit must satisfy
``err(contrastkit) <= 2 * err(naive bf16) + floor`` for the loss and every input gradient, where
the naive computation runs normalize, logits and cross-entropy entirely in bf16 and ``floor`` is
``1e-6`` plus the error of merely storing ``ref64`` in contrastkit's output dtype (a correctly
rounded bf16 result cannot do better than that, and the naive result may be lucky).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor

import contrastkit.losses as L
from tests.reference import REFERENCES

N, D = 256, 64
TEMPERATURE = 0.01
NUM_CLASSES = 16
ATOL_FLOOR = 1e-6


def _pair_inputs() -> list[Tensor]:
    """Two bf16 views whose rows are noisy copies of each other (cosine around 0.45)."""
    gen = torch.Generator().manual_seed(0)
    z1 = torch.randn(N, D, generator=gen)
    z2 = z1 + 2.0 * torch.randn(N, D, generator=gen)
    return [z1.bfloat16(), z2.bfloat16()]


def _labelled_inputs() -> list[Tensor]:
    """bf16 embeddings scattered around one random centre per class, and their labels."""
    gen = torch.Generator().manual_seed(1)
    labels = torch.randperm(N, generator=gen) % NUM_CLASSES
    centres = torch.randn(NUM_CLASSES, D, generator=gen)
    embeddings = centres[labels] + 0.7 * torch.randn(N, D, generator=gen)
    return [embeddings.bfloat16(), labels]


def _naive_infonce(query: Tensor, key: Tensor, symmetric: bool) -> Tensor:
    """InfoNCE as plain PyTorch, every step in the input dtype."""
    logits = F.normalize(query, dim=1) @ F.normalize(key, dim=1).T / TEMPERATURE
    target = torch.arange(query.shape[0])
    loss = F.cross_entropy(logits, target)
    if symmetric:
        loss = 0.5 * (loss + F.cross_entropy(logits.T, target))
    return loss


def _naive_ntxent(z1: Tensor, z2: Tensor) -> Tensor:
    """NT-Xent as plain PyTorch, every step in the input dtype."""
    z = F.normalize(torch.cat([z1, z2]), dim=1)
    n = z1.shape[0]
    logits = (z @ z.T / TEMPERATURE).masked_fill(torch.eye(2 * n, dtype=torch.bool), -torch.inf)
    target = torch.cat([torch.arange(n, 2 * n), torch.arange(n)])
    return F.cross_entropy(logits, target)


def _naive_supcon(embeddings: Tensor, labels: Tensor) -> Tensor:
    """SupCon (``"out"``) as plain PyTorch, every step in the input dtype."""
    z = F.normalize(embeddings, dim=1)
    self_mask = torch.eye(z.shape[0], dtype=torch.bool)
    logits = (z @ z.T / TEMPERATURE).masked_fill(self_mask, -torch.inf)
    log_prob = F.log_softmax(logits, dim=1)
    positive = (labels[:, None] == labels[None, :]) & ~self_mask
    per_anchor = -log_prob.masked_fill(~positive, 0).sum(1) / positive.sum(1)
    has_positive = positive.any(1)
    return per_anchor[has_positive].mean()


@dataclass(frozen=True)
class Case:
    """One loss under test.

    Attributes:
        loss_id: Catalog id (functional name and reference key).
        inputs: Builds the positional inputs (floating ones are bf16).
        naive: The all-bf16 dense computation of the same loss.
        kwargs: Hyper-parameters shared by contrastkit and the reference.
    """

    loss_id: str
    inputs: Callable[[], list[Tensor]]
    naive: Callable[..., Tensor]
    kwargs: dict[str, Any]


CASES = [
    pytest.param(
        Case("infonce", _pair_inputs, lambda q, k: _naive_infonce(q, k, False), {}),
        id="infonce",
    ),
    pytest.param(
        Case(
            "infonce",
            _pair_inputs,
            lambda q, k: _naive_infonce(q, k, True),
            {"symmetric": True},
        ),
        id="infonce-symmetric",
    ),
    pytest.param(Case("ntxent", _pair_inputs, _naive_ntxent, {}), id="ntxent"),
    pytest.param(Case("supcon", _labelled_inputs, _naive_supcon, {}), id="supcon"),
]

IMPLS = [
    pytest.param({}, id="default"),
    pytest.param({"impl": "tiled", "chunk_size": 64}, id="tiled-64"),
]


def _loss_and_grads(fn: Callable[..., Tensor], inputs: list[Tensor]) -> tuple[Tensor, ...]:
    """The loss of ``fn`` on fresh leaves built from ``inputs`` and its input gradients."""
    leaves = [x.detach().clone().requires_grad_(x.is_floating_point()) for x in inputs]
    loss = fn(*leaves)
    grads = torch.autograd.grad(loss, [x for x in leaves if x.requires_grad])
    return (loss, *grads)


def _err(value: Tensor, ref: Tensor) -> float:
    """Max absolute error of ``value`` against the float64 ``ref``."""
    return float((value.detach().double() - ref.detach()).abs().max())


def _floor(value: Tensor, ref: Tensor) -> float:
    """``ATOL_FLOOR`` plus the error of storing ``ref`` in ``value``'s dtype."""
    return ATOL_FLOOR + _err(ref.to(value.dtype), ref)


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("case", CASES)
def test_bf16_sharp_temperature(case: Case, impl: dict[str, Any]) -> None:
    """At temperature 0.01 in bf16, the loss and gradients beat twice the naive bf16 error."""
    inputs = case.inputs()
    ours = _loss_and_grads(
        lambda *x: getattr(L, case.loss_id)(*x, temperature=TEMPERATURE, **case.kwargs, **impl),
        inputs,
    )
    naive = _loss_and_grads(case.naive, inputs)
    reference = _loss_and_grads(
        lambda *x: REFERENCES[case.loss_id](*x, temperature=TEMPERATURE, **case.kwargs),
        [x.double() if x.is_floating_point() else x for x in inputs],
    )
    assert float(reference[0].detach()) > 0.1, "the test data should give a non-trivial loss"
    names = ["loss"] + [f"grad[{i}]" for i in range(len(ours) - 1)]
    for name, value in zip(names, ours, strict=True):
        assert bool(torch.isfinite(value).all()), f"{name} is not finite"
    report = {
        name: (_err(o, r), _err(nv, r), _floor(o, r))
        for name, o, nv, r in zip(names, ours, naive, reference, strict=True)
    }
    worse = {name: e for name, e in report.items() if e[0] > 2 * e[1] + e[2]}
    assert not worse, f"(err ours, err naive bf16, floor) where ours is worse: {worse}"


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("loss_id", sorted(L.REGISTRY))
def test_bf16_inputs_use_float32_statistics(loss_id: str, impl: dict[str, Any]) -> None:
    """Every loss on bf16 inputs is as accurate as float32 math on them (not bf16 math).

    The loss (float32) and each input gradient (bf16) are within a few float32 / bf16 roundings
    of the float64 reference evaluated on the same bf16-rounded inputs.
    """
    from tests.losses.cases import make_case

    case = make_case(loss_id, 48, 16, {}, torch.Generator().manual_seed(3))

    def bf16(t: Tensor) -> Tensor:
        if not t.is_floating_point():
            return t
        return t.detach().bfloat16().requires_grad_(t.requires_grad)

    low = case.clone()
    low.args = [bf16(t) for t in case.args]
    low.tensors = {k: bf16(t) for k, t in case.tensors.items()}
    high = low.clone()
    high.args = [
        t.detach().double().requires_grad_(t.requires_grad) if t.is_floating_point() else t
        for t in low.args
    ]
    high.tensors = {
        k: t.detach().double().requires_grad_(t.requires_grad) if t.is_floating_point() else t
        for k, t in low.tensors.items()
    }
    ours = low.call(getattr(L, loss_id), **impl)
    assert ours.dtype == torch.float32
    ref = high.call(REFERENCES[loss_id])
    got = torch.autograd.grad(ours, low.leaves())
    want = torch.autograd.grad(ref, high.leaves())
    assert abs(float(ours.detach()) - float(ref.detach())) <= 1e-5 * max(
        1.0, abs(float(ref.detach()))
    )
    for g, w in zip(got, want, strict=True):
        assert g.dtype == torch.bfloat16
        bound = 2 * _err(w.to(torch.bfloat16), w) + 1e-5 * float(w.abs().max()) + 1e-7
        assert _err(g, w) <= bound, (loss_id, _err(g, w), bound)
