"""Any catalog loss on two views: which losses, how they are called, and clear refusals."""

from __future__ import annotations

import pytest
import torch

import contrastkit.losses as L
from contrastkit.train.objectives import (
    build_loss,
    trainable_losses,
    two_view_loss,
    unsupported_reason,
)

N, D = 12, 8


def _views(gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    z1 = torch.randn(N, D, generator=gen, dtype=torch.float64, requires_grad=True)
    z2 = torch.randn(N, D, generator=gen, dtype=torch.float64, requires_grad=True)
    return z1, z2


@pytest.mark.parametrize("loss_id", trainable_losses())
def test_every_trainable_loss_trains(loss_id: str, gen: torch.Generator) -> None:
    loss = build_loss(loss_id, num_samples=N, num_classes=3, embedding_dim=D).double()
    z1, z2 = _views(gen)
    labels = torch.arange(N) % 3
    out = two_view_loss(
        loss, z1, z2, labels=labels, index=torch.arange(N), teacher=torch.randn(N, 5).double()
    )
    assert out.dim() == 0
    assert torch.isfinite(out)
    out.backward()
    assert z1.grad is not None
    assert torch.isfinite(z1.grad).all()


def test_calls_match_the_signatures(gen: torch.Generator) -> None:
    z1, z2 = _views(gen)
    labels = torch.arange(N) % 3
    both = torch.cat([z1, z2])
    supcon = L.SupConLoss(temperature=0.3)
    assert torch.equal(
        two_view_loss(supcon, z1, z2, labels=labels), supcon(both, torch.cat([labels, labels]))
    )
    # without labels, each item is its own class: SupCon over two views is NT-Xent
    ntxent = L.NTXentLoss(temperature=0.3)
    torch.testing.assert_close(two_view_loss(supcon, z1, z2), ntxent(z1, z2))
    clip = L.CLIPLoss()
    assert torch.equal(two_view_loss(clip, z1, z2), clip(z1, z2))
    koleo = L.KoLeoLoss()
    assert torch.equal(two_view_loss(koleo, z1, z2), koleo(both))
    teacher = torch.randn(N, 5, dtype=torch.float64, generator=gen)
    cwcl = L.CWCLLoss()
    assert torch.equal(two_view_loss(cwcl, z1, z2, teacher=teacher), cwcl(z1, z2, teacher=teacher))


def test_unsupported_losses_say_why(gen: torch.Generator) -> None:
    for loss_id in ("mixco", "pair_weighted", "listwise", "pamc", "patchnce"):
        assert unsupported_reason(loss_id) is not None
        assert loss_id not in trainable_losses()
    z1, z2 = _views(gen)
    with pytest.raises(ValueError, match="'mixco' cannot be trained on two views"):
        two_view_loss(L.MixCoLoss(), z1, z2)


def test_missing_side_inputs(gen: torch.Generator) -> None:
    z1, z2 = _views(gen)
    with pytest.raises(ValueError, match="pass index"):
        two_view_loss(L.SogCLRLoss(num_samples=N), z1, z2)
    with pytest.raises(ValueError, match="needs a teacher"):
        two_view_loss(L.CWCLLoss(), z1, z2)


def test_build_loss_errors() -> None:
    with pytest.raises(ValueError, match="unknown catalog id 'simclr'"):
        build_loss("simclr")
    with pytest.raises(ValueError, match=r"unknown option.*temp.*accepts: temperature"):
        build_loss("ntxent", {"temp": 0.1})
    with pytest.raises(ValueError, match="needs num_samples"):
        build_loss("sogclr")
    assert build_loss("proxy_nce", num_classes=4, embedding_dim=6).proxies.shape == (4, 6)
