"""Metrics that judge a representation, as the contrastive-learning papers report them.

- geometry (:mod:`~contrastkit.metrics.geometry`): :func:`alignment` and :func:`uniformity`
  (Wang & Isola), :func:`tolerance` (Wang & Liu), :func:`effective_rank` (Roy & Vetterli) and
  its accumulator :class:`EffectiveRank`;
- classification: :func:`knn_accuracy` / :func:`knn_predict` / :class:`KNNAccuracy`
  (temperature-weighted kNN, :mod:`~contrastkit.metrics.knn`), :func:`linear_probe_accuracy`,
  :class:`LinearProbe` and :func:`train_test_split` (:mod:`~contrastkit.metrics.probe`);
- retrieval (:mod:`~contrastkit.metrics.retrieval`): :func:`recall_at_k`,
  :func:`mean_reciprocal_rank`, :func:`mean_average_precision`, :func:`retrieval_metrics`,
  :func:`retrieval_per_query` and the accumulator :class:`RetrievalMetrics`, with one or
  several relevant items per query;
- ROC-AUC (:mod:`~contrastkit.metrics.roc`): :func:`roc_auc` of two score sets and
  :func:`pair_roc_auc` of all relevant versus irrelevant (query, gallery) pairs (MW paper).

Conventions: every metric works on detached inputs under ``torch.no_grad`` (no gradient flows;
use :mod:`contrastkit.losses` to optimize alignment or uniformity) and returns a Python
``float`` (per-query and per-sample results are tensors on the inputs' device). Inputs are
validated with clear ``ValueError`` messages; low-precision inputs are upcast to float32.
Similarities are cosine by default (``normalize=True``). No metric materializes an
``N x N`` (or ``Q x G``) matrix beyond one tile: ``chunk_size`` sets the tile, ``None`` chooses.
Accumulators have ``update(...)``, ``compute()`` and ``reset()``; ``compute()`` equals the
functional form on the concatenated batches.
"""

from contrastkit.metrics.geometry import (
    EffectiveRank,
    alignment,
    effective_rank,
    tolerance,
    uniformity,
)
from contrastkit.metrics.knn import KNNAccuracy, knn_accuracy, knn_predict
from contrastkit.metrics.probe import LinearProbe, linear_probe_accuracy, train_test_split
from contrastkit.metrics.retrieval import (
    RetrievalMetrics,
    RetrievalPerQuery,
    mean_average_precision,
    mean_reciprocal_rank,
    recall_at_k,
    retrieval_metrics,
    retrieval_per_query,
)
from contrastkit.metrics.roc import pair_roc_auc, roc_auc

__all__ = [
    "EffectiveRank",
    "KNNAccuracy",
    "LinearProbe",
    "RetrievalMetrics",
    "RetrievalPerQuery",
    "alignment",
    "effective_rank",
    "knn_accuracy",
    "knn_predict",
    "linear_probe_accuracy",
    "mean_average_precision",
    "mean_reciprocal_rank",
    "pair_roc_auc",
    "recall_at_k",
    "retrieval_metrics",
    "retrieval_per_query",
    "roc_auc",
    "tolerance",
    "train_test_split",
    "uniformity",
]
