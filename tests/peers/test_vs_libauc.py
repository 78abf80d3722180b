"""SogCLR / iSogCLR (``contrastkit.losses.sogclr``) against LibAUC's GCLoss_v1 / _v2, per step.

Both sides run several consecutive steps on the same embeddings and dataset indices; after every
step the gradients w.r.t. the (raw, unnormalized) embeddings and the whole per-sample state must
be equal. Everything runs in float64: LibAUC allocates its state with ``torch.zeros(N)`` /
``torch.ones(N)``, so it is constructed under ``torch.set_default_dtype(torch.float64)``, and our
modules keep a float64 state (``dtype=torch.float64``; ``.double()`` on a float32 state would
round the initial temperature).

Mapping, unimodal (libauc/losses/contrastive.py, ``GCLoss_v1``, single process):

* ``GCLoss_v1(N=n, tau=t, gamma=g, gamma_schedule="constant", enable_isogclr=False)`` (and no
  ``adjust_gamma`` call, so its first-visit rule stays on) = ``SogCLRLoss(num_samples=n,
  temperature=t, gamma=g, first_visit="batch")``, called as ``(z1, z2, index)`` on both sides.
  Both L2-normalize. LibAUC's first-visit rule: ``gamma = 1`` for the whole batch when
  ``u[index].sum() == 0``, else ``gamma`` for every row.
* ``enable_isogclr=True`` with ``rho, eta, tau_min, tau_max, beta`` = ``ISogCLRLoss`` with the same
  names.
* State: ``u[:, 0]`` = ``log_u.exp()`` (LibAUC's 0 = our ``-inf``, never visited);
  ``learnable_tau[:, 0]`` = ``tau``; ``grad_tau[:, 0]`` = ``tau_grad``.
* Gradients are equal; LibAUC's returned value is a surrogate (not compared).

Mapping, image-text (``GCLoss_v2``):

* ``GCLoss_v2(N=n, tau=t, gamma=g, temperature_scheme="global_constant")`` called on
  ``F.normalize(image), F.normalize(text)`` (it does not normalize) = ``SogCLRBimodalLoss(
  num_samples=n, temperature=t, gamma=g)`` on the raw inputs (it normalizes).
  ``temperature_scheme="individual_learnable"`` = ``learn_temperature=True`` with the same
  ``rho, eta, tau_min, tau_max, beta``.
* Gradients: LibAUC's = ``(B - 1) / 2`` times ours (it sums ``p * logits`` over the ``B - 1``
  negatives where we average, and halves the two directions where we sum).
* State: LibAUC keeps ``u1`` scaled by a running shift ``b1``: ``log(u1) + b1`` = ``log_u_image``
  (``u2``, ``b2``: text); ``learnable_tau_img`` / ``_txt`` = ``tau_image`` / ``tau_text``;
  ``grad_tau_img`` / ``_txt`` = ``tau_grad_image`` / ``tau_grad_text``.
* LibAUC clamps its shifted estimate at ``eps = 1e-20``; at ``tau = 0.01`` that clamp engages
  whenever a positive beats every negative by more than ``46 tau`` (a documented deviation: we
  keep the exact estimate). Those cases set the peer's ``eps = 0`` to compare the rest exactly;
  at ``tau = 0.1`` the peer runs unmodified.

If libauc does not import, these tests fail (no skip).
"""

from __future__ import annotations

import contextlib
import io
import math
from collections.abc import Iterator
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from libauc.losses import GCLoss_v1, GCLoss_v2
from torch import Tensor

from contrastkit.losses.sogclr import ISogCLRLoss, SogCLRBimodalLoss, SogCLRLoss

pytestmark = pytest.mark.peer

NUM_SAMPLES, B, D = 12, 5, 7

# Dataset indices per step: first visits only; a batch mixing visited and new samples (LibAUC's
# batch rule then applies gamma to the new ones too); a repeated index among new samples; a
# repeated index among visited ones; and the same batch again and again.
PATTERNS = {
    "first-visits": [[0, 1, 2, 3, 4], [5, 6, 7, 8, 9], [10, 11, 0, 1, 2]],
    "mixed-repeated": [[0, 1, 2, 3, 4], [3, 4, 5, 6, 7], [8, 9, 10, 11, 8], [2, 2, 5, 0, 11]],
    "same-batch": [[4, 1, 7, 1, 9]] * 4,
}
IMPLS = [
    pytest.param({"impl": "dense"}, id="dense"),
    pytest.param({"impl": "tiled", "chunk_size": 2}, id="tiled-c2"),
]


@contextlib.contextmanager
def _float64_peer() -> Iterator[None]:
    """Build a LibAUC loss with float64 state, silencing its constructor's print."""
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            yield
    finally:
        torch.set_default_dtype(old)


def _steps(pattern: str, same_inputs: bool) -> list[tuple[Tensor, Tensor, Tensor]]:
    """(z1, z2, index) per step; positives are noisy copies (cosine around 0.6)."""
    g = torch.Generator().manual_seed(sum(map(ord, pattern)))
    out = []
    for k, index in enumerate(PATTERNS[pattern]):
        if k == 0 or not same_inputs:
            z1 = torch.randn(B, D, generator=g, dtype=torch.float64)
            z2 = z1 + torch.randn(B, D, generator=g, dtype=torch.float64)
        out.append((z1, z2, torch.tensor(index)))
    return out


def _grads(fn: Any, z1: Tensor, z2: Tensor, index: Tensor) -> tuple[Tensor, Tensor]:
    """Gradients of ``fn(z1, z2, index)`` (its first output if a tuple) w.r.t. z1 and z2."""
    a, b = z1.clone().requires_grad_(), z2.clone().requires_grad_()
    out = fn(a, b, index)
    value = out[0] if isinstance(out, tuple) else out
    ga, gb = torch.autograd.grad(value, [a, b])
    return ga, gb


def _log_state(u: Tensor, shift: Tensor | None = None) -> Tensor:
    """LibAUC's estimate ``u (* exp(shift))`` in log space, ``-inf`` where never visited."""
    u = u[:, 0]
    log = torch.where(u > 0, u.clamp_min(1e-300).log(), -math.inf)
    return log if shift is None else log + shift[:, 0]


def _assert_log_state(expected: Tensor, got: Tensor) -> None:
    """Same visited set (finite entries) and the same finite values."""
    assert torch.equal(torch.isfinite(expected), torch.isfinite(got))
    seen = torch.isfinite(expected)
    torch.testing.assert_close(got[seen], expected[seen])


ISO = {"rho": 0.3, "eta": 0.01, "tau_min": 0.05, "tau_max": 0.7, "beta": 0.9}
ISO_FAST = {"rho": 0.5, "eta": 0.5, "tau_min": 0.08, "tau_max": 0.13, "beta": 0.6}


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("same_inputs", [False, True], ids=["new-inputs", "same-inputs"])
@pytest.mark.parametrize("pattern", sorted(PATTERNS))
@pytest.mark.parametrize(
    ("iso", "hyper"),
    [
        pytest.param(None, {"tau": 0.1, "gamma": 0.9}, id="sogclr"),
        pytest.param(None, {"tau": 0.3, "gamma": 0.5}, id="sogclr-t0.3-g0.5"),
        pytest.param(ISO, {"tau": 0.1, "gamma": 0.9}, id="isogclr"),
        pytest.param(ISO_FAST, {"tau": 0.1, "gamma": 0.7}, id="isogclr-clipped"),
    ],
)
def test_gcloss_v1_step_for_step(
    iso: dict[str, float] | None,
    hyper: dict[str, float],
    pattern: str,
    same_inputs: bool,
    impl: dict[str, Any],
) -> None:
    """Embedding gradients and the state (u, tau, its momentum) equal GCLoss_v1 after each step."""
    with _float64_peer():
        peer = GCLoss_v1(
            N=NUM_SAMPLES,
            tau=hyper["tau"],
            gamma=hyper["gamma"],
            device=torch.device("cpu"),
            enable_isogclr=iso is not None,
            gamma_schedule="constant",
            **(iso or {}),
        )
    common = {
        "num_samples": NUM_SAMPLES,
        "temperature": hyper["tau"],
        "gamma": hyper["gamma"],
        "dtype": torch.float64,
    }
    ours = SogCLRLoss(**common, **impl) if iso is None else ISogCLRLoss(**common, **iso, **impl)
    for z1, z2, index in _steps(pattern, same_inputs):
        expected = _grads(peer, z1, z2, index)
        got = _grads(ours, z1, z2, index)
        for e, g in zip(expected, got, strict=True):
            torch.testing.assert_close(g, e)
        _assert_log_state(_log_state(peer.u), ours.log_u)
        if iso is not None:
            torch.testing.assert_close(ours.tau, peer.learnable_tau[:, 0])
            torch.testing.assert_close(ours.tau_grad, peer.grad_tau[:, 0])
    if iso is ISO_FAST:  # the bounds were hit, so the clamp is exercised too
        assert bool(
            (ours.tau == ISO_FAST["tau_min"]).any() | (ours.tau == ISO_FAST["tau_max"]).any()
        )


V2_CASES = [
    pytest.param(0.1, None, False, id="sogclr-t0.1"),
    pytest.param(0.01, None, True, id="sogclr-t0.01-eps0"),
    pytest.param(
        0.1,
        {"rho": 6.0, "eta": 0.01, "tau_min": 0.05, "tau_max": 0.5, "beta": 0.9},
        False,
        id="isogclr-t0.1",
    ),
    pytest.param(
        0.01,
        {"rho": 6.0, "eta": 0.01, "tau_min": 0.005, "tau_max": 0.05, "beta": 0.9},
        True,
        id="isogclr-t0.01-eps0",
    ),
]


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("same_inputs", [False, True], ids=["new-inputs", "same-inputs"])
@pytest.mark.parametrize("pattern", sorted(PATTERNS))
@pytest.mark.parametrize(("tau", "iso", "no_clamp"), V2_CASES)
def test_gcloss_v2_step_for_step(
    tau: float,
    iso: dict[str, float] | None,
    no_clamp: bool,
    pattern: str,
    same_inputs: bool,
    impl: dict[str, Any],
) -> None:
    """GCLoss_v2's gradients are (B - 1) / 2 times ours; estimates and temperatures are equal."""
    scheme = "global_constant" if iso is None else "individual_learnable"
    with _float64_peer():
        peer = GCLoss_v2(
            N=NUM_SAMPLES, tau=tau, gamma=0.9, temperature_scheme=scheme, **(iso or {})
        )
    if no_clamp:
        peer.eps = 0.0
    ours = SogCLRBimodalLoss(
        num_samples=NUM_SAMPLES,
        temperature=tau,
        gamma=0.9,
        learn_temperature=iso is not None,
        dtype=torch.float64,
        **(iso or {}),
        **impl,
    )

    def peer_call(x: Tensor, t: Tensor, index: Tensor) -> Tensor:
        value, _ = peer(F.normalize(x, dim=1), F.normalize(t, dim=1), index)
        return value

    for z1, z2, index in _steps(pattern, same_inputs):
        expected = _grads(peer_call, z1, z2, index)
        got = _grads(ours, z1, z2, index)
        for e, g in zip(expected, got, strict=True):
            torch.testing.assert_close(g * (B - 1) / 2, e)
        _assert_log_state(_log_state(peer.u1, peer.b1), ours.log_u_image)
        _assert_log_state(_log_state(peer.u2, peer.b2), ours.log_u_text)
        if iso is not None:
            torch.testing.assert_close(ours.tau_image, peer.learnable_tau_img[:, 0])
            torch.testing.assert_close(ours.tau_text, peer.learnable_tau_txt[:, 0])
            torch.testing.assert_close(ours.tau_grad_image, peer.grad_tau_img[:, 0])
            torch.testing.assert_close(ours.tau_grad_text, peer.grad_tau_txt[:, 0])
