"""ProtoECGNet's prototype contrast: the authors' formula, a worked example, the Jaccard matrix."""

from __future__ import annotations

import math
from itertools import combinations

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor

from contrastkit.losses.prototype_margin import (
    PrototypeMarginLoss,
    jaccard_cooccurrence,
    prototype_margin,
)

f64 = torch.float64


def _protoecgnet_identity(classes: int, single: int, joint: int) -> Tensor:
    """ProtoECGNet's layout: ``single`` prototypes per class, then ``joint`` per class pair."""
    rows = [torch.eye(classes)[c] for c in range(classes) for _ in range(single)]
    for a, b in combinations(range(classes), 2):
        rows += [torch.eye(classes)[a] + torch.eye(classes)[b]] * joint
    return torch.stack(rows)


def _authors_contrast(prototypes: Tensor, identity: Tensor, cooccurrence: Tensor) -> Tensor:
    """The contrastive term of ProtoECGNet's ``prototype_loss1d``, restated."""
    unit = F.normalize(prototypes.flatten(1), p=2, dim=1)
    sim = torch.clamp(unit @ unit.T, min=-1 + 1e-6, max=1 - 1e-6)
    pos_mask = identity @ cooccurrence @ identity.T
    neg_mask = 1 - pos_mask
    pos = torch.sum(sim * pos_mask / (pos_mask.sum() + 1e-6))
    neg = torch.sum(sim * neg_mask / (neg_mask.sum() + 1e-6))
    return -(pos - neg) / prototypes.shape[0] ** 0.5


@pytest.mark.parametrize("impl", ["dense", "tiled"])
def test_matches_the_authors_loss_with_joint_prototypes(impl: str, gen: torch.Generator) -> None:
    """Single-class and joint prototypes (so 1 - M < 0 somewhere): value and gradient."""
    identity = _protoecgnet_identity(classes=4, single=2, joint=1).to(f64)
    labels = (torch.rand(50, 4, generator=gen) < 0.4).to(f64)
    co = jaccard_cooccurrence(labels)
    assert bool(((identity @ co @ identity.T) > 1).any())  # the quirk is exercised
    p = torch.randn(identity.shape[0], 3, 4, generator=gen, dtype=f64)  # (P, D, T) like 2D
    x = p.clone().requires_grad_()
    expected = _authors_contrast(x, identity, co)
    (want,) = torch.autograd.grad(expected, x)
    y = p.clone().requires_grad_()
    value = prototype_margin(y.flatten(1), identity.bool(), cooccurrence=co, impl=impl,
                             chunk_size=5)  # fmt: skip
    (got,) = torch.autograd.grad(value, y)
    torch.testing.assert_close(value, expected)
    torch.testing.assert_close(got, want)


def test_two_prototypes_worked_example() -> None:
    """P = 2, one class each, J = I: L = -(2(1 - d) - 2c) / ((2 + e) sqrt 2)."""
    angle = 1.0
    p = torch.tensor([[1.0, 0.0], [math.cos(angle), math.sin(angle)]], dtype=f64)
    value = prototype_margin(p, torch.eye(2, dtype=torch.bool), cooccurrence=torch.eye(2))
    d, e, c = 1e-6, 1e-6, math.cos(angle)
    expected = -(2 * (1 - d) - 2 * c) / ((2 + e) * math.sqrt(2))
    torch.testing.assert_close(value, torch.tensor(expected, dtype=f64))


def test_rows_average_to_the_loss(gen: torch.Generator) -> None:
    """Per-prototype terms have mean L and sum P L."""
    p = torch.randn(7, 5, generator=gen, dtype=f64)
    identity = torch.arange(7)[:, None] % 3 == torch.arange(3)[None, :]
    co = torch.eye(3, dtype=f64)
    rows = prototype_margin(p, identity, cooccurrence=co, reduction="none")
    torch.testing.assert_close(rows.mean(), prototype_margin(p, identity, cooccurrence=co))
    torch.testing.assert_close(
        rows.sum(), prototype_margin(p, identity, cooccurrence=co, reduction="sum")
    )


def test_jaccard_cooccurrence() -> None:
    """|a and b| / |a or b| per class pair, 1 on the diagonal, 0 for classes never seen."""
    labels = torch.tensor([[1, 1, 0, 0], [1, 0, 0, 0], [0, 1, 1, 0], [0, 1, 0, 0]])
    j = jaccard_cooccurrence(labels)
    expected = torch.tensor(
        [
            [1.0, 1 / 4, 0.0, 0.0],
            [1 / 4, 1.0, 1 / 3, 0.0],
            [0.0, 1 / 3, 1.0, 0.0],
            [0.0, 0.0, 0.0, 1.0],
        ]
    )
    torch.testing.assert_close(j, expected)
    with pytest.raises(ValueError, match="labels"):
        jaccard_cooccurrence(torch.ones(4))


def test_module_equals_functional(gen: torch.Generator) -> None:
    """PrototypeMarginLoss takes the co-occurrence in forward."""
    p = torch.randn(6, 4, generator=gen, dtype=f64)
    identity = torch.arange(6)[:, None] % 2 == torch.arange(2)[None, :]
    co = torch.tensor([[1.0, 0.3], [0.3, 1.0]], dtype=f64)
    torch.testing.assert_close(
        PrototypeMarginLoss()(p, identity, cooccurrence=co),
        prototype_margin(p, identity, cooccurrence=co),
    )
