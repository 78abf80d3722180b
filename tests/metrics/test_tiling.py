"""No metric forms the full N x N (or Q x G) similarity: every score block is one tile."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
from torch import Tensor

from contrastkit import metrics

N = 3000


def _largest_product(monkeypatch: pytest.MonkeyPatch, run: Callable[[], object]) -> int:
    """Run ``run`` and return the largest number of elements of any ``a @ b`` result."""
    largest = 0
    original = Tensor.__matmul__

    def spy(a: Tensor, b: Tensor) -> Tensor:
        nonlocal largest
        out = original(a, b)
        largest = max(largest, out.numel())
        return out

    monkeypatch.setattr(Tensor, "__matmul__", spy)
    run()
    monkeypatch.undo()
    return largest


@pytest.fixture(scope="module")
def data() -> dict[str, Tensor]:
    gen = torch.Generator().manual_seed(7)
    return {
        "x": torch.randn(N, 8, generator=gen),
        "y": torch.randint(0, 10, (N,), generator=gen),
        "pos": torch.randint(0, N, (N,), generator=gen),
    }


CASES = {
    "uniformity": lambda d: metrics.uniformity(d["x"]),
    "knn": lambda d: metrics.knn_accuracy(d["x"], d["y"], d["x"], d["y"], exclude_self=True),
    "retrieval-positives": lambda d: metrics.retrieval_metrics(d["x"], d["x"], positives=d["pos"]),
    "retrieval-labels": lambda d: metrics.retrieval_metrics(
        d["x"], d["x"], query_labels=d["y"], gallery_labels=d["y"], exclude_self=True
    ),
    "pair-auc": lambda d: metrics.pair_roc_auc(d["x"], d["x"], positives=d["pos"]),
    "tolerance": lambda d: metrics.tolerance(d["x"], d["y"]),
    "effective-rank": lambda d: metrics.effective_rank(d["x"]),
}


@pytest.mark.parametrize("name", list(CASES))
def test_score_blocks_stay_below_the_full_matrix(
    monkeypatch: pytest.MonkeyPatch, data: dict[str, Tensor], name: str
) -> None:
    """With the default tiles, the largest product is at most half of the N x N matrix."""
    largest = _largest_product(monkeypatch, lambda: CASES[name](data))
    assert largest <= N * N // 2
    if name != "tolerance":  # class sums only, no product at all
        assert largest > 0  # the spy saw the score blocks
