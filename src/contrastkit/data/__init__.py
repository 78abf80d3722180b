"""Real data shipped in installed packages, your own data, and two-view augmentations.

Two containers (:mod:`~contrastkit.data._types`):

- :class:`ImageData`: images ``(N, C, H, W)`` float32 in ``[0, 1]`` with labels, for
  SimCLR-style runs;
- :class:`PairedData`: row-aligned views or modalities of ``N`` items (tensors or strings),
  for CLIP-style and multi-view runs.

Real data sets (:mod:`~contrastkit.data.sources`), read from the files a package install puts
on disk, never downloaded; a missing one raises :class:`DataSourceMissingError` naming the
install command. :data:`DATASETS` lists them and :func:`load` loads one by id:
:func:`load_digits` (the default, from scikit-learn), :func:`load_mnist5k`,
:func:`load_fashion_mnist`, :func:`load_multifeature`, :func:`load_cmudict`,
:func:`load_wordnet`, :func:`load_emoji` and :func:`load_chatterbot`.

Your own data (:mod:`~contrastkit.data.generic`): :func:`from_tensors`, :func:`from_dataset`,
:func:`load_image_folder`, :func:`read_idx` and :func:`load_cifar`.

Two-view augmentations (:mod:`~contrastkit.data.augment`): :class:`ImageAugment` for small
images and :class:`VectorAugment` for feature vectors, batched and seeded.
"""

from contrastkit.data._types import DataSourceMissingError, ImageData, PairedData
from contrastkit.data.augment import ImageAugment, VectorAugment
from contrastkit.data.generic import (
    from_dataset,
    from_tensors,
    load_cifar,
    load_image_folder,
    read_idx,
)
from contrastkit.data.sources import (
    DATASETS,
    DatasetInfo,
    load,
    load_chatterbot,
    load_cmudict,
    load_digits,
    load_emoji,
    load_fashion_mnist,
    load_mnist5k,
    load_multifeature,
    load_wordnet,
)

__all__ = [
    "DATASETS",
    "DataSourceMissingError",
    "DatasetInfo",
    "ImageAugment",
    "ImageData",
    "PairedData",
    "VectorAugment",
    "from_dataset",
    "from_tensors",
    "load",
    "load_chatterbot",
    "load_cifar",
    "load_cmudict",
    "load_digits",
    "load_emoji",
    "load_fashion_mnist",
    "load_image_folder",
    "load_mnist5k",
    "load_multifeature",
    "load_wordnet",
    "read_idx",
]
