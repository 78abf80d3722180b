r"""ROC-AUC of positive versus negative pair scores, exact, by sorting.

The area under the ROC curve of scores that should separate positives from negatives equals
the Mann-Whitney statistic, the probability that a random positive outscores a random negative
(a tie counts one half):

.. math::

    \mathrm{AUC} = \frac{1}{|P| |N|} \sum_{p \in P} \sum_{n \in N}
        \Big( [s_p > s_n] + \tfrac{1}{2} [s_p = s_n] \Big)

Sorting one set and binary-searching the other gives it exactly in
:math:`O((|P| + |N|) \log \min(|P|, |N|))`, the same value as
``sklearn.metrics.roc_auc_score`` (ties included). The MW paper proposes this AUC over all
(query, document) pairs of a retriever, positives against negatives across queries, as a
threshold-free measure of how well one similarity threshold separates relevant from irrelevant
pairs; :func:`pair_roc_auc` computes it from embeddings without the ``Q x G`` matrix.
"""

from __future__ import annotations

import torch
from torch import Tensor

from contrastkit.metrics._common import (
    RelevantSets,
    prepare_retrieval,
    tiles,
)


def roc_auc(positive_scores: Tensor, negative_scores: Tensor) -> float:
    """ROC-AUC of two sets of scores: the probability that a positive outscores a negative.

    Args:
        positive_scores: Shape ``(P,)``, scores of the positive pairs (any real dtype; compared
            in float64).
        negative_scores: Shape ``(N,)``, scores of the negative pairs.

    Returns:
        The AUC in :math:`[0, 1]` as a float (0.5: no separation, 1: perfect).

    Example:
        >>> import torch
        >>> roc_auc(torch.tensor([0.9, 0.8, 0.3]), torch.tensor([0.1, 0.4]))
        0.8333333333333334

    References:
        Sheikholeslami et al., 2025, "MW loss: AUC-Driven Learning for Robust Neural
        Retrieval", arXiv:2510.00137. Hanley & McNeil, 1982, "The meaning and use of the area
        under a receiver operating characteristic (ROC) curve", Radiology.
    """
    pos = _check_scores("positive_scores", positive_scores)
    neg = _check_scores("negative_scores", negative_scores).to(pos.device)
    with torch.no_grad():
        if pos.numel() <= neg.numel():
            wins, ties = _count(pos.sort().values, neg, reference_is_positive=True)
        else:
            wins, ties = _count(neg.sort().values, pos, reference_is_positive=False)
    return (wins + 0.5 * ties) / (pos.numel() * neg.numel())


def pair_roc_auc(
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
    r"""ROC-AUC of all relevant versus all irrelevant (query, gallery) pair similarities.

    Every pair :math:`(q, j)` of the ``Q x G`` similarity (cosine by default) is a positive if
    ``j`` is relevant to ``q`` and a negative otherwise; the AUC compares positives and
    negatives across all queries (a global threshold), as the MW paper proposes, unlike the
    per-query rankings of :mod:`contrastkit.metrics.retrieval`. Relevance is given as in
    :func:`contrastkit.metrics.retrieval.retrieval_per_query`.

    Two passes over tiles of the similarity: the first keeps the scores of the smaller of the
    two sets and sorts them, the second binary-searches every score of the other set. Memory
    is ``O(min(|P|, |N|))`` scores plus one tile (``|P| = Q`` with ``positives``).

    Args:
        query: Shape ``(Q, D)``.
        gallery: Shape ``(G, D)``.
        positives: Shape ``(Q,)``, the one relevant gallery index of each query.
        query_labels: Shape ``(Q,)``; with ``gallery_labels``, same label = relevant.
        gallery_labels: Shape ``(G,)``.
        relevant: A sequence of ``Q`` sequences of relevant gallery indices.
        normalize: Cosine similarity (``False``: the plain dot product).
        exclude_self: The queries are the gallery rows; the pairs ``(i, i)`` are left out.
        chunk_size: Rows and columns per tile; ``None`` chooses.

    Returns:
        The AUC in :math:`[0, 1]` as a float.

    Example:
        >>> import torch
        >>> x = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
        >>> pair_roc_auc(x, x, positives=torch.tensor([0, 1]))
        1.0

    References:
        Sheikholeslami et al., 2025, "MW loss: AUC-Driven Learning for Robust Neural
        Retrieval", arXiv:2510.00137.
    """
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
    n_pos = int(rel.counts().sum())
    n_neg = rel.num_candidates() - n_pos
    if n_pos == 0 or n_neg == 0:
        raise ValueError(
            f"ROC-AUC needs both relevant and irrelevant pairs; got {n_pos} relevant and "
            f"{n_neg} irrelevant (query, gallery) pairs."
        )
    keep_positive = n_pos <= n_neg
    with torch.no_grad():
        kept: list[Tensor] = []
        for r0, r1, c0, c1 in tiles(q.shape[0], g.shape[0], chunk_size):
            s = q[r0:r1] @ g[c0:c1].T
            is_rel, cand = rel.mask(r0, r1, c0, c1)
            kept.append(s[is_rel] if keep_positive else s[cand & ~is_rel])
        reference = torch.cat(kept).sort().values
        wins, ties = 0, 0
        for r0, r1, c0, c1 in tiles(q.shape[0], g.shape[0], chunk_size):
            s = q[r0:r1] @ g[c0:c1].T
            is_rel, cand = rel.mask(r0, r1, c0, c1)
            other = s[cand & ~is_rel] if keep_positive else s[is_rel]
            w, t = _count(reference, other, reference_is_positive=keep_positive)
            wins, ties = wins + w, ties + t
    return (wins + 0.5 * ties) / (n_pos * n_neg)


def _count(reference: Tensor, other: Tensor, *, reference_is_positive: bool) -> tuple[int, int]:
    """Pairs (reference, other) where the positive wins, and ties; ``reference`` is sorted."""
    if other.numel() == 0:
        return 0, 0
    left = torch.searchsorted(reference, other, side="left")
    right = torch.searchsorted(reference, other, side="right")
    ties = int((right - left).sum())
    if reference_is_positive:
        return int((reference.numel() - right).sum()), ties
    return int(left.sum()), ties


def _check_scores(name: str, x: object) -> Tensor:
    if not isinstance(x, Tensor):
        raise ValueError(f"`{name}` must be a 1-D torch.Tensor of scores; got {type(x).__name__}.")
    if x.dim() != 1:
        raise ValueError(
            f"`{name}` must be 1-D (one score per pair); got shape {tuple(x.shape)}. "
            "Flatten it with x.flatten()."
        )
    if x.numel() == 0:
        raise ValueError(f"`{name}` is empty; ROC-AUC needs at least one score of each kind.")
    if x.dtype == torch.bool or x.is_complex():
        raise ValueError(f"`{name}` must hold real scores; got dtype {x.dtype}.")
    t = x.detach().double()
    if not bool(torch.isfinite(t).all()):
        raise ValueError(f"`{name}` contains non-finite scores (NaN or inf).")
    return t
