"""The two containers every loader returns, and the error raised when a data source is missing.

- :class:`ImageData`: images ``(N, C, H, W)`` float32 in ``[0, 1]`` with integer labels, for
  SimCLR-style runs judged by kNN and linear probes.
- :class:`PairedData`: row-aligned views or modalities of the same ``N`` items (tensors or
  strings), optionally labelled, for CLIP-style and multi-view runs judged by retrieval.

Both are frozen dataclasses validated on construction (shapes, dtypes, lengths and label range
agree), with :meth:`~ImageData.subset` and a seeded :meth:`~ImageData.split`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from contrastkit.core.split import check_test_fraction, split_positions

Index = Tensor | Sequence[int]


class DataSourceMissingError(FileNotFoundError):
    """A data set's files (or the package that ships them) are not installed.

    The message names the missing path and the exact command that installs the source; the
    command is also kept in the ``install`` attribute.

    Args:
        source: Name of the data set, e.g. ``"WordNet 3.0"``.
        path: The file or folder that was looked for (or the missing package's name).
        install: The command that installs it, e.g. ``"apt-get install -y wordnet-base"``.

    Example:
        >>> err = DataSourceMissingError("WordNet", "/nowhere", "apt-get install -y wordnet-base")
        >>> print(err)  # doctest: +NORMALIZE_WHITESPACE
        WordNet is not installed (looked for /nowhere).
        Install it with: apt-get install -y wordnet-base
    """

    def __init__(self, source: str, path: str, install: str) -> None:
        self.source = source
        self.path = path
        self.install = install
        super().__init__(
            f"{source} is not installed (looked for {path}). Install it with: {install}"
        )

    def __reduce__(self) -> tuple[type[DataSourceMissingError], tuple[str, str, str]]:
        return (type(self), (self.source, self.path, self.install))


def _index_tensor(index: object, n: int) -> Tensor:
    """Turn ``index`` (integer tensor / sequence, or boolean mask) into int64 CPU positions."""
    if isinstance(index, Tensor):
        idx = index.detach().cpu()
    elif isinstance(index, Sequence) and not isinstance(index, str | bytes):
        if len(index) == 0:
            return torch.zeros(0, dtype=torch.int64)
        if not all(isinstance(i, int) and not isinstance(i, bool) for i in index):
            raise ValueError(
                "`index` must hold Python ints (row positions); got "
                f"{sorted({type(i).__name__ for i in index})}."
            )
        idx = torch.tensor(list(index), dtype=torch.int64)
    else:
        raise ValueError(
            "`index` must be an integer tensor, a boolean mask or a sequence of ints; got "
            f"{type(index).__name__}."
        )
    if idx.dtype == torch.bool:
        if idx.shape != (n,):
            raise ValueError(
                f"A boolean `index` must have shape ({n},), one flag per row; got "
                f"{tuple(idx.shape)}."
            )
        return torch.nonzero(idx).flatten()
    if idx.is_floating_point() or idx.is_complex() or idx.dim() != 1:
        raise ValueError(
            f"`index` must be a 1-D integer tensor; got dtype {idx.dtype}, shape "
            f"{tuple(idx.shape)}."
        )
    idx = idx.long()
    if idx.numel() and (int(idx.min()) < -n or int(idx.max()) >= n):
        raise ValueError(
            f"`index` must hold row positions in [-{n}, {n}); got values from "
            f"{int(idx.min())} to {int(idx.max())}."
        )
    return torch.where(idx < 0, idx + n, idx)


def _check_labels(labels: object, n: int, classes: tuple[str, ...]) -> Tensor:
    if not isinstance(labels, Tensor):
        raise ValueError(f"`labels` must be an int64 tensor of shape ({n},); got {labels!r:.60}.")
    if labels.dtype != torch.int64 or labels.dim() != 1 or labels.shape[0] != n:
        raise ValueError(
            f"`labels` must be an int64 tensor of shape ({n},), one class id per row; got dtype "
            f"{labels.dtype}, shape {tuple(labels.shape)}. Use labels.long()."
        )
    if not isinstance(classes, tuple) or not all(isinstance(c, str) for c in classes):
        raise ValueError(
            f"`classes` must be a tuple of class names (str); got {classes!r:.80}. "
            "Use tuple(str(c) for c in names)."
        )
    if n and (int(labels.min()) < 0 or int(labels.max()) >= len(classes)):
        raise ValueError(
            f"`labels` must be class ids in [0, {len(classes)}) (one per name in `classes`); "
            f"got values from {int(labels.min())} to {int(labels.max())}."
        )
    return labels


def _split_positions(
    n: int, labels: Tensor | None, test_fraction: float, seed: int
) -> tuple[Tensor, Tensor]:
    """Seeded (stratified when ``labels`` is given) split of ``range(n)``, both parts shuffled."""
    check_test_fraction(test_fraction)
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"`seed` must be an int >= 0; got {seed!r}.")
    if n < 2:
        raise ValueError(f"A data set needs at least 2 rows to be split; this one has {n}.")
    gen = torch.Generator().manual_seed(seed)
    train, test = split_positions(n, labels, test_fraction, gen)
    if test.numel() == 0:
        raise ValueError(
            f"`test_fraction`={test_fraction} leaves no row for the test part (every class "
            "keeps at least one training row); raise `test_fraction`."
        )
    train = train[torch.randperm(train.numel(), generator=gen)]
    test = test[torch.randperm(test.numel(), generator=gen)]
    return train, test


@dataclass(frozen=True, eq=False)
class ImageData:
    """Labelled images for SimCLR-style training and kNN / linear-probe evaluation.

    Attributes:
        images: Shape ``(N, C, H, W)``, float32 in ``[0, 1]``.
        labels: Shape ``(N,)``, int64 class ids in ``[0, len(classes))``.
        classes: The class names; ``classes[c]`` names class id ``c``.
        name: The data set's name (used in reports).

    Raises:
        ValueError: On construction, if a field has the wrong type, shape, dtype or range.

    Example:
        >>> import torch
        >>> labels = torch.tensor([0, 1, 0, 1, 0, 1])
        >>> data = ImageData(torch.zeros(6, 1, 8, 8), labels, ("a", "b"), "toy")
        >>> len(data), data.subset([0, 1]).labels.tolist()
        (6, [0, 1])
        >>> train, test = data.split(0.34, seed=0)
        >>> len(train), sorted(test.labels.tolist())
        (4, [0, 1])
    """

    images: Tensor
    labels: Tensor
    classes: tuple[str, ...]
    name: str

    def __post_init__(self) -> None:
        x = self.images
        if not isinstance(x, Tensor) or x.dim() != 4:
            got = f"shape {tuple(x.shape)}" if isinstance(x, Tensor) else type(x).__name__
            raise ValueError(
                f"`images` must be a tensor of shape (N, C, H, W); got {got}. Add a channel "
                "axis with images[:, None] for grayscale (N, H, W)."
            )
        if x.dtype != torch.float32:
            raise ValueError(
                f"`images` must be float32 in [0, 1]; got dtype {x.dtype}. Use "
                "images.float() / 255 for uint8 pixels, or contrastkit.data.from_tensors."
            )
        if x.numel():
            lo, hi = float(x.min()), float(x.max())
            if not (lo >= 0.0 and hi <= 1.0):
                raise ValueError(
                    f"`images` must hold values in [0, 1]; got values from {lo} to {hi}. "
                    "Rescale (e.g. images / 255) or use contrastkit.data.from_tensors."
                )
        _check_labels(self.labels, x.shape[0], self.classes)
        if not isinstance(self.name, str):
            raise ValueError(f"`name` must be a str; got {self.name!r:.60}.")

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def __repr__(self) -> str:
        return (
            f"ImageData(name={self.name!r}, images={tuple(self.images.shape)}, "
            f"classes={len(self.classes)})"
        )

    def subset(self, index: Index) -> ImageData:
        """The rows at ``index`` (int tensor, boolean mask or sequence of ints), in that order."""
        idx = _index_tensor(index, len(self))
        return ImageData(
            self.images[idx.to(self.images.device)],
            self.labels[idx.to(self.labels.device)],
            self.classes,
            self.name,
        )

    def split(self, test_fraction: float = 0.25, *, seed: int = 0) -> tuple[ImageData, ImageData]:
        """Split into a training and a test part, stratified by class and shuffled.

        Each class is split on its own: ``floor(test_fraction * n_c + 0.5)`` of its ``n_c`` rows
        go to the test part, but at most ``n_c - 1`` (a class keeps one training row). The rows
        of each part are then shuffled (sources such as MNIST 5k are sorted by label). The
        permutation is drawn on the CPU from ``torch.Generator().manual_seed(seed)``, so the
        split depends on ``seed`` only.

        Args:
            test_fraction: Fraction of each class held out, in ``(0, 1)``.
            seed: Seed of the permutation (an int >= 0).

        Returns:
            ``(train, test)``.
        """
        train, test = _split_positions(len(self), self.labels, test_fraction, seed)
        return self.subset(train), self.subset(test)


@dataclass(frozen=True, eq=False)
class PairedData:
    """Row-aligned views (or modalities) of ``N`` items: row ``i`` of every view is item ``i``.

    Attributes:
        views: View name -> a float32 tensor ``(N, ...)`` or a list of ``N`` strings; at least one
            view. The dict keeps its insertion order (the loaders' documented order).
        labels: Shape ``(N,)`` int64 class ids in ``[0, len(classes))``, or ``None``.
        classes: The class names; ``()`` when ``labels`` is ``None``.
        name: The data set's name (used in reports).

    Raises:
        ValueError: On construction, if a view is neither a float32 tensor nor a list of str, if
            the views disagree on ``N``, or if ``labels`` / ``classes`` are inconsistent.

    Example:
        >>> import torch
        >>> data = PairedData({"word": ["a", "b", "c", "d"], "vec": torch.eye(4)}, None, (), "toy")
        >>> len(data), data.subset([2, 0]).views["word"]
        (4, ['c', 'a'])
        >>> train, test = data.split(0.25, seed=0)
        >>> len(train), len(test)
        (3, 1)
    """

    views: dict[str, Tensor | list[str]]
    labels: Tensor | None
    classes: tuple[str, ...]
    name: str

    def __post_init__(self) -> None:
        if not isinstance(self.views, dict) or not self.views:
            raise ValueError(
                f"`views` must be a non-empty dict of view name -> tensor or list of str; got "
                f"{self.views!r:.80}."
            )
        sizes: dict[str, int] = {}
        for key, view in self.views.items():
            if not isinstance(key, str):
                raise ValueError(f"`views` keys must be str; got {key!r}.")
            if isinstance(view, Tensor):
                if view.dim() == 0 or view.dtype != torch.float32:
                    raise ValueError(
                        f"View {key!r} must be a float32 tensor of shape (N, ...); got dtype "
                        f"{view.dtype}, shape {tuple(view.shape)}. Use x.float()."
                    )
                sizes[key] = int(view.shape[0])
            elif isinstance(view, list):
                bad = next((s for s in view if not isinstance(s, str)), None)
                if bad is not None:
                    raise ValueError(
                        f"View {key!r} is a list, so it must hold only str; found "
                        f"{type(bad).__name__} {bad!r:.40}."
                    )
                sizes[key] = len(view)
            else:
                raise ValueError(
                    f"View {key!r} must be a float32 tensor (N, ...) or a list of N str; got "
                    f"{type(view).__name__}."
                )
        if len(set(sizes.values())) != 1:
            raise ValueError(
                f"Every view must have the same number of rows (row i is item i); got {sizes}."
            )
        n = next(iter(sizes.values()))
        if self.labels is None:
            if self.classes != ():
                raise ValueError(
                    f"`classes` must be () when `labels` is None; got {self.classes!r:.80}."
                )
        else:
            _check_labels(self.labels, n, self.classes)
        if not isinstance(self.name, str):
            raise ValueError(f"`name` must be a str; got {self.name!r:.60}.")

    def __len__(self) -> int:
        view = next(iter(self.views.values()))
        return int(view.shape[0]) if isinstance(view, Tensor) else len(view)

    def __repr__(self) -> str:
        shapes = {
            k: (tuple(v.shape) if isinstance(v, Tensor) else f"{len(v)} str")
            for k, v in self.views.items()
        }
        return f"PairedData(name={self.name!r}, views={shapes}, classes={len(self.classes)})"

    def subset(self, index: Index) -> PairedData:
        """The rows at ``index`` (int tensor, boolean mask or sequence of ints), in that order."""
        idx = _index_tensor(index, len(self))
        positions = idx.tolist()
        views: dict[str, Tensor | list[str]] = {
            k: (v[idx.to(v.device)] if isinstance(v, Tensor) else [v[i] for i in positions])
            for k, v in self.views.items()
        }
        labels = None if self.labels is None else self.labels[idx.to(self.labels.device)]
        return PairedData(views, labels, self.classes, self.name)

    def split(self, test_fraction: float = 0.25, *, seed: int = 0) -> tuple[PairedData, PairedData]:
        """Split into a training and a test part, both shuffled.

        With labels, the split is stratified exactly as :meth:`ImageData.split`; without, a plain
        seeded split: ``floor(test_fraction * N + 0.5)`` rows, at least 1 and at most ``N - 1``,
        go to the test part.

        Args:
            test_fraction: Fraction of the rows held out, in ``(0, 1)``.
            seed: Seed of the permutation (an int >= 0).

        Returns:
            ``(train, test)``.
        """
        train, test = _split_positions(len(self), self.labels, test_fraction, seed)
        return self.subset(train), self.subset(test)
