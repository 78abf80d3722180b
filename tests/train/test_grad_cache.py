"""Gradient caching gives the parameter gradients of the uncached step."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor, nn

import contrastkit.losses as L
from contrastkit.train import GradCache


def encoder() -> nn.Module:
    torch.manual_seed(3)
    return nn.Sequential(nn.Linear(6, 16), nn.Dropout(0.3), nn.ReLU(), nn.Linear(16, 5)).double()


def uncached(enc: nn.Module, xs: list[Tensor], chunk: int, loss_fn, extra=()) -> Tensor:
    """The plain step: same chunked forward (hence the same dropout masks), graph kept."""
    embs = [torch.cat([enc(part) for part in x.split(chunk)]) for x in xs]
    loss = loss_fn(*embs, *extra)
    loss.backward()
    return loss.detach()


@pytest.mark.parametrize("chunk", [1, 3, 10, 64])
def test_two_views_match_uncached(chunk: int) -> None:
    """SimCLR step with dropout: same loss and same gradients, any chunk size."""
    g = torch.Generator().manual_seed(0)
    x1, x2 = (torch.randn(10, 6, generator=g, dtype=torch.float64) for _ in range(2))
    loss_fn = L.NTXentLoss(temperature=0.3)
    ref, got = encoder(), encoder()
    torch.manual_seed(5)
    expected = uncached(ref, [x1, x2], chunk, loss_fn)
    torch.manual_seed(5)
    value = GradCache([got, got], loss_fn, chunk_size=chunk)(x1, x2)
    torch.testing.assert_close(value, expected)
    for p, q in zip(got.parameters(), ref.parameters(), strict=True):
        torch.testing.assert_close(p.grad, q.grad)


def test_extra_arguments_reach_the_loss() -> None:
    """Labels pass through ``extra``; gradients match the uncached SupCon step."""
    g = torch.Generator().manual_seed(1)
    x = torch.randn(12, 6, generator=g, dtype=torch.float64)
    y = torch.randint(0, 3, (12,), generator=g)
    loss_fn = L.SupConLoss()
    ref, got = encoder(), encoder()
    torch.manual_seed(2)
    expected = uncached(ref, [x], 5, loss_fn, extra=(y,))
    torch.manual_seed(2)
    value = GradCache([got], loss_fn, chunk_size=5)(x, extra=(y,))
    torch.testing.assert_close(value, expected)
    for p, q in zip(got.parameters(), ref.parameters(), strict=True):
        torch.testing.assert_close(p.grad, q.grad)


def test_under_autocast_matches_uncached_under_autocast() -> None:
    """Chunks are recomputed inside the caller's autocast context.

    The autocast weight cache is off on both sides: with it, one graph sums the chunks' weight
    gradients in bf16 before casting, while separate backward calls sum them in float32.
    """
    g = torch.Generator().manual_seed(4)
    x1, x2 = (torch.randn(16, 6, generator=g) for _ in range(2))
    loss_fn = L.InfoNCELoss(symmetric=True)
    ref, got = encoder().float(), encoder().float()
    with torch.autocast("cpu", dtype=torch.bfloat16, cache_enabled=False):
        torch.manual_seed(8)
        expected = uncached(ref, [x1, x2], 4, loss_fn)
        torch.manual_seed(8)
        value = GradCache([got, got], loss_fn, chunk_size=4)(x1, x2)
    torch.testing.assert_close(value, expected)
    for p, q in zip(got.parameters(), ref.parameters(), strict=True):
        torch.testing.assert_close(p.grad, q.grad)


def test_loss_parameters_get_their_gradient() -> None:
    """CLIP's own logit_scale is trained too, with the gradient of the uncached step."""
    g = torch.Generator().manual_seed(6)
    x1, x2 = (torch.randn(9, 6, generator=g, dtype=torch.float64) for _ in range(2))
    ref_loss, loss = L.CLIPLoss().double(), L.CLIPLoss().double()
    ref, got = encoder(), encoder()
    torch.manual_seed(1)
    expected = uncached(ref, [x1, x2], 4, ref_loss)
    torch.manual_seed(1)
    value = GradCache([got, got], loss, chunk_size=4)(x1, x2)
    torch.testing.assert_close(value, expected)
    torch.testing.assert_close(loss.logit_scale.grad, ref_loss.logit_scale.grad)
    for p, q in zip(got.parameters(), ref.parameters(), strict=True):
        torch.testing.assert_close(p.grad, q.grad)


def test_bad_arguments() -> None:
    """A wrong chunk size or input count is a clear ValueError."""
    enc = encoder()
    with pytest.raises(ValueError, match="chunk_size"):
        GradCache([enc], L.NTXentLoss(), chunk_size=0)
    with pytest.raises(ValueError, match="one batch per encoder"):
        GradCache([enc, enc], L.NTXentLoss(), chunk_size=2)(torch.randn(4, 6))
