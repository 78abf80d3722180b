r"""Retrieval metrics of queries against a gallery: recall@k, MRR and mAP.

Each query ranks every gallery item by similarity (cosine by default). Relevance is given in
compact form, never as a ``Q x G`` matrix:

- ``positives (Q,)``: one relevant gallery index per query (image-text retrieval, two views);
- ``query_labels (Q,)`` and ``gallery_labels (G,)``: every gallery item of the same class is
  relevant (metric learning, class retrieval);
- ``relevant``: a sequence of relevant gallery indices per query (several captions per image).

Ranks use the pessimistic convention for ties: the rank of an item is the number of candidates
scoring at least as high, itself included,

.. math::

    \operatorname{rank}_q(j) = \big|\{ l : s_{ql} \ge s_{qj} \}\big|

so a tie never favours the relevant item (and the average precision equals
``sklearn.metrics.average_precision_score`` of the query's row, ties included). Ties are exact
comparisons of floating-point scores: with ``positives`` the positive's score is a row-wise
dot product, which can differ in the last bit from the same score inside a tile, so a gallery
item that merely duplicates the positive may rank on either side of it. A query without
a relevant item is left out of every mean; a metric with no query left raises an error.

Memory: with ``positives`` the ranks come from counts over tiles of the similarity
(``O((Q + G) D)`` plus one tile); otherwise blocks of query rows span the whole gallery and are
sorted (``O(rows x G)``, ``chunk_size`` rows per block), never the full ``Q x G`` matrix.
"""

from __future__ import annotations

import math
from typing import Literal, NamedTuple, get_args

import torch
from torch import Tensor

from contrastkit.core import validation as v
from contrastkit.metrics._common import (
    Relevance,
    RelevantSets,
    check_bool,
    check_ks,
    prepare,
    prepare_retrieval,
    row_blocks,
    tiles,
)

RecallMode = Literal["hit", "fraction"]


class RetrievalPerQuery(NamedTuple):
    """Per-query retrieval results (see :func:`retrieval_per_query`).

    Attributes:
        k: The cut-offs of ``hit_at_k`` and ``recall_at_k``.
        num_relevant: Shape ``(Q,)``, relevant gallery items of each query (self excluded).
        first_rank: Shape ``(Q,)``, rank of the best-ranked relevant item (0 without any).
        reciprocal_rank: Shape ``(Q,)``, ``1 / first_rank`` (0 without a relevant item).
        average_precision: Shape ``(Q,)``, the query's average precision (0 without any).
        hit_at_k: Shape ``(Q, len(k))``, 1 if a relevant item ranks within the top ``k``.
        recall_at_k: Shape ``(Q, len(k))``, the fraction of the relevant items within the top
            ``k``.
    """

    k: tuple[int, ...]
    num_relevant: Tensor
    first_rank: Tensor
    reciprocal_rank: Tensor
    average_precision: Tensor
    hit_at_k: Tensor
    recall_at_k: Tensor

    @property
    def valid(self) -> Tensor:
        """Shape ``(Q,)``, the queries with at least one relevant item (the ones averaged)."""
        return self.num_relevant > 0


def retrieval_per_query(
    query: Tensor,
    gallery: Tensor,
    *,
    positives: Tensor | None = None,
    query_labels: Tensor | None = None,
    gallery_labels: Tensor | None = None,
    relevant: RelevantSets | None = None,
    k: int | tuple[int, ...] = (1, 5, 10),
    normalize: bool = True,
    exclude_self: bool = False,
    chunk_size: int | None = None,
) -> RetrievalPerQuery:
    r"""Rank the gallery for every query and return the per-query retrieval results.

    With :math:`R_q` the relevant items of query :math:`q` and the ranks of the module
    docstring,

    .. math::

        \mathrm{RR}_q = \frac{1}{\min_{j \in R_q} \operatorname{rank}_q(j)}, \qquad
        \mathrm{AP}_q = \frac{1}{|R_q|} \sum_{j \in R_q}
            \frac{|\{ r \in R_q : s_{qr} \ge s_{qj} \}|}{\operatorname{rank}_q(j)}

    :math:`\mathrm{hit}@k_q = [\min_{j \in R_q} \operatorname{rank}_q(j) \le k]` and
    :math:`\mathrm{recall}@k_q = |\{ j \in R_q : \operatorname{rank}_q(j) \le k \}| / |R_q|`.

    Args:
        query: Shape ``(Q, D)``.
        gallery: Shape ``(G, D)``.
        positives: Shape ``(Q,)``, the index of the one relevant gallery item of each query.
        query_labels: Shape ``(Q,)``; with ``gallery_labels``, same label = relevant.
        gallery_labels: Shape ``(G,)``.
        relevant: A sequence of ``Q`` sequences (or 1-D integer tensors) of relevant gallery
            indices (duplicates count once).
        k: The cut-off(s) of hit@k and recall@k.
        normalize: Cosine similarity (``False``: the plain dot product).
        exclude_self: The queries are the gallery rows themselves; pair ``(i, i)`` is neither
            a candidate nor relevant (leave-one-out retrieval).
        chunk_size: Query rows (and, with ``positives``, gallery columns) per tile; ``None``
            chooses.

    Returns:
        A :class:`RetrievalPerQuery` on the device of ``query``.

    Example:
        >>> import torch
        >>> q = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
        >>> g = torch.tensor([[1.0, 0.1], [0.1, 1.0], [0.7, 0.7]])
        >>> retrieval_per_query(q, g, positives=torch.tensor([0, 2]), k=1).first_rank
        tensor([1, 2])
    """
    ks = check_ks(k)
    q, g, rel = prepare_retrieval(
        query,
        gallery,
        positives=positives,
        query_labels=query_labels,
        gallery_labels=gallery_labels,
        relevant=relevant,
        normalize=normalize,
        exclude_self=exclude_self,
        chunk_size=chunk_size,
    )
    with torch.no_grad():
        if rel.one_relevant:
            return _one_relevant(q, g, rel, ks, chunk_size)
        return _sorted_rows(q, g, rel, ks, chunk_size)


def retrieval_metrics(
    query: Tensor,
    gallery: Tensor,
    *,
    positives: Tensor | None = None,
    query_labels: Tensor | None = None,
    gallery_labels: Tensor | None = None,
    relevant: RelevantSets | None = None,
    k: int | tuple[int, ...] = (1, 5, 10),
    recall_mode: RecallMode = "hit",
    normalize: bool = True,
    exclude_self: bool = False,
    chunk_size: int | None = None,
) -> dict[str, float]:
    """Recall@k, MRR and mAP in one pass over the gallery, averaged over the queries.

    Queries without a relevant item are left out of the means. ``recall_mode`` chooses the
    recall@k of the contrastive and metric-learning literature (``"hit"``: a relevant item
    within the top ``k``; CLIP's R@k, Recall@K of deep metric learning) or of information
    retrieval (``"fraction"``: the fraction of the relevant items within the top ``k``); with
    one relevant item per query they coincide.

    Args:
        query: Shape ``(Q, D)``.
        gallery: Shape ``(G, D)``.
        positives: Shape ``(Q,)``; see :func:`retrieval_per_query`.
        query_labels: Shape ``(Q,)``.
        gallery_labels: Shape ``(G,)``.
        relevant: A sequence of ``Q`` sequences of relevant gallery indices.
        k: The cut-off(s) of recall@k.
        recall_mode: ``"hit"`` or ``"fraction"``.
        normalize: Cosine similarity (``False``: the plain dot product).
        exclude_self: Leave-one-out retrieval of the gallery against itself.
        chunk_size: Rows (and columns) per tile; ``None`` chooses.

    Returns:
        ``{"recall@k": ... for each k, "mrr": ..., "map": ...}`` as floats.

    Example:
        >>> import torch
        >>> q = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
        >>> g = torch.tensor([[1.0, 0.1], [0.1, 1.0], [0.7, 0.7]])
        >>> retrieval_metrics(q, g, positives=torch.tensor([0, 2]), k=(1, 2))
        {'recall@1': 0.5, 'recall@2': 1.0, 'mrr': 0.75, 'map': 0.75}
    """
    v.check_choice("recall_mode", recall_mode, get_args(RecallMode))
    per = retrieval_per_query(
        query,
        gallery,
        positives=positives,
        query_labels=query_labels,
        gallery_labels=gallery_labels,
        relevant=relevant,
        k=k,
        normalize=normalize,
        exclude_self=exclude_self,
        chunk_size=chunk_size,
    )
    return _summarize(_sums(per), recall_mode)


def recall_at_k(
    query: Tensor,
    gallery: Tensor,
    *,
    k: int = 1,
    mode: RecallMode = "hit",
    positives: Tensor | None = None,
    query_labels: Tensor | None = None,
    gallery_labels: Tensor | None = None,
    relevant: RelevantSets | None = None,
    normalize: bool = True,
    exclude_self: bool = False,
    chunk_size: int | None = None,
) -> float:
    """Recall@k averaged over the queries (see :func:`retrieval_metrics` for ``mode``).

    Args:
        query: Shape ``(Q, D)``.
        gallery: Shape ``(G, D)``.
        k: The cut-off, an int >= 1.
        mode: ``"hit"`` (a relevant item in the top ``k``) or ``"fraction"``.
        positives: Shape ``(Q,)``; see :func:`retrieval_per_query`.
        query_labels: Shape ``(Q,)``.
        gallery_labels: Shape ``(G,)``.
        relevant: A sequence of ``Q`` sequences of relevant gallery indices.
        normalize: Cosine similarity (``False``: the plain dot product).
        exclude_self: Leave-one-out retrieval of the gallery against itself.
        chunk_size: Rows (and columns) per tile; ``None`` chooses.

    Returns:
        Recall@k in :math:`[0, 1]` as a float.

    Example:
        >>> import torch
        >>> x = torch.eye(3)
        >>> recall_at_k(x, x, k=1, positives=torch.tensor([0, 1, 2]))
        1.0
    """
    v.check_int("k", k, 1)
    return retrieval_metrics(
        query,
        gallery,
        positives=positives,
        query_labels=query_labels,
        gallery_labels=gallery_labels,
        relevant=relevant,
        k=(k,),
        recall_mode=mode,
        normalize=normalize,
        exclude_self=exclude_self,
        chunk_size=chunk_size,
    )[f"recall@{k}"]


def mean_reciprocal_rank(
    query: Tensor,
    gallery: Tensor,
    *,
    positives: Tensor | None = None,
    query_labels: Tensor | None = None,
    gallery_labels: Tensor | None = None,
    relevant: RelevantSets | None = None,
    normalize: bool = True,
    exclude_self: bool = False,
    chunk_size: int | None = None,
) -> float:
    """Mean reciprocal rank of the best-ranked relevant item (see :func:`retrieval_per_query`).

    Args:
        query: Shape ``(Q, D)``.
        gallery: Shape ``(G, D)``.
        positives: Shape ``(Q,)``; see :func:`retrieval_per_query`.
        query_labels: Shape ``(Q,)``.
        gallery_labels: Shape ``(G,)``.
        relevant: A sequence of ``Q`` sequences of relevant gallery indices.
        normalize: Cosine similarity (``False``: the plain dot product).
        exclude_self: Leave-one-out retrieval of the gallery against itself.
        chunk_size: Rows (and columns) per tile; ``None`` chooses.

    Returns:
        MRR in :math:`(0, 1]` as a float.

    Example:
        >>> import torch
        >>> q = torch.tensor([[1.0, 0.0]])
        >>> g = torch.tensor([[0.9, 0.1], [1.0, 0.0]])
        >>> mean_reciprocal_rank(q, g, positives=torch.tensor([0]))
        0.5
    """
    return retrieval_metrics(
        query,
        gallery,
        positives=positives,
        query_labels=query_labels,
        gallery_labels=gallery_labels,
        relevant=relevant,
        k=(1,),
        normalize=normalize,
        exclude_self=exclude_self,
        chunk_size=chunk_size,
    )["mrr"]


def mean_average_precision(
    query: Tensor,
    gallery: Tensor,
    *,
    positives: Tensor | None = None,
    query_labels: Tensor | None = None,
    gallery_labels: Tensor | None = None,
    relevant: RelevantSets | None = None,
    normalize: bool = True,
    exclude_self: bool = False,
    chunk_size: int | None = None,
) -> float:
    """Mean over the queries of the average precision of the full ranking (no cut-off).

    Each query's AP equals ``sklearn.metrics.average_precision_score`` of its row of relevance
    and scores; see :func:`retrieval_per_query`.

    Args:
        query: Shape ``(Q, D)``.
        gallery: Shape ``(G, D)``.
        positives: Shape ``(Q,)``; see :func:`retrieval_per_query`.
        query_labels: Shape ``(Q,)``.
        gallery_labels: Shape ``(G,)``.
        relevant: A sequence of ``Q`` sequences of relevant gallery indices.
        normalize: Cosine similarity (``False``: the plain dot product).
        exclude_self: Leave-one-out retrieval of the gallery against itself.
        chunk_size: Rows (and columns) per tile; ``None`` chooses.

    Returns:
        mAP in :math:`(0, 1]` as a float.

    Example:
        >>> import torch
        >>> q = torch.tensor([[1.0, 0.0]])
        >>> g = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.9, 0.2]])
        >>> mean_average_precision(q, g, relevant=[[0, 1]])
        0.8333333333333333
    """
    return retrieval_metrics(
        query,
        gallery,
        positives=positives,
        query_labels=query_labels,
        gallery_labels=gallery_labels,
        relevant=relevant,
        k=(1,),
        normalize=normalize,
        exclude_self=exclude_self,
        chunk_size=chunk_size,
    )["map"]


class RetrievalMetrics:
    """Recall@k, MRR and mAP against a fixed gallery, accumulated over batches of queries.

    ``update(query, ...)`` ranks the gallery for a batch of queries (relevance given per batch
    as ``positives`` or ``relevant`` indices into the gallery, or ``query_labels`` matched
    against the ``gallery_labels`` given here) and adds the per-query results to running sums;
    ``compute()`` returns the same dictionary as :func:`retrieval_metrics` on the concatenated
    batches. Memory is the gallery plus a few numbers.

    Args:
        gallery: Shape ``(G, D)``.
        gallery_labels: Shape ``(G,)``, for label relevance.
        k: The cut-off(s) of recall@k.
        recall_mode: ``"hit"`` or ``"fraction"`` (see :func:`retrieval_metrics`).
        normalize: Cosine similarity (``False``: the plain dot product).
        chunk_size: Rows (and columns) per tile; ``None`` chooses.

    Example:
        >>> import torch
        >>> metric = RetrievalMetrics(torch.eye(3), k=1)
        >>> metric.update(torch.eye(3)[:2], positives=torch.tensor([0, 1]))
        >>> metric.update(torch.eye(3)[2:], positives=torch.tensor([0]))
        >>> metric.compute()["recall@1"]
        0.6666666666666666
    """

    def __init__(
        self,
        gallery: Tensor,
        *,
        gallery_labels: Tensor | None = None,
        k: int | tuple[int, ...] = (1, 5, 10),
        recall_mode: RecallMode = "hit",
        normalize: bool = True,
        chunk_size: int | None = None,
    ) -> None:
        self.k = check_ks(k)
        v.check_choice("recall_mode", recall_mode, get_args(RecallMode))
        check_bool("normalize", normalize)
        v.check_chunk_size(chunk_size)
        self.gallery = prepare("gallery", gallery, normalize=normalize)
        if gallery_labels is not None:
            v.check_labels("gallery_labels", gallery_labels, self.gallery.shape[0])
        self.gallery_labels = gallery_labels
        self.recall_mode, self.normalize, self.chunk_size = recall_mode, normalize, chunk_size
        self.reset()

    def reset(self) -> None:
        """Forget every query seen."""
        self._sums: dict[str, float] = {}

    def update(
        self,
        query: Tensor,
        *,
        positives: Tensor | None = None,
        query_labels: Tensor | None = None,
        relevant: RelevantSets | None = None,
    ) -> None:
        """Rank the gallery for a batch of queries ``(Q, D)`` and add their results."""
        if query_labels is not None and self.gallery_labels is None:
            raise ValueError(
                "`query_labels` needs `gallery_labels`, given when the RetrievalMetrics is built."
            )
        per = retrieval_per_query(
            query,
            self.gallery,
            positives=positives,
            query_labels=query_labels,
            gallery_labels=self.gallery_labels if query_labels is not None else None,
            relevant=relevant,
            k=self.k,
            normalize=self.normalize,
            chunk_size=self.chunk_size,
        )
        for key, value in _sums(per).items():
            self._sums[key] = self._sums.get(key, 0.0) + value

    def compute(self) -> dict[str, float]:
        """``{"recall@k": ..., "mrr": ..., "map": ...}`` over every query seen."""
        if not self._sums:
            raise RuntimeError("RetrievalMetrics.compute() called before any update().")
        return _summarize(self._sums, self.recall_mode)


def _sums(per: RetrievalPerQuery) -> dict[str, float]:
    """Sums of the per-query values over the valid queries (and their count)."""
    ok = per.valid
    out = {
        "count": float(ok.sum()),
        "mrr": float(per.reciprocal_rank[ok].sum()),
        "map": float(per.average_precision[ok].sum()),
    }
    for i, k in enumerate(per.k):
        out[f"hit@{k}"] = float(per.hit_at_k[ok, i].sum())
        out[f"fraction@{k}"] = float(per.recall_at_k[ok, i].sum())
    return out


def _summarize(sums: dict[str, float], recall_mode: RecallMode) -> dict[str, float]:
    n = sums["count"]
    if n == 0:
        raise ValueError(
            "No query has a relevant gallery item, so retrieval metrics are undefined; check "
            "`positives` / `relevant` / the labels (and `exclude_self`)."
        )
    prefix = "hit@" if recall_mode == "hit" else "fraction@"
    out = {
        "recall@" + key[len(prefix) :]: value / n
        for key, value in sums.items()
        if key.startswith(prefix)
    }
    out["mrr"] = sums["mrr"] / n
    out["map"] = sums["map"] / n
    return out


def _from_ranks(
    first: Tensor, n_rel: Tensor, ap: Tensor, within: Tensor, ks: tuple[int, ...]
) -> RetrievalPerQuery:
    """Assemble the per-query results; ``within[:, i]`` counts relevant items in the top k_i."""
    ok = n_rel > 0
    kt = torch.tensor(ks, device=first.device)
    hit = (ok[:, None] & (first[:, None] <= kt[None, :]) & (first[:, None] > 0)).double()
    recall = within.double() / n_rel.clamp_min(1).double()[:, None]
    rr = torch.where(ok, 1.0 / first.clamp_min(1).double(), 0.0)
    return RetrievalPerQuery(ks, n_rel, torch.where(ok, first, 0), rr, ap, hit, recall)


def _one_relevant(
    q: Tensor, g: Tensor, rel: Relevance, ks: tuple[int, ...], chunk_size: int | None
) -> RetrievalPerQuery:
    """Ranks by counting, over tiles, the candidates that score at least as high as the positive."""
    assert rel.positives is not None
    n_q, n_g = q.shape[0], g.shape[0]
    s_pos = (q * g[rel.positives]).sum(1)
    above = torch.zeros(n_q, dtype=torch.long, device=q.device)
    for r0, r1, c0, c1 in tiles(n_q, n_g, chunk_size):
        s = q[r0:r1] @ g[c0:c1].T
        _, cand = rel.mask(r0, r1, c0, c1)
        cand_pos = rel.positives[r0:r1, None] == torch.arange(c0, c1, device=q.device)[None, :]
        above[r0:r1] += ((s >= s_pos[r0:r1, None]) & cand & ~cand_pos).sum(1)
    n_rel = rel.counts()
    first = above + 1
    ok = n_rel > 0
    ap = torch.where(ok, 1.0 / first.double(), 0.0)
    kt = torch.tensor(ks, device=q.device)
    within = (ok[:, None] & (first[:, None] <= kt[None, :])).long()
    return _from_ranks(first, n_rel, ap, within, ks)


def _sorted_rows(
    q: Tensor, g: Tensor, rel: Relevance, ks: tuple[int, ...], chunk_size: int | None
) -> RetrievalPerQuery:
    """Ranks from sorted blocks of full rows (several relevant items per query)."""
    n_q, n_g = q.shape[0], g.shape[0]
    first = torch.zeros(n_q, dtype=torch.long, device=q.device)
    n_rel = torch.zeros(n_q, dtype=torch.long, device=q.device)
    ap = torch.zeros(n_q, dtype=torch.float64, device=q.device)
    within = torch.zeros(n_q, len(ks), dtype=torch.long, device=q.device)
    for r0, r1 in row_blocks(n_q, n_g, chunk_size):
        is_rel, cand = rel.mask(r0, r1, 0, n_g)
        s = (q[r0:r1] @ g.T).masked_fill(~cand, -math.inf)
        rank = n_g - torch.searchsorted(s.sort(1).values, s, side="left")
        s_rel = s.masked_fill(~is_rel, -math.inf)
        rel_rank = n_g - torch.searchsorted(s_rel.sort(1).values, s, side="left")
        count = is_rel.sum(1)
        n_rel[r0:r1] = count
        first[r0:r1] = torch.where(is_rel, rank, n_g + 1).amin(1)
        precision = torch.where(is_rel, rel_rank.double() / rank.clamp_min(1).double(), 0.0)
        ap[r0:r1] = precision.sum(1) / count.clamp_min(1).double()
        for i, k in enumerate(ks):
            within[r0:r1, i] = (is_rel & (rank <= k)).sum(1)
    return _from_ranks(first, n_rel, ap, within, ks)
