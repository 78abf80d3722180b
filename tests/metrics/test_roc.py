"""ROC-AUC equals scikit-learn's ``roc_auc_score`` and a double loop over (positive, negative)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score

from contrastkit.metrics import pair_roc_auc, roc_auc
from tests.metrics import _brute

CHUNKS = [pytest.param(1, id="chunk1"), pytest.param(7, id="chunk7"), None, 1000]


def _sklearn(pos: torch.Tensor, neg: torch.Tensor) -> float:
    truth = np.r_[np.ones(pos.numel()), np.zeros(neg.numel())]
    return float(roc_auc_score(truth, np.r_[pos.double().numpy(), neg.double().numpy()]))


@pytest.mark.parametrize(("n_pos", "n_neg"), [(1, 1), (5, 40), (40, 5), (33, 33)])
def test_scores_match_sklearn_and_brute_force(gen: torch.Generator, n_pos: int, n_neg: int) -> None:
    """Continuous scores, either set the larger one."""
    pos = torch.randn(n_pos, generator=gen, dtype=torch.float64) + 0.5
    neg = torch.randn(n_neg, generator=gen, dtype=torch.float64)
    got = roc_auc(pos, neg)
    assert got == pytest.approx(_sklearn(pos, neg), abs=1e-12)
    assert got == pytest.approx(_brute.roc_auc(pos.tolist(), neg.tolist()), abs=1e-12)


@pytest.mark.parametrize(("n_pos", "n_neg"), [(7, 50), (50, 7)])
def test_ties_count_one_half(gen: torch.Generator, n_pos: int, n_neg: int) -> None:
    """Integer scores with many ties; mixed dtypes are compared in float64."""
    pos = torch.randint(0, 5, (n_pos,), generator=gen)
    neg = torch.randint(-1, 4, (n_neg,), generator=gen).float()
    got = roc_auc(pos, neg)
    assert got == pytest.approx(_sklearn(pos, neg), abs=1e-12)
    assert got == pytest.approx(_brute.roc_auc(pos.tolist(), neg.tolist()), abs=1e-12)


def test_extremes() -> None:
    """Perfect separation is 1, reversed 0, identical scores 0.5."""
    assert roc_auc(torch.tensor([2.0, 3.0]), torch.tensor([0.0, 1.0])) == 1.0
    assert roc_auc(torch.tensor([0.0]), torch.tensor([1.0, 2.0])) == 0.0
    assert roc_auc(torch.ones(3), torch.ones(4)) == 0.5


def _pair_sets(kind: str, gen: torch.Generator, q: int, g: int) -> dict:
    if kind == "positives":
        return {"positives": torch.randint(0, g, (q,), generator=gen)}
    if kind == "labels-many":  # few relevant pairs: the positives are kept and sorted
        return {
            "query_labels": torch.randint(0, 6, (q,), generator=gen),
            "gallery_labels": torch.randint(0, 6, (g,), generator=gen),
        }
    if kind == "labels-few":  # mostly relevant pairs: the negatives are kept and sorted
        return {
            "query_labels": (torch.rand(q, generator=gen) < 0.1).long(),
            "gallery_labels": (torch.rand(g, generator=gen) < 0.1).long(),
        }
    return {"relevant": _brute.random_sets(gen, q, g, most=5)}


@pytest.mark.parametrize("kind", ["positives", "labels-many", "labels-few", "relevant"])
@pytest.mark.parametrize("chunk_size", CHUNKS)
def test_pair_auc_matches_sklearn_on_the_dense_matrix(
    gen: torch.Generator, kind: str, chunk_size: int | None
) -> None:
    """All relevant vs all irrelevant entries of the similarity, at every tile size."""
    query = torch.randn(17, 4, generator=gen, dtype=torch.float64)
    gallery = torch.randn(26, 4, generator=gen, dtype=torch.float64)
    rel = _pair_sets(kind, gen, 17, 26)
    sets = _brute.as_sets(17, 26, **rel)
    truth = np.array([[1 if j in sets[i] else 0 for j in range(26)] for i in range(17)])
    scores = _brute.dense_scores(query, gallery, True)
    expected = roc_auc_score(truth.ravel(), scores.ravel())
    got = pair_roc_auc(query, gallery, chunk_size=chunk_size, **rel)
    assert got == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize("chunk_size", [1, 7, None])
def test_pair_auc_leave_one_out(gen: torch.Generator, chunk_size: int | None) -> None:
    """``exclude_self`` drops the diagonal pairs; ties on integer scores count one half."""
    x = torch.randint(-2, 3, (21, 3), generator=gen).double()
    labels = torch.randint(0, 3, (21,), generator=gen)
    got = pair_roc_auc(
        x,
        x,
        query_labels=labels,
        gallery_labels=labels,
        normalize=False,
        exclude_self=True,
        chunk_size=chunk_size,
    )
    scores = (x @ x.T).numpy()
    keep = ~np.eye(21, dtype=bool)
    truth = (labels[:, None] == labels[None, :]).numpy()
    assert got == pytest.approx(roc_auc_score(truth[keep], scores[keep]), abs=1e-12)


BAD = [
    pytest.param(lambda: roc_auc(torch.tensor([]), torch.ones(2)), "empty", id="empty"),
    pytest.param(lambda: roc_auc(torch.ones(2, 1), torch.ones(2)), "1-D", id="2d"),
    pytest.param(lambda: roc_auc([1.0], torch.ones(2)), "positive_scores", id="list"),  # type: ignore[arg-type]
    pytest.param(
        lambda: roc_auc(torch.ones(2), torch.tensor([0.0, float("nan")])), "non-finite", id="nan"
    ),
    pytest.param(lambda: roc_auc(torch.ones(2), torch.tensor([True])), "real", id="bool"),
    pytest.param(
        lambda: pair_roc_auc(
            torch.randn(3, 2),
            torch.randn(4, 2),
            query_labels=torch.zeros(3, dtype=torch.long),
            gallery_labels=torch.zeros(4, dtype=torch.long),
        ),
        "irrelevant",
        id="no-negatives",
    ),
    pytest.param(
        lambda: pair_roc_auc(torch.randn(3, 2), torch.randn(4, 2), relevant=[[], [], []]),
        "relevant",
        id="no-positives",
    ),
    pytest.param(
        lambda: pair_roc_auc(
            torch.randn(3, 2), torch.randn(4, 3), positives=torch.zeros(3, dtype=torch.long)
        ),
        "width",
        id="width",
    ),
    pytest.param(
        lambda: pair_roc_auc(torch.randn(3, 2), torch.randn(4, 2)), "exactly one", id="no-relevance"
    ),
]


@pytest.mark.parametrize(("call", "match"), BAD)
def test_bad_inputs_raise_clear_errors(call, match: str) -> None:  # type: ignore[no-untyped-def]
    """Every bad argument is a ValueError that names it."""
    with pytest.raises(ValueError, match=match):
        call()
