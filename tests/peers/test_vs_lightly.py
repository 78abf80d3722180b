"""contrastkit's SimCLR / DCL / DCLW losses against lightly (``lightly.loss``).

Mapping (lightly/loss/ntx_ent_loss.py, lightly/loss/dcl_loss.py, single process):

* ``NTXentLoss(temperature, memory_bank_size=0)(out0, out1)``: L2-normalizes both views, builds
  the ``(2N, 2N-1)`` logits ``[[s01, s00 without diag], [s10, s11 without diag]] / temperature``
  with targets ``arange(N).repeat(2)`` and takes ``nn.CrossEntropyLoss(reduction="mean")``, i.e.
  the mean over all 2N anchors = our ``ntxent(z1, z2, temperature=...)``.
* ``DCLLoss(temperature)(out0, out1)``: normalizes, then for each direction
  ``-s01_ii + logsumexp([s00_ij, s01_ij]_{j != i})`` (the positive is removed from the
  denominator), ``.mean()`` over N, and returns ``0.5 * (loss0 + loss1)`` = our ``dcl``.
* ``DCLWLoss(temperature, sigma)`` = ``DCLLoss`` whose positive term ``-s01_ii`` is multiplied by
  ``w_i = 2 - N * softmax_i(<z1_i, z2_i> / sigma)`` computed from the NORMALIZED views, DETACHED
  (``out0.detach()`` in ``negative_mises_fisher_weights``; ``torch.tensor(...)`` copies again);
  the same ``w`` serves both directions. So the weight carries no gradient = our ``dclw``.
"""

import pytest
import torch
from lightly.loss import DCLLoss as LightlyDCLLoss
from lightly.loss import DCLWLoss as LightlyDCLWLoss
from lightly.loss import NTXentLoss as LightlyNTXentLoss

from contrastkit.losses import DCLLoss, DCLWLoss, NTXentLoss, dcl, dclw, ntxent

pytestmark = [
    pytest.mark.peer,
    # lightly's negative_mises_fisher_weights calls torch.tensor() on a tensor.
    pytest.mark.filterwarnings("ignore:To copy construct from a tensor:UserWarning"),
]

SHAPES = [
    pytest.param(2, 3, id="N2-D3"),
    pytest.param(7, 5, id="N7-D5"),
    pytest.param(16, 32, id="N16-D32"),
]
IMPLS = [
    pytest.param({"impl": "dense"}, id="dense"),
    pytest.param({"impl": "tiled", "chunk_size": 3}, id="tiled-c3"),
]


def _views(n, d, seed=0):
    g = torch.Generator().manual_seed(1000 * seed + 10 * n + d)
    return [torch.randn(n, d, generator=g, dtype=torch.float64) for _ in range(2)]


def _value_and_grads(fn, inputs):
    """Run ``fn`` on fresh leaf copies of ``inputs``; return its value and grads w.r.t. them."""
    leaves = [x.detach().clone().requires_grad_(True) for x in inputs]
    out = fn(*leaves)
    return out.detach(), torch.autograd.grad(out, leaves)


@pytest.mark.parametrize("temperature", [0.5, 0.1], ids=lambda t: f"t{t}")
@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize(("n", "d"), SHAPES)
def test_ntxent_matches_lightly(n, d, impl, temperature):
    """ntxent() equals lightly's NTXentLoss without a memory bank."""
    z = _views(n, d)
    ours = _value_and_grads(lambda a, b: ntxent(a, b, temperature=temperature, **impl), z)
    peer = _value_and_grads(LightlyNTXentLoss(temperature=temperature, memory_bank_size=0), z)
    torch.testing.assert_close(ours, peer)


@pytest.mark.parametrize(("n", "d"), SHAPES)
def test_ntxent_module_matches_lightly(n, d):
    """NTXentLoss() equals lightly's NTXentLoss() (both default to temperature 0.5)."""
    z = _views(n, d, seed=1)
    ours = _value_and_grads(NTXentLoss(), z)
    peer = _value_and_grads(LightlyNTXentLoss(), z)
    torch.testing.assert_close(ours, peer)


@pytest.mark.parametrize("temperature", [0.1, 0.5], ids=lambda t: f"t{t}")
@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize(("n", "d"), SHAPES)
def test_dcl_matches_lightly(n, d, impl, temperature):
    """dcl() equals lightly's DCLLoss."""
    z = _views(n, d, seed=2)
    ours = _value_and_grads(lambda a, b: dcl(a, b, temperature=temperature, **impl), z)
    peer = _value_and_grads(LightlyDCLLoss(temperature=temperature), z)
    torch.testing.assert_close(ours, peer)


@pytest.mark.parametrize(("n", "d"), SHAPES)
def test_dcl_module_matches_lightly(n, d):
    """DCLLoss() equals lightly's DCLLoss() (both default to temperature 0.1)."""
    z = _views(n, d, seed=3)
    torch.testing.assert_close(
        _value_and_grads(DCLLoss(), z), _value_and_grads(LightlyDCLLoss(), z)
    )


@pytest.mark.parametrize(
    ("temperature", "sigma"), [(0.1, 0.5), (0.5, 2.0)], ids=["t0.1-s0.5", "t0.5-s2"]
)
@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize(("n", "d"), SHAPES)
def test_dclw_matches_lightly(n, d, impl, temperature, sigma):
    """dclw() equals lightly's DCLWLoss, whose von Mises-Fisher weights are detached."""
    z = _views(n, d, seed=4)
    ours = _value_and_grads(
        lambda a, b: dclw(a, b, temperature=temperature, sigma=sigma, **impl), z
    )
    peer = _value_and_grads(LightlyDCLWLoss(temperature=temperature, sigma=sigma), z)
    torch.testing.assert_close(ours, peer)


@pytest.mark.parametrize(("n", "d"), SHAPES)
def test_dclw_module_matches_lightly(n, d):
    """DCLWLoss() equals lightly's DCLWLoss() (both default to temperature 0.1, sigma 0.5)."""
    z = _views(n, d, seed=5)
    ours = _value_and_grads(DCLWLoss(), z)
    torch.testing.assert_close(ours, _value_and_grads(LightlyDCLWLoss(), z))
