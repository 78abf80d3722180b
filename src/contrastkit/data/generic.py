"""Your own images as :class:`~contrastkit.data.ImageData`: tensors, datasets, folders, IDX, CIFAR.

- :func:`from_tensors`: an ``(N, C, H, W)`` or ``(N, H, W)`` tensor (uint8 or float in
  ``[0, 1]``) and its labels;
- :func:`from_dataset`: any map-style or iterable torch ``Dataset`` of ``(image, label)``
  items (torchvision's data sets with or without ``ToTensor``);
- :func:`load_image_folder`: ``root/<class>/<image files>`` read with Pillow;
- :func:`read_idx`: the IDX format of MNIST and Fashion-MNIST (gzip or not);
- :func:`load_cifar`: the "python version" pickle batches of CIFAR-10 and CIFAR-100.
"""

from __future__ import annotations

import gzip
import os
import pickle
import struct
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Literal, get_args

import numpy as np
import torch
from torch import Tensor

from contrastkit.data._types import DataSourceMissingError, ImageData

PathLike = str | os.PathLike[str]

_IDX_DTYPES: dict[int, np.dtype[Any]] = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_IMAGE_SUFFIXES = {
    ".png",
    ".jpg",
    ".jpeg",
    ".bmp",
    ".gif",
    ".tif",
    ".tiff",
    ".webp",
    ".ppm",
    ".pgm",
}


def read_idx(path: PathLike) -> Tensor:
    """Read an IDX file (the format of MNIST and Fashion-MNIST), gzip-compressed or not.

    The header is two zero bytes, a type code (``0x08`` uint8, ``0x09`` int8, ``0x0B`` int16,
    ``0x0C`` int32, ``0x0D`` float32, ``0x0E`` float64), the number of dimensions and one
    big-endian uint32 per dimension; the big-endian data follows. Compression is detected from
    the content (the gzip magic bytes), not the file name.

    Args:
        path: The file.

    Returns:
        A tensor of the file's shape and type (uint8 for images and labels; multi-byte types in
        native byte order).

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: The header is not IDX or the data size does not match it.

    Example:
        >>> import os, struct, tempfile
        >>> path = os.path.join(tempfile.mkdtemp(), "labels-idx1-ubyte")
        >>> with open(path, "wb") as f:
        ...     _ = f.write(struct.pack(">HBBI", 0, 0x08, 1, 3) + bytes([7, 0, 9]))
        >>> read_idx(path)
        tensor([7, 0, 9], dtype=torch.uint8)
    """
    with open(path, "rb") as f:
        raw = f.read()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    if len(raw) < 4 or raw[:2] != b"\x00\x00" or raw[2] not in _IDX_DTYPES:
        raise ValueError(
            f"{path} is not an IDX file: it must start with two zero bytes and a type code in "
            f"{[hex(c) for c in _IDX_DTYPES]}; got {raw[:4]!r}."
        )
    dtype, ndim = _IDX_DTYPES[raw[2]], raw[3]
    if len(raw) < 4 + 4 * ndim:
        raise ValueError(f"{path}: the IDX header announces {ndim} dimensions but is truncated.")
    shape = struct.unpack(f">{ndim}I", raw[4 : 4 + 4 * ndim])
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    data = memoryview(raw)[4 + 4 * ndim :]
    if len(data) != expected:
        raise ValueError(
            f"{path}: the header's shape {shape} needs {expected} data bytes; the file has "
            f"{len(data)}."
        )
    array = np.frombuffer(data, dtype=dtype).reshape(shape)
    return torch.from_numpy(array.astype(dtype.newbyteorder("="), copy=True))


def _as_images(x: Tensor, what: str) -> Tensor:
    """uint8 -> float32 / 255; floating -> float32 (range checked by ImageData)."""
    if x.dtype == torch.uint8:
        return x.float().div_(255.0)
    if x.is_floating_point():
        return x.float()
    raise ValueError(
        f"{what} must be uint8 (0..255) or floating point in [0, 1]; got dtype {x.dtype}. "
        "Convert with x.to(torch.uint8) or x.float() / x.max()."
    )


def _default_classes(labels: Tensor) -> tuple[str, ...]:
    top = int(labels.max()) + 1 if labels.numel() else 0
    return tuple(str(c) for c in range(top))


def from_tensors(
    images: Tensor,
    labels: Tensor,
    *,
    classes: Sequence[str] | None = None,
    name: str = "tensors",
) -> ImageData:
    """Wrap image and label tensors as :class:`~contrastkit.data.ImageData`.

    Args:
        images: Shape ``(N, C, H, W)`` or ``(N, H, W)`` (one channel added); uint8 pixels
            (divided by 255) or floating point in ``[0, 1]`` (converted to float32).
        labels: Shape ``(N,)`` integer class ids ``>= 0``.
        classes: The class names; ``None``: ``"0"`` ... ``str(max(labels))``.
        name: The data set's name.

    Returns:
        The :class:`~contrastkit.data.ImageData`.

    Raises:
        ValueError: Wrong shapes, dtypes, lengths or value ranges.

    Example:
        >>> import torch
        >>> pixels = torch.full((4, 5, 5), 255, dtype=torch.uint8)
        >>> data = from_tensors(pixels, torch.tensor([0, 2, 1, 2]))
        >>> data.images.shape, float(data.images.max()), data.classes
        (torch.Size([4, 1, 5, 5]), 1.0, ('0', '1', '2'))
    """
    if not isinstance(images, Tensor) or images.dim() not in (3, 4):
        got = f"shape {tuple(images.shape)}" if isinstance(images, Tensor) else type(images)
        raise ValueError(f"`images` must be a tensor (N, C, H, W) or (N, H, W); got {got}.")
    if not isinstance(labels, Tensor) or labels.dim() != 1:
        got = f"shape {tuple(labels.shape)}" if isinstance(labels, Tensor) else type(labels)
        raise ValueError(f"`labels` must be a 1-D tensor of class ids (N,); got {got}.")
    if labels.is_floating_point() or labels.is_complex() or labels.dtype == torch.bool:
        raise ValueError(f"`labels` must hold integer class ids; got dtype {labels.dtype}.")
    if labels.shape[0] != images.shape[0]:
        raise ValueError(
            f"`labels` must have one entry per image: {images.shape[0]} images but "
            f"{labels.shape[0]} labels."
        )
    x = _as_images(images if images.dim() == 4 else images.unsqueeze(1), "`images`")
    y = labels.long()
    names = _default_classes(y) if classes is None else tuple(classes)
    return ImageData(x, y, names, name)


def _item_to_chw(image: object, index: int) -> Tensor:
    """One data set item's image (tensor CHW/HW, numpy HWC/HW or PIL image) as a CHW tensor."""
    if isinstance(image, Tensor):
        x = image.detach().cpu()
        if x.dim() == 2:
            x = x.unsqueeze(0)
    else:
        try:
            array = np.asarray(image)
        except Exception as err:
            raise ValueError(
                f"Item {index}: the image must be a tensor, a numpy array or a PIL image; got "
                f"{type(image).__name__}."
            ) from err
        if array.dtype == object or array.ndim not in (2, 3):
            raise ValueError(
                f"Item {index}: the image must be a tensor (C, H, W), a numpy array (H, W[, C]) "
                f"or a PIL image; got {type(image).__name__}."
            )
        x = torch.from_numpy(np.array(array))  # a writable copy (PIL arrays are read-only)
        x = x.unsqueeze(0) if x.dim() == 2 else x.permute(2, 0, 1)
    if x.dim() != 3:
        raise ValueError(
            f"Item {index}: the image must be (C, H, W) or (H, W); got shape {tuple(x.shape)}."
        )
    return x


def _items(dataset: object) -> Iterable[Any]:
    if hasattr(dataset, "__len__") and hasattr(dataset, "__getitem__"):
        return (dataset[i] for i in range(len(dataset)))
    if isinstance(dataset, Iterable):
        return dataset
    raise ValueError(
        "`dataset` must be a map-style (len + indexing) or iterable torch Dataset of "
        f"(image, label) items; got {type(dataset).__name__}."
    )


def from_dataset(
    dataset: object, *, limit: int | None = None, name: str | None = None
) -> ImageData:
    """Collect a torch ``Dataset`` of ``(image, label)`` items into an ``ImageData``.

    Works with map-style (``len`` and indexing) and iterable data sets, and with torchvision's
    data sets as they are (PIL images) or with ``ToTensor()`` (float CHW tensors). Images may
    be tensors ``(C, H, W)`` / ``(H, W)``, numpy arrays ``(H, W[, C])`` or PIL images; uint8
    pixels are divided by 255. Every image must have the same shape.

    Args:
        dataset: The data set; its ``classes`` attribute (torchvision) names the classes if
            present.
        limit: Take only the first ``limit`` items.
        name: The data set's name; ``None``: the data set's class name.

    Returns:
        The :class:`~contrastkit.data.ImageData`.

    Raises:
        ValueError: An item is not ``(image, label)``, or images differ in shape.

    Example:
        >>> import torch
        >>> from torch.utils.data import TensorDataset
        >>> ds = TensorDataset(torch.rand(5, 3, 4, 4), torch.tensor([0, 1, 1, 0, 1]))
        >>> data = from_dataset(ds, limit=3)
        >>> len(data), data.images.shape[1:], data.name
        (3, torch.Size([3, 4, 4]), 'TensorDataset')
    """
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise ValueError(f"`limit` must be None (everything) or an int >= 1; got {limit!r}.")
    images: list[Tensor] = []
    labels: list[int] = []
    for i, item in enumerate(_items(dataset)):
        if limit is not None and i >= limit:
            break
        if not isinstance(item, tuple | list) or len(item) < 2:
            raise ValueError(
                f"Item {i} of `dataset` must be an (image, label) pair; got {type(item).__name__}."
            )
        x = _item_to_chw(item[0], i)
        if images and x.shape != images[0].shape:
            raise ValueError(
                f"Every image must have the same shape; item 0 is {tuple(images[0].shape)} but "
                f"item {i} is {tuple(x.shape)}. Resize them in the data set's transform."
            )
        label = item[1]
        if isinstance(label, Tensor) and label.numel() == 1 and not label.is_floating_point():
            label = int(label.item())
        if isinstance(label, np.integer):
            label = int(label)
        if isinstance(label, bool) or not isinstance(label, int):
            raise ValueError(f"Item {i}: the label must be an int class id; got {label!r:.40}.")
        images.append(x)
        labels.append(label)
    if not images:
        raise ValueError("`dataset` yielded no items.")
    y = torch.tensor(labels, dtype=torch.int64)
    declared = getattr(dataset, "classes", None)
    classes = (
        tuple(str(c) for c in declared)
        if isinstance(declared, Sequence) and not isinstance(declared, str)
        else None
    )
    return from_tensors(
        torch.stack(images),
        y,
        classes=classes,
        name=name if name is not None else type(dataset).__name__,
    )


def _pillow() -> Any:
    try:
        from PIL import Image
    except ImportError as err:
        raise DataSourceMissingError(
            "Pillow", "the Python package 'PIL'", "pip install pillow"
        ) from err
    return Image


def _to_array(image: Any, grayscale: bool, size: tuple[int, int] | None, Image: Any) -> Any:
    """A PIL image -> uint8 array (H, W) or (H, W, 3); transparency composited on white."""
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        background.alpha_composite(rgba)
        image = background
    image = image.convert("L" if grayscale else "RGB")
    if size is not None:
        image = image.resize((size[1], size[0]), Image.Resampling.BILINEAR)
    return np.asarray(image)


def load_image_folder(
    root: PathLike, *, size: int | tuple[int, int] | None = None, grayscale: bool = False
) -> ImageData:
    """Read ``root/<class name>/<image files>`` (torchvision's ``ImageFolder`` layout) with Pillow.

    Classes are the sub-folders of ``root`` in sorted order; files with a usual image suffix
    (png, jpg, jpeg, bmp, gif, tif, tiff, webp, ppm, pgm) are read in sorted order.
    Transparent pixels are composited on white.

    Args:
        root: The folder.
        size: Resize every image to ``size x size`` or ``(H, W)`` (bilinear); ``None`` keeps the
            sizes, which must then all agree.
        grayscale: One channel (``"L"``) instead of three (``"RGB"``).

    Returns:
        :class:`~contrastkit.data.ImageData` named after the folder, images ``(N, 1 or 3, H, W)``.

    Raises:
        FileNotFoundError: ``root`` is not a folder.
        ValueError: No class folder or no image, or sizes differ and ``size`` is ``None``.
        DataSourceMissingError: Pillow is missing (``pip install pillow``).
    """
    folder = Path(root)
    if not folder.is_dir():
        raise FileNotFoundError(f"`root` must be a folder of class folders; {folder} is not one.")
    if size is not None:
        pair = (size, size) if isinstance(size, int) else tuple(size)
        if len(pair) != 2 or not all(
            isinstance(s, int) and not isinstance(s, bool) and s >= 1 for s in pair
        ):
            raise ValueError(f"`size` must be None, an int >= 1 or (H, W); got {size!r}.")
        hw: tuple[int, int] | None = (pair[0], pair[1])
    else:
        hw = None
    Image = _pillow()
    classes = sorted(p.name for p in folder.iterdir() if p.is_dir())
    if not classes:
        raise ValueError(f"{folder} has no class folders; expected root/<class>/<images>.")
    arrays: list[Any] = []
    labels: list[int] = []
    for c, cls in enumerate(classes):
        for file in sorted((folder / cls).iterdir()):
            if file.suffix.lower() not in _IMAGE_SUFFIXES:
                continue
            with Image.open(file) as image:
                array = _to_array(image, grayscale, hw, Image)
            if arrays and array.shape != arrays[0].shape:
                raise ValueError(
                    f"{file} has shape {array.shape} but the first image has "
                    f"{arrays[0].shape}; pass `size` to resize every image."
                )
            arrays.append(array)
            labels.append(c)
    if not arrays:
        raise ValueError(
            f"No image files under {folder}/<class>/ (suffixes {sorted(_IMAGE_SUFFIXES)})."
        )
    x = torch.from_numpy(np.stack(arrays))
    x = x.unsqueeze(1) if x.dim() == 3 else x.permute(0, 3, 1, 2).contiguous()
    return from_tensors(x, torch.tensor(labels), classes=classes, name=folder.name)


def _unpickle(path: Path) -> dict[str, Any]:
    with path.open("rb") as f:
        raw = pickle.load(f, encoding="bytes")
    if not isinstance(raw, dict):
        raise ValueError(f"{path} must hold a dict (a CIFAR batch); got {type(raw).__name__}.")
    return {k.decode() if isinstance(k, bytes) else str(k): v for k, v in raw.items()}


def _names(values: Sequence[Any]) -> tuple[str, ...]:
    return tuple(v.decode() if isinstance(v, bytes) else str(v) for v in values)


def load_cifar(root: PathLike, split: Literal["train", "test"] = "train") -> ImageData:
    """CIFAR-10 or CIFAR-100 from the "python version" pickle batches.

    CIFAR-10 (``cifar-10-batches-py``): ``data_batch_1`` ... ``data_batch_5``, ``test_batch``
    and ``batches.meta``. CIFAR-100 (``cifar-100-python``): ``train``, ``test`` and ``meta``;
    its 100 fine labels are used. Each batch holds ``data`` (``N x 3072`` uint8, the red, green
    and blue planes of a 32x32 image) and the labels. Pickle runs code from the file: load
    only batches you trust.

    Args:
        root: The extracted folder.
        split: ``"train"`` or ``"test"``.

    Returns:
        :class:`~contrastkit.data.ImageData` ``"cifar10-<split>"`` or ``"cifar100-<split>"``,
        images ``(N, 3, 32, 32)``.

    Raises:
        FileNotFoundError: ``root`` holds neither layout.
    """
    if split not in get_args(Literal["train", "test"]):
        raise ValueError(f"`split` must be 'train' or 'test'; got {split!r}.")
    folder = Path(root)
    if (folder / "batches.meta").exists():
        files = sorted(folder.glob("data_batch_*")) if split == "train" else [folder / "test_batch"]
        classes = _names(_unpickle(folder / "batches.meta")["label_names"])
        key, name = "labels", "cifar10"
    elif (folder / "meta").exists():
        files = [folder / split]
        classes = _names(_unpickle(folder / "meta")["fine_label_names"])
        key, name = "fine_labels", "cifar100"
    else:
        raise FileNotFoundError(
            f"{folder} holds no CIFAR batches: expected batches.meta (CIFAR-10) or meta "
            "(CIFAR-100) from the 'python version' archive."
        )
    if not files or not all(f.exists() for f in files):
        raise FileNotFoundError(
            f"{folder} lacks the {split} batch files ({[f.name for f in files]})."
        )
    data: list[np.ndarray[Any, Any]] = []
    labels: list[int] = []
    for file in files:
        batch = _unpickle(file)
        data.append(np.asarray(batch["data"], dtype=np.uint8).reshape(-1, 3, 32, 32))
        labels.extend(int(v) for v in batch[key])
    x = torch.from_numpy(np.concatenate(data))
    return from_tensors(x, torch.tensor(labels), classes=classes, name=f"{name}-{split}")
