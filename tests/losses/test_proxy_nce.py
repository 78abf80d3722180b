"""Proxy-based contrastive loss (PCR / HPCR): reference, authors' form, proxies, bad input."""

from __future__ import annotations

import math
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor

from contrastkit.losses.proxy_nce import ProxyNCELoss, hpcr_loss_scale, proxy_nce
from tests.reference.proxy_nce import proxy_nce as proxy_nce_ref

COUNTS = "counts"  # setting marker: a (C,) tensor prior with some zero counts
SETTINGS: list[dict[str, Any]] = [
    {},
    {"prior": "none"},
    {"prior": COUNTS, "loss_scale": 1.7},
    {"normalize": False, "temperature": 0.5},
    {"temperature": 0.2, "loss_scale": 0.5625},
    {"prior": "none", "normalize": False, "loss_scale": 0.0},
]
IMPLS = [("dense", None), ("tiled", 1), ("tiled", 7), ("tiled", None)]


def _case(
    n: int, d: int, setting: dict[str, Any], gen: torch.Generator
) -> tuple[Tensor, Tensor, Tensor, dict[str, Any]]:
    """Anchors near their class proxy; labels use about half of the C = n // 3 + 2 classes."""
    c = n // 3 + 2
    proxies = torch.randn(c, d, generator=gen, dtype=torch.float64)
    labels = torch.randint(0, max(1, c // 2 + 1), (n,), generator=gen)
    z = proxies[labels] + torch.randn(n, d, generator=gen, dtype=torch.float64)
    kwargs = dict(setting)
    if kwargs.get("prior") is COUNTS:
        counts = torch.rand(c, generator=gen, dtype=torch.float64) * 5
        counts[-1] = 0.0  # a class left out unless it is a label (then it gets 1 below)
        counts[labels] = counts[labels] + 1.0
        kwargs["prior"] = counts
    return z.requires_grad_(), labels, proxies.requires_grad_(), kwargs


def _value_and_grads(value: Tensor, leaves: list[Tensor]) -> list[Tensor]:
    if value.dim() > 0:
        value = (value * torch.linspace(-1.0, 2.0, value.numel(), dtype=value.dtype)).sum()
    return [value.detach(), *torch.autograd.grad(value, leaves)]


SETTING_IDS = [f"s{i}" for i in range(len(SETTINGS))]


@pytest.mark.parametrize(("n", "d"), [(1, 3), (5, 7), (13, 6), (33, 17)], ids=str)
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("setting", SETTINGS, ids=SETTING_IDS)
def test_matches_reference(
    setting: dict[str, Any], reduction: str, n: int, d: int, gen: torch.Generator
) -> None:
    """Dense and tiled (tile sizes 1, 7, default) equal the reference; embeddings and proxies."""
    z, y, p, kwargs = _case(n, d, setting, gen)
    expected = _value_and_grads(proxy_nce_ref(z, y, p, reduction=reduction, **kwargs), [z, p])
    for impl, chunk in IMPLS:
        out = proxy_nce(z, y, p, reduction=reduction, impl=impl, chunk_size=chunk, **kwargs)
        for e, g in zip(expected, _value_and_grads(out, [z, p]), strict=True):
            torch.testing.assert_close(g, e, msg=lambda m, i=impl, c=chunk: f"{i}/{c}: {m}")


@pytest.mark.parametrize("setting", SETTINGS, ids=SETTING_IDS)
def test_gradcheck_tiled(setting: dict[str, Any], gen: torch.Generator) -> None:
    """The tiled backward passes gradcheck for embeddings, proxies and the temperature."""
    z, y, p, kwargs = _case(5, 3, setting, gen)
    tau = torch.tensor(float(kwargs.pop("temperature", 0.4)), dtype=torch.float64)
    tau.requires_grad_()

    def f(a: Tensor, b: Tensor, t: Tensor) -> Tensor:
        return proxy_nce(a, y, b, temperature=t, impl="tiled", chunk_size=2, **kwargs)

    assert torch.autograd.gradcheck(f, (z, p, tau))


@pytest.mark.parametrize("setting", SETTINGS, ids=SETTING_IDS)
def test_permutation_equivariant(setting: dict[str, Any], gen: torch.Generator) -> None:
    """Permuting the anchors (with their labels) permutes the per-anchor terms."""
    z, y, p, kwargs = _case(9, 4, setting, gen)
    perm = torch.randperm(9, generator=gen)
    base = proxy_nce(z, y, p, reduction="none", impl="tiled", chunk_size=4, **kwargs)
    moved = proxy_nce(z[perm], y[perm], p, reduction="none", impl="tiled", chunk_size=4, **kwargs)
    torch.testing.assert_close(moved, base[perm])


def test_scale_invariant_when_normalizing(gen: torch.Generator) -> None:
    """With normalize=True, rescaling embeddings and proxies leaves the loss unchanged."""
    z, y, p, _ = _case(8, 5, {}, gen)
    a = proxy_nce(z, y, p, impl="tiled", chunk_size=3)
    torch.testing.assert_close(proxy_nce(z * 3.7, y, p * 0.3, impl="tiled", chunk_size=3), a)


def test_worked_example() -> None:
    """Orthogonal anchors on their proxies, tau = 1: PCR sees only the batch's classes."""
    e1, e2 = torch.tensor([1.0, 0.0]), torch.tensor([0.0, 1.0])
    proxies = torch.stack([e1, e2, -e1]).double()
    z, y = torch.stack([e1, e2]).double(), torch.tensor([0, 1])
    # PCR: candidates are the proxies of classes 0 and 1 (one anchor each), class 2 is absent.
    pcr = proxy_nce(z, y, proxies, temperature=1.0, reduction="none")
    torch.testing.assert_close(pcr, torch.full((2,), math.log(math.e + 1) - 1).double())
    # All proxies: anchor e1 also sees -e1 (score -1); anchor e2 sees it at score 0.
    every = proxy_nce(z, y, proxies, temperature=1.0, prior="none", reduction="none")
    expected = [math.log(math.e + 1 + 1 / math.e) - 1, math.log(math.e + 2) - 1]
    torch.testing.assert_close(every, torch.tensor(expected).double())
    # Two anchors of class 0 and one of class 1: the class-0 proxy counts twice.
    z3, y3 = torch.stack([e1, e1, e2]).double(), torch.tensor([0, 0, 1])
    pcr3 = proxy_nce(z3, y3, proxies, temperature=1.0, reduction="none")
    torch.testing.assert_close(pcr3[2], torch.tensor(math.log(2 + math.e) - 1).double())
    # A single anchor competes with its own proxy only.
    assert float(proxy_nce(z[:1], y[:1], proxies)) == 0.0


def _authors_pcr(z: Tensor, proxies: Tensor, labels: Tensor, tau: float) -> Tensor:
    """The authors' ``SupConLoss(contrast_mode="proxy")``, transcribed.

    Its features are ``[:, 0] = z`` and ``[:, 1] = proxies[labels]``, both unit vectors here.
    """
    anchor, contrast = z, proxies[labels]
    logits = anchor @ contrast.T / tau
    logits = logits - logits.max(1, keepdim=True).values.detach()
    mask = (labels[:, None] == labels[None, :]).double()
    log_prob = logits - torch.log(torch.exp(logits).sum(1, keepdim=True))
    return (-(mask * log_prob).sum(1) / mask.sum(1)).mean()


def test_pcr_matches_the_authors_form(gen: torch.Generator) -> None:
    """prior="batch" equals the authors' proxy-mode SupCon, value and gradients."""
    z, y, p, _ = _case(24, 8, {}, gen)
    ours = proxy_nce(z, y, p, impl="tiled", chunk_size=5)
    theirs = _authors_pcr(F.normalize(z, dim=1), F.normalize(p, dim=1), y, 0.09)
    torch.testing.assert_close(ours, theirs)
    for a, b in zip(
        torch.autograd.grad(ours, [z, p]), torch.autograd.grad(theirs, [z, p]), strict=True
    ):
        torch.testing.assert_close(a, b)


def test_loss_scale_is_outside_the_softmax(gen: torch.Generator) -> None:
    """The loss scale multiplies value and gradients; it is not a temperature."""
    z, y, p, _ = _case(10, 4, {}, gen)
    plain = proxy_nce(z, y, p, temperature=0.09)
    scaled = proxy_nce(z, y, p, temperature=0.09, loss_scale=1.8)
    torch.testing.assert_close(scaled, 1.8 * plain)
    g_plain = torch.autograd.grad(plain, [z, p])
    g_scaled = torch.autograd.grad(scaled, [z, p])
    for a, b in zip(g_scaled, g_plain, strict=True):
        torch.testing.assert_close(a, 1.8 * b)
    assert not torch.allclose(proxy_nce(z, y, p, temperature=0.09 * 1.8), scaled)


def test_absent_classes_get_no_gradient_under_pcr(gen: torch.Generator) -> None:
    """With the batch prior only the proxies of classes in the batch are pushed."""
    z, _, p, _ = _case(6, 4, {}, gen)
    y = torch.tensor([0, 0, 2, 2, 2, 0])
    (grad,) = torch.autograd.grad(proxy_nce(z, y, p), [p])
    assert torch.equal(grad[[1, 3]], torch.zeros_like(grad[[1, 3]]))
    assert bool((grad[[0, 2]].abs() > 0).any())
    (every,) = torch.autograd.grad(proxy_nce(z, y, p, prior="none"), [p])
    assert bool((every[1].abs() > 0).any())


def test_hpcr_loss_scale_cycles() -> None:
    """HPCR's scale runs from 0.5625 up to 1.8 at half a period and back."""
    assert hpcr_loss_scale(0) == pytest.approx(0.5625)
    assert hpcr_loss_scale(250) == pytest.approx(1.8)
    assert hpcr_loss_scale(500) == pytest.approx(0.5625)
    assert hpcr_loss_scale(125) == pytest.approx((0.5625 + 1.8) / 2)
    assert hpcr_loss_scale(10, scale_min=1.0, scale_max=1.0) == pytest.approx(1.0)


def test_module_owns_learnable_proxies(gen: torch.Generator) -> None:
    """ProxyNCELoss equals the functional form on its own proxies, which get the gradient."""
    module = ProxyNCELoss(5, 4).double()
    assert isinstance(module.proxies, torch.nn.Parameter)
    assert module.proxies.shape == (5, 4)
    assert [n for n, _ in module.named_parameters()] == ["proxies"]
    z = torch.randn(7, 4, generator=gen, dtype=torch.float64)
    y = torch.tensor([0, 1, 1, 4, 0, 4, 4])
    out = module(z, y)
    torch.testing.assert_close(out, proxy_nce(z, y, module.proxies))
    out.backward()
    assert module.proxies.grad is not None
    assert bool((module.proxies.grad[1].abs() > 0).any())


def test_module_options_and_state(gen: torch.Generator) -> None:
    """Module options reach the functional; a tensor prior is a buffer saved in the state."""
    counts = torch.tensor([2.0, 0.0, 1.0, 3.0])
    module = ProxyNCELoss(4, 3, temperature=0.3, prior=counts, loss_scale=1.2).double()
    assert "prior" in module.state_dict()
    assert "proxies" in module.state_dict()
    z = torch.randn(5, 3, generator=gen, dtype=torch.float64)
    y = torch.tensor([0, 2, 3, 3, 0])
    expected = proxy_nce(
        z, y, module.proxies, temperature=0.3, prior=counts.double(), loss_scale=1.2
    )
    torch.testing.assert_close(module(z, y), expected)
    module.loss_scale = hpcr_loss_scale(250)
    torch.testing.assert_close(module(z, y), expected / 1.2 * 1.8)
    other = ProxyNCELoss(4, 3, temperature=0.3, prior=counts, loss_scale=1.8).double()
    other.load_state_dict(module.state_dict())
    torch.testing.assert_close(other(z, y), module(z, y))


def test_low_precision_is_finite(gen: torch.Generator) -> None:
    """bfloat16 embeddings with float32 proxies give a float32 loss near the float64 one."""
    z, y, p, _ = _case(40, 16, {}, gen)
    exact = proxy_nce(z, y, p)
    low = proxy_nce(z.bfloat16(), y, p.float(), impl="tiled", chunk_size=8)
    assert low.dtype == torch.float32
    torch.testing.assert_close(low.double(), exact, atol=0.05, rtol=0.02)


N, D, C = 4, 3, 5


def _valid() -> tuple[Tensor, Tensor, Tensor]:
    g = torch.Generator().manual_seed(0)
    return torch.randn(N, D, generator=g), torch.tensor([0, 1, 1, 4]), torch.randn(C, D)


@pytest.mark.parametrize("bad", [5, 9, -1], ids=["C", "beyond", "negative"])
@pytest.mark.parametrize("form", ["functional", "module"])
def test_label_without_a_proxy_raises(bad: int, form: str) -> None:
    """A label with no proxy (>= C or < 0) raises a ValueError naming labels, value and C."""
    z, y, p = _valid()
    y[2] = bad
    call = (
        (lambda: proxy_nce(z, y, p)) if form == "functional" else (lambda: ProxyNCELoss(C, D)(z, y))
    )
    with pytest.raises(ValueError, match=rf"`labels` contains {bad}, .*{C} proxies"):
        call()


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"embeddings": torch.randn(N, D + 1)}, "same embedding width"),
        ({"proxies": torch.randn(C)}, r"proxies.*\(C, D\)"),
        ({"proxies": torch.full((C, D), math.nan)}, "proxies.*non-finite"),
        ({"proxies": torch.randn(0, D)}, "proxies.*empty"),
        ({"embeddings": torch.randn(N)}, r"embeddings.*\(4,\)"),
        ({"labels": torch.zeros(N)}, "labels.*dtype"),
        ({"labels": torch.zeros(N + 1, dtype=torch.long)}, "labels.*one entry per"),
    ],
    ids=["width", "proxies-1d", "proxies-nan", "proxies-empty", "emb-1d", "labels-float", "len"],
)
def test_bad_tensors_raise(change: dict[str, Tensor], match: str) -> None:
    """Malformed embeddings, labels or proxies raise a ValueError naming the argument."""
    z, y, p = _valid()
    args = {"embeddings": z, "labels": y, "proxies": p, **change}
    with pytest.raises(ValueError, match=match):
        proxy_nce(args["embeddings"], args["labels"], args["proxies"])


@pytest.mark.parametrize(
    ("prior", "match"),
    [
        ("dataset", "prior.*dataset"),
        (torch.ones(C + 1), r"prior.*\(5,\).*\(6,\)"),
        (torch.tensor([1.0, 1.0, -1.0, 1.0, 1.0]), r"prior.*>= 0.*-1"),
        (torch.tensor([1.0, math.nan, 1.0, 1.0, 1.0]), "prior.*finite"),
        (torch.tensor([1.0, 0.0, 1.0, 1.0, 1.0]), "prior.*class 1.*count of 0"),
        (torch.ones(C, dtype=torch.bool), "prior.*bool"),
    ],
    ids=["unknown", "shape", "negative", "nan", "own-class-zero", "bool"],
)
def test_bad_prior_raises(prior: Any, match: str) -> None:
    """A prior that is not 'batch', 'none' or valid (C,) counts raises a ValueError."""
    z, y, p = _valid()
    with pytest.raises(ValueError, match=match):
        proxy_nce(z, y, p, prior=prior)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"temperature": 0.0}, r"temperature.*0\.0"),
        ({"loss_scale": -1.0}, r"loss_scale.*-1\.0"),
        ({"loss_scale": math.nan}, "loss_scale.*nan"),
        ({"reduction": "avg"}, "reduction.*avg"),
        ({"prior": "dataset"}, "prior.*dataset"),
        ({"prior": torch.ones(3)}, r"prior.*\(5,\)"),
    ],
)
@pytest.mark.parametrize("form", ["functional", "module"])
def test_bad_options_raise(kwargs: dict[str, Any], match: str, form: str) -> None:
    """Bad options raise in the functional and at module construction."""
    z, y, p = _valid()
    call = (
        (lambda: proxy_nce(z, y, p, **kwargs))
        if form == "functional"
        else (lambda: ProxyNCELoss(C, D, **kwargs))
    )
    with pytest.raises(ValueError, match=match):
        call()


@pytest.mark.parametrize(
    ("args", "match"),
    [((0, D), "num_classes.*0"), ((C, 0), "embedding_dim.*0"), ((2.5, D), r"num_classes.*2\.5")],
)
def test_bad_module_shape_raises(args: tuple[Any, ...], match: str) -> None:
    """The module needs at least one class and one dimension."""
    with pytest.raises(ValueError, match=match):
        ProxyNCELoss(*args)


def test_bad_hpcr_schedule_raises() -> None:
    """The HPCR scale needs a step >= 0 and a period >= 1."""
    with pytest.raises(ValueError, match=r"step.*-1"):
        hpcr_loss_scale(-1)
    with pytest.raises(ValueError, match=r"period.*0"):
        hpcr_loss_scale(3, period=0)
