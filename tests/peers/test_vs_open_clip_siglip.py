"""contrastkit's SigLIP loss against ``open_clip.loss.SigLipLoss`` (open-clip-torch).

Mapping (open_clip/loss.py, ``SigLipLoss.get_logits`` / ``_loss`` / ``forward``, world_size=1):

* ``SigLipLoss`` does NOT normalize; we feed it ``F.normalize(image)``, ``F.normalize(text)``.
* Its ``logit_scale`` is the scale itself; ``SigLIPLoss`` owns the log of it, so the peer gets
  ``logit_scale.exp()`` and the same ``logit_bias``.
* ``logits = scale * image @ text.T + bias``, labels ``2 I - 1``, loss
  ``-logsigmoid(labels * logits).sum() / N`` = our ``siglip(reduction="mean")``.

The pinned form: ``SigLIPLoss(scale_init=10, bias_init=-10, learnable=True)(image, text)`` equals
``SigLipLoss()(normalize(image), normalize(text), logit_scale.exp(), logit_bias)``, value and
gradients of both inputs and of both parameters.
"""

import math

import pytest
import torch
from open_clip.loss import SigLipLoss
from torch.nn.functional import normalize

from contrastkit.losses import SigLIPLoss, siglip

pytestmark = pytest.mark.peer


@pytest.mark.parametrize(("n", "d"), [(1, 3), (7, 5), (33, 16)], ids=str)
@pytest.mark.parametrize(
    "impl", [{"impl": "dense"}, {"impl": "tiled", "chunk_size": 4}], ids=["dense", "tiled"]
)
@pytest.mark.parametrize(("scale", "bias"), [(10.0, -10.0), (3.0, 0.5), (30.0, -4.0)], ids=str)
def test_module_equals_open_clip(
    n: int, d: int, impl: dict, scale: float, bias: float, gen: torch.Generator
) -> None:
    """SigLIPLoss == open_clip SigLipLoss on normalized inputs, with parameter gradients."""
    image = torch.randn(n, d, generator=gen, dtype=torch.float64)
    text = image + torch.randn(n, d, generator=gen, dtype=torch.float64)
    ours = SigLIPLoss(scale_init=scale, bias_init=bias, **impl).double()
    x1, t1 = image.clone().requires_grad_(), text.clone().requires_grad_()
    value = ours(x1, t1)
    got = torch.autograd.grad(value, [x1, t1, ours.logit_scale, ours.logit_bias])

    # the module's parameters (float32 at construction, then .double()) as the peer's inputs
    ls = ours.logit_scale.detach().clone().requires_grad_()
    lb = ours.logit_bias.detach().clone().requires_grad_()
    torch.testing.assert_close(ls, torch.tensor(math.log(scale), dtype=torch.float64))
    x2, t2 = image.clone().requires_grad_(), text.clone().requires_grad_()
    peer = SigLipLoss()(normalize(x2), normalize(t2), ls.exp(), lb)
    expected = torch.autograd.grad(peer, [x2, t2, ls, lb])

    torch.testing.assert_close(value, peer)
    for g, e in zip(got, expected, strict=True):
        torch.testing.assert_close(g, e)


def test_fixed_parameters_are_buffers(gen: torch.Generator) -> None:
    """learnable=False keeps the scale and bias out of ``parameters()`` and still computes."""
    loss = SigLIPLoss(learnable=False)
    assert list(loss.parameters()) == []
    x, t = torch.randn(5, 4, generator=gen), torch.randn(5, 4, generator=gen)
    torch.testing.assert_close(loss(x, t), siglip(x, t))
