"""Recall@k, MRR and mAP equal brute-force rankings and scikit-learn's average precision."""

from __future__ import annotations

import pytest
import torch
from sklearn.metrics import average_precision_score

from contrastkit.metrics import (
    RetrievalMetrics,
    mean_average_precision,
    mean_reciprocal_rank,
    recall_at_k,
    retrieval_metrics,
    retrieval_per_query,
)
from tests.metrics import _brute

CHUNKS = [pytest.param(1, id="chunk1"), pytest.param(7, id="chunk7"), None, 1000]
KS = (1, 3, 10)


def _embeddings(gen: torch.Generator, q: int = 19, g: int = 29, d: int = 5):
    query = torch.randn(q, d, generator=gen, dtype=torch.float64)
    gallery = torch.randn(g, d, generator=gen, dtype=torch.float64)
    return query, gallery


def _relevance(kind: str, gen: torch.Generator, q: int, g: int) -> dict:
    if kind == "positives":
        return {"positives": torch.randint(0, g, (q,), generator=gen)}
    if kind == "labels":
        return {
            "query_labels": torch.randint(0, 5, (q,), generator=gen),
            "gallery_labels": torch.randint(0, 4, (g,), generator=gen),  # class 4: no relevant
        }
    return {"relevant": _brute.random_sets(gen, q, g, most=6)}


def _check_against_brute(per, expected, ks=KS) -> None:  # type: ignore[no-untyped-def]
    """Every per-query field equals the brute-force ranking of that query."""
    for i, ref in enumerate(expected):
        if ref is None:
            assert not bool(per.valid[i])
            continue
        assert int(per.num_relevant[i]) == ref["n"]
        assert int(per.first_rank[i]) == ref["first"]
        assert float(per.reciprocal_rank[i]) == pytest.approx(ref["rr"])
        assert float(per.average_precision[i]) == pytest.approx(ref["ap"])
        for j, k in enumerate(ks):
            assert float(per.hit_at_k[i, j]) == _brute.recall(ref, k, "hit")
            assert float(per.recall_at_k[i, j]) == pytest.approx(_brute.recall(ref, k, "fraction"))


@pytest.mark.parametrize("kind", ["positives", "labels", "relevant"])
@pytest.mark.parametrize("chunk_size", CHUNKS)
def test_per_query_matches_brute_force(
    gen: torch.Generator, kind: str, chunk_size: int | None
) -> None:
    """Ranks, RR, AP, hit@k and recall@k of every query, at every tile size."""
    query, gallery = _embeddings(gen)
    rel = _relevance(kind, gen, query.shape[0], gallery.shape[0])
    per = retrieval_per_query(query, gallery, k=KS, chunk_size=chunk_size, **rel)
    sets = _brute.as_sets(query.shape[0], gallery.shape[0], **rel)
    _check_against_brute(per, _brute.ranking(query, gallery, sets, True, False))


@pytest.mark.parametrize("kind", ["positives", "labels", "relevant"])
@pytest.mark.parametrize("chunk_size", [1, 7, None])
def test_leave_one_out_matches_brute_force(
    gen: torch.Generator, kind: str, chunk_size: int | None
) -> None:
    """``exclude_self`` removes pair (i, i) from the candidates and the relevant items."""
    x = torch.randn(23, 4, generator=gen, dtype=torch.float64)
    rel = _relevance(kind, gen, 23, 23)
    if kind == "labels":
        rel["gallery_labels"] = rel["query_labels"]
    if kind == "positives":
        rel["positives"][:3] = torch.arange(3)  # a query whose only positive is itself
    per = retrieval_per_query(x, x, k=KS, exclude_self=True, chunk_size=chunk_size, **rel)
    sets = _brute.as_sets(23, 23, **rel)
    _check_against_brute(per, _brute.ranking(x, x, sets, True, True))
    if kind == "positives":
        assert not per.valid[:3].any()


@pytest.mark.parametrize("kind", ["labels", "relevant"])
def test_average_precision_matches_sklearn(gen: torch.Generator, kind: str) -> None:
    """Per-query AP equals ``average_precision_score`` of the query's row."""
    query, gallery = _embeddings(gen, q=15, g=40)
    rel = _relevance(kind, gen, 15, 40)
    per = retrieval_per_query(query, gallery, chunk_size=4, **rel)
    scores = _brute.dense_scores(query, gallery, True)
    sets = _brute.as_sets(15, 40, **rel)
    for i in range(15):
        if not sets[i]:
            continue
        truth = [1 if j in sets[i] else 0 for j in range(40)]
        assert float(per.average_precision[i]) == pytest.approx(
            average_precision_score(truth, scores[i])
        )


def test_ties_are_pessimistic_and_match_sklearn(gen: torch.Generator) -> None:
    """Integer scores with many exact ties: AP still equals sklearn's, ranks count ties."""
    query = torch.randint(-2, 3, (12, 3), generator=gen).double()
    gallery = torch.randint(-2, 3, (30, 3), generator=gen).double()
    labels = {
        "query_labels": torch.randint(0, 3, (12,), generator=gen),
        "gallery_labels": torch.randint(0, 3, (30,), generator=gen),
    }
    per = retrieval_per_query(query, gallery, normalize=False, chunk_size=5, **labels)
    scores = (query @ gallery.T).numpy()
    sets = _brute.as_sets(12, 30, **labels)
    _check_against_brute(
        retrieval_per_query(query, gallery, normalize=False, k=KS, **labels),
        _brute.ranking(query, gallery, sets, False, False),
    )
    for i in range(12):
        if sets[i]:
            truth = [1 if j in sets[i] else 0 for j in range(30)]
            assert float(per.average_precision[i]) == pytest.approx(
                average_precision_score(truth, scores[i])
            )


def test_tie_with_the_positive_counts_against_it() -> None:
    """A negative tied with the positive ranks the positive second (both paths)."""
    query = torch.tensor([[1.0, 0.0]])
    gallery = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    one = retrieval_per_query(query, gallery, positives=torch.tensor([1]), k=1)
    sets = retrieval_per_query(query, gallery, relevant=[[1]], k=1)
    assert int(one.first_rank[0]) == int(sets.first_rank[0]) == 2
    assert float(one.hit_at_k[0, 0]) == float(sets.hit_at_k[0, 0]) == 0.0


@pytest.mark.parametrize("chunk_size", [1, 7, None])
def test_one_relevant_path_equals_sorted_path(gen: torch.Generator, chunk_size: int | None) -> None:
    """``positives`` (counting tiles) and singleton ``relevant`` sets (sorted rows) agree."""
    query, gallery = _embeddings(gen, q=31, g=17)
    pos = torch.randint(0, 17, (31,), generator=gen)
    a = retrieval_per_query(query, gallery, positives=pos, k=KS, chunk_size=chunk_size)
    b = retrieval_per_query(query, gallery, relevant=[[int(p)] for p in pos], k=KS)
    for x, y in zip(a[1:], b[1:], strict=True):
        torch.testing.assert_close(x, y)


@pytest.mark.parametrize("mode", ["hit", "fraction"])
def test_means_over_valid_queries(gen: torch.Generator, mode: str) -> None:
    """The summary is the mean over queries with a relevant item; wrappers agree with it."""
    query, gallery = _embeddings(gen)
    rel = _relevance("relevant", gen, query.shape[0], gallery.shape[0])
    sets = _brute.as_sets(query.shape[0], gallery.shape[0], **rel)
    ref = [r for r in _brute.ranking(query, gallery, sets, True, False) if r is not None]
    out = retrieval_metrics(query, gallery, k=KS, recall_mode=mode, chunk_size=3, **rel)  # type: ignore[arg-type]
    assert set(out) == {"recall@1", "recall@3", "recall@10", "mrr", "map"}
    for k in KS:
        expected = sum(_brute.recall(r, k, mode) for r in ref) / len(ref)
        assert out[f"recall@{k}"] == pytest.approx(expected)
        assert recall_at_k(query, gallery, k=k, mode=mode, **rel) == pytest.approx(expected)  # type: ignore[arg-type]
    assert out["mrr"] == pytest.approx(sum(r["rr"] for r in ref) / len(ref))
    assert out["map"] == pytest.approx(sum(r["ap"] for r in ref) / len(ref))
    assert mean_reciprocal_rank(query, gallery, **rel) == pytest.approx(out["mrr"])
    assert mean_average_precision(query, gallery, **rel) == pytest.approx(out["map"])


@pytest.mark.parametrize("kind", ["positives", "labels", "relevant"])
def test_accumulator_equals_functional(gen: torch.Generator, kind: str) -> None:
    """Batches of queries against a fixed gallery give the metrics of their concatenation."""
    query, gallery = _embeddings(gen, q=26)
    rel = _relevance(kind, gen, 26, 29)
    metric = RetrievalMetrics(gallery, gallery_labels=rel.get("gallery_labels"), k=KS, chunk_size=4)
    for lo, hi in [(0, 5), (5, 6), (6, 26)]:
        part = {}
        if kind == "positives":
            part["positives"] = rel["positives"][lo:hi]
        elif kind == "labels":
            part["query_labels"] = rel["query_labels"][lo:hi]
        else:
            part["relevant"] = rel["relevant"][lo:hi]
        metric.update(query[lo:hi], **part)
    expected = retrieval_metrics(query, gallery, k=KS, **rel)
    got = metric.compute()
    assert got.keys() == expected.keys()
    for key, value in expected.items():
        assert got[key] == pytest.approx(value)
    metric.reset()
    with pytest.raises(RuntimeError, match="update"):
        metric.compute()


def test_perfect_retrieval() -> None:
    """Each query equal to its positive: every metric is 1."""
    x = torch.eye(5)
    out = retrieval_metrics(x, x, positives=torch.arange(5), k=(1, 5))
    assert out == {"recall@1": 1.0, "recall@5": 1.0, "mrr": 1.0, "map": 1.0}


G = torch.randn(6, 3)
BAD = [
    pytest.param({}, "exactly one", id="no-relevance"),
    pytest.param(
        {"positives": torch.tensor([0, 1]), "relevant": [[0], [1]]}, "exactly one", id="two-forms"
    ),
    pytest.param({"positives": torch.tensor([0, 6])}, r"\[0, 6\)", id="positive-range"),
    pytest.param({"positives": torch.tensor([0])}, "positives", id="positives-length"),
    pytest.param({"positives": torch.tensor([0.0, 1.0])}, "positives", id="positives-float"),
    pytest.param({"query_labels": torch.tensor([0, 1])}, "gallery_labels", id="labels-missing"),
    pytest.param({"relevant": [[0]]}, "one entry per query", id="relevant-length"),
    pytest.param({"relevant": [[0], [7]]}, "relevant", id="relevant-range"),
    pytest.param({"relevant": [[0], [0.5]]}, r"relevant\[1\]", id="relevant-float"),
    pytest.param({"relevant": [[0], "a"]}, r"relevant\[1\]", id="relevant-string"),
    pytest.param({"relevant": torch.tensor([[0], [1]])}, "sequence", id="relevant-tensor"),
    pytest.param({"relevant": [[], []]}, "No query", id="no-relevant-at-all"),
    pytest.param({"positives": torch.tensor([0, 1]), "k": 0}, "`k`", id="k-zero"),
    pytest.param({"positives": torch.tensor([0, 1]), "k": ()}, "`k`", id="k-empty"),
    pytest.param(
        {"positives": torch.tensor([0, 1]), "exclude_self": True}, "exclude_self", id="self"
    ),
    pytest.param(
        {"positives": torch.tensor([0, 1]), "recall_mode": "all"}, "recall_mode", id="mode"
    ),
    pytest.param(
        {"positives": torch.tensor([0, 1]), "query": torch.randn(2, 4)}, "width", id="width"
    ),
    pytest.param(
        {"positives": torch.tensor([0, 1]), "gallery": torch.randn(6)}, "gallery", id="1d"
    ),
    pytest.param({"positives": torch.tensor([0, 1]), "chunk_size": 0}, "chunk_size", id="chunk"),
    pytest.param(
        {"positives": torch.tensor([0, 1]), "normalize": None}, "normalize", id="normalize"
    ),
]


@pytest.mark.parametrize(("change", "match"), BAD)
def test_bad_inputs_raise_clear_errors(change: dict, match: str) -> None:
    """Every bad argument is a ValueError that names it."""
    args = {"query": torch.randn(2, 3), "gallery": G} | change
    with pytest.raises(ValueError, match=match):
        retrieval_metrics(**args)


def test_accumulator_bad_inputs() -> None:
    """Label relevance needs gallery labels from the constructor; the gallery is checked."""
    metric = RetrievalMetrics(G)
    with pytest.raises(ValueError, match="gallery_labels"):
        metric.update(torch.randn(2, 3), query_labels=torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="gallery_labels"):
        RetrievalMetrics(G, gallery_labels=torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="gallery"):
        RetrievalMetrics(torch.randn(6))
