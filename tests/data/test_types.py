"""ImageData / PairedData: validation on construction, subset, seeded (stratified) split."""

from __future__ import annotations

import pickle

import pytest
import torch

from contrastkit.data import DataSourceMissingError, ImageData, PairedData


def _images(n: int = 12, classes: int = 3) -> ImageData:
    x = torch.arange(n, dtype=torch.float32).div(n).reshape(n, 1, 1, 1).expand(n, 1, 2, 2)
    y = torch.arange(n) % classes
    return ImageData(x.contiguous(), y, tuple("abcdefgh"[:classes]), "toy")


def _paired(n: int = 10, labelled: bool = True) -> PairedData:
    views: dict[str, torch.Tensor | list[str]] = {
        "text": [f"item {i}" for i in range(n)],
        "vec": torch.arange(n, dtype=torch.float32)[:, None].repeat(1, 3),
    }
    if labelled:
        return PairedData(views, torch.arange(n) % 2, ("even", "odd"), "toy")
    return PairedData(views, None, (), "toy")


# --------------------------------------------------------------------------- ImageData


def test_image_data_fields_and_len() -> None:
    """A valid ImageData keeps its fields and reports N as its length."""
    data = _images()
    assert len(data) == 12
    assert data.classes == ("a", "b", "c")
    assert "toy" in repr(data)
    assert "(12, 1, 2, 2)" in repr(data)


@pytest.mark.parametrize(
    ("images", "labels", "match"),
    [
        pytest.param(torch.zeros(4, 2, 2), torch.zeros(4, dtype=torch.long), "C, H, W", id="3d"),
        pytest.param(
            torch.zeros(4, 1, 2, 2, dtype=torch.float64), torch.zeros(4).long(), "float32", id="f64"
        ),
        pytest.param(
            torch.zeros(4, 1, 2, 2, dtype=torch.uint8), torch.zeros(4).long(), "float32", id="uint8"
        ),
        pytest.param(torch.full((4, 1, 2, 2), 2.0), torch.zeros(4).long(), r"\[0, 1\]", id="range"),
        pytest.param(
            torch.full((4, 1, 2, 2), float("nan")), torch.zeros(4).long(), r"\[0, 1\]", id="nan"
        ),
        pytest.param(torch.zeros(4, 1, 2, 2), torch.zeros(3).long(), r"\(4,\)", id="length"),
        pytest.param(
            torch.zeros(4, 1, 2, 2), torch.zeros(4, dtype=torch.int32), "int64", id="int32"
        ),
        pytest.param(
            torch.zeros(4, 1, 2, 2), torch.tensor([0, 1, 2, 0]), r"\[0, 2\)", id="label>=C"
        ),
        pytest.param(
            torch.zeros(4, 1, 2, 2), torch.tensor([0, -1, 1, 0]), r"\[0, 2\)", id="label<0"
        ),
    ],
)
def test_image_data_rejects_bad_fields(
    images: torch.Tensor, labels: torch.Tensor, match: str
) -> None:
    """Wrong shape, dtype, range, length or label id raises a ValueError naming the problem."""
    with pytest.raises(ValueError, match=match):
        ImageData(images, labels, ("a", "b"), "bad")


def test_image_data_rejects_non_str_classes() -> None:
    """Class names must be a tuple of str."""
    with pytest.raises(ValueError, match="classes"):
        ImageData(torch.zeros(2, 1, 2, 2), torch.zeros(2).long(), (0, 1), "bad")  # type: ignore[arg-type]


def test_image_data_is_frozen() -> None:
    """Fields cannot be reassigned."""
    data = _images()
    with pytest.raises(AttributeError):
        data.name = "other"  # type: ignore[misc]


def test_image_subset_by_positions_mask_and_negative() -> None:
    """`subset` takes rows in the order given; masks and negative positions work."""
    data = _images()
    sub = data.subset([5, 0, -1])
    assert sub.labels.tolist() == [2, 0, 2]
    torch.testing.assert_close(sub.images, data.images[[5, 0, 11]])
    mask = data.labels == 1
    assert data.subset(mask).labels.tolist() == [1, 1, 1, 1]
    assert len(data.subset(torch.tensor([], dtype=torch.long))) == 0
    assert len(data.subset([])) == 0


@pytest.mark.parametrize(
    "index", [[12], [-13], torch.tensor([0.0]), torch.tensor([True, False]), "ab", 3]
)
def test_image_subset_rejects_bad_index(index: object) -> None:
    """Out-of-range positions, float tensors, wrong-length masks and non-sequences are refused."""
    with pytest.raises(ValueError, match="index"):
        _images().subset(index)  # type: ignore[arg-type]


def test_image_split_is_stratified_disjoint_and_complete() -> None:
    """Each class loses round(f * n_c) rows to the test part; parts are disjoint and cover all."""
    n = 40
    x = torch.arange(n, dtype=torch.float32).div(n).reshape(n, 1, 1, 1)
    y = torch.tensor([0] * 20 + [1] * 12 + [2] * 8)
    data = ImageData(x, y, ("a", "b", "c"), "toy")
    train, test = data.split(0.25, seed=3)
    assert torch.bincount(test.labels, minlength=3).tolist() == [5, 3, 2]
    assert torch.bincount(train.labels, minlength=3).tolist() == [15, 9, 6]
    ids = torch.cat([train.images.flatten(), test.images.flatten()]).mul(n).round().long()
    assert sorted(ids.tolist()) == list(range(n))
    # each image keeps its label
    for part in (train, test):
        original = part.images.flatten().mul(n).round().long()
        assert torch.equal(y[original], part.labels)


def test_image_split_shuffles_sorted_rows() -> None:
    """Sorted-by-label rows come out interleaved (both parts shuffled)."""
    y = torch.arange(100) // 10
    data = ImageData(torch.zeros(100, 1, 1, 1), y, tuple("0123456789"), "sorted")
    train, test = data.split(0.2, seed=0)
    assert not torch.equal(train.labels, train.labels.sort().values)
    assert not torch.equal(test.labels, test.labels.sort().values)


def test_image_split_depends_on_seed_only() -> None:
    """The same seed gives the same split (whatever the global RNG); another seed differs."""
    data = _images(30, 3)
    torch.manual_seed(1)
    a_train, a_test = data.split(0.3, seed=7)
    torch.manual_seed(2)
    b_train, b_test = data.split(0.3, seed=7)
    _, c_test = data.split(0.3, seed=8)
    assert torch.equal(a_test.images, b_test.images)
    assert torch.equal(a_train.labels, b_train.labels)
    assert not torch.equal(a_test.images, c_test.images)


def test_image_split_keeps_one_training_row_per_class() -> None:
    """A singleton class stays in training; a split that leaves no test row is an error."""
    data = ImageData(torch.zeros(3, 1, 1, 1), torch.tensor([0, 0, 1]), ("a", "b"), "tiny")
    train, test = data.split(0.5)
    assert sorted(train.labels.tolist()) == [0, 1]
    assert test.labels.tolist() == [0]
    with pytest.raises(ValueError, match="test_fraction"):
        data.split(0.1)


@pytest.mark.parametrize("fraction", [0.0, 1.0, -0.1, True, "0.2"])
def test_split_rejects_bad_fraction(fraction: object) -> None:
    """test_fraction must be a number strictly between 0 and 1."""
    with pytest.raises(ValueError, match="test_fraction"):
        _images().split(fraction)  # type: ignore[arg-type]


def test_split_rejects_bad_seed() -> None:
    """The seed must be a non-negative int."""
    with pytest.raises(ValueError, match="seed"):
        _images().split(0.25, seed=-1)


# --------------------------------------------------------------------------- PairedData


def test_paired_data_fields_and_len() -> None:
    """A valid PairedData reports N and summarizes its views."""
    data = _paired()
    assert len(data) == 10
    assert "'text': '10 str'" in repr(data)
    assert "(10, 3)" in repr(data)


@pytest.mark.parametrize(
    ("views", "labels", "classes", "match"),
    [
        pytest.param({}, None, (), "non-empty", id="empty"),
        pytest.param({"a": ["x", "y"], "b": ["x"]}, None, (), "same number of rows", id="rows"),
        pytest.param({"a": torch.zeros(2, 2), "b": ["x"]}, None, (), "same number", id="mixed"),
        pytest.param({"a": torch.zeros(2, dtype=torch.int64)}, None, (), "float32", id="int-view"),
        pytest.param({"a": torch.zeros(())}, None, (), "float32", id="0-d"),
        pytest.param({"a": ["x", 1]}, None, (), "only str", id="non-str"),
        pytest.param({"a": ("x", "y")}, None, (), "float32 tensor", id="tuple"),
        pytest.param({"a": ["x", "y"]}, None, ("c",), "must be ()", id="classes-no-labels"),
        pytest.param({"a": ["x", "y"]}, torch.tensor([0, 1, 0]), ("c", "d"), r"\(2,\)", id="len"),
        pytest.param({"a": ["x", "y"]}, torch.tensor([0, 2]), ("c", "d"), r"\[0, 2\)", id="id"),
    ],
)
def test_paired_data_rejects_bad_fields(
    views: dict[str, object], labels: torch.Tensor | None, classes: tuple[str, ...], match: str
) -> None:
    """Inconsistent views, labels or classes raise a ValueError naming the problem."""
    with pytest.raises(ValueError, match=match):
        PairedData(views, labels, classes, "bad")  # type: ignore[arg-type]


def test_paired_subset_keeps_rows_aligned() -> None:
    """`subset` picks the same rows from string and tensor views and from the labels."""
    data = _paired()
    sub = data.subset(torch.tensor([7, 2]))
    assert sub.views["text"] == ["item 7", "item 2"]
    vec = sub.views["vec"]
    assert isinstance(vec, torch.Tensor)
    assert vec[:, 0].tolist() == [7.0, 2.0]
    assert sub.labels is not None
    assert sub.labels.tolist() == [1, 0]
    assert sub.classes == ("even", "odd")


def test_paired_split_stratified_and_aligned() -> None:
    """A labelled split is stratified, and every row stays aligned across views."""
    data = _paired(20)
    train, test = data.split(0.2, seed=1)
    assert test.labels is not None
    assert torch.bincount(test.labels).tolist() == [2, 2]
    for part in (train, test):
        vec = part.views["vec"]
        assert isinstance(vec, torch.Tensor)
        assert part.views["text"] == [f"item {int(v)}" for v in vec[:, 0]]
        assert part.labels is not None
        assert (vec[:, 0].long() % 2).tolist() == part.labels.tolist()


def test_paired_split_unlabelled_is_a_plain_seeded_split() -> None:
    """Without labels: round(f * N) rows (at least one) in the test part, disjoint, seeded."""
    data = _paired(10, labelled=False)
    train, test = data.split(0.25, seed=0)
    assert (len(train), len(test)) == (7, 3)
    assert sorted(train.views["text"] + test.views["text"]) == sorted(data.views["text"])
    assert train.labels is None
    assert test.labels is None
    assert test.classes == ()
    again = data.split(0.25, seed=0)[1]
    assert again.views["text"] == test.views["text"]
    assert len(data.split(0.01)[1]) == 1  # at least one test row


def test_paired_split_needs_two_rows() -> None:
    """A single item cannot be split."""
    with pytest.raises(ValueError, match="at least 2 rows"):
        _paired(1, labelled=False).split()


# --------------------------------------------------------------------------- error


def test_missing_error_message_names_install_command() -> None:
    """The error is a FileNotFoundError whose message names the path and the command."""
    err = DataSourceMissingError(
        "WordNet 3.0", "/nowhere/data.noun", "apt-get install -y wordnet-base"
    )
    assert isinstance(err, FileNotFoundError)
    assert "/nowhere/data.noun" in str(err)
    assert str(err).endswith("Install it with: apt-get install -y wordnet-base")
    assert err.install == "apt-get install -y wordnet-base"
    copy = pickle.loads(pickle.dumps(err))
    assert str(copy) == str(err)
