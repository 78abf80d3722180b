"""contrastkit's margin losses against pytorch-metric-learning (PML).

Mapping (pytorch_metric_learning/losses/contrastive_loss.py, triplet_margin_loss.py,
reducers/avg_non_zero_reducer.py, distances/lp_distance.py):

* Distance: the default ``LpDistance(p=2, power=1)`` L2-normalizes the embeddings and takes
  non-squared Euclidean distances = our ``normalize=True`` (the default) and ``d_ij``.
* ``ContrastiveLoss(pos_margin, neg_margin)``: ``relu(d_ap - pos_margin)`` over ordered positive
  pairs ``a != p`` and ``relu(neg_margin - d_an)`` over ordered negative pairs, each sub-loss
  reduced by ``AvgNonZeroReducer`` (mean of the terms > 0) and the two summed = our
  ``contrastive_margin(reduction="mean")`` with the same margins.
* ``TripletMarginLoss(margin)`` (``triplets_per_anchor="all"``, no swap, no smoothing): every
  ``(a, p, n)`` with ``y_a == y_p, a != p, y_n != y_a``, ``relu(d_ap - d_an + margin)``,
  ``AvgNonZeroReducer`` = our ``triplet(margin=margin)``.

Compared at float64 default tolerances: value and the gradient of the embeddings.
"""

import pytest
import torch
from pytorch_metric_learning.losses import ContrastiveLoss, TripletMarginLoss

from contrastkit.losses import ContrastiveMarginLoss, TripletLoss, contrastive_margin, triplet

pytestmark = pytest.mark.peer

BATCHES = [
    pytest.param(4, 3, 2, id="N4-C2"),
    pytest.param(13, 5, 4, id="N13-C4"),
    pytest.param(40, 16, 6, id="N40-C6"),  # above 25 rows PML's cdist uses its matmul path
]
IMPLS = [
    pytest.param({"impl": "dense"}, id="dense"),
    pytest.param({"impl": "tiled", "chunk_size": 3}, id="tiled-c3"),
]


def _batch(n: int, d: int, c: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    x = torch.randn(n, d, generator=gen, dtype=torch.float64)
    y = torch.randint(0, c, (n,), generator=gen)
    return x, y


def _both(ours: torch.Tensor, theirs: torch.Tensor, x: torch.Tensor, x2: torch.Tensor) -> None:
    torch.testing.assert_close(ours, theirs)
    (g1,) = torch.autograd.grad(ours, x)
    (g2,) = torch.autograd.grad(theirs, x2)
    torch.testing.assert_close(g1, g2)


@pytest.mark.parametrize("margins", [(0.0, 1.0), (0.3, 0.8), (0.1, 1.6)], ids=str)
@pytest.mark.parametrize(("n", "d", "c"), BATCHES)
@pytest.mark.parametrize("impl", IMPLS)
def test_contrastive_margin_equals_pml(
    margins: tuple[float, float], n: int, d: int, c: int, impl: dict, gen: torch.Generator
) -> None:
    """The contrastive margin loss equals PML ContrastiveLoss (AvgNonZero per sub-loss)."""
    x, y = _batch(n, d, c, gen)
    x1, x2 = x.clone().requires_grad_(), x.clone().requires_grad_()
    pos, neg = margins
    ours = contrastive_margin(x1, y, pos_margin=pos, neg_margin=neg, **impl)
    theirs = ContrastiveLoss(pos_margin=pos, neg_margin=neg)(x2, y)
    _both(ours, theirs, x1, x2)


@pytest.mark.parametrize("margin", [0.05, 0.3, 1.0])
@pytest.mark.parametrize(("n", "d", "c"), BATCHES)
@pytest.mark.parametrize("impl", IMPLS)
def test_triplet_equals_pml(
    margin: float, n: int, d: int, c: int, impl: dict, gen: torch.Generator
) -> None:
    """The triplet loss equals PML TripletMarginLoss over all triplets (AvgNonZero)."""
    x, y = _batch(n, d, c, gen)
    x1, x2 = x.clone().requires_grad_(), x.clone().requires_grad_()
    ours = triplet(x1, y, margin=margin, **impl)
    theirs = TripletMarginLoss(margin=margin)(x2, y)
    _both(ours, theirs, x1, x2)


def test_module_defaults_equal_pml_defaults(gen: torch.Generator) -> None:
    """The pinned module defaults are PML's defaults."""
    x, y = _batch(20, 8, 4, gen)
    torch.testing.assert_close(ContrastiveMarginLoss()(x, y), ContrastiveLoss()(x, y))
    torch.testing.assert_close(TripletLoss()(x, y), TripletMarginLoss()(x, y))


def test_no_active_term_is_zero_like_pml(gen: torch.Generator) -> None:
    """With margins nothing violates, both return 0 (and a zero gradient)."""
    x, y = _batch(10, 4, 3, gen)
    x1, x2 = x.clone().requires_grad_(), x.clone().requires_grad_()
    ours = contrastive_margin(x1, y, pos_margin=5.0, neg_margin=0.0)
    theirs = ContrastiveLoss(pos_margin=5.0, neg_margin=0.0)(x2, y)
    _both(ours, theirs, x1, x2)
    assert float(ours.detach()) == 0.0
