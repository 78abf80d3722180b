"""SogCLR / iSogCLR modules: their per-sample state and how it is updated.

What the contract suite cannot see: the state round trip through ``state_dict``, the index
checks, the device and dtype of the state, the module as the functional at its own estimates,
the first-visit rules, repeated indices, evaluation mode and the single-item batch.
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from contrastkit.losses.sogclr import (
    ISogCLRLoss,
    SogCLRBimodalLoss,
    SogCLRLoss,
    isogclr,
    sogclr,
    sogclr_bimodal,
)

NS, B, D = 10, 4, 6
f64 = torch.float64

MAKERS: dict[str, Callable[..., nn.Module]] = {
    "sogclr": lambda **kw: SogCLRLoss(num_samples=NS, **kw),
    "isogclr": lambda **kw: ISogCLRLoss(num_samples=NS, eta=0.2, **kw),
    "sogclr_bimodal": lambda **kw: SogCLRBimodalLoss(
        num_samples=NS, temperature=0.1, learn_temperature=True, tau_min=0.05, tau_max=0.5, **kw
    ),
}
BUFFERS = {
    "sogclr": {"log_u"},
    "isogclr": {"log_u", "tau", "tau_grad"},
    "sogclr_bimodal": {
        "log_u_image",
        "log_u_text",
        "tau_image",
        "tau_text",
        "tau_grad_image",
        "tau_grad_text",
    },
}
INDICES = [[0, 1, 2, 3], [2, 3, 4, 5], [6, 6, 7, 1], [9, 0, 5, 5], [8, 4, 2, 0]]


def _batches(seed: int = 0, dtype: torch.dtype = f64) -> list[tuple[Tensor, Tensor, Tensor]]:
    """(z1, z2, index) per step; positives are noisy copies."""
    g = torch.Generator().manual_seed(seed)
    out = []
    for index in INDICES:
        z1 = torch.randn(B, D, generator=g, dtype=f64)
        z2 = z1 + torch.randn(B, D, generator=g, dtype=f64)
        out.append((z1.to(dtype), z2.to(dtype), torch.tensor(index)))
    return out


def _step(loss: Callable[..., Tensor], z1: Tensor, z2: Tensor, index: Tensor) -> list[Tensor]:
    """Value and embedding gradients of one call."""
    a, b = z1.clone().requires_grad_(), z2.clone().requires_grad_()
    value = loss(a, b, index)
    return [value.detach(), *torch.autograd.grad(value, [a, b])]


def _state(loss: nn.Module) -> dict[str, Tensor]:
    return {k: t.clone() for k, t in loss.state_dict().items()}


def _log_g(a: Tensor, b: Tensor, tau: Tensor) -> tuple[Tensor, Tensor]:
    """Dense ``log g`` of both views' anchors (2(N-1) negatives each), normalized inputs."""
    n = a.shape[0]
    z = torch.cat([a, b])
    s = z @ z.T / tau.repeat(2)[:, None]
    items = torch.arange(n).repeat(2)
    s = s.masked_fill(items[:, None] == items[None, :], -math.inf)
    lg = torch.logsumexp(s, 1) - math.log(2 * (n - 1))
    return lg[:n], lg[n:]


@pytest.mark.parametrize("kind", sorted(MAKERS))
def test_state_dict_holds_the_state(kind: str) -> None:
    """The state is a set of buffers, one entry per dataset index, saved by state_dict."""
    loss = MAKERS[kind]()
    state = loss.state_dict()
    assert set(state) == BUFFERS[kind]
    assert all(t.shape == (NS,) for t in state.values())
    assert all(t.dtype == torch.float32 for t in state.values())


@pytest.mark.parametrize("kind", sorted(MAKERS))
def test_state_dict_round_trip_gives_identical_next_steps(kind: str) -> None:
    """Saving after two steps and loading into a fresh module continues identically."""
    batches = _batches()
    first = MAKERS[kind](dtype=f64)
    for batch in batches[:2]:
        _step(first, *batch)
    saved = io.BytesIO()
    torch.save(first.state_dict(), saved)
    saved.seek(0)
    second = MAKERS[kind](dtype=f64)
    second.load_state_dict(torch.load(saved))
    for batch in batches[2:]:
        for x, y in zip(_step(first, *batch), _step(second, *batch), strict=True):
            assert torch.equal(x, y)
        for (k, x), y in zip(_state(first).items(), _state(second).values(), strict=True):
            assert torch.equal(x, y), k
    fresh = MAKERS[kind](dtype=f64)  # without the loaded state the next step differs
    assert not torch.equal(_step(fresh, *batches[2])[0], _step(first, *batches[2])[0])


BAD_INDEX = [
    pytest.param(torch.tensor([0, 1, 2, NS]), rf"\[0, {NS}\).*from 0 to {NS}", id="too-large"),
    pytest.param(torch.tensor([0, -1, 2, 3]), r"from -1 to 3", id="negative"),
    pytest.param(torch.tensor([0.0, 1.0, 2.0, 3.0]), r"integer.*float", id="float"),
    pytest.param(torch.tensor([True, False, True, False]), r"integer.*bool", id="bool"),
    pytest.param(torch.arange(B)[:, None], rf"shape \({B},\).*\({B}, 1\)", id="column"),
    pytest.param(torch.arange(B - 1), rf"shape \({B},\).*\({B - 1},\)", id="too-short"),
    pytest.param([0, 1, 2, 3], r"torch.Tensor.*list", id="list"),
]


@pytest.mark.parametrize(("index", "message"), BAD_INDEX)
@pytest.mark.parametrize("kind", sorted(MAKERS))
def test_bad_index_raises_and_leaves_the_state(kind: str, index: Any, message: str) -> None:
    """An index out of range, of the wrong type or shape raises a ValueError naming `index`."""
    loss = MAKERS[kind]()
    before = _state(loss)
    z1, z2, _ = _batches(dtype=torch.float32)[0]
    with pytest.raises(ValueError, match=r"`index`") as excinfo:
        loss(z1, z2, index)
    assert excinfo.match(message)
    for k, t in _state(loss).items():
        assert torch.equal(t, before[k]), k


@pytest.mark.parametrize("kind", sorted(MAKERS))
def test_state_is_on_the_embeddings_device_and_follows_dtype(kind: str) -> None:
    """After a call the buffers sit on the embeddings' device; .double() converts them."""
    loss = MAKERS[kind]()
    z1, z2, index = _batches(dtype=torch.float32)[0]
    loss(z1, z2, index)
    assert all(t.device == z1.device for t in loss.buffers())
    loss.double()
    assert all(t.dtype == f64 for t in loss.buffers())
    loss(z1.double(), z2.double(), index)  # float64 state with float64 embeddings
    assert all(t.dtype == f64 for t in loss.buffers())


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("kind", sorted(MAKERS))
def test_state_moves_to_the_embeddings_device(kind: str) -> None:
    """A module built on CPU moves its state to the embeddings' CUDA device on the first call."""
    loss = MAKERS[kind]()
    z1, z2, index = _batches(dtype=torch.float32)[0]
    loss(z1.cuda(), z2.cuda(), index)  # the index may stay on CPU
    assert all(t.is_cuda for t in loss.buffers())


def test_bf16_embeddings_update_a_float32_state() -> None:
    """Low-precision embeddings are upcast; the state keeps its float32 storage."""
    loss = ISogCLRLoss(num_samples=NS)
    z1, z2, index = _batches(dtype=torch.bfloat16)[0]
    value = loss(z1, z2, index)
    assert torch.isfinite(value)
    assert all(t.dtype == torch.float32 for t in loss.buffers())
    assert bool(torch.isfinite(loss.log_u[index]).all())


@pytest.mark.parametrize("first_visit", ["batch", "row"])
@pytest.mark.parametrize("learned", [False, True], ids=["sogclr", "isogclr"])
def test_module_is_the_functional_at_its_estimates(learned: bool, first_visit: str) -> None:
    """Each step returns the functional form at the moving averages computed from the state."""
    gamma = 0.7
    kw: dict[str, Any] = {"num_samples": NS, "gamma": gamma, "first_visit": first_visit}
    loss = ISogCLRLoss(**kw, eta=0.2, dtype=f64) if learned else SogCLRLoss(**kw, dtype=f64)
    for z1, z2, index in _batches():
        stored = loss.log_u[index].clone()
        tau = loss.tau[index].clone() if learned else torch.full((B,), 0.1, dtype=f64)
        g1, g2 = _log_g(F.normalize(z1, dim=1), F.normalize(z2, dim=1), tau)
        fresh = torch.isneginf(stored)
        if first_visit == "batch":
            fresh = fresh.all().expand(B)
        w = torch.where(fresh, 1.0, gamma).to(f64)
        u1 = torch.logaddexp(torch.log1p(-w) + stored, w.log() + g1)
        u2 = torch.logaddexp(torch.log1p(-w) + stored, w.log() + g2)

        if learned:
            estimates = {"temperature": tau, "log_u1": u1, "log_u2": u2, "rho": 0.3}
            expected = _step(lambda a, b, _, kw=estimates: isogclr(a, b, **kw), z1, z2, index)
        else:
            estimates = {"log_u1": u1, "log_u2": u2}
            expected = _step(lambda a, b, _, kw=estimates: sogclr(a, b, **kw), z1, z2, index)
        got = _step(loss, z1, z2, index)
        for e, g in zip(expected, got, strict=True):
            torch.testing.assert_close(g, e)


def test_first_visit_rules_differ_on_a_mixed_batch() -> None:
    """LibAUC's batch rule gives a new sample gamma * g in a batch with visited ones; row: g."""
    gamma = 0.6
    batch_rule = SogCLRLoss(num_samples=NS, gamma=gamma, dtype=f64)
    row_rule = SogCLRLoss(num_samples=NS, gamma=gamma, first_visit="row", dtype=f64)
    first, second = _batches()[:2]  # indices [0..3], then [2, 3, 4, 5]
    for loss in (batch_rule, row_rule):
        _step(loss, *first)
        _step(loss, *second)
    new = torch.tensor([4, 5])
    torch.testing.assert_close(batch_rule.log_u[new], row_rule.log_u[new] + math.log(gamma))
    torch.testing.assert_close(batch_rule.log_u[:2], row_rule.log_u[:2])


def test_repeated_index_is_written_by_its_last_row() -> None:
    """With an index twice in a batch, the state holds the estimate of its last row."""
    loss = SogCLRLoss(num_samples=NS, dtype=f64)
    z1, z2, _ = _batches()[0]
    index = torch.tensor([3, 7, 3, 1])
    _step(loss, z1, z2, index)
    g1, g2 = _log_g(F.normalize(z1, dim=1), F.normalize(z2, dim=1), torch.full((B,), 0.1))
    expected = torch.logaddexp(g1, g2) - math.log(2.0)  # first visit: u = g, views averaged
    torch.testing.assert_close(loss.log_u[index[1:]], expected[1:])


@pytest.mark.parametrize("kind", sorted(MAKERS))
def test_eval_mode_leaves_the_state(kind: str) -> None:
    """In eval mode the loss uses the state but does not update it."""
    loss = MAKERS[kind](dtype=f64)
    batches = _batches()
    _step(loss, *batches[0])
    before = _state(loss)
    trained = MAKERS[kind](dtype=f64)
    trained.load_state_dict(before)
    loss.eval()
    value = _step(loss, *batches[1])[0]
    for k, t in _state(loss).items():
        assert torch.equal(t, before[k]), k
    torch.testing.assert_close(value, _step(trained, *batches[1])[0])


@pytest.mark.parametrize("kind", sorted(MAKERS))
def test_single_item_batch_is_zero_and_keeps_the_state(kind: str) -> None:
    """One item has no negative: the loss is 0, backward runs, the state is unchanged."""
    loss = MAKERS[kind]()
    before = _state(loss)
    z1, z2, _ = _batches(dtype=torch.float32)[0]
    value, ga, gb = _step(loss, z1[:1], z2[:1], torch.tensor([4]))
    assert value.item() == 0.0
    assert torch.equal(ga, torch.zeros_like(ga))
    assert torch.equal(gb, torch.zeros_like(gb))
    for k, t in _state(loss).items():
        assert torch.equal(t, before[k]), k


BAD_OPTIONS = [
    ({"num_samples": 0}, "num_samples", r"\b0\b"),
    ({"gamma": 0.0}, "gamma", r"\b0(\.0)?\b"),
    ({"gamma": 1.5}, "gamma", r"1\.5"),
    ({"temperature": -0.1}, "temperature", r"-0\.1"),
    ({"first_visit": "epoch"}, "first_visit", "epoch"),
    ({"dtype": torch.long}, "dtype", "int64"),
]
BAD_TAU_OPTIONS = [
    ({"rho": -0.1}, "rho", r"-0\.1"),
    ({"eta": 0.0}, "eta", r"\b0(\.0)?\b"),
    ({"tau_min": 0.5, "tau_max": 0.1}, "tau_min", r"0\.5"),
    ({"beta": 1.5}, "beta", r"1\.5"),
]


@pytest.mark.parametrize(
    ("kind", "options", "name", "value"),
    [
        pytest.param(kind, o, n, v, id=f"{kind}-{n}-{v}")
        for kind in sorted(MAKERS)
        for o, n, v in BAD_OPTIONS + (BAD_TAU_OPTIONS if kind != "sogclr" else [])
    ],
)
def test_bad_options_raise_at_construction(
    kind: str, options: dict[str, Any], name: str, value: str
) -> None:
    """The constructor rejects a bad option, naming it and the value received."""
    opts = dict(options)
    num_samples = opts.pop("num_samples", NS)
    cls = {"sogclr": SogCLRLoss, "isogclr": ISogCLRLoss, "sogclr_bimodal": SogCLRBimodalLoss}
    with pytest.raises(ValueError, match=rf"`{name}`") as excinfo:
        cls[kind](num_samples=num_samples, **opts)
    assert excinfo.match(value)


BAD_ROWS = [
    ("log_u1", torch.zeros(B - 1), r"shape \(4,\)"),
    ("log_u2", torch.full((B,), -math.inf), "non-finite"),
    ("log_u1", torch.zeros(B, dtype=torch.long), "floating point"),
    ("temperature", torch.tensor([0.1, 0.2, -0.1, 0.1]), r"> 0.*-0\.1"),
    ("temperature", torch.full((B + 1,), 0.1), r"one temperature per row.*\(5,\)"),
]


@pytest.mark.parametrize(("name", "value", "message"), BAD_ROWS)
def test_bad_per_row_inputs_raise(name: str, value: Tensor, message: str) -> None:
    """Per-row estimates and temperatures of the wrong shape or value raise, naming them."""
    z1, z2, _ = _batches(dtype=torch.float32)[0]
    with pytest.raises(ValueError, match=rf"`{name}`") as excinfo:
        isogclr(z1, z2, **{name: value})
    assert excinfo.match(message)


def test_sogclr_takes_one_temperature() -> None:
    """The global-temperature form rejects per-row temperatures (that is isogclr)."""
    z1, z2, _ = _batches(dtype=torch.float32)[0]
    with pytest.raises(ValueError, match=r"`temperature`.*scalar"):
        sogclr(z1, z2, temperature=torch.full((B,), 0.1))


def test_bimodal_per_row_temperature_names_the_modality() -> None:
    """A bad image temperature is reported as `temperature_image`."""
    x, t, _ = _batches(dtype=torch.float32)[0]
    with pytest.raises(ValueError, match=r"`temperature_image`"):
        sogclr_bimodal(x, t, temperature_image=torch.zeros(B))
