"""Momentum encoders and schedules against their formulas."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from contrastkit.state import MomentumEncoder, cosine_momentum, linear_warmup


def test_update_is_the_ema_formula() -> None:
    """theta_m <- m theta_m + (1 - m) theta, buffers copied, no gradients on the copy."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4))
    ema = MomentumEncoder(net, momentum=0.9)
    start = [p.detach().clone() for p in ema.encoder.parameters()]
    with torch.no_grad():
        for p in net.parameters():
            p.add_(1.0)
    net(torch.randn(8, 3))  # moves the batch-norm running statistics
    ema.update(net)
    for p0, pm, p in zip(start, ema.encoder.parameters(), net.parameters(), strict=True):
        torch.testing.assert_close(pm, 0.9 * p0 + 0.1 * p.detach())
        assert not pm.requires_grad
    torch.testing.assert_close(ema.encoder[1].running_mean, net[1].running_mean)
    assert not ema(torch.randn(2, 3)).requires_grad


def test_momentum_one_freezes_and_zero_copies() -> None:
    """M = 1 keeps the copy, m = 0 copies the online weights."""
    net = nn.Linear(2, 2)
    ema = MomentumEncoder(net, momentum=1.0)
    before = ema.encoder.weight.detach().clone()
    with torch.no_grad():
        net.weight.mul_(3.0)
    ema.update(net)
    torch.testing.assert_close(ema.encoder.weight, before)
    ema.update(net, momentum=0.0)
    torch.testing.assert_close(ema.encoder.weight, net.weight.detach())


def test_schedules() -> None:
    """Cosine momentum rises from base to final; linear warm-up reaches its value."""
    assert cosine_momentum(0, 100, 0.99, 1.0) == pytest.approx(0.99)
    assert cosine_momentum(100, 100, 0.99, 1.0) == pytest.approx(1.0)
    assert cosine_momentum(50, 100, 0.99, 1.0) == pytest.approx(0.995)
    assert cosine_momentum(25, 100, 0.9, 1.0) == pytest.approx(
        1 - 0.1 * (math.cos(math.pi / 4) + 1) / 2
    )
    assert linear_warmup(0, 10, 0.4) == 0.0
    assert linear_warmup(5, 10, 0.4) == pytest.approx(0.2)
    assert linear_warmup(50, 10, 0.4) == pytest.approx(0.4)


def test_bad_momentum_raises() -> None:
    """A momentum outside [0, 1] is rejected."""
    with pytest.raises(ValueError, match="momentum"):
        MomentumEncoder(nn.Linear(2, 2), momentum=1.5)
