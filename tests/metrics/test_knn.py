"""kNN classification equals a brute-force vote and scikit-learn's KNeighborsClassifier."""

from __future__ import annotations

import pytest
import torch
from sklearn.neighbors import KNeighborsClassifier

from contrastkit.metrics import KNNAccuracy, knn_accuracy, knn_predict
from tests.metrics import _brute

CHUNKS = [pytest.param(1, id="chunk1"), pytest.param(7, id="chunk7"), None, 1000]


def _data(gen: torch.Generator, n: int = 60, q: int = 25, d: int = 6, classes: int = 4):
    """Class means plus noise, so neighbours carry information."""
    means = torch.randn(classes, d, generator=gen, dtype=torch.float64) * 2
    yb = torch.randint(0, classes, (n,), generator=gen)
    yq = torch.randint(0, classes, (q,), generator=gen)
    bank = means[yb] + torch.randn(n, d, generator=gen, dtype=torch.float64)
    query = means[yq] + torch.randn(q, d, generator=gen, dtype=torch.float64)
    return bank, yb, query, yq


@pytest.mark.parametrize("chunk_size", CHUNKS)
@pytest.mark.parametrize("k", [1, 5, 20])
@pytest.mark.parametrize("weighting", ["exp", "uniform"])
def test_predictions_match_brute_force(
    gen: torch.Generator, chunk_size: int | None, k: int, weighting: str
) -> None:
    """Top-k cosine neighbours and their (weighted) vote, at every tile size."""
    bank, yb, query, _ = _data(gen)
    got = knn_predict(bank, yb, query, k=k, weighting=weighting, chunk_size=chunk_size)  # type: ignore[arg-type]
    assert got.tolist() == _brute.knn_predict(bank, yb, query, k, 0.07, weighting, False)


@pytest.mark.parametrize("temperature", [0.01, 0.5, 5.0])
def test_temperature_matches_brute_force(gen: torch.Generator, temperature: float) -> None:
    """exp(s / T) weights at several temperatures."""
    bank, yb, query, _ = _data(gen, classes=3)
    got = knn_predict(bank, yb, query, k=9, temperature=temperature)
    assert got.tolist() == _brute.knn_predict(bank, yb, query, 9, temperature, "exp", False)


@pytest.mark.parametrize("k", [1, 4, 15])
def test_uniform_vote_matches_sklearn(gen: torch.Generator, k: int) -> None:
    """Majority vote over cosine neighbours equals KNeighborsClassifier(metric="cosine")."""
    bank, yb, query, yq = _data(gen, n=80, q=40, classes=5)
    ref = KNeighborsClassifier(n_neighbors=k, metric="cosine", algorithm="brute")
    ref.fit(bank.numpy(), yb.numpy())
    expected = ref.predict(query.numpy())
    got = knn_predict(bank, yb, query, k=k, weighting="uniform")
    assert got.tolist() == expected.tolist()
    assert knn_accuracy(bank, yb, query, yq, k=k, weighting="uniform") == pytest.approx(
        float((expected == yq.numpy()).mean())
    )


@pytest.mark.parametrize("chunk_size", CHUNKS)
def test_leave_one_out_matches_brute_force(gen: torch.Generator, chunk_size: int | None) -> None:
    """``exclude_self`` classifies each bank row by the others."""
    bank, yb, _, _ = _data(gen, n=40)
    got = knn_predict(bank, yb, bank, k=5, exclude_self=True, chunk_size=chunk_size)
    assert got.tolist() == _brute.knn_predict(bank, yb, bank, 5, 0.07, "exp", True)
    acc = knn_accuracy(bank, yb, bank, yb, k=5, exclude_self=True, chunk_size=chunk_size)
    assert acc == pytest.approx(float((got == yb).double().mean()))


def test_arbitrary_class_ids_are_returned(gen: torch.Generator) -> None:
    """Labels need not be 0..C-1; predictions use the bank's own ids."""
    bank, yb, query, _ = _data(gen, classes=3)
    ids = torch.tensor([7, -2, 1000])
    got = knn_predict(bank, ids[yb], query, k=5)
    assert got.tolist() == ids[knn_predict(bank, yb, query, k=5)].tolist()


def test_large_dot_products_do_not_overflow(gen: torch.Generator) -> None:
    """With ``normalize=False`` and huge scores, exp weights are shifted per row (no NaN)."""
    bank = torch.randn(30, 4, generator=gen) * 1e3
    yb = torch.randint(0, 3, (30,), generator=gen)
    query = torch.randn(10, 4, generator=gen) * 1e3
    got = knn_predict(bank, yb, query, k=5, normalize=False)
    nearest = (query @ bank.T).argmax(1)
    assert got.tolist() == yb[nearest].tolist()  # T=0.07 at this scale: the nearest decides


def test_class_tie_goes_to_the_smallest_class() -> None:
    """Two neighbours, one per class, equal weights: the smaller class id wins."""
    bank = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    query = torch.tensor([[1.0, 1.0]])
    assert knn_predict(bank, torch.tensor([5, 3]), query, k=2).tolist() == [3]


def test_accumulator_equals_functional(gen: torch.Generator) -> None:
    """Batches of queries give the accuracy of their concatenation."""
    bank, yb, query, yq = _data(gen, q=37)
    metric = KNNAccuracy(bank, yb, k=7, chunk_size=5)
    for part, labels in zip(query.split(10), yq.split(10), strict=True):
        metric.update(part, labels)
    assert metric.compute() == pytest.approx(knn_accuracy(bank, yb, query, yq, k=7))
    metric.reset()
    with pytest.raises(RuntimeError, match="update"):
        metric.compute()


def test_low_precision_inputs(gen: torch.Generator) -> None:
    """bfloat16 embeddings are accepted (upcast), predictions are class ids."""
    bank, yb, query, _ = _data(gen)
    got = knn_predict(bank.bfloat16(), yb, query.bfloat16(), k=5)
    assert got.dtype == yb.dtype
    assert got.shape == (query.shape[0],)


BANK, LABELS = torch.randn(6, 3), torch.tensor([0, 1, 0, 1, 0, 1])
BAD = [
    pytest.param({"k": 0}, "`k`", id="k-zero"),
    pytest.param({"k": 7}, "at most", id="k-too-large"),
    pytest.param({"k": 6, "exclude_self": True, "query": BANK}, "itself", id="k-self"),
    pytest.param({"k": 2.0}, "`k`", id="k-float"),
    pytest.param({"temperature": 0.0}, "temperature", id="temperature"),
    pytest.param({"weighting": "distance"}, "weighting", id="weighting"),
    pytest.param({"exclude_self": True}, "exclude_self", id="exclude-self-sizes"),
    pytest.param({"query": torch.randn(4, 5)}, "width", id="width"),
    pytest.param({"bank_labels": torch.tensor([0, 1])}, "bank_labels", id="labels-length"),
    pytest.param({"bank_labels": LABELS.float()}, "bank_labels", id="labels-float"),
    pytest.param({"query": torch.randn(4)}, "query", id="query-1d"),
    pytest.param({"chunk_size": -1}, "chunk_size", id="chunk"),
]


@pytest.mark.parametrize(("change", "match"), BAD)
def test_bad_inputs_raise_clear_errors(change: dict, match: str) -> None:
    """Every bad argument is a ValueError that names it."""
    args = {"bank": BANK, "bank_labels": LABELS, "query": torch.randn(4, 3), "k": 3} | change
    with pytest.raises(ValueError, match=match):
        knn_predict(**args)


def test_accuracy_checks_query_labels() -> None:
    """Query labels must match the queries."""
    with pytest.raises(ValueError, match="query_labels"):
        knn_accuracy(BANK, LABELS, torch.randn(4, 3), torch.tensor([0, 1]), k=3)
