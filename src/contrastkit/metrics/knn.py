r"""k-nearest-neighbour classification accuracy, the standard probe of self-supervised learning.

A labelled bank (the training set's embeddings) votes for the class of each query (a test
embedding): the ``k`` bank rows most similar to the query (cosine similarity) vote with weights
:math:`e^{s / T}` (Wu et al., 2018; the DINO evaluation) or with equal weights. The ``k``
nearest neighbours are streamed over tiles of the ``Q x N`` similarity with
:func:`contrastkit.core.pairmap.pair_topk`, so memory is ``O((Q + N) D + Q k)`` plus one tile.
"""

from __future__ import annotations

from typing import Literal, get_args

import torch
from torch import Tensor

from contrastkit.core import validation as v
from contrastkit.core.pairmap import pair_topk
from contrastkit.metrics._common import (
    BLOCK_ELEMENTS,
    check_bool,
    check_exclude_self,
    prepare,
    prepare_labels,
)

Weighting = Literal["exp", "uniform"]


def knn_predict(
    bank: Tensor,
    bank_labels: Tensor,
    query: Tensor,
    *,
    k: int = 20,
    temperature: float = 0.07,
    weighting: Weighting = "exp",
    normalize: bool = True,
    exclude_self: bool = False,
    chunk_size: int | None = None,
) -> Tensor:
    r"""Predict the class of each query by a vote of its ``k`` most similar bank rows.

    With :math:`s_{qj}` the cosine similarity of query :math:`q` and bank row :math:`j`,
    :math:`N_k(q)` the ``k`` bank rows of largest similarity and :math:`T` the temperature,

    .. math::

        \hat y_q = \arg\max_c \sum_{j \in N_k(q),\ y_j = c} w_{qj}, \qquad
        w_{qj} = e^{s_{qj} / T} \ (\text{"exp"}) \quad\text{or}\quad 1 \ (\text{"uniform"})

    The weights are computed as :math:`e^{(s_{qj} - \max_l s_{ql}) / T}` (the same vote, no
    overflow). A tie between classes goes to the smallest class id (as scikit-learn's
    ``KNeighborsClassifier``); a tie between neighbours at the ``k``-th place is broken by
    ``torch.topk``.

    Args:
        bank: Shape ``(N, D)``, the labelled embeddings (the training set).
        bank_labels: Shape ``(N,)`` integer class ids.
        query: Shape ``(Q, D)``, the embeddings to classify.
        k: Neighbours per query, ``1 <= k <= N`` (``N - 1`` with ``exclude_self``); DINO uses 20.
        temperature: :math:`T > 0` of the ``"exp"`` weights (0.07 in Wu et al. and DINO).
        weighting: ``"exp"`` (:math:`e^{s/T}`) or ``"uniform"`` (majority vote).
        normalize: Cosine similarity (``False``: the plain dot product).
        exclude_self: The queries are the bank rows themselves (leave-one-out); row ``i`` does
            not vote for itself.
        chunk_size: Rows and columns per tile of the similarity; ``None`` chooses.

    Returns:
        Shape ``(Q,)``, the predicted class ids (dtype of ``bank_labels``).

    Example:
        >>> import torch
        >>> bank = torch.tensor([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.9]])
        >>> labels = torch.tensor([0, 0, 1, 1])
        >>> knn_predict(bank, labels, torch.tensor([[0.2, 1.0], [1.0, 0.3]]), k=2)
        tensor([1, 0])

    References:
        Wu et al., 2018, "Unsupervised Feature Learning via Non-Parametric Instance
        Discrimination", arXiv:1805.01978. Caron et al. (DINO), 2021, arXiv:2104.14294.
    """
    b = prepare("bank", bank, normalize=normalize)
    y = prepare_labels("bank_labels", bank_labels, b.shape[0], b)
    q = prepare("query", query, normalize=normalize)
    _check_options(b, q, k, temperature, weighting, normalize, exclude_self, chunk_size)
    return _predict(b, y, q, k, float(temperature), weighting, exclude_self, chunk_size)


def knn_accuracy(
    bank: Tensor,
    bank_labels: Tensor,
    query: Tensor,
    query_labels: Tensor,
    *,
    k: int = 20,
    temperature: float = 0.07,
    weighting: Weighting = "exp",
    normalize: bool = True,
    exclude_self: bool = False,
    chunk_size: int | None = None,
) -> float:
    r"""The fraction of queries whose :func:`knn_predict` class equals their label.

    Args:
        bank: Shape ``(N, D)``, the labelled embeddings (the training set).
        bank_labels: Shape ``(N,)`` integer class ids.
        query: Shape ``(Q, D)``, the embeddings to classify (the test set).
        query_labels: Shape ``(Q,)`` integer class ids.
        k: Neighbours per query (DINO: 20).
        temperature: :math:`T > 0` of the ``"exp"`` weights (0.07).
        weighting: ``"exp"`` or ``"uniform"``.
        normalize: Cosine similarity (``False``: the plain dot product).
        exclude_self: Leave-one-out on the bank itself (``query`` is ``bank``).
        chunk_size: Rows and columns per tile of the similarity; ``None`` chooses.

    Returns:
        The accuracy in :math:`[0, 1]` as a float.

    Example:
        >>> import torch
        >>> bank = torch.tensor([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.9]])
        >>> labels = torch.tensor([0, 0, 1, 1])
        >>> knn_accuracy(bank, labels, bank, labels, k=1, exclude_self=True)
        1.0
    """
    q = prepare("query", query, normalize=False)
    yq = prepare_labels("query_labels", query_labels, q.shape[0], q)
    pred = knn_predict(
        bank,
        bank_labels,
        query,
        k=k,
        temperature=temperature,
        weighting=weighting,
        normalize=normalize,
        exclude_self=exclude_self,
        chunk_size=chunk_size,
    )
    return float((pred == yq.to(pred.device)).double().mean())


class KNNAccuracy:
    """kNN accuracy over a fixed bank, accumulated over batches of queries.

    ``update(query, query_labels)`` classifies a batch (see :func:`knn_predict`) and counts the
    correct predictions; ``compute()`` returns the accuracy over every query seen, equal to
    :func:`knn_accuracy` on the concatenated batches.

    Args:
        bank: Shape ``(N, D)``, the labelled embeddings (the training set).
        bank_labels: Shape ``(N,)`` integer class ids.
        k: Neighbours per query (DINO: 20).
        temperature: :math:`T > 0` of the ``"exp"`` weights (0.07).
        weighting: ``"exp"`` or ``"uniform"``.
        normalize: Cosine similarity (``False``: the plain dot product).
        chunk_size: Rows and columns per tile of the similarity; ``None`` chooses.

    Example:
        >>> import torch
        >>> bank = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
        >>> metric = KNNAccuracy(bank, torch.tensor([0, 1]), k=1)
        >>> metric.update(torch.tensor([[0.9, 0.1]]), torch.tensor([0]))
        >>> metric.update(torch.tensor([[0.8, 0.3]]), torch.tensor([1]))
        >>> metric.compute()
        0.5
    """

    def __init__(
        self,
        bank: Tensor,
        bank_labels: Tensor,
        *,
        k: int = 20,
        temperature: float = 0.07,
        weighting: Weighting = "exp",
        normalize: bool = True,
        chunk_size: int | None = None,
    ) -> None:
        self.bank = prepare("bank", bank, normalize=normalize)
        self.bank_labels = prepare_labels("bank_labels", bank_labels, self.bank.shape[0], self.bank)
        _check_options(
            self.bank, self.bank, k, temperature, weighting, normalize, False, chunk_size
        )
        self.k, self.temperature, self.weighting = k, float(temperature), weighting
        self.normalize, self.chunk_size = normalize, chunk_size
        self.reset()

    def reset(self) -> None:
        """Forget every query seen."""
        self.correct = 0
        self.total = 0

    def update(self, query: Tensor, query_labels: Tensor) -> None:
        """Classify a batch of queries ``(Q, D)`` with labels ``(Q,)`` and count the hits."""
        q = prepare("query", query, normalize=self.normalize)
        v.check_same_width("bank", self.bank, "query", q)
        yq = prepare_labels("query_labels", query_labels, q.shape[0], q)
        pred = _predict(
            self.bank,
            self.bank_labels,
            q,
            self.k,
            self.temperature,
            self.weighting,
            False,
            self.chunk_size,
        )
        self.correct += int((pred == yq.to(pred.device)).sum())
        self.total += q.shape[0]

    def compute(self) -> float:
        """The accuracy over every query seen since the last :meth:`reset`."""
        if self.total == 0:
            raise RuntimeError("KNNAccuracy.compute() called before any update().")
        return self.correct / self.total


def _check_options(
    bank: Tensor,
    query: Tensor,
    k: object,
    temperature: object,
    weighting: object,
    normalize: object,
    exclude_self: object,
    chunk_size: object,
) -> None:
    v.check_same_width("bank", bank, "query", query)
    check_bool("normalize", normalize)
    check_exclude_self(exclude_self, query.shape[0], bank.shape[0], "bank")
    v.check_positive_float("temperature", temperature)
    v.check_choice("weighting", weighting, get_args(Weighting))
    v.check_chunk_size(chunk_size)
    available = bank.shape[0] - (1 if exclude_self else 0)
    v.check_int("k", k, 1)
    assert isinstance(k, int)
    if k > available:
        raise ValueError(
            f"`k` must be at most the number of bank rows a query can see ({available}"
            f"{', itself excluded' if exclude_self else ''}); got k={k}."
        )


def _predict(
    bank: Tensor,
    bank_labels: Tensor,
    query: Tensor,
    k: int,
    temperature: float,
    weighting: Weighting,
    exclude_self: bool,
    chunk_size: int | None,
) -> Tensor:
    query = query.to(bank.device)

    def scores(r: list[Tensor], c: list[Tensor], p: list[Tensor], ri: Tensor, ci: Tensor) -> Tensor:
        s = r[0] @ c[0].T
        if exclude_self:
            s = s.masked_fill(ri[:, None] == ci[None, :], float("-inf"))
        return s

    with torch.no_grad():
        sims, idx = pair_topk(scores, [query], [bank], k=k, chunk_size=chunk_size)
        classes = torch.unique(bank_labels)
        neighbour_class = torch.searchsorted(classes, bank_labels[idx])
        if weighting == "exp":
            weights = torch.exp((sims - sims[:, :1]) / temperature)
        else:
            weights = torch.ones_like(sims)
        pred = torch.empty(query.shape[0], dtype=torch.long, device=bank.device)
        rows = max(1, BLOCK_ELEMENTS // max(1, classes.numel()))
        for r0 in range(0, query.shape[0], rows):
            r1 = min(r0 + rows, query.shape[0])
            votes = torch.zeros(r1 - r0, classes.numel(), dtype=sims.dtype, device=bank.device)
            votes.scatter_add_(1, neighbour_class[r0:r1], weights[r0:r1])
            pred[r0:r1] = votes.argmax(1)
        out: Tensor = classes[pred]
        return out
