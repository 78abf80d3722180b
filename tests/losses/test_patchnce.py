"""PatchNCE and ASP: the contract against the float64 reference, worked examples, authors' form."""

from __future__ import annotations

import math
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor

from contrastkit.losses.infonce import infonce
from contrastkit.losses.patchnce import (
    ASPLoss,
    PatchNCELoss,
    asp,
    asp_progress,
    asp_weights,
    patchnce,
)
from tests.reference.patchnce import asp as asp_ref
from tests.reference.patchnce import patchnce as patchnce_ref

FUNCTIONS = {"patchnce": (patchnce, patchnce_ref), "asp": (asp, asp_ref)}
SETTINGS: dict[str, list[dict[str, Any]]] = {
    "patchnce": [{}, {"ids": True}, {"ids": True, "temperature": 0.3, "normalize": False}],
    "asp": [
        {},
        {"progress": 0.9},
        {"progress": 0.4, "schedule": "sigmoid", "lookup": "top", "ids": True},
        {"progress": 0.6, "schedule": "linear", "lookup": "bell", "ids": True},
        {"progress": 0.8, "decay_start": 0.5, "lookup": "uniform"},
        {"progress": 0.95, "lookup": "top", "normalize": False, "temperature": 0.5, "ids": True},
    ],
}
IMPLS = [("dense", None), ("tiled", 1), ("tiled", 7), ("tiled", None)]


def _case(
    n: int, d: int, setting: dict[str, Any], gen: torch.Generator
) -> tuple[Tensor, Tensor, Tensor | None, dict[str, Any]]:
    """Queries near their keys (so ASP's cosines spread over [-1, 1]), image ids, options."""
    kwargs = {k: v for k, v in setting.items() if k != "ids"}
    key = torch.randn(n, d, generator=gen, dtype=torch.float64)
    query = key + 0.9 * torch.randn(n, d, generator=gen, dtype=torch.float64)
    ids = torch.randint(0, 3, (n,), generator=gen) if setting.get("ids") else None
    return query.requires_grad_(), key.requires_grad_(), ids, kwargs


def _value_and_grads(value: Tensor, leaves: list[Tensor]) -> list[Tensor]:
    if value.dim() > 0:
        value = (value * torch.linspace(-1.0, 2.0, value.numel(), dtype=value.dtype)).sum()
    return [value.detach(), *torch.autograd.grad(value, leaves)]


def _params() -> list[Any]:
    return [
        pytest.param(name, s, id=f"{name}-{i}")
        for name, settings in SETTINGS.items()
        for i, s in enumerate(settings)
    ]


@pytest.mark.parametrize(("n", "d"), [(1, 3), (5, 7), (13, 6), (33, 17)], ids=str)
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize(("name", "setting"), _params())
def test_matches_reference(
    name: str, setting: dict[str, Any], reduction: str, n: int, d: int, gen: torch.Generator
) -> None:
    """Dense and tiled (tile sizes 1, 7, default) equal the float64 reference, with gradients."""
    fn, ref = FUNCTIONS[name]
    q, k, ids, kwargs = _case(n, d, setting, gen)
    expected = _value_and_grads(ref(q, k, ids, reduction=reduction, **kwargs), [q, k])
    for impl, chunk in IMPLS:
        out = fn(q, k, ids, reduction=reduction, impl=impl, chunk_size=chunk, **kwargs)
        for e, g in zip(expected, _value_and_grads(out, [q, k]), strict=True):
            torch.testing.assert_close(g, e, msg=lambda m, i=impl, c=chunk: f"{i}/{c}: {m}")


@pytest.mark.parametrize(("name", "setting"), _params())
def test_gradcheck_tiled(name: str, setting: dict[str, Any], gen: torch.Generator) -> None:
    """The tiled backward passes gradcheck; ASP's weights are constants, so only tau there.

    With ``lookup="uniform"`` ASP's weights do not depend on the inputs and the embeddings are
    checked too.
    """
    fn, _ = FUNCTIONS[name]
    q, k, ids, kwargs = _case(5, 3, setting, gen)
    tau = torch.tensor(float(kwargs.pop("temperature", 0.4)), dtype=torch.float64)
    tau.requires_grad_()
    if name == "asp" and kwargs.get("lookup") != "uniform":

        def f_tau(t: Tensor) -> Tensor:
            return fn(q, k, ids, temperature=t, impl="tiled", chunk_size=2, **kwargs)

        assert torch.autograd.gradcheck(f_tau, (tau,))
        return

    def f(a: Tensor, b: Tensor, t: Tensor) -> Tensor:
        return fn(a, b, ids, temperature=t, impl="tiled", chunk_size=2, **kwargs)

    assert torch.autograd.gradcheck(f, (q, k, tau))


@pytest.mark.parametrize(("name", "setting"), _params())
def test_permutation_equivariant(name: str, setting: dict[str, Any], gen: torch.Generator) -> None:
    """Permuting the patches (with their image ids) permutes the per-patch terms."""
    fn, _ = FUNCTIONS[name]
    q, k, ids, kwargs = _case(9, 4, setting, gen)
    perm = torch.randperm(9, generator=gen)
    base = fn(q, k, ids, reduction="none", impl="tiled", chunk_size=4, **kwargs)
    moved_ids = None if ids is None else ids[perm]
    moved = fn(q[perm], k[perm], moved_ids, reduction="none", impl="tiled", chunk_size=4, **kwargs)
    torch.testing.assert_close(moved, base[perm])


@pytest.mark.parametrize(("name", "setting"), _params())
def test_scale_invariant_when_normalizing(
    name: str, setting: dict[str, Any], gen: torch.Generator
) -> None:
    """With normalize=True, rescaling the features leaves the loss unchanged."""
    fn, _ = FUNCTIONS[name]
    q, k, ids, kwargs = _case(8, 5, {**setting, "normalize": True}, gen)
    a = fn(q, k, ids, impl="tiled", chunk_size=3, **kwargs)
    torch.testing.assert_close(fn(q * 3.7, k * 0.2, ids, impl="tiled", chunk_size=3, **kwargs), a)


@pytest.mark.parametrize("with_ids", [False, True])
def test_module_equals_functional(with_ids: bool, gen: torch.Generator) -> None:
    """PatchNCELoss() and ASPLoss() compute the functional forms with default arguments."""
    q, k, ids, _ = _case(6, 4, {"ids": with_ids}, gen)
    torch.testing.assert_close(PatchNCELoss()(q, k, ids), patchnce(q, k, ids))
    torch.testing.assert_close(ASPLoss()(q, k, ids), asp(q, k, ids))
    module = ASPLoss(schedule="sigmoid", lookup="top")
    module.progress = asp_progress(35)
    expected = asp(q, k, ids, progress=34 / 40, schedule="sigmoid", lookup="top")
    torch.testing.assert_close(module(q, k, ids), expected)


def test_worked_example() -> None:
    """Two images of two orthogonal patches at tau = 1: each term is log(e + 1) - 1."""
    e1, e2 = torch.tensor([1.0, 0.0]), torch.tensor([0.0, 1.0])
    x = torch.stack([e1, e2, e1, e2]).double()
    two_images = patchnce(x, x, torch.tensor([0, 0, 1, 1]), temperature=1.0, reduction="none")
    torch.testing.assert_close(two_images, torch.full((4,), math.log(math.e + 1) - 1).double())
    one_image = patchnce(x, x, temperature=1.0, reduction="none")  # the other image's patches
    torch.testing.assert_close(one_image, torch.full((4,), math.log(2 * math.e + 2) - 1).double())


def test_one_image_is_infonce(gen: torch.Generator) -> None:
    """Without image ids (one image) PatchNCE is InfoNCE over the patches."""
    q, k, _, _ = _case(11, 5, {}, gen)
    torch.testing.assert_close(patchnce(q, k, reduction="none"), infonce(q, k, reduction="none"))


def test_each_image_is_its_own_infonce(gen: torch.Generator) -> None:
    """With image ids each patch's term is InfoNCE among its own image's patches only."""
    q, k, _, _ = _case(12, 5, {}, gen)
    ids = torch.tensor([2, 0, 1, 2, 2, 0, 1, 1, 0, 2, 1, 0])
    got = patchnce(q, k, ids, reduction="none", impl="tiled", chunk_size=5)
    for image in range(3):
        rows = (ids == image).nonzero().squeeze(1)
        expected = infonce(q[rows], k[rows], reduction="none")
        torch.testing.assert_close(got[rows], expected)


def _authors_patchnce(q: Tensor, k: Tensor, batch: int, tau: float) -> Tensor:
    """The CUT / ASP code's form: logits [pos, negatives with the diagonal filled by -10] / tau.

    ``q, k`` are normalized ``(batch * npatches, D)``, patches of one image contiguous.
    """
    dim = q.shape[1]
    l_pos = (q * k).sum(1, keepdim=True)
    qb, kb = q.view(batch, -1, dim), k.view(batch, -1, dim)
    npatches = qb.shape[1]
    l_neg = torch.bmm(qb, kb.transpose(2, 1))
    l_neg = l_neg.masked_fill(torch.eye(npatches, dtype=torch.bool)[None], -10.0)
    logits = torch.cat([l_pos, l_neg.view(-1, npatches)], 1) / tau
    return F.cross_entropy(logits, torch.zeros(q.shape[0], dtype=torch.long), reduction="none")


def _authors_asp_weights(cos: Tensor, mode: str, epoch: int, n_epochs: int, n_decay: int) -> Tensor:
    """The ASP code's weights for ``asp_loss_mode = mode`` at ``epoch`` (1-based)."""
    total = n_epochs + n_decay
    scheduler, lookup = mode.split("_")
    t = (epoch - 1) / total
    if scheduler == "sigmoid":
        p = 1 / (1 + math.exp((t - 0.5) * 10))
    elif scheduler == "linear":
        p = 1 - t
    elif scheduler == "lambda":
        kk = 1 - n_decay / total
        m = 1 / (1 - kk)
        p = m - m * t if t >= kk else 1.0
    else:
        p = 1.0
    x = cos.detach()
    if lookup == "top":
        x = torch.where(x > 0.0, x, torch.zeros_like(x))
        w1 = torch.sqrt(1 - (x - 1) ** 2)
    elif lookup == "linear":
        w1 = torch.relu(x)
    elif lookup == "bell":
        w1 = 1 / math.sqrt(2 * math.pi) * torch.exp(-(((x - 0.5) * 4) ** 2) / 2)
    else:
        w1 = torch.ones_like(x)
    w = p + (1 - p) * w1
    return w / w.sum() * len(w)


def test_patchnce_matches_the_authors_form(gen: torch.Generator) -> None:
    """The -10 diagonal fill of the authors' code changes the loss by less than 1e-12."""
    batch, npatches = 3, 16
    q, k, _, _ = _case(batch * npatches, 8, {}, gen)
    qn, kn = F.normalize(q, dim=1), F.normalize(k, dim=1)
    ids = torch.arange(batch).repeat_interleave(npatches)
    ours = patchnce(q, k, ids, reduction="none", impl="tiled", chunk_size=10)
    theirs = _authors_patchnce(qn, kn, batch, 0.07)
    torch.testing.assert_close(ours, theirs, atol=1e-12, rtol=0)


@pytest.mark.parametrize("schedule", ["lambda", "sigmoid", "linear", "zero"])
@pytest.mark.parametrize("lookup", ["linear", "top", "bell", "uniform"])
@pytest.mark.parametrize("epoch", [1, 20, 33, 40])
def test_asp_matches_the_authors_code(
    schedule: str, lookup: str, epoch: int, gen: torch.Generator
) -> None:
    """ASP's value and gradients equal a transcription of the authors' loss (30 + 10 epochs)."""
    batch, npatches = 2, 12
    q, k, _, _ = _case(batch * npatches, 6, {}, gen)
    ids = torch.arange(batch).repeat_interleave(npatches)
    n_epochs, n_decay = 30, 10
    ours = asp(
        q,
        k,
        ids,
        progress=asp_progress(epoch, n_epochs, n_decay),
        schedule=schedule,  # type: ignore[arg-type]
        lookup=lookup,  # type: ignore[arg-type]
        decay_start=1 - n_decay / (n_epochs + n_decay),
        reduction="none",
    )
    qn, kn = F.normalize(q, dim=1), F.normalize(k, dim=1)
    w = _authors_asp_weights((qn * kn).sum(1), f"{schedule}_{lookup}", epoch, n_epochs, n_decay)
    theirs = _authors_patchnce(qn, kn, batch, 0.07) * w
    torch.testing.assert_close(ours, theirs, atol=1e-12, rtol=1e-10)
    g_ours = torch.autograd.grad(ours.mean(), [q, k])
    g_theirs = torch.autograd.grad(theirs.mean(), [q, k])
    for a, b in zip(g_ours, g_theirs, strict=True):
        torch.testing.assert_close(a, b, atol=1e-12, rtol=1e-10)


def test_asp_starts_as_patchnce(gen: torch.Generator) -> None:
    """At the start of training (pi = 1) every weight is 1 and ASP equals PatchNCE."""
    q, k, ids, _ = _case(10, 4, {"ids": True}, gen)
    torch.testing.assert_close(asp(q, k, ids, progress=0.5), patchnce(q, k, ids))
    torch.testing.assert_close(asp(q, k, ids, schedule="zero", progress=1.0), patchnce(q, k, ids))


def test_asp_weights_have_mean_one_and_no_gradient(gen: torch.Generator) -> None:
    """The weights average to 1; the loss's gradient treats them as constants."""
    q, k, ids, _ = _case(10, 4, {"ids": True}, gen)
    kw: dict[str, Any] = {"progress": 0.9, "lookup": "linear"}
    cos = (F.normalize(q, dim=1) * F.normalize(k, dim=1)).sum(1)
    w = asp_weights(cos, **kw)
    torch.testing.assert_close(w.mean(), torch.tensor(1.0, dtype=torch.float64))
    assert not w.requires_grad
    got = torch.autograd.grad(asp(q, k, ids, **kw), [q, k])
    expected = torch.autograd.grad((patchnce(q, k, ids, reduction="none") * w).mean(), [q, k])
    for a, b in zip(got, expected, strict=True):
        torch.testing.assert_close(a, b)


def test_asp_upweights_consistent_patches(gen: torch.Generator) -> None:
    """Late in training a patch whose query matches its key weighs more than a mismatched one."""
    k = torch.randn(6, 8, generator=gen, dtype=torch.float64)
    q = k.clone()
    q[3] = -k[3]  # an inconsistent ground-truth patch
    w = asp_weights((F.normalize(q, dim=1) * F.normalize(k, dim=1)).sum(1), progress=0.95)
    assert float(w[3]) < float(w[0])


@pytest.mark.parametrize("impl", ["dense", "tiled"])
def test_asp_all_zero_weights_give_zero(impl: str, gen: torch.Generator) -> None:
    """All raw weights 0 (NaN in the authors' code): zero loss and zero gradients."""
    k = torch.randn(5, 3, generator=gen, dtype=torch.float64)
    q = (-k).requires_grad_()
    out = asp(q, k, progress=1.0, schedule="linear", lookup="linear", impl=impl, chunk_size=2)
    assert float(out.detach()) == 0.0
    (grad,) = torch.autograd.grad(out, [q])
    assert torch.equal(grad, torch.zeros_like(grad))


def test_single_patch_is_zero() -> None:
    """A patch alone in its image has only its positive: the term is 0, not NaN."""
    q, k = torch.randn(3, 4), torch.randn(3, 4)
    out = patchnce(q, k, torch.tensor([0, 1, 1]), reduction="none")
    assert float(out[0]) == 0.0
    assert torch.isfinite(out).all()


def test_low_precision_is_finite(gen: torch.Generator) -> None:
    """bfloat16 features give a float32 loss close to the float64 one."""
    q, k, ids, _ = _case(40, 16, {"ids": True}, gen)
    exact = patchnce(q, k, ids)
    low = patchnce(q.bfloat16(), k.bfloat16(), ids, impl="tiled", chunk_size=16)
    assert low.dtype == torch.float32
    torch.testing.assert_close(low.double(), exact, atol=0.05, rtol=0.02)


def test_asp_progress_and_schedules() -> None:
    """asp_progress follows the authors' t = (epoch - 1) / total; the lambda ramp ends near 0."""
    assert asp_progress(1) == 0.0
    assert asp_progress(31) == 0.75
    assert asp_progress(40) == pytest.approx(39 / 40)
    cos = torch.tensor([0.0, 1.0], dtype=torch.float64)
    # lambda at t = 39/40: pi = (1 - t) / (1 - 0.75) = 0.1 -> w = [0.1, 1.0] -> mean-1 scaled
    expected = torch.tensor([0.1, 1.0], dtype=torch.float64) * (2 / 1.1)
    torch.testing.assert_close(asp_weights(cos, progress=asp_progress(40)), expected)


N = 4


@pytest.mark.parametrize(
    ("ids", "match"),
    [
        (torch.zeros(N - 1, dtype=torch.long), r"image_ids.*\(4\).*3"),
        (torch.zeros(N), "image_ids.*float"),
        (torch.tensor([0, 1, -1, 0]), "image_ids.*-1"),
        (torch.zeros(N, 1, dtype=torch.long), "image_ids"),
    ],
    ids=["short", "float", "negative", "2d"],
)
@pytest.mark.parametrize("form", ["patchnce", "asp", "PatchNCELoss", "ASPLoss"])
def test_bad_image_ids_raise(ids: Tensor, match: str, form: str) -> None:
    """Image ids of the wrong length, dtype, sign or rank raise a ValueError naming them."""
    q, k = torch.randn(N, 3), torch.randn(N, 3)
    fn = {"patchnce": patchnce, "asp": asp, "PatchNCELoss": PatchNCELoss(), "ASPLoss": ASPLoss()}
    with pytest.raises(ValueError, match=match):
        fn[form](q, k, ids)


@pytest.mark.parametrize(
    ("name", "value", "match"),
    [
        ("progress", -0.1, r"progress.*-0\.1"),
        ("progress", 1.5, r"progress.*1\.5"),
        ("progress", True, "progress.*True"),
        ("schedule", "cosine", "schedule.*cosine"),
        ("lookup", "gauss", "lookup.*gauss"),
        ("decay_start", 1.0, r"decay_start.*1\.0"),
        ("decay_start", -0.5, r"decay_start.*-0\.5"),
        ("temperature", 0.0, r"temperature.*0\.0"),
    ],
)
@pytest.mark.parametrize("form", ["functional", "module"])
def test_bad_asp_options_raise(name: str, value: Any, match: str, form: str) -> None:
    """ASP's schedule options are checked in the functional and at module construction."""
    q, k = torch.randn(N, 3), torch.randn(N, 3)
    options = {name: value}
    call = (lambda: asp(q, k, **options)) if form == "functional" else (lambda: ASPLoss(**options))
    with pytest.raises(ValueError, match=match):
        call()


@pytest.mark.parametrize(
    ("args", "match"),
    [((0,), "epoch.*0"), ((41,), "epoch.*41"), ((1, 0, 0), "40|0")],
    ids=["zero", "past-the-end", "no-epochs"],
)
def test_bad_asp_progress_raises(args: tuple[int, ...], match: str) -> None:
    """asp_progress needs 1 <= epoch <= n_epochs + n_epochs_decay."""
    with pytest.raises(ValueError, match=match):
        asp_progress(*args)


def test_mismatched_query_and_key_raise() -> None:
    """Query and key must pair row by row and have the same width."""
    with pytest.raises(ValueError, match=r"query.*key|key.*query"):
        patchnce(torch.randn(4, 3), torch.randn(5, 3))
    with pytest.raises(ValueError, match="same embedding width"):
        asp(torch.randn(4, 3), torch.randn(4, 2))
