"""Every loss rejects bad input with a ValueError that names the argument and the bad value."""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
import torch
from torch import Tensor

import contrastkit.losses as L

N, D = 4, 3


@dataclass(frozen=True)
class Spec:
    """How to call one loss of the catalog.

    Attributes:
        id: Catalog id, also the name of the functional form in ``contrastkit.losses``.
        module: Name of the ``nn.Module`` class in ``contrastkit.losses``.
        tensors: Names of the embedding arguments, in positional order.
        labelled: Whether an integer ``labels`` vector follows the embeddings.
    """

    id: str
    module: str
    tensors: tuple[str, ...]
    labelled: bool = False

    def functional(self) -> Callable[..., Tensor]:
        """The functional form, looked up on the package."""
        return getattr(L, self.id)

    def module_cls(self) -> Callable[..., torch.nn.Module]:
        """The module class, looked up on the package."""
        return getattr(L, self.module)

    def inputs(self, n: int = N, d: int = D) -> list[Tensor]:
        """Valid positional inputs: one (n, d) matrix per embedding argument, then labels."""
        gen = torch.Generator().manual_seed(0)
        args = [torch.randn(n, d, generator=gen) for _ in self.tensors]
        if self.labelled:
            args.append(torch.arange(n) % 2)
        return args

    def any_tensor(self) -> str:
        """A regex matching any of the embedding argument names."""
        return "|".join(rf"\b{name}\b" for name in self.tensors)


INFONCE = Spec("infonce", "InfoNCELoss", ("query", "key"))
CLIP = Spec("clip", "CLIPLoss", ("image", "text"))
NTXENT = Spec("ntxent", "NTXentLoss", ("z1", "z2"))
SUPCON = Spec("supcon", "SupConLoss", ("embeddings",), labelled=True)
MULTI_POSITIVE = Spec("multi_positive", "MultiPositiveLoss", ("embeddings",), labelled=True)
DCL = Spec("dcl", "DCLLoss", ("z1", "z2"))
DCLW = Spec("dclw", "DCLWLoss", ("z1", "z2"))

SPECS = [INFONCE, CLIP, NTXENT, SUPCON, MULTI_POSITIVE, DCL, DCLW]
PAIRED = [INFONCE, CLIP, NTXENT, DCL, DCLW]
LABELLED = [SUPCON, MULTI_POSITIVE]
FORMS = ["functional", "module"]


def _shape_pattern(shape: tuple[int, ...]) -> str:
    """A regex matching a shape printed as a tuple, a list or a ``torch.Size``."""
    return r"[\(\[]" + r",\s*".join(str(s) for s in shape) + r",?[\)\]]"


@dataclass(frozen=True)
class Case:
    """One bad call: how to break valid inputs and what the error must mention.

    Attributes:
        build: Maps the spec's valid positional inputs to the bad ones.
        match: Regex the message must contain (the argument name).
        value: Regex for the received value the message must also contain, if any.
        hyper: Hyper-parameters (functional keyword / module constructor argument).
    """

    build: Callable[[list[Tensor]], list[Tensor]]
    match: str
    value: str | None = None
    hyper: dict[str, Any] = field(default_factory=dict)


def _replace(i: int, fn: Callable[[Tensor], Tensor]) -> Callable[[list[Tensor]], list[Tensor]]:
    """Builder that replaces positional input ``i`` by ``fn(input_i)``."""

    def build(args: list[Tensor]) -> list[Tensor]:
        out = list(args)
        out[i] = fn(out[i])
        return out

    return build


def _with_value(i: int, row: int, value: float) -> Callable[[list[Tensor]], list[Tensor]]:
    """Builder that writes ``value`` into row ``row`` of positional input ``i``."""

    def poison(x: Tensor) -> Tensor:
        x = x.clone()
        x[row, 0] = value
        return x

    return _replace(i, poison)


def _tensor_cases() -> list[Any]:
    """All bad-tensor cases as ``pytest.param(spec, case, id=...)``."""
    params = []

    def add(spec: Spec, name: str, case: Case) -> None:
        params.append(pytest.param(spec, case, id=f"{spec.id}-{name}"))

    # Mismatched batch sizes: the partner view has one row too many (key: one too few).
    for spec in [CLIP, NTXENT, DCL, DCLW]:
        add(
            spec,
            "batch-mismatch",
            Case(_replace(1, lambda x: torch.cat([x, x[:1]])), spec.any_tensor()),
        )
    add(
        INFONCE, "key-shorter-than-query", Case(_replace(1, lambda x: x[:-1]), INFONCE.any_tensor())
    )
    # Width mismatch between the two embedding matrices.
    for spec in PAIRED:
        widen = _replace(1, lambda x: torch.cat([x, x[:, :1]], dim=1))
        add(spec, "width-mismatch", Case(widen, spec.any_tensor()))
    for spec in SPECS:
        for i, name in enumerate(spec.tensors):
            # Wrong rank: a single vector, or a batch of matrices.
            add(
                spec,
                f"{name}-1d",
                Case(_replace(i, lambda x: x[0]), rf"\b{name}\b", _shape_pattern((D,))),
            )
            add(
                spec,
                f"{name}-3d",
                Case(
                    _replace(i, lambda x: torch.stack([x, x], dim=-1)),
                    rf"\b{name}\b",
                    _shape_pattern((N, D, 2)),
                ),
            )
            # Non-finite values.
            add(spec, f"{name}-nan", Case(_with_value(i, 1, math.nan), rf"\b{name}\b"))
            add(spec, f"{name}-inf", Case(_with_value(i, 1, math.inf), rf"\b{name}\b"))
            add(spec, f"{name}-neg-inf", Case(_with_value(i, 1, -math.inf), rf"\b{name}\b"))
        # Empty batch: every input has zero rows.
        add(spec, "empty-batch", Case(lambda args: [x[:0] for x in args], spec.any_tensor()))
    for spec in LABELLED:
        labels = len(spec.tensors)
        add(spec, "float-labels", Case(_replace(labels, lambda y: y.float()), r"\blabels\b"))
        add(spec, "labels-too-short", Case(_replace(labels, lambda y: y[:-1]), r"\blabels\b"))
        add(
            spec,
            "labels-too-long",
            Case(_replace(labels, lambda y: torch.cat([y, y[:1]])), r"\blabels\b"),
        )
        add(
            spec,
            "labels-2d",
            Case(_replace(labels, lambda y: y[:, None]), r"\blabels\b", _shape_pattern((N, 1))),
        )
    # symmetric=True needs as many keys as queries.
    add(
        INFONCE,
        "symmetric-extra-keys",
        Case(
            _replace(1, lambda x: torch.cat([x, x])),
            r"\bsymmetric\b|\bkey\b",
            hyper={"symmetric": True},
        ),
    )
    return params


def _weights_cases() -> list[Any]:
    """InfoNCE ``weights`` of the wrong shape."""
    shapes = {"too-short": (N - 1,), "too-long": (N + 1,), "column": (N, 1), "scalar": ()}
    return [pytest.param(shape, id=f"weights-{name}") for name, shape in shapes.items()]


def _hyper_cases(form: str) -> list[Any]:
    """Bad hyper-parameters as ``pytest.param(spec, name, value, value_regex, id=...)``.

    Args:
        form: ``"functional"`` or ``"module"``. The functional ``clip`` takes ``logit_scale``
            where ``CLIPLoss`` takes its initial ``temperature``.
    """
    params = []

    def add(spec: Spec, name: str, value: Any, value_regex: str, case_id: str) -> None:
        params.append(pytest.param(spec, name, value, value_regex, id=f"{spec.id}-{case_id}"))

    for spec in SPECS:
        if spec is not CLIP or form == "module":
            add(spec, "temperature", 0.0, r"\b0(\.0)?\b", "temperature-zero")
            add(spec, "temperature", -0.1, r"-0\.1\b", "temperature-negative")
        add(spec, "reduction", "avg", "avg", "reduction-unknown")
        add(spec, "chunk_size", 0, r"\b0\b", "chunk-size-zero")
        add(spec, "chunk_size", -8, r"-8\b", "chunk-size-negative")
        add(spec, "impl", "fastest", "fastest", "impl-unknown")
    add(SUPCON, "variant", "both", "both", "variant-unknown")
    add(DCLW, "sigma", 0.0, r"\b0(\.0)?\b", "sigma-zero")
    add(DCLW, "sigma", -0.5, r"-0\.5\b", "sigma-negative")
    add(CLIP, "max_scale", 0.0, r"\b0(\.0)?\b", "max-scale-zero")
    add(CLIP, "max_scale", -1.0, r"-1(\.0)?\b", "max-scale-negative")
    if form == "functional":
        add(CLIP, "logit_scale", math.nan, "nan", "logit-scale-nan")
        add(CLIP, "logit_scale", math.inf, "inf", "logit-scale-inf")
    return params


def _call(
    spec: Spec,
    form: str,
    args: list[Tensor],
    hyper: dict[str, Any] | None = None,
    forward: dict[str, Any] | None = None,
) -> Tensor:
    """Calls the functional form, or builds the module from ``hyper`` and calls it."""
    hyper, forward = hyper or {}, forward or {}
    if form == "functional":
        return spec.functional()(*args, **hyper, **forward)
    return spec.module_cls()(**hyper)(*args, **forward)


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.id)
def test_valid_input_is_accepted(spec: Spec, form: str) -> None:
    """The unmodified inputs used by the cases below give a finite scalar loss."""
    loss = _call(spec, form, spec.inputs())
    assert loss.shape == ()
    assert torch.isfinite(loss)


@pytest.mark.parametrize("form", FORMS)
def test_infonce_accepts_extra_negatives(form: str) -> None:
    """InfoNCE accepts more keys than queries when not symmetric."""
    query, key = INFONCE.inputs()
    extra = torch.cat([key, torch.randn(3, D)])
    loss = _call(INFONCE, form, [query, extra])
    assert torch.isfinite(loss)


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize(("spec", "case"), _tensor_cases())
def test_bad_tensor_raises(spec: Spec, case: Case, form: str) -> None:
    """A malformed tensor input raises a ValueError naming the argument (and its shape)."""
    args = case.build(spec.inputs())
    with pytest.raises(ValueError, match=case.match) as excinfo:
        _call(spec, form, args, case.hyper)
    if case.value is not None:
        assert re.search(case.value, str(excinfo.value)), str(excinfo.value)


@pytest.mark.parametrize("shape", _weights_cases())
def test_infonce_bad_weights_raise(shape: tuple[int, ...]) -> None:
    """InfoNCE weights that are not one per anchor raise a ValueError naming ``weights``."""
    query, key = INFONCE.inputs()
    with pytest.raises(ValueError, match=r"\bweights\b"):
        L.infonce(query, key, weights=torch.ones(shape))


@pytest.mark.parametrize(("spec", "name", "value", "value_regex"), _hyper_cases("functional"))
def test_bad_hyperparameter_functional_raises(
    spec: Spec, name: str, value: Any, value_regex: str
) -> None:
    """The functional form rejects the hyper-parameter, naming it and the value received."""
    with pytest.raises(ValueError, match=rf"\b{name}\b") as excinfo:
        spec.functional()(*spec.inputs(), **{name: value})
    assert re.search(value_regex, str(excinfo.value)), str(excinfo.value)


@pytest.mark.parametrize(("spec", "name", "value", "value_regex"), _hyper_cases("module"))
def test_bad_hyperparameter_module_raises_at_construction(
    spec: Spec, name: str, value: Any, value_regex: str
) -> None:
    """The module constructor rejects the hyper-parameter before any forward call."""
    with pytest.raises(ValueError, match=rf"\b{name}\b") as excinfo:
        spec.module_cls()(**{name: value})
    assert re.search(value_regex, str(excinfo.value)), str(excinfo.value)
