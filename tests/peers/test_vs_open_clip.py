"""contrastkit's CLIP loss against ``open_clip.loss.ClipLoss`` (open-clip-torch).

Mapping (open_clip/loss.py, ``ClipLoss.get_logits`` / ``ClipLoss.forward``, world_size=1):

* ``ClipLoss`` does NOT normalize: ``logits_per_image = logit_scale * image @ text.T`` and
  ``logits_per_text = logit_scale * text @ image.T``, so we feed it ``F.normalize(image)`` and
  ``F.normalize(text)``.
* Its ``logit_scale`` argument is the scale itself (the model passes ``logit_scale.exp()``);
  ours is the log of the scale, so the peer gets ``exp(logit_scale)``, or ``max_scale`` (100)
  once ``exp(logit_scale)`` exceeds it (open_clip clamps the parameter in the training loop,
  not in the loss).
* Reduction: ``(F.cross_entropy(logits_per_image, arange(N)) +
  F.cross_entropy(logits_per_text, arange(N))) / 2``, each cross entropy a mean over N rows,
  which is our ``clip(...)`` = symmetric ``infonce`` with ``reduction="mean"``.
"""

import math

import pytest
import torch
from open_clip.loss import ClipLoss
from torch.nn.functional import normalize

from contrastkit.losses import CLIPLoss, clip

pytestmark = pytest.mark.peer

SHAPES = [
    pytest.param(2, 3, id="N2-D3"),
    pytest.param(7, 5, id="N7-D5"),
    pytest.param(16, 32, id="N16-D32"),
]
IMPLS = [
    pytest.param({"impl": "dense"}, id="dense"),
    pytest.param({"impl": "tiled", "chunk_size": 3}, id="tiled-c3"),
]
LOGIT_SCALES = [
    pytest.param(math.log(1 / 0.07), id="ls-log(14.3)"),
    pytest.param(0.0, id="ls-0"),
    pytest.param(math.log(40.0), id="ls-log40"),
]


def _inputs(n, d, seed=0):
    g = torch.Generator().manual_seed(1000 * seed + 10 * n + d)
    return [torch.randn(n, d, generator=g, dtype=torch.float64) for _ in range(2)]


def _value_and_grads(fn, inputs, params=()):
    """Run ``fn`` on fresh leaf copies of ``inputs``; return its value and grads (+ params)."""
    leaves = [x.detach().clone().requires_grad_(True) for x in inputs]
    out = fn(*leaves)
    grads = torch.autograd.grad(out, [*leaves, *params], allow_unused=True, materialize_grads=True)
    return out.detach(), grads


def _open_clip(scale):
    """open_clip's loss on normalized features with the (already exponentiated) ``scale``."""
    return lambda image, text: ClipLoss()(normalize(image), normalize(text), scale)


@pytest.mark.parametrize("logit_scale", LOGIT_SCALES)
@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize(("n", "d"), SHAPES)
def test_clip_matches_open_clip(n, d, impl, logit_scale):
    """clip() equals ClipLoss on normalized features, incl. grads w.r.t. a tensor logit_scale."""
    image, text = _inputs(n, d)
    ls_ours = torch.tensor(logit_scale, dtype=torch.float64, requires_grad=True)
    ls_peer = ls_ours.detach().clone().requires_grad_(True)
    ours = _value_and_grads(
        lambda i, t: clip(i, t, logit_scale=ls_ours, **impl), [image, text], [ls_ours]
    )
    peer = _value_and_grads(_open_clip(ls_peer.exp()), [image, text], [ls_peer])
    torch.testing.assert_close(ours, peer)


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize(("n", "d"), SHAPES)
def test_clip_prenormalized_matches_open_clip(n, d, impl):
    """clip(normalize=False) on F.normalize'd inputs equals ClipLoss (float logit_scale)."""
    image, text = _inputs(n, d, seed=1)
    ls = math.log(1 / 0.07)
    ours = _value_and_grads(
        lambda i, t: clip(normalize(i), normalize(t), logit_scale=ls, normalize=False, **impl),
        [image, text],
    )
    peer = _value_and_grads(_open_clip(math.exp(ls)), [image, text])
    torch.testing.assert_close(ours, peer)


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize(("n", "d"), SHAPES)
def test_clip_above_clamp_matches_open_clip_at_max_scale(n, d, impl):
    """Above max_scale, clip() equals ClipLoss at scale 100 and logit_scale gets a zero grad."""
    image, text = _inputs(n, d, seed=2)
    ls = torch.tensor(math.log(200.0), dtype=torch.float64, requires_grad=True)
    value, (g_image, g_text, g_ls) = _value_and_grads(
        lambda i, t: clip(i, t, logit_scale=ls, **impl), [image, text], [ls]
    )
    peer = _value_and_grads(_open_clip(torch.tensor(100.0, dtype=torch.float64)), [image, text])
    torch.testing.assert_close((value, (g_image, g_text)), peer)
    torch.testing.assert_close(g_ls, torch.zeros((), dtype=torch.float64))


@pytest.mark.parametrize("temperature", [0.07, 0.5], ids=lambda t: f"t{t}")
@pytest.mark.parametrize(("n", "d"), SHAPES)
def test_clip_module_matches_open_clip(n, d, temperature):
    """CLIPLoss() equals ClipLoss fed exp(logit_scale), incl. the logit_scale parameter grad."""
    image, text = _inputs(n, d, seed=3)
    module = CLIPLoss(temperature=temperature).double()
    torch.testing.assert_close(
        module.logit_scale.detach(),
        torch.tensor(math.log(1 / temperature), dtype=torch.float64),
        rtol=0,
        atol=1e-6,  # the parameter may be created in float32 before .double()
    )
    ls_peer = module.logit_scale.detach().clone().requires_grad_(True)
    ours = _value_and_grads(module, [image, text], [module.logit_scale])
    peer = _value_and_grads(_open_clip(ls_peer.exp()), [image, text], [ls_peer])
    torch.testing.assert_close(ours, peer)


@pytest.mark.parametrize(("n", "d"), SHAPES)
def test_clip_module_above_clamp(n, d):
    """With logit_scale = log(200), CLIPLoss equals ClipLoss at scale 100 and its .grad is 0."""
    image, text = _inputs(n, d, seed=4)
    module = CLIPLoss().double()
    with torch.no_grad():
        module.logit_scale.fill_(math.log(200.0))
    leaves = [x.clone().requires_grad_(True) for x in (image, text)]
    loss = module(*leaves)
    loss.backward()
    peer = _value_and_grads(_open_clip(torch.tensor(100.0, dtype=torch.float64)), [image, text])
    torch.testing.assert_close((loss.detach(), tuple(x.grad for x in leaves)), peer)
    assert module.logit_scale.grad is not None
    torch.testing.assert_close(module.logit_scale.grad, torch.zeros((), dtype=torch.float64))
