"""Generic loaders on small files the tests write: IDX, image folders, CIFAR batches, tensors."""

from __future__ import annotations

import gzip
import pickle
import struct
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import Dataset, IterableDataset, TensorDataset

from contrastkit.data import (
    DataSourceMissingError,
    from_dataset,
    from_tensors,
    load_cifar,
    load_image_folder,
    read_idx,
)

# --------------------------------------------------------------------------- IDX


def _idx_bytes(code: int, shape: tuple[int, ...], payload: bytes) -> bytes:
    """The IDX layout written by hand: 0, 0, type code, ndim, big-endian dims, data."""
    return bytes([0, 0, code, len(shape)]) + b"".join(struct.pack(">I", d) for d in shape) + payload


@pytest.mark.parametrize("compressed", [False, True], ids=["plain", "gzip"])
def test_read_idx_uint8_images(tmp_path: Path, compressed: bool) -> None:
    """A 3-D uint8 file (2 images 2x3) reads back with its shape, plain or gzip-compressed."""
    pixels = bytes(range(12))
    raw = _idx_bytes(0x08, (2, 2, 3), pixels)
    path = tmp_path / "images-idx3-ubyte"
    path.write_bytes(gzip.compress(raw) if compressed else raw)
    x = read_idx(path)
    assert x.dtype == torch.uint8
    assert x.shape == (2, 2, 3)
    assert x.flatten().tolist() == list(range(12))


@pytest.mark.parametrize(
    ("code", "fmt", "dtype"),
    [
        pytest.param(0x09, "b", torch.int8, id="int8"),
        pytest.param(0x0B, "h", torch.int16, id="int16"),
        pytest.param(0x0C, "i", torch.int32, id="int32"),
        pytest.param(0x0D, "f", torch.float32, id="float32"),
        pytest.param(0x0E, "d", torch.float64, id="float64"),
    ],
)
def test_read_idx_big_endian_types(tmp_path: Path, code: int, fmt: str, dtype: torch.dtype) -> None:
    """Multi-byte types are big-endian in the file and native in the tensor."""
    values = [-3, 0, 1, 100]
    path = tmp_path / "values.idx"
    path.write_bytes(_idx_bytes(code, (4,), struct.pack(f">4{fmt}", *values)))
    x = read_idx(path)
    assert x.dtype == dtype
    assert x.tolist() == values


@pytest.mark.parametrize(
    ("raw", "match"),
    [
        pytest.param(b"\x01\x00\x08\x01\x00\x00\x00\x01\x05", "not an IDX file", id="magic"),
        pytest.param(b"\x00\x00\x07\x01\x00\x00\x00\x01\x05", "type code", id="type"),
        pytest.param(_idx_bytes(0x08, (3,), b"\x01\x02"), "needs 3 data bytes", id="short"),
        pytest.param(b"\x00\x00\x08\x02\x00\x00", "truncated", id="header"),
    ],
)
def test_read_idx_rejects_broken_files(tmp_path: Path, raw: bytes, match: str) -> None:
    """A wrong magic, type code, header or data length is a ValueError naming the file."""
    path = tmp_path / "broken.idx"
    path.write_bytes(raw)
    with pytest.raises(ValueError, match=match):
        read_idx(path)


def test_read_idx_missing_file(tmp_path: Path) -> None:
    """A missing file is a FileNotFoundError."""
    with pytest.raises(FileNotFoundError):
        read_idx(tmp_path / "absent")


# --------------------------------------------------------------------------- image folder


def _write_folder(root: Path) -> None:
    """Two classes: 'cat' has two red 4x4 images, 'dog' one blue PNG with a transparent half."""
    image_mod = pytest.importorskip("PIL.Image", reason="needs `pip install pillow`")
    for k in range(2):
        (root / "cat").mkdir(parents=True, exist_ok=True)
        image_mod.new("RGB", (4, 4), (255, 0, 0)).save(root / "cat" / f"{k}.png")
    (root / "dog").mkdir()
    rgba = np.zeros((4, 4, 4), dtype=np.uint8)
    rgba[..., 2] = 255
    rgba[:, :2, 3] = 255  # left half opaque blue, right half transparent
    image_mod.fromarray(rgba, "RGBA").save(root / "dog" / "a.png")
    (root / "dog" / "notes.txt").write_text("not an image")


def test_image_folder_two_classes(tmp_path: Path) -> None:
    """Classes are the sorted sub-folders; RGB in [0, 1]; transparency becomes white."""
    _write_folder(tmp_path / "pets")
    data = load_image_folder(tmp_path / "pets")
    assert data.name == "pets"
    assert data.classes == ("cat", "dog")
    assert data.labels.tolist() == [0, 0, 1]
    assert data.images.shape == (3, 3, 4, 4)
    torch.testing.assert_close(data.images[0, :, 0, 0], torch.tensor([1.0, 0.0, 0.0]))
    torch.testing.assert_close(data.images[2, :, 0, 0], torch.tensor([0.0, 0.0, 1.0]))
    torch.testing.assert_close(data.images[2, :, 0, 3], torch.tensor([1.0, 1.0, 1.0]))


def test_image_folder_grayscale_and_resize(tmp_path: Path) -> None:
    """`grayscale` gives one channel; `size` resizes to (H, W)."""
    _write_folder(tmp_path / "pets")
    gray = load_image_folder(tmp_path / "pets", grayscale=True, size=(2, 3))
    assert gray.images.shape == (3, 1, 2, 3)
    # ITU-R 601 luma of pure red: 0.299 (Pillow rounds to 76/255)
    assert abs(float(gray.images[0, 0, 0, 0]) - 76 / 255) < 1e-6
    assert load_image_folder(tmp_path / "pets", size=8).images.shape == (3, 3, 8, 8)


def test_image_folder_errors(tmp_path: Path) -> None:
    """Different sizes without `size`, no class folder and a missing root are clear errors."""
    image_mod = pytest.importorskip("PIL.Image", reason="needs `pip install pillow`")
    _write_folder(tmp_path / "pets")
    image_mod.new("RGB", (5, 4)).save(tmp_path / "pets" / "dog" / "b.png")
    with pytest.raises(ValueError, match="pass `size`"):
        load_image_folder(tmp_path / "pets")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no class folders"):
        load_image_folder(tmp_path / "empty")
    with pytest.raises(FileNotFoundError, match="root"):
        load_image_folder(tmp_path / "absent")
    with pytest.raises(ValueError, match="size"):
        load_image_folder(tmp_path / "pets", size=0)


def test_image_folder_without_pillow(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without Pillow the error names `pip install pillow`."""
    import sys

    (tmp_path / "a").mkdir()
    monkeypatch.setitem(sys.modules, "PIL", None)
    with pytest.raises(DataSourceMissingError, match="pip install pillow"):
        load_image_folder(tmp_path)


# --------------------------------------------------------------------------- CIFAR


def _cifar_batch(labels: list[int], key: bytes = b"labels") -> dict[bytes, object]:
    n = len(labels)
    data = np.zeros((n, 3072), dtype=np.uint8)
    for i, y in enumerate(labels):
        data[i, :1024] = y  # red plane
        data[i, 1024:2048] = 255  # green plane
        data[i, 2048 + 31] = 7  # blue plane, row 0, column 31
    return {b"data": data, key: labels, b"batch_label": b"fake"}


def test_cifar10_layout(tmp_path: Path) -> None:
    """Five training batches are concatenated; planes become channels; names from the meta."""
    names = [f"class{i}".encode() for i in range(10)]
    (tmp_path / "batches.meta").write_bytes(pickle.dumps({b"label_names": names}))
    for b in range(1, 6):
        (tmp_path / f"data_batch_{b}").write_bytes(pickle.dumps(_cifar_batch([b, b + 1])))
    (tmp_path / "test_batch").write_bytes(pickle.dumps(_cifar_batch([9])))
    train = load_cifar(tmp_path)
    assert train.images.shape == (10, 3, 32, 32)
    assert train.labels.tolist() == [1, 2, 2, 3, 3, 4, 4, 5, 5, 6]
    assert train.classes[3] == "class3"
    assert train.name == "cifar10-train"
    assert float(train.images[0, 0, 5, 5]) == pytest.approx(1 / 255)
    assert float(train.images[0, 1, 5, 5]) == 1.0
    assert float(train.images[0, 2, 0, 31]) == pytest.approx(7 / 255)
    assert float(train.images[0, 2, 1, 0]) == 0.0
    test = load_cifar(tmp_path, "test")
    assert test.labels.tolist() == [9]


def test_cifar100_layout(tmp_path: Path) -> None:
    """CIFAR-100's `train`/`meta` files use the fine labels and names."""
    names = [f"fine{i}" for i in range(100)]
    (tmp_path / "meta").write_bytes(pickle.dumps({b"fine_label_names": names}))
    batch = _cifar_batch([42, 99], key=b"fine_labels")
    batch[b"coarse_labels"] = [1, 2]
    (tmp_path / "train").write_bytes(pickle.dumps(batch))
    data = load_cifar(tmp_path, "train")
    assert data.labels.tolist() == [42, 99]
    assert len(data.classes) == 100
    assert data.name == "cifar100-train"
    with pytest.raises(FileNotFoundError, match="test"):
        load_cifar(tmp_path, "test")


def test_cifar_missing_layout(tmp_path: Path) -> None:
    """A folder without CIFAR meta files is a FileNotFoundError; a bad split a ValueError."""
    with pytest.raises(FileNotFoundError, match="no CIFAR batches"):
        load_cifar(tmp_path)
    with pytest.raises(ValueError, match="split"):
        load_cifar(tmp_path, "valid")  # type: ignore[arg-type]


# --------------------------------------------------------------------------- tensors / datasets


def test_from_tensors_uint8_and_float() -> None:
    """uint8 pixels are divided by 255, (N, H, W) gains a channel, float32 in [0, 1] is kept."""
    pixels = torch.tensor([[[0, 255], [51, 102]]], dtype=torch.uint8).repeat(3, 1, 1)
    data = from_tensors(pixels, torch.tensor([0, 3, 1]), name="px")
    assert data.images.shape == (3, 1, 2, 2)
    torch.testing.assert_close(data.images[0, 0], torch.tensor([[0.0, 1.0], [0.2, 0.4]]))
    assert data.classes == ("0", "1", "2", "3")
    assert data.name == "px"
    floats = from_tensors(torch.rand(2, 3, 4, 4, dtype=torch.float64), torch.tensor([1, 0]))
    assert floats.images.dtype == torch.float32
    named = from_tensors(torch.rand(2, 1, 2, 2), torch.tensor([1, 0]), classes=["no", "yes"])
    assert named.classes == ("no", "yes")


@pytest.mark.parametrize(
    ("images", "labels", "match"),
    [
        pytest.param(torch.rand(2, 4), torch.tensor([0, 1]), "images", id="2d"),
        pytest.param(torch.rand(2, 1, 2, 2), torch.tensor([0.0, 1.0]), "integer", id="float-y"),
        pytest.param(torch.rand(2, 1, 2, 2), torch.tensor([0, 1, 1]), "one entry", id="len"),
        pytest.param(torch.ones(2, 1, 2, 2).long(), torch.tensor([0, 1]), "uint8", id="int64"),
        pytest.param(torch.full((2, 1, 2, 2), 3.0), torch.tensor([0, 1]), r"\[0, 1\]", id="range"),
        pytest.param(torch.rand(2, 1, 2, 2), torch.tensor([[0], [1]]), "1-D", id="2d-y"),
    ],
)
def test_from_tensors_rejects(images: torch.Tensor, labels: torch.Tensor, match: str) -> None:
    """Bad shapes, dtypes, lengths and ranges are ValueErrors."""
    with pytest.raises(ValueError, match=match):
        from_tensors(images, labels)


class _PilLike(Dataset[tuple[object, int]]):
    """A torchvision-like data set: PIL images (or HWC numpy arrays), int labels, `classes`."""

    classes = ("zero", "one")

    def __init__(self, use_pil: bool) -> None:
        self.use_pil = use_pil

    def __len__(self) -> int:
        return 4

    def __getitem__(self, i: int) -> tuple[object, int]:
        array = np.full((3, 5, 3), 51 * i, dtype=np.uint8)
        if self.use_pil:
            image_mod = pytest.importorskip("PIL.Image", reason="needs `pip install pillow`")
            return image_mod.fromarray(array), i % 2
        return array, i % 2


@pytest.mark.parametrize("use_pil", [True, False], ids=["pil", "numpy"])
def test_from_dataset_pil_and_numpy_items(use_pil: bool) -> None:
    """HWC images become CHW, uint8 is divided by 255, `classes` and the class name are used."""
    data = from_dataset(_PilLike(use_pil))
    assert data.images.shape == (4, 3, 3, 5)
    assert data.labels.tolist() == [0, 1, 0, 1]
    assert data.classes == ("zero", "one")
    assert data.name == "_PilLike"
    assert float(data.images[2].max()) == pytest.approx(0.4)


def test_from_dataset_tensor_items_and_limit() -> None:
    """Tensor items (0-d label tensors) work; `limit` stops early; `name` overrides."""
    x = torch.rand(6, 1, 3, 3)
    ds = TensorDataset(x, torch.tensor([2, 0, 1, 1, 0, 2]))
    data = from_dataset(ds, limit=4, name="mine")
    torch.testing.assert_close(data.images, x[:4])
    assert data.labels.tolist() == [2, 0, 1, 1]
    assert data.classes == ("0", "1", "2")
    assert data.name == "mine"


class _Stream(IterableDataset[tuple[torch.Tensor, int]]):
    def __iter__(self):  # type: ignore[no-untyped-def]
        for i in range(3):
            yield torch.zeros(4, 4), i


def test_from_dataset_iterable() -> None:
    """An iterable data set of (H, W) tensors gets a channel axis."""
    data = from_dataset(_Stream())
    assert data.images.shape == (3, 1, 4, 4)
    assert data.labels.tolist() == [0, 1, 2]


def test_from_dataset_rejects_bad_items() -> None:
    """Mixed shapes, non-pairs, float labels and empty data sets are ValueErrors."""
    mixed = [(torch.zeros(1, 2, 2), 0), (torch.zeros(1, 3, 3), 1)]
    with pytest.raises(ValueError, match="same shape"):
        from_dataset(mixed)
    with pytest.raises(ValueError, match="pair"):
        from_dataset([torch.zeros(1, 2, 2)])
    with pytest.raises(ValueError, match="label"):
        from_dataset([(torch.zeros(1, 2, 2), 0.5)])
    with pytest.raises(ValueError, match="no items"):
        from_dataset([])
    with pytest.raises(ValueError, match="limit"):
        from_dataset(mixed, limit=0)
    with pytest.raises(ValueError, match="image"):
        from_dataset([("not an image", 0)])
