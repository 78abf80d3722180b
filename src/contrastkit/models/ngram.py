"""A text tower over hashed character n-grams: cheap enough for large batches on a CPU."""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from functools import lru_cache

import torch
from torch import Tensor, nn

from contrastkit.models._checks import positive_int

__all__ = ["NGramTower", "char_ngrams", "hash_ngrams"]

BOS, EOS = "<", ">"


def _check_texts(texts: object) -> Sequence[str]:
    if isinstance(texts, str | bytes) or not isinstance(texts, Sequence):
        raise ValueError(
            "`texts` must be a sequence of strings (a list or tuple); got "
            f"{type(texts).__name__}. Wrap a single string in a list: [text]."
        )
    for i, t in enumerate(texts):
        if not isinstance(t, str):
            raise ValueError(f"`texts[{i}]` must be a str; got {type(t).__name__}.")
    return texts


def _check_sizes(n: object) -> tuple[int, ...]:
    if isinstance(n, int) and not isinstance(n, bool):
        n = (n,)
    if isinstance(n, str | bytes) or not isinstance(n, Sequence) or len(n) == 0:
        raise ValueError(
            f"`n` must be a non-empty sequence of n-gram sizes, e.g. (1, 2, 3); got {n!r}."
        )
    sizes = tuple(n)
    for k in sizes:
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise ValueError(f"`n` must hold ints >= 1, e.g. (1, 2, 3); got {n!r}.")
    if len(set(sizes)) != len(sizes):
        raise ValueError(f"`n` must not repeat a size; got {n!r}.")
    return sizes


def _check_buckets(buckets: object) -> int:
    if isinstance(buckets, bool) or not isinstance(buckets, int) or not 1 <= buckets <= 2**32:
        raise ValueError(f"`buckets` must be an int in [1, 2**32], e.g. 2**18; got {buckets!r}.")
    return buckets


def char_ngrams(text: str, n: Sequence[int] = (1, 2, 3)) -> list[str]:
    """The character n-grams of one text, with boundary markers.

    The text is wrapped as ``"<" + text + ">"`` and every window of each size in ``n`` is
    taken, size by size, left to right; the marker unigrams ``"<"`` and ``">"`` are left out
    (they occur in every text). Characters are Unicode code points; no case folding is done.

    Args:
        text: One string.
        n: The n-gram sizes.

    Returns:
        The n-grams, with repeats.

    Example:
        >>> char_ngrams("ab", (1, 2, 3))
        ['a', 'b', '<a', 'ab', 'b>', '<ab', 'ab>']
    """
    sizes = _check_sizes(n)
    if not isinstance(text, str):
        raise ValueError(f"`text` must be a str; got {type(text).__name__}.")
    return list(_ngrams(text, sizes))


def _ngrams(text: str, sizes: tuple[int, ...]) -> tuple[str, ...]:
    marked = BOS + text + EOS
    out: list[str] = []
    for k in sizes:
        if k == 1:
            out.extend(text)
        else:
            out.extend(marked[i : i + k] for i in range(len(marked) - k + 1))
    return tuple(out)


@lru_cache(maxsize=1 << 16)
def _ids(text: str, sizes: tuple[int, ...], buckets: int) -> tuple[int, ...]:
    return tuple(zlib.crc32(g.encode("utf-8")) % buckets for g in _ngrams(text, sizes))


def hash_ngrams(
    texts: Sequence[str], n: Sequence[int] = (1, 2, 3), buckets: int = 2**18
) -> tuple[Tensor, Tensor]:
    """Hash the character n-grams of each text into ``buckets`` ids, in ``EmbeddingBag`` layout.

    Each n-gram of :func:`char_ngrams` maps to ``crc32(utf8(ngram)) % buckets`` (zlib's CRC-32),
    so ids are the same in every process, run and platform (unlike Python's salted ``hash``).
    Results per text are cached.

    Args:
        texts: ``N`` strings.
        n: The n-gram sizes.
        buckets: Number of hash buckets, in ``[1, 2**32]``.

    Returns:
        ``(indices, offsets)``: int64 tensors on the CPU; ``indices`` holds every text's ids one
        text after the other and ``offsets`` (shape ``(N,)``) where each text starts. A text
        with no n-grams (``""`` with ``n=(1,)``) gives an empty bag.

    Example:
        >>> import zlib
        >>> indices, offsets = hash_ngrams(["ab", "c"], n=(2,), buckets=1000)
        >>> offsets.tolist()
        [0, 3]
        >>> indices[0].item() == zlib.crc32(b"<a") % 1000
        True
    """
    items = _check_texts(texts)
    sizes = _check_sizes(n)
    b = _check_buckets(buckets)
    ids: list[int] = []
    offsets: list[int] = []
    for t in items:
        offsets.append(len(ids))
        ids.extend(_ids(t, sizes, b))
    return torch.tensor(ids, dtype=torch.long), torch.tensor(offsets, dtype=torch.long)


class NGramTower(nn.Module):
    """Text encoder: the mean embedding of hashed character n-grams, then a linear layer.

    ``texts -> hash_ngrams -> EmbeddingBag(buckets, dim, mode="mean") -> Linear(dim, out)``, a
    fastText-style bag of n-grams. Hashing runs in Python on the CPU (with a per-text cache);
    the rest runs on the module's device. A text with no n-grams embeds as zeros before the
    linear layer.

    Args:
        out_features: Width of the output embedding.
        n: Character n-gram sizes (see :func:`char_ngrams`).
        buckets: Rows of the embedding table (hash buckets). The default ``2**18`` with
            ``dim=128`` is a 134 MB float32 table; use fewer buckets for small vocabularies.
        dim: Width of the n-gram embeddings.

    Example:
        >>> import torch
        >>> tower = NGramTower(16, buckets=1024, dim=8)
        >>> tower(["cat", "dog", ""]).shape
        torch.Size([3, 16])
    """

    def __init__(
        self,
        out_features: int = 128,
        *,
        n: Sequence[int] = (1, 2, 3),
        buckets: int = 2**18,
        dim: int = 128,
    ) -> None:
        super().__init__()
        for name, value in (("out_features", out_features), ("dim", dim)):
            positive_int(name, value)
        self.out_features = out_features
        self.n = _check_sizes(n)
        self.buckets = _check_buckets(buckets)
        self.bag = nn.EmbeddingBag(buckets, dim, mode="mean")
        self.fc = nn.Linear(dim, out_features)

    def forward(self, texts: Sequence[str]) -> Tensor:
        """Embed a batch of texts.

        Args:
            texts: ``N`` strings.

        Returns:
            Shape ``(N, out_features)`` on the module's device.

        Raises:
            ValueError: If ``texts`` is not a sequence of strings.
        """
        indices, offsets = hash_ngrams(texts, self.n, self.buckets)
        device = self.bag.weight.device
        if offsets.numel() == 0:
            return self.fc.weight.new_zeros(0, self.out_features)
        bags = self.bag(indices.to(device), offsets.to(device))
        out: Tensor = self.fc(bags)
        return out
