"""The linear probe solves scikit-learn's logistic regression; splits are seeded and stratified."""

from __future__ import annotations

import pytest
import torch
from sklearn.linear_model import LogisticRegression

from contrastkit.metrics import LinearProbe, linear_probe_accuracy, train_test_split


def _blobs(gen: torch.Generator, n: int = 240, d: int = 8, classes: int = 4, spread: float = 1.5):
    """Overlapping Gaussian classes with features of very different scales."""
    means = torch.randn(classes, d, generator=gen, dtype=torch.float64) * spread
    y = torch.randint(0, classes, (n,), generator=gen)
    x = means[y] + torch.randn(n, d, generator=gen, dtype=torch.float64)
    return x * torch.logspace(-2, 2, d, dtype=torch.float64) + 3.0, y


def _standardize(train: torch.Tensor, other: torch.Tensor) -> tuple:
    mean, std = train.mean(0), train.std(0, unbiased=False)
    return ((train - mean) / std).numpy(), ((other - mean) / std).numpy()


@pytest.mark.parametrize("weight_decay", [1e-3, 1e-2, 1e-1])
def test_probe_matches_sklearn_logistic_regression(
    gen: torch.Generator, weight_decay: float
) -> None:
    """Same objective (C = 1 / (lambda N)) on standardized features: same probabilities."""
    x, y = _blobs(gen)
    xt, yt = _blobs(gen)
    probe = LinearProbe(weight_decay=weight_decay).fit(x, y)
    a, b = _standardize(x, xt)
    ref = LogisticRegression(C=1.0 / (weight_decay * x.shape[0]), tol=1e-12, max_iter=10_000)
    ref.fit(a, y.numpy())
    torch.testing.assert_close(
        probe.predict_proba(xt), torch.from_numpy(ref.predict_proba(b)), atol=1e-5, rtol=0
    )
    acc = probe.score(xt, yt)
    assert acc == pytest.approx(ref.score(b, yt.numpy()), abs=1.0 / len(yt))


def test_accuracy_with_given_split_matches_sklearn(gen: torch.Generator) -> None:
    """``linear_probe_accuracy`` on a given split, within one test sample of sklearn's."""
    x, y = _blobs(gen, n=300)
    xt, yt = _blobs(gen, n=150)
    got = linear_probe_accuracy(x, y, xt, yt, weight_decay=1e-3)
    a, b = _standardize(x, xt)
    ref = LogisticRegression(C=1.0 / (1e-3 * x.shape[0]), tol=1e-12, max_iter=10_000)
    expected = ref.fit(a, y.numpy()).score(b, yt.numpy())
    assert got == pytest.approx(expected, abs=1.0 / len(yt))


def test_probe_is_deterministic(gen: torch.Generator) -> None:
    """The same inputs and seed give the same accuracy, bit for bit."""
    x, y = _blobs(gen)
    first = linear_probe_accuracy(x.float(), y, seed=3)
    second = linear_probe_accuracy(x.float(), y, seed=3)
    assert first == second


def test_separable_data_is_classified_perfectly(gen: torch.Generator) -> None:
    """Far-apart classes give accuracy 1 on held-out rows (float32)."""
    x, y = _blobs(gen, spread=30.0)
    assert linear_probe_accuracy(x.float(), y, test_fraction=0.3) == 1.0


def test_constant_feature_and_unseen_class(gen: torch.Generator) -> None:
    """A constant column is only centered; a test class unseen in training is always wrong."""
    x, y = _blobs(gen, spread=30.0, classes=2)
    x[:, 0] = 1.0
    probe = LinearProbe().fit(x, y)
    assert torch.isfinite(probe.logits(x)).all()
    assert probe.score(x[:10], torch.full((10,), 5)) == 0.0


def test_split_is_seeded_stratified_and_complete() -> None:
    """Same seed, same split; each class split in proportion; parts disjoint and in order."""
    x = torch.arange(100.0)[:, None]
    y = torch.tensor([0] * 60 + [1] * 30 + [2] * 10)
    a = train_test_split(x, y, test_fraction=0.2, seed=1)
    b = train_test_split(x, y, test_fraction=0.2, seed=1)
    c = train_test_split(x, y, test_fraction=0.2, seed=2)
    assert all(torch.equal(p, q) for p, q in zip(a, b, strict=True))
    assert not torch.equal(a[2], c[2])
    train_x, train_y, test_x, test_y = a
    assert torch.bincount(test_y).tolist() == [12, 6, 2]
    rows = torch.cat([train_x, test_x]).flatten().sort().values
    assert torch.equal(rows, x.flatten())
    assert torch.equal(train_x.flatten(), train_x.flatten().sort().values)
    assert torch.equal(y[train_x.flatten().long()], train_y)


def test_split_keeps_a_training_sample_of_each_class() -> None:
    """A class with one sample stays in training; without stratification the sizes are global."""
    x, y = torch.arange(5.0)[:, None], torch.tensor([0, 0, 0, 0, 1])
    _, train_y, _, test_y = train_test_split(x, y, test_fraction=0.5)
    assert 1 in train_y.tolist()
    assert 1 not in test_y.tolist()
    _, _, test_x, _ = train_test_split(x, y, test_fraction=0.01, stratify=False)
    assert test_x.shape[0] == 1


BAD = [
    pytest.param(
        lambda: LinearProbe().fit(torch.randn(4, 2), torch.zeros(4, dtype=torch.long)),
        "2 classes",
        id="one-class",
    ),
    pytest.param(lambda: LinearProbe(weight_decay=-1.0), "weight_decay", id="weight-decay"),
    pytest.param(lambda: LinearProbe(max_iter=0), "max_iter", id="max-iter"),
    pytest.param(
        lambda: linear_probe_accuracy(
            torch.randn(4, 2), torch.tensor([0, 1, 0, 1]), torch.randn(2, 2)
        ),
        "test_y",
        id="missing-test-y",
    ),
    pytest.param(
        lambda: linear_probe_accuracy(
            torch.randn(4, 2), torch.tensor([0, 1, 0, 1]), torch.randn(2, 3), torch.tensor([0, 1])
        ),
        "width",
        id="width",
    ),
    pytest.param(
        lambda: linear_probe_accuracy(
            torch.randn(4, 2), torch.tensor([0, 1, 0, 1]), torch.randn(2, 2), torch.tensor([0])
        ),
        "test_y",
        id="test-y-length",
    ),
    pytest.param(
        lambda: train_test_split(torch.randn(4, 2), torch.tensor([0, 1, 0, 1]), test_fraction=1.0),
        "test_fraction",
        id="fraction",
    ),
    pytest.param(
        lambda: train_test_split(torch.randn(4, 2), torch.tensor([0, 1, 0, 1]), seed=-1),
        "seed",
        id="seed",
    ),
    pytest.param(
        lambda: train_test_split(torch.randn(4, 2), torch.tensor([0, 1])), "labels", id="labels"
    ),
    pytest.param(
        lambda: LinearProbe().fit(torch.randn(4, 2), torch.tensor([0.0, 1.0, 0.0, 1.0])),
        "`y`",
        id="float-labels",
    ),
]


@pytest.mark.parametrize(("call", "match"), BAD)
def test_bad_inputs_raise_clear_errors(call, match: str) -> None:  # type: ignore[no-untyped-def]
    """Every bad argument is a ValueError that names it."""
    with pytest.raises(ValueError, match=match):
        call()


def test_unfitted_probe_and_width_change(gen: torch.Generator) -> None:
    """Predicting before fit is a RuntimeError; another feature width a ValueError."""
    with pytest.raises(RuntimeError, match="fit"):
        LinearProbe().predict(torch.randn(2, 3))
    probe = LinearProbe().fit(torch.randn(6, 3, generator=gen), torch.tensor([0, 1] * 3))
    with pytest.raises(ValueError, match="width"):
        probe.predict(torch.randn(2, 4))
