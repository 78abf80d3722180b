"""The Mann-Whitney (AUC) loss: every positive pair outranks every negative pair."""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor

from contrastkit import core
from contrastkit.core import validation as v
from contrastkit.core.pairmap import pair_reduce
from contrastkit.core.validation import Impl, Reduction
from contrastkit.distributed import ProcessGroup, shard
from contrastkit.losses._base import ContrastiveLoss, Paper
from contrastkit.losses._inputs import (
    check_common,
    finish,
    gather_paired,
    gathered,
    paired_shapes,
    prepare_pair,
    requires_grad,
)

Scope = Literal["batch", "query"]


def mw_auc(
    query: Tensor,
    doc: Tensor,
    *,
    temperature: float | Tensor = 1.0,
    scope: Scope = "batch",
    normalize: bool = True,
    reduction: Reduction = "mean",
    chunk_size: int | None = None,
    impl: Impl = "auto",
    gather_distributed: bool = False,
    process_group: ProcessGroup | None = None,
) -> Tensor:
    r"""Mann-Whitney / AUC loss: binary cross-entropy on (negative - positive) score differences.

    With :math:`s_{ij} = \cos(q_i, d_j)`, positive pairs :math:`(i, i)` and negative pairs
    :math:`(i, j), j \ne i` (``doc`` may hold ``M > N`` rows: extra hard negatives),

    .. math::

        \text{batch:}\quad \ell_i = \frac{1}{N (M - 1)} \sum_{p=1}^{N} \sum_{j \ne i}
            \operatorname{softplus}\Big(\frac{s_{ij} - s_{pp}}{\tau}\Big), \qquad
        \text{query:}\quad \ell_i = \frac{1}{M - 1} \sum_{j \ne i}
            \operatorname{softplus}\Big(\frac{s_{ij} - s_{ii}}{\tau}\Big)

    and :math:`L = \frac{1}{N} \sum_i \ell_i`. ``scope="batch"`` is the paper's loss: the mean
    over every (positive pair, negative pair) of the batch, an upper bound on
    :math:`1 - \text{AUC}` of all scores of the batch, which makes scores comparable across
    queries (InfoNCE is invariant to a per-query shift). It has :math:`N^2 (M - 1)` terms: the
    tiles hold all :math:`N` positives against a block of negatives, so memory stays
    ``O((N + M) D)`` plus one tile, but the time is cubic; a few thousand queries per batch on
    a CPU (``N = M = 2048``: about ``8.6e9`` terms). ``scope="query"`` compares each positive
    only with its own row (``O(N M)``).

    Args:
        query: Shape ``(N, D)``.
        doc: Shape ``(M, D)``, ``M >= N``; row ``i`` is the positive of query ``i``.
        temperature: :math:`\tau > 0` (the paper's value is not stated; 1 keeps the raw cosine
            differences). A float or a 0-dim tensor.
        scope: ``"batch"`` or ``"query"``.
        normalize: Cosine (``True``) or dot-product scores.
        reduction: ``"mean"``, ``"sum"`` or ``"none"`` (shape ``(N,)``, the :math:`\ell_i`).
        chunk_size: Rows and columns per tile; ``None`` chooses.
        impl: ``"auto"``, ``"dense"`` or ``"tiled"``.
        gather_distributed: Loss of the global batch over all ranks (every rank evaluates the
            gathered batch; see :mod:`contrastkit.distributed`).
        process_group: The group to gather over; ``None`` is the default group.

    Example:
        >>> import torch
        >>> mw_auc(torch.randn(4, 8), torch.randn(4, 8)).shape
        torch.Size([])

    References:
        Sheikholeslami et al., 2025, "AUC-Driven Learning for Robust Neural Retrieval",
        arXiv:2510.00137.
    """

    def check() -> tuple[Tensor, Tensor]:
        v.check_temperature("temperature", temperature)
        v.check_choice("scope", scope, ("batch", "query"))
        check_common(reduction, chunk_size, impl)
        return prepare_pair("query", query, "doc", doc, normalize=normalize, same_batch=False)

    (q, d), sh = shard(
        gather_distributed,
        process_group,
        check,
        lambda r: {"query": r[0], **paired_shapes("doc", r[0], r[1])},
        {"reduction": reduction, "scope": scope, "temperature_grad": requires_grad(temperature)},
    )
    d = gather_paired(sh, "doc", q, d)
    q = gathered(sh, "query", q)
    n, m = q.shape[0], d.shape[0]
    scale = 1.0 / core.as_scale(temperature, q)
    pos = core.paired_scores(q, d, scale)
    if m == 1:
        return finish(0.0 * pos, reduction, sh, "query")
    if scope == "query":
        terms, _ = pair_reduce(
            lambda r, c, p, ri, ci: _off_diagonal(
                F.softplus(r[0] @ c[0].T * p[0] - r[1][:, None]), ri, ci
            ),
            [q, pos],
            [d],
            [scale],
            chunk_size=chunk_size,
            impl=impl,
        )
        per_row = terms / (m - 1)
    else:
        terms, _ = pair_reduce(
            lambda r, c, p, ri, ci: _off_diagonal(
                F.softplus((r[0] @ c[0].T * p[0])[:, :, None] - p[1][None, None, :]).sum(-1),
                ri,
                ci,
            ),
            [q],
            [d],
            [scale, pos],
            cost=n,
            chunk_size=chunk_size,
            impl=impl,
        )
        per_row = terms / (n * (m - 1))
    return finish(per_row, reduction, sh, "query")


def _off_diagonal(x: Tensor, ri: Tensor, ci: Tensor) -> Tensor:
    return torch.where(ri[:, None] == ci[None, :], 0.0, x)


class MWAUCLoss(ContrastiveLoss):
    """Module form of :func:`mw_auc`; the arguments are the same."""

    catalog_id = "mw_auc"
    family = "F. ranking on score differences"
    paper = Paper(
        "Sheikholeslami et al.",
        2025,
        "2510.00137",
        "AUC-Driven Learning for Robust Neural Retrieval",
    )
    inputs = ("query", "doc")
    supports_distributed = True

    def __init__(
        self,
        *,
        temperature: float = 1.0,
        scope: Scope = "batch",
        normalize: bool = True,
        reduction: Reduction = "mean",
        chunk_size: int | None = None,
        impl: Impl = "auto",
        gather_distributed: bool = False,
        process_group: ProcessGroup | None = None,
    ) -> None:
        super().__init__()
        v.check_temperature("temperature", temperature)
        v.check_choice("scope", scope, ("batch", "query"))
        check_common(reduction, chunk_size, impl)
        self.temperature, self.scope, self.normalize = temperature, scope, normalize
        self.set_common(reduction, chunk_size, impl, gather_distributed, process_group)

    def forward(self, query: Tensor, doc: Tensor) -> Tensor:
        """Compute the loss; see :func:`mw_auc`."""
        return mw_auc(
            query,
            doc,
            temperature=self.temperature,
            scope=self.scope,
            normalize=self.normalize,
            **self.common(),
        )
