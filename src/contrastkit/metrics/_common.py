"""Shared pieces of the metrics: input preparation, tiles, and relevance in compact form."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from contrastkit.core import validation as v
from contrastkit.core.tiled import DEFAULT_COL_CHUNK, DEFAULT_ROW_CHUNK, stats_dtype, tile_sizes

RelevantSets = Sequence[Sequence[int] | Tensor]
"""One sequence (or 1-D integer tensor) of relevant gallery indices per query."""

# Elements of one full-width block of scores (rows x all columns) before it is split.
BLOCK_ELEMENTS = DEFAULT_ROW_CHUNK * DEFAULT_COL_CHUNK // 2


def prepare(name: str, x: object, *, normalize: bool) -> Tensor:
    """Validate an embedding matrix, detach it, upcast low precision, L2-normalize if asked."""
    t = v.check_embeddings(name, x)
    t = t.detach().to(stats_dtype(t.dtype))
    return F.normalize(t, dim=1) if normalize else t


def prepare_labels(name: str, labels: object, n: int, like: Tensor) -> Tensor:
    """Validate integer labels of length ``n`` and move them to ``like``'s device."""
    return v.check_labels(name, labels, n).detach().to(like.device)


def check_bool(name: str, value: object) -> None:
    """Check that a flag is a real ``bool``."""
    if not isinstance(value, bool):
        raise ValueError(f"`{name}` must be True or False; got {value!r}.")


def check_ks(value: object) -> tuple[int, ...]:
    """Check ``k`` (an int >= 1 or a non-empty sequence of them); return it as a tuple."""
    ks = (value,) if isinstance(value, int) and not isinstance(value, bool) else value
    if not isinstance(ks, Sequence) or isinstance(ks, str) or len(ks) == 0:
        raise ValueError(f"`k` must be an int >= 1 or a non-empty sequence of them; got {value!r}.")
    for k in ks:
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise ValueError(f"`k` must hold ints >= 1; got {value!r}.")
    return tuple(int(k) for k in ks)


def tiles(n: int, m: int, chunk_size: int | None) -> Iterator[tuple[int, int, int, int]]:
    """``(r0, r1, c0, c1)`` of the tiles of an ``n x m`` matrix; ``chunk_size`` sets both sides."""
    rc, cc = tile_sizes(n, m, chunk_size)
    for r0 in range(0, n, rc):
        for c0 in range(0, m, cc):
            yield r0, min(r0 + rc, n), c0, min(c0 + cc, m)


def row_blocks(n: int, m: int, chunk_size: int | None) -> Iterator[tuple[int, int]]:
    """``(r0, r1)`` of blocks of rows that span all ``m`` columns (``chunk_size`` rows each)."""
    rows = chunk_size if chunk_size is not None else max(1, BLOCK_ELEMENTS // max(1, m))
    for r0 in range(0, n, rows):
        yield r0, min(r0 + rows, n)


def check_exclude_self(exclude_self: object, n_query: int, n_gallery: int, gallery: str) -> None:
    """``exclude_self`` needs the query set to be the ``gallery`` set (same number of rows)."""
    check_bool("exclude_self", exclude_self)
    if exclude_self and n_query != n_gallery:
        raise ValueError(
            f"`exclude_self=True` skips the pair (i, i), so the queries must be the `{gallery}` "
            f"rows themselves; got {n_query} queries and {n_gallery} `{gallery}` rows."
        )


class Relevance:
    """Which gallery items are relevant to each query, without a ``Q x G`` matrix.

    Exactly one of three compact forms is used:

    - ``positives (Q,)``: the index of the one relevant gallery item of each query;
    - ``query_labels (Q,)`` and ``gallery_labels (G,)``: relevant when the labels are equal;
    - ``relevant``: one sequence of gallery indices per query (several relevant items).

    With ``exclude_self`` the pair ``(i, i)`` is neither relevant nor a candidate.
    """

    def __init__(
        self,
        n_query: int,
        n_gallery: int,
        like: Tensor,
        *,
        positives: object = None,
        query_labels: object = None,
        gallery_labels: object = None,
        relevant: object = None,
        exclude_self: bool = False,
    ) -> None:
        given = [
            name
            for name, value in (
                ("positives", positives),
                ("labels", query_labels if query_labels is not None else gallery_labels),
                ("relevant", relevant),
            )
            if value is not None
        ]
        if len(given) != 1:
            raise ValueError(
                "Give exactly one description of relevance: `positives` (one gallery index per "
                "query), `query_labels` with `gallery_labels` (relevant when equal), or "
                f"`relevant` (a sequence of gallery indices per query); got {given or 'none'}."
            )
        self.n_query, self.n_gallery, self.exclude_self = n_query, n_gallery, exclude_self
        self.device = like.device
        self.positives: Tensor | None = None
        self.query_labels: Tensor | None = None
        self.gallery_labels: Tensor | None = None
        self.indptr: Tensor | None = None
        self.indices: Tensor | None = None
        if positives is not None:
            pos = prepare_labels("positives", positives, n_query, like)
            _check_range("positives", pos, n_gallery)
            self.positives = pos
        elif relevant is not None:
            self.indptr, self.indices = _to_csr(relevant, n_query, n_gallery, like.device)
        else:
            if query_labels is None or gallery_labels is None:
                missing = "query_labels" if query_labels is None else "gallery_labels"
                raise ValueError(
                    f"Label relevance needs both `query_labels` and `gallery_labels`; "
                    f"`{missing}` is missing."
                )
            self.query_labels = prepare_labels("query_labels", query_labels, n_query, like)
            self.gallery_labels = prepare_labels("gallery_labels", gallery_labels, n_gallery, like)

    @property
    def one_relevant(self) -> bool:
        """Whether each query has (at most) one relevant item, given by ``positives``."""
        return self.positives is not None

    def mask(self, r0: int, r1: int, c0: int, c1: int) -> tuple[Tensor, Tensor]:
        """``(relevant, candidate)`` boolean masks of the tile ``[r0:r1, c0:c1]``."""
        cols = torch.arange(c0, c1, device=self.device)
        if self.positives is not None:
            rel = self.positives[r0:r1, None] == cols[None, :]
        elif self.query_labels is not None:
            assert self.gallery_labels is not None
            rel = self.query_labels[r0:r1, None] == self.gallery_labels[None, c0:c1]
        else:
            assert self.indptr is not None
            assert self.indices is not None
            rel = torch.zeros(r1 - r0, c1 - c0, dtype=torch.bool, device=self.device)
            e0, e1 = int(self.indptr[r0]), int(self.indptr[r1])
            idx = self.indices[e0:e1]
            lengths = self.indptr[r0 + 1 : r1 + 1] - self.indptr[r0:r1]
            row = torch.repeat_interleave(torch.arange(r1 - r0, device=self.device), lengths)
            inside = (idx >= c0) & (idx < c1)
            rel[row[inside], idx[inside] - c0] = True
        if not self.exclude_self:
            return rel, torch.ones_like(rel)
        cand = torch.arange(r0, r1, device=self.device)[:, None] != cols[None, :]
        return rel & cand, cand

    def counts(self) -> Tensor:
        """The number of relevant candidates of each query, shape ``(Q,)`` (int64)."""
        rows = torch.arange(self.n_query, device=self.device)
        if self.positives is not None:
            c = torch.ones(self.n_query, dtype=torch.long, device=self.device)
            return c - (self.positives == rows).long() if self.exclude_self else c
        if self.query_labels is not None:
            assert self.gallery_labels is not None
            classes, per_class = torch.unique(self.gallery_labels, return_counts=True)
            pos = torch.searchsorted(classes, self.query_labels).clamp_max(classes.numel() - 1)
            c = torch.where(classes[pos] == self.query_labels, per_class[pos], 0)
            if self.exclude_self:
                c = c - (self.query_labels == self.gallery_labels).long()
            return c
        assert self.indptr is not None
        assert self.indices is not None
        c = self.indptr.diff()
        if self.exclude_self:
            row = torch.repeat_interleave(rows, c)
            c = c - torch.zeros_like(c).index_add_(0, row, (self.indices == row).long())
        return c

    def num_candidates(self) -> int:
        """The number of (query, gallery) pairs that take part."""
        return self.n_query * self.n_gallery - (self.n_query if self.exclude_self else 0)


def _check_range(name: str, idx: Tensor, n: int) -> None:
    if idx.numel() and (int(idx.min()) < 0 or int(idx.max()) >= n):
        raise ValueError(
            f"`{name}` must hold gallery indices in [0, {n}); got values from {int(idx.min())} "
            f"to {int(idx.max())}."
        )


def _to_csr(
    relevant: object, n_query: int, n_gallery: int, device: torch.device
) -> tuple[Tensor, Tensor]:
    """Sets of relevant gallery indices (one per query) as ``(indptr (Q+1,), indices)``."""
    if isinstance(relevant, Tensor | str) or not isinstance(relevant, Sequence):
        raise ValueError(
            "`relevant` must be a sequence with one entry per query, each a sequence (or 1-D "
            f"integer tensor) of relevant gallery indices; got {type(relevant).__name__}."
        )
    if len(relevant) != n_query:
        raise ValueError(
            f"`relevant` must have one entry per query ({n_query}); got {len(relevant)}."
        )
    parts: list[Tensor] = []
    for i, entry in enumerate(relevant):
        try:
            t = torch.as_tensor(entry)
        except (TypeError, ValueError, RuntimeError) as err:
            raise ValueError(
                f"`relevant[{i}]` must be a sequence of gallery indices; got {entry!r}."
            ) from err
        if t.numel() == 0:
            t = t.reshape(0).long()
        if t.dim() != 1 or t.is_floating_point() or t.is_complex() or t.dtype == torch.bool:
            raise ValueError(
                f"`relevant[{i}]` must be a 1-D sequence of integer gallery indices; got {entry!r}."
            )
        parts.append(torch.unique(t.long().cpu()))
    indices = torch.cat(parts) if parts else torch.zeros(0, dtype=torch.long)
    _check_range("relevant", indices, n_gallery)
    lengths = torch.tensor([p.numel() for p in parts], dtype=torch.long)
    indptr = torch.cat([torch.zeros(1, dtype=torch.long), lengths.cumsum(0)])
    return indptr.to(device), indices.to(device)


def prepare_retrieval(
    query: object,
    gallery: object,
    *,
    positives: object,
    query_labels: object,
    gallery_labels: object,
    relevant: object,
    normalize: object,
    exclude_self: object,
    chunk_size: object,
) -> tuple[Tensor, Tensor, Relevance]:
    """Validate and prepare a (query, gallery) pair of embeddings and their relevance.

    Returns:
        ``(q, g, rel)``: the prepared query ``(Q, D)`` and gallery ``(G, D)`` rows (on the
        query's device) and the :class:`Relevance` of their pairs.
    """
    check_bool("normalize", normalize)
    v.check_chunk_size(chunk_size)
    q = prepare("query", query, normalize=bool(normalize))
    g = prepare("gallery", gallery, normalize=bool(normalize)).to(q.device)
    v.check_same_width("query", q, "gallery", g)
    check_exclude_self(exclude_self, q.shape[0], g.shape[0], "gallery")
    rel = Relevance(
        q.shape[0],
        g.shape[0],
        q,
        positives=positives,
        query_labels=query_labels,
        gallery_labels=gallery_labels,
        relevant=relevant,
        exclude_self=bool(exclude_self),
    )
    return q, g, rel
