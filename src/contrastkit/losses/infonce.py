"""InfoNCE: one positive per anchor among in-batch (and extra) negatives."""

from __future__ import annotations

import torch
from torch import Tensor

from contrastkit import core
from contrastkit.core import validation as v
from contrastkit.core.validation import Impl, Reduction
from contrastkit.distributed import ProcessGroup, Shard, shard
from contrastkit.losses._base import ContrastiveLoss, Paper
from contrastkit.losses._inputs import check_common, prepare_pair, requires_grad


def infonce(
    query: Tensor,
    key: Tensor,
    *,
    temperature: float | Tensor = 0.07,
    symmetric: bool = False,
    normalize: bool = True,
    weights: Tensor | None = None,
    reduction: Reduction = "mean",
    chunk_size: int | None = None,
    impl: Impl = "auto",
    gather_distributed: bool = False,
    process_group: ProcessGroup | None = None,
) -> Tensor:
    r"""InfoNCE over in-batch negatives.

    Row ``i`` of ``query`` is positive with row ``i`` of ``key``; every other key is a negative,
    including rows ``N..M-1`` of ``key`` (extra negatives such as a queue). With
    :math:`s_{ij} = \langle q_i, k_j \rangle / \tau`,

    .. math::

        \ell_i = -s_{ii} + \log \sum_{j=1}^{M} e^{s_{ij}}, \qquad
        \ell'_i = -s_{ii} + \log \sum_{j=1}^{N} e^{s_{ji}}

    One-way returns :math:`w_i \ell_i`; ``symmetric=True`` (CLIP) returns
    :math:`w_i (\ell_i + \ell'_i) / 2` and needs ``M == N``. ``"mean"`` is
    :math:`\sum_i w_i \ell_i / N`.

    Equivalent to ``F.cross_entropy(q @ k.T / tau, arange(N))`` (plus the transposed term when
    symmetric) but, tiled, never materializes the ``N x M`` logits: memory is ``O((N + M) D)``
    plus one tile, in forward and backward.

    Args:
        query: Shape ``(N, D)``.
        key: Shape ``(M, D)`` with ``M >= N``.
        temperature: :math:`\tau > 0`; a float or a 0-dim tensor (may require grad).
        symmetric: Average in the key-to-query direction (requires ``M == N``).
        normalize: L2-normalize both inputs first (cosine similarity).
        weights: Shape ``(N,)`` per-anchor weights :math:`w_i`; both directions use them.
        reduction: ``"mean"``, ``"sum"`` or ``"none"`` (shape ``(N,)``).
        chunk_size: Rows and columns per tile; ``None`` chooses.
        impl: ``"auto"``, ``"dense"`` or ``"tiled"``.
        gather_distributed: Compute the loss of the global batch over all ranks of
            ``process_group`` (each rank's keys, extra negatives included, are candidates for
            every query). See :mod:`contrastkit.distributed`.
        process_group: The group to gather over; ``None`` is the default group.

    Returns:
        The loss, in float32 for low-precision inputs (statistics dtype).

    Example:
        >>> import torch
        >>> q, k = torch.randn(4, 8), torch.randn(6, 8)
        >>> infonce(q, k, temperature=0.5).shape
        torch.Size([])

    References:
        Oord et al., 2018, arXiv:1807.03748. Radford et al. (CLIP), 2021, arXiv:2103.00020.

    Peers: ``info_nce.InfoNCE``, ``pytorch_metric_learning.losses.NTXentLoss`` (with ``ref_emb``).
    """

    def check() -> tuple[Tensor, Tensor, Tensor | None]:
        v.check_temperature("temperature", temperature)
        check_common(reduction, chunk_size, impl)
        q, k = prepare_pair("query", query, "key", key, normalize=False, same_batch=False)
        if symmetric and k.shape[0] != q.shape[0]:
            raise ValueError(
                f"symmetric=True needs `key` with as many rows as `query` ({q.shape[0]}); got "
                f"{k.shape[0]}. Drop the extra negatives or use symmetric=False."
            )
        w = None if weights is None else v.check_weights("weights", weights, q.shape[0])
        if w is not None:
            w = w.to(q.device)
        return q, k, w

    (q, k, w), sh = shard(
        gather_distributed,
        process_group,
        check,
        lambda r: {"query": r[0], "key": r[1], "weights": r[2]},
        {
            "symmetric": symmetric,
            "reduction": reduction,
            "temperature_grad": requires_grad(temperature),
        },
    )
    scale = 1.0 / core.as_scale(temperature, q)
    return infonce_scaled(q, k, scale, symmetric, normalize, w, reduction, chunk_size, impl, sh)


def infonce_scaled(
    q: Tensor,
    k: Tensor,
    scale: Tensor,
    symmetric: bool,
    normalize: bool,
    weights: Tensor | None,
    reduction: Reduction,
    chunk_size: int | None,
    impl: Impl,
    sh: Shard | None,
) -> Tensor:
    """InfoNCE on validated inputs and a scale tensor; see `infonce`.

    Normalization happens inside the engine, so no normalized copy of the inputs is kept.
    With a :class:`~contrastkit.distributed.Shard`, this rank's queries meet the gathered keys;
    if symmetric, the keys' column statistics are merged over ranks.
    """
    n = q.shape[0]
    if sh is None:
        lse_r, lse_c, pos = core.score_stats(
            q,
            k,
            scale,
            rows=True,
            cols=symmetric,
            paired=True,
            normalize=normalize,
            chunk_size=chunk_size,
            impl=impl,
        )
        loss = lse_r - pos
        if symmetric:
            loss = 0.5 * (loss + (lse_c - pos))
        if weights is not None:
            loss = loss * weights.to(loss.dtype)
        return core.reduce(loss, reduction)

    scale = sh.sync_scale(scale)
    own = sh.global_index("key", torch.arange(n, device=q.device))
    # This rank's queries against all keys: its rows completely, and each key's column over
    # this rank's queries, merged over ranks below (one pass per rank in all).
    lse_r, lse_c, pos = core.score_stats(
        q,
        sh.gather("key", k),
        scale,
        cols=symmetric,
        paired=True,
        partner=own,
        normalize=normalize,
        chunk_size=chunk_size,
        impl=impl,
    )
    loss = lse_r - pos
    if symmetric:
        loss = 0.5 * (loss + (sh.merge_logsumexp(lse_c)[own] - pos))
    if weights is not None:
        loss = loss * weights.to(loss.dtype)
    return sh.reduce(loss, reduction, sh.total("query"))


class InfoNCELoss(ContrastiveLoss):
    """Module form of :func:`infonce`; the arguments are the same."""

    catalog_id = "infonce"
    family = "A. softmax cross-entropy, one positive"
    paper = Paper("Oord et al.", 2018, "1807.03748", "Representation Learning with CPC")
    inputs = ("query", "key")
    peers = ("info_nce.InfoNCE", "pytorch_metric_learning.losses.NTXentLoss")
    supports_distributed = True
    distributed = "split"

    def __init__(
        self,
        *,
        temperature: float = 0.07,
        symmetric: bool = False,
        normalize: bool = True,
        reduction: Reduction = "mean",
        chunk_size: int | None = None,
        impl: Impl = "auto",
        gather_distributed: bool = False,
        process_group: ProcessGroup | None = None,
    ) -> None:
        super().__init__()
        v.check_temperature("temperature", temperature)
        check_common(reduction, chunk_size, impl)
        self.temperature, self.symmetric, self.normalize = temperature, symmetric, normalize
        self.reduction, self.chunk_size, self.impl = reduction, chunk_size, impl
        self.gather_distributed, self.process_group = gather_distributed, process_group

    def forward(self, query: Tensor, key: Tensor, *, weights: Tensor | None = None) -> Tensor:
        """Compute the loss; see :func:`infonce`."""
        return infonce(
            query,
            key,
            temperature=self.temperature,
            symmetric=self.symmetric,
            normalize=self.normalize,
            weights=weights,
            reduction=self.reduction,
            chunk_size=self.chunk_size,
            impl=self.impl,
            gather_distributed=self.gather_distributed,
            process_group=self.process_group,
        )
