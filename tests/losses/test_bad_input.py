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
        keywords: Valid tensor keyword arguments of forward for a batch of ``n`` (a teacher,
            mixup weights, attributes).
    """

    id: str
    module: str
    tensors: tuple[str, ...]
    labelled: bool = False
    keywords: Callable[[int], dict[str, Tensor]] | None = None
    num_samples: int | None = None  # stateful module: its size; forward also takes an index
    module_args: tuple[int, ...] = ()  # positional constructor args (PALM: num_classes, dim)
    owned: tuple[str, ...] = ()  # functional keywords the module owns (PALM: prototypes)

    def build_module(self, **hyper: Any) -> torch.nn.Module:
        """The module built with ``hyper``."""
        return self.module_cls()(*self.module_args, **hyper)

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

    def forward_keywords(self, n: int = N) -> dict[str, Tensor]:
        """Valid tensor keyword arguments for a batch of ``n``."""
        return {} if self.keywords is None else self.keywords(n)

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

HARD_INFONCE = Spec("hard_infonce", "HardInfoNCELoss", ("query", "key"))
FOCAL_SUPCON = Spec("focal_supcon", "FocalSupConLoss", ("embeddings",), labelled=True)
CWCL = Spec("cwcl", "CWCLLoss", ("a", "b"), keywords=lambda n: {"teacher": torch.randn(n, 5)})
SOFT_TARGET = Spec(
    "soft_target", "SoftTargetLoss", ("a", "b"), keywords=lambda n: {"teacher_a": torch.randn(n, 5)}
)
MIXCO = Spec(
    "mixco",
    "MixCoLoss",
    ("mixed", "other"),
    keywords=lambda n: {"lam": torch.full((n,), 0.7), "partner": torch.arange(n).flip(0)},
)
PAIR_WEIGHTED = Spec(
    "pair_weighted",
    "PairWeightedLoss",
    ("a", "b"),
    keywords=lambda n: {"attributes_a": torch.rand(n, 3, 2), "attributes_b": torch.rand(n, 3, 2)},
)
SIGLIP = Spec("siglip", "SigLIPLoss", ("image", "text"))
SOFT_BCE = Spec("soft_bce", "SoftBCELoss", ("embeddings", "reference"))
MW_AUC = Spec("mw_auc", "MWAUCLoss", ("query", "doc"))
PAIRWISE_LOGISTIC = Spec(
    "pairwise_logistic", "PairwiseLogisticLoss", ("embeddings",), labelled=True
)
CONTRASTIVE_MARGIN = Spec(
    "contrastive_margin", "ContrastiveMarginLoss", ("embeddings",), labelled=True
)
TRIPLET = Spec("triplet", "TripletLoss", ("embeddings",), labelled=True)
GRAM = Spec("gram", "GRAMLoss", ("anchor", "others", "others"))
MULTIMODAL_PAIRWISE = Spec(
    "multimodal_pairwise", "MultimodalPairwiseLoss", ("modalities", "modalities", "modalities")
)
PATCHNCE = Spec("patchnce", "PatchNCELoss", ("query", "key"))
ASP = Spec("asp", "ASPLoss", ("query", "key"))
SOGCLR = Spec("sogclr", "SogCLRLoss", ("z1", "z2"), num_samples=N + 2)
ISOGCLR = Spec("isogclr", "ISogCLRLoss", ("z1", "z2"), num_samples=N + 2)
SOGCLR_BIMODAL = Spec("sogclr_bimodal", "SogCLRBimodalLoss", ("image", "text"), num_samples=N + 2)
PALM = Spec(
    "palm",
    "PALMLoss",
    ("embeddings",),
    labelled=True,
    keywords=lambda n: {"prototypes": torch.randn(2, 3, D)},
    module_args=(2, D),
    owned=("prototypes",),
)
PAMC = Spec(
    "pamc",
    "PamCLoss",
    ("embeddings",),
    keywords=lambda n: {
        "edge_index": torch.stack([torch.arange(n), torch.arange(n).flip(0)]),
        "clusters": torch.arange(n) % 2,
    },
)
PROTOTYPE_MARGIN = Spec(
    "prototype_margin",
    "PrototypeMarginLoss",
    ("prototypes",),
    keywords=lambda n: {
        "class_identity": torch.arange(n)[:, None] % 2 == torch.arange(2)[None, :],
        "cooccurrence": torch.eye(2),
    },
)
KOLEO = Spec("koleo", "KoLeoLoss", ("embeddings",))
UNIFORMITY = Spec("uniformity", "UniformityLoss", ("embeddings",))
ALIGNMENT = Spec("alignment", "AlignmentLoss", ("x", "y"))

SPECS = [
    INFONCE,
    CLIP,
    NTXENT,
    SUPCON,
    MULTI_POSITIVE,
    DCL,
    DCLW,
    HARD_INFONCE,
    FOCAL_SUPCON,
    CWCL,
    SOFT_TARGET,
    MIXCO,
    PAIR_WEIGHTED,
    SIGLIP,
    SOFT_BCE,
    MW_AUC,
    PAIRWISE_LOGISTIC,
    CONTRASTIVE_MARGIN,
    TRIPLET,
    KOLEO,
    UNIFORMITY,
    ALIGNMENT,
    GRAM,
    MULTIMODAL_PAIRWISE,
    PATCHNCE,
    ASP,
    SOGCLR,
    ISOGCLR,
    SOGCLR_BIMODAL,
    PALM,
    PAMC,
    PROTOTYPE_MARGIN,
]
PAIRED = [INFONCE, CLIP, NTXENT, DCL, DCLW, HARD_INFONCE, CWCL, SOFT_TARGET, MIXCO, PAIR_WEIGHTED]
PAIRED += [SIGLIP, MW_AUC, ALIGNMENT, GRAM, MULTIMODAL_PAIRWISE, PATCHNCE, ASP]
PAIRED += [SOGCLR, ISOGCLR, SOGCLR_BIMODAL]
SAME_BATCH = [CLIP, NTXENT, DCL, DCLW, CWCL, MIXCO, PAIR_WEIGHTED, SIGLIP, SOFT_BCE, ALIGNMENT]
SAME_BATCH += [GRAM, MULTIMODAL_PAIRWISE, PATCHNCE, ASP, SOGCLR, ISOGCLR, SOGCLR_BIMODAL]
LABELLED = [SUPCON, MULTI_POSITIVE, FOCAL_SUPCON, PAIRWISE_LOGISTIC, CONTRASTIVE_MARGIN, TRIPLET]
LABELLED += [PALM]
# The scalar each loss takes instead of (or besides) a temperature.
NO_TEMPERATURE = {CLIP.id, SIGLIP.id, SOFT_BCE.id, CONTRASTIVE_MARGIN.id, TRIPLET.id}
NO_TEMPERATURE |= {KOLEO.id, UNIFORMITY.id, ALIGNMENT.id, SOGCLR_BIMODAL.id, PROTOTYPE_MARGIN.id}
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
    for spec in SAME_BATCH:
        add(
            spec,
            "batch-mismatch",
            Case(_replace(1, lambda x: torch.cat([x, x[:1]])), spec.any_tensor()),
        )
    for spec in [INFONCE, HARD_INFONCE, MW_AUC, SOFT_TARGET]:
        add(spec, "second-shorter", Case(_replace(1, lambda x: x[:-1]), spec.any_tensor()))
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
        if spec.id not in NO_TEMPERATURE or (spec in (CLIP, SOGCLR_BIMODAL) and form == "module"):
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
        add(SIGLIP, "logit_scale", math.nan, "nan", "logit-scale-nan")
        add(SIGLIP, "logit_bias", math.inf, "inf", "logit-bias-inf")
        add(SOFT_TARGET, "teacher_temperature", 0.0, r"\b0(\.0)?\b", "teacher-temperature-zero")
    else:
        add(SIGLIP, "scale_init", 0.0, r"\b0(\.0)?\b", "scale-init-zero")
        add(SIGLIP, "bias_init", math.nan, "nan", "bias-init-nan")
    add(SIGLIP, "gamma", -1.0, r"-1(\.0)?\b", "gamma-negative")
    add(FOCAL_SUPCON, "gamma", -0.5, r"-0\.5\b", "gamma-negative")
    add(HARD_INFONCE, "k", 0, r"\b0\b", "k-zero")
    add(HARD_INFONCE, "k", 2.5, r"2\.5", "k-float")
    add(MW_AUC, "scope", "global", "global", "scope-unknown")
    add(SOFT_BCE, "nu", 0.0, r"\b0(\.0)?\b", "nu-zero")
    add(SOFT_BCE, "sigma_reference", -1.0, r"-1(\.0)?\b", "sigma-reference-negative")
    add(TRIPLET, "margin", -0.1, r"-0\.1\b", "margin-negative")
    add(CONTRASTIVE_MARGIN, "neg_margin", math.nan, "nan", "neg-margin-nan")
    add(KOLEO, "eps", 0.0, r"\b0(\.0)?\b", "eps-zero")
    add(GRAM, "label_smoothing", -0.1, r"-0\.1\b", "label-smoothing-negative")
    add(GRAM, "label_smoothing", 1.5, r"1\.5", "label-smoothing-above-one")
    add(MULTIMODAL_PAIRWISE, "aggregate", "max", "max", "aggregate-unknown")
    add(PALM, "prototype_temperature", 0.0, r"\b0(\.0)?\b", "prototype-temperature-zero")
    add(PALM, "lambda_pcon", -1.0, r"-1(\.0)?\b", "lambda-pcon-negative")
    add(PALM, "k", -1, r"-1\b", "k-negative")
    add(PALM, "epsilon", 0.0, r"\b0(\.0)?\b", "epsilon-zero")
    add(PALM, "sinkhorn_iterations", 1.5, r"1\.5", "sinkhorn-iterations-float")
    add(PAMC, "negatives", "all", "all", "negatives-unknown")
    if form == "module":
        add(PALM, "momentum", 1.5, r"1\.5", "momentum-above-one")
        add(PALM, "prototypes_per_class", 0, r"\b0\b", "prototypes-per-class-zero")
    add(ISOGCLR, "rho", -0.1, r"-0\.1\b", "rho-negative")
    add(SOGCLR_BIMODAL, "rho", -0.1, r"-0\.1\b", "rho-negative")
    if form == "functional":
        add(SOGCLR_BIMODAL, "temperature_image", 0.0, r"\b0(\.0)?\b", "temperature-image-zero")
        add(SOGCLR_BIMODAL, "temperature_text", -0.1, r"-0\.1\b", "temperature-text-negative")
    else:
        for spec in (SOGCLR, ISOGCLR, SOGCLR_BIMODAL):
            add(spec, "num_samples", 0, r"\b0\b", "num-samples-zero")
            add(spec, "gamma", 1.5, r"1\.5\b", "gamma-above-one")
            add(spec, "gamma", 0.0, r"\b0(\.0)?\b", "gamma-zero")
            add(spec, "first_visit", "epoch", "epoch", "first-visit-unknown")
        for spec in (ISOGCLR, SOGCLR_BIMODAL):
            add(spec, "beta", 1.5, r"1\.5\b", "beta-above-one")
            add(spec, "eta", 0.0, r"\b0(\.0)?\b", "eta-zero")
            add(spec, "tau_min", 0.9, r"0\.9\b", "tau-min-above-max")
    add(ASP, "progress", 1.5, r"1\.5", "progress-above-one")
    add(ASP, "progress", -0.1, r"-0\.1", "progress-negative")
    add(ASP, "schedule", "cosine", "cosine", "schedule-unknown")
    add(ASP, "lookup", "gauss", "gauss", "lookup-unknown")
    add(ASP, "decay_start", 1.0, r"\b1(\.0)?\b", "decay-start-one")
    add(UNIFORMITY, "t", -2.0, r"-2(\.0)?\b", "t-negative")
    add(ALIGNMENT, "alpha", 0.0, r"\b0(\.0)?\b", "alpha-zero")
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
    forward = {**spec.forward_keywords(args[0].shape[0] if args[0].dim() else N), **forward}
    if form == "functional":
        return spec.functional()(*args, **hyper, **forward)
    if spec.num_samples is not None:  # a valid dataset index per row
        n = args[0].shape[0] if args[0].dim() else N
        module = spec.module_cls()(num_samples=spec.num_samples, **hyper)
        return module(*args, torch.arange(n) % spec.num_samples, **forward)
    forward = {k: t for k, t in forward.items() if k not in spec.owned}
    return spec.build_module(**hyper)(*args, **forward)


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
        spec.functional()(*spec.inputs(), **spec.forward_keywords(), **{name: value})
    assert re.search(value_regex, str(excinfo.value)), str(excinfo.value)


@pytest.mark.parametrize(("spec", "name", "value", "value_regex"), _hyper_cases("module"))
def test_bad_hyperparameter_module_raises_at_construction(
    spec: Spec, name: str, value: Any, value_regex: str
) -> None:
    """The module constructor rejects the hyper-parameter before any forward call."""
    state = {} if spec.num_samples is None else {"num_samples": spec.num_samples}
    with pytest.raises(ValueError, match=rf"\b{name}\b") as excinfo:
        spec.build_module(**{**state, name: value})
    assert re.search(value_regex, str(excinfo.value)), str(excinfo.value)


def _keyword_cases() -> list[Any]:
    """Bad tensor keyword arguments: ``pytest.param(spec, name, value, regex, id=...)``."""
    nan_teacher = torch.randn(N, 5)
    nan_teacher[1, 2] = math.nan
    cases = [
        (CWCL, "teacher", torch.randn(N + 1, 5), "teacher", "teacher-batch"),
        (CWCL, "teacher", nan_teacher, "teacher", "teacher-nan"),
        (CWCL, "teacher", torch.randn(N), "teacher", "teacher-1d"),
        (SOFT_TARGET, "teacher_a", torch.randn(N - 1, 5), "teacher_a", "teacher-batch"),
        (SOFT_TARGET, "teacher_b", torch.randn(N, 6), "teacher", "teacher-widths"),
        (MIXCO, "lam", torch.full((N,), 1.5), "lam", "lam-above-one"),
        (MIXCO, "lam", torch.ones(N, dtype=torch.long), "lam", "lam-integer"),
        (MIXCO, "partner", torch.full((N,), N), "partner", "partner-out-of-range"),
        (MIXCO, "partner", torch.zeros(N), "partner", "partner-float"),
        (PAIR_WEIGHTED, "attributes_a", torch.rand(N - 1, 3, 2), "attributes_a", "attr-batch"),
        (PAIR_WEIGHTED, "attributes_b", torch.rand(N, 4, 2), "attributes", "attr-shapes"),
        (PATCHNCE, "image_ids", torch.zeros(N - 1, dtype=torch.long), "image_ids", "ids-batch"),
        (PATCHNCE, "image_ids", torch.zeros(N), "image_ids", "ids-float"),
        (ASP, "image_ids", torch.tensor([0, 1, -1, 0]), "image_ids", "ids-negative"),
        (PAMC, "edge_index", torch.tensor([[0, 1], [1, N]]), "edge_index", "edge-out-of-range"),
        (PAMC, "edge_index", torch.tensor([[0, -1], [1, 0]]), "edge_index", "edge-negative"),
        (PAMC, "edge_index", torch.zeros(2, 3), "edge_index", "edge-float"),
        (PAMC, "edge_index", torch.zeros(3, 2, dtype=torch.long), "edge_index", "edge-shape"),
        (PAMC, "edge_weight", -torch.ones(N), "edge_weight", "edge-weight-negative"),
        (PAMC, "edge_weight", torch.ones(N + 1), "edge_weight", "edge-weight-length"),
        (PAMC, "clusters", torch.zeros(N - 1, dtype=torch.long), "clusters", "clusters-short"),
        (PAMC, "clusters", torch.zeros(N), "clusters", "clusters-float"),
        (
            PROTOTYPE_MARGIN,
            "class_identity",
            torch.full((N, 2), 2),
            "class_identity",
            "identity-not-binary",
        ),
        (
            PROTOTYPE_MARGIN,
            "class_identity",
            torch.ones(N - 1, 2),
            "class_identity",
            "identity-rows",
        ),
        (PROTOTYPE_MARGIN, "cooccurrence", torch.eye(3), "cooccurrence", "cooccurrence-shape"),
    ]
    return [pytest.param(s, k, v, r, id=f"{s.id}-{i}") for s, k, v, r, i in cases]


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize(("spec", "name", "value", "regex"), _keyword_cases())
def test_bad_keyword_tensor_raises(
    spec: Spec, name: str, value: Tensor, regex: str, form: str
) -> None:
    """A teacher, mixup or attribute tensor that does not fit raises a ValueError naming it."""
    with pytest.raises(ValueError, match=regex):
        _call(spec, form, spec.inputs(), forward={name: value})


def test_soft_target_extra_rows_need_teacher_b() -> None:
    """More candidates than anchors need their own teacher rows (``teacher_b``)."""
    a, b = torch.randn(N, D), torch.randn(N + 2, D)
    with pytest.raises(ValueError, match="teacher_b"):
        L.soft_target(a, b, teacher_a=torch.randn(N, 5), symmetric=False)
    with pytest.raises(ValueError, match="symmetric"):
        L.soft_target(a, b, teacher_a=torch.randn(N, 5), teacher_b=torch.randn(N + 2, 5))


LISTWISE_BAD = {
    "candidates-2d": ({"candidates": torch.randn(N, D)}, r"candidates.*\(N, K, D\)"),
    "candidates-batch": ({"candidates": torch.randn(N + 1, 3, D)}, "candidates"),
    "candidates-width": ({"candidates": torch.randn(N, 3, D + 1)}, "candidates"),
    "candidates-nan": ({"candidates": torch.full((N, 3, D), math.nan)}, "candidates"),
    "positives-float": ({"positives": torch.ones(N, 3)}, "positives"),
    "positives-shape": ({"positives": torch.ones(N, 2, dtype=torch.bool)}, "positives"),
    "weights-zero": ({"weights": torch.zeros(N, 3)}, "weights"),
    "weights-shape": ({"weights": torch.ones(N)}, "weights"),
    "ids-float": ({"ids": torch.zeros(N, 3)}, r"\bids\b"),
    "query-3d": ({"query": torch.randn(N, 3, D)}, "query"),
}


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize("case", sorted(LISTWISE_BAD))
def test_listwise_bad_input_raises(case: str, form: str) -> None:
    """Listwise inputs of the wrong shape or type raise a ValueError naming the argument."""
    change, regex = LISTWISE_BAD[case]
    inputs: dict[str, Tensor] = {"query": torch.randn(N, D), "candidates": torch.randn(N, 3, D)}
    inputs.update(change)
    query, candidates = inputs.pop("query"), inputs.pop("candidates")
    fn = L.listwise if form == "functional" else L.ListwiseLoss()
    with pytest.raises(ValueError, match=regex):
        fn(query, candidates, **inputs)


def test_listwise_valid_input_is_accepted() -> None:
    """The valid listwise inputs of the cases above give a finite scalar."""
    loss = L.listwise(torch.randn(N, D), torch.randn(N, 3, D), ids=torch.zeros(N, 3).long())
    assert loss.shape == ()
    assert torch.isfinite(loss)


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize("k", [1, 6])
def test_gram_modalities_outside_2_to_5_raise(form: str, k: int) -> None:
    """GRAM takes k = 2..5 modalities; other k raise a ValueError stating k."""
    args = [torch.randn(N, 8) for _ in range(k)]
    fn = L.gram if form == "functional" else L.GRAMLoss()
    with pytest.raises(ValueError, match=rf"k = {k}\b"):
        fn(*args)


@pytest.mark.parametrize("form", FORMS)
def test_multimodal_pairwise_needs_two_modalities(form: str) -> None:
    """A single modality has no pair."""
    fn = L.multimodal_pairwise if form == "functional" else L.MultimodalPairwiseLoss()
    with pytest.raises(ValueError, match=r"\bmodalities\b.*k = 1\b"):
        fn(torch.randn(N, D))


@pytest.mark.parametrize("label", [5, -1])
@pytest.mark.parametrize("form", FORMS)
def test_proxy_nce_label_without_a_proxy_raises(label: int, form: str) -> None:
    """A label with no proxy (>= C or < 0) raises a ValueError naming labels and the value."""
    z, y = torch.randn(N, D), torch.tensor([0, 1, label, 2])
    call = (
        (lambda: L.proxy_nce(z, y, torch.randn(5, D)))
        if form == "functional"
        else (lambda: L.ProxyNCELoss(5, D)(z, y))
    )
    with pytest.raises(ValueError, match=rf"`labels` contains {label}\b.*5 proxies"):
        call()
