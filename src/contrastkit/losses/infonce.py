"""InfoNCE: one positive per anchor among in-batch (and extra) negatives."""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from contrastkit import core
from contrastkit.core import similarity as S
from contrastkit.core import validation as v
from contrastkit.core.pairmap import pair_reduce
from contrastkit.core.validation import Impl, Reduction
from contrastkit.distributed import ProcessGroup, Shard, shard
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

Similarity = Literal["dot", "bilinear", "neg_sq_l2", "student_t", "maxsim"]


def infonce(
    query: Tensor,
    key: Tensor,
    *,
    temperature: float | Tensor = 0.07,
    symmetric: bool = False,
    normalize: bool = True,
    weights: Tensor | None = None,
    similarity: Similarity = "dot",
    weight: Tensor | None = None,
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
        similarity: The score :math:`\langle q_i, k_j \rangle` is replaced by
            ``"bilinear"`` :math:`q_i^\top W k_j` (TACO; pass ``weight``),
            ``"neg_sq_l2"`` :math:`-\lVert q_i - k_j \rVert^2`, ``"student_t"``
            :math:`-\log(1 + \lVert q_i - k_j \rVert^2)` (the log of t-SNE's kernel) or
            ``"maxsim"`` :math:`\sum_t \max_u \langle q_{it}, k_{ju} \rangle` over token sets
            ``(N, T, D)`` and ``(M, U, D)`` (SECLA, SPRC). The default ``"dot"`` (cosine with
            ``normalize``) runs on the fused dot-product kernels; the others on the general
            tiled reductions of :mod:`contrastkit.core.pairmap` (same exactness and memory,
            slower) and, under ``gather_distributed``, every rank evaluates the gathered batch.
        weight: Shape ``(D_q, D_k)``, :math:`W` of ``similarity="bilinear"`` (may require
            grad).
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
    if similarity != "dot":
        return _infonce_similarity(
            query,
            key,
            temperature,
            symmetric,
            normalize,
            weights,
            similarity,
            weight,
            reduction,
            chunk_size,
            impl,
            gather_distributed,
            process_group,
        )

    def check() -> tuple[Tensor, Tensor, Tensor | None]:
        v.check_temperature("temperature", temperature)
        if weight is not None:
            raise ValueError(
                "`weight` is the matrix of similarity='bilinear'; drop it or set that."
            )
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


def _infonce_similarity(
    query: Tensor,
    key: Tensor,
    temperature: float | Tensor,
    symmetric: bool,
    normalize: bool,
    weights: Tensor | None,
    similarity: Similarity,
    weight: Tensor | None,
    reduction: Reduction,
    chunk_size: int | None,
    impl: Impl,
    gather_distributed: bool,
    process_group: ProcessGroup | None,
) -> Tensor:
    """InfoNCE with a similarity other than the dot product; see :func:`infonce`."""

    def check() -> tuple[Tensor, Tensor, Tensor | None, Tensor | None]:
        v.check_temperature("temperature", temperature)
        v.check_choice("similarity", similarity, S.SIMILARITIES)
        check_common(reduction, chunk_size, impl)
        shape = "(N, T, D)" if similarity == "maxsim" else "(N, D)"
        q = v.check_embeddings("query", query, shape=shape)
        k = v.check_embeddings("key", key, shape=shape.replace("N, T", "M, U"))
        if k.shape[0] < q.shape[0]:
            raise ValueError(
                f"`key` must have at least as many rows as `query` (row i of `query` is "
                f"positive with row i of `key`); got {k.shape[0]} < {q.shape[0]}."
            )
        if symmetric and k.shape[0] != q.shape[0]:
            raise ValueError(
                f"symmetric=True needs `key` with as many rows as `query` ({q.shape[0]}); got "
                f"{k.shape[0]}. Drop the extra negatives or use symmetric=False."
            )
        mat = None
        if similarity == "bilinear":
            if not isinstance(weight, Tensor) or tuple(weight.shape) != (q.shape[1], k.shape[1]):
                got = tuple(weight.shape) if isinstance(weight, Tensor) else weight
                raise ValueError(
                    f"similarity='bilinear' needs `weight` of shape (D_q, D_k) = "
                    f"({q.shape[1]}, {k.shape[1]}); got {got}."
                )
            mat = v.check_embeddings("weight", weight)
        elif weight is not None:
            raise ValueError(f"`weight` is only used by similarity='bilinear', not {similarity!r}.")
        elif q.shape[-1] != k.shape[-1]:
            raise ValueError(
                f"`query` and `key` must have the same embedding width; got {q.shape[-1]} and "
                f"{k.shape[-1]}."
            )
        cdt = core.stats_dtype(q.dtype)
        q, k = q.to(cdt), k.to(cdt)
        if normalize:
            q, k = F.normalize(q, dim=-1), F.normalize(k, dim=-1)
        w = None if weights is None else v.check_weights("weights", weights, q.shape[0])
        return q, k, None if w is None else w.to(q.device), mat

    (q, k, w, mat), sh = shard(
        gather_distributed,
        process_group,
        check,
        lambda r: {
            "query": r[0],
            **paired_shapes("key", r[0], r[1]),
            "weights": r[2],
        },
        {
            "symmetric": symmetric,
            "reduction": reduction,
            "similarity": similarity,
            "grads": (requires_grad(temperature), requires_grad(weight)),
        },
    )
    k = gather_paired(sh, "key", q, k)
    q = gathered(sh, "query", q)
    w = None if w is None or sh is None else sh.gather("weights", w)
    n = q.shape[0]
    scale = 1.0 / core.as_scale(temperature, q)
    params = [scale] if mat is None else [scale, mat]
    cost = q.shape[1] * k.shape[1] if similarity == "maxsim" else 1

    def scores(r: list[Tensor], c: list[Tensor], p: list[Tensor], ri: Tensor, ci: Tensor) -> Tensor:
        return S.pairwise(similarity, r[0], c[0], *p[1:]) * p[0]

    lse_r, lse_c = pair_reduce(
        scores,
        [q],
        [k],
        params,
        mode="lse",
        out_cols=symmetric,
        cost=cost,
        chunk_size=chunk_size,
        impl=impl,
    )
    pos = S.rowwise(similarity, q, k[:n], mat) * scale
    loss = lse_r - pos
    if symmetric:
        loss = 0.5 * (loss + (lse_c - pos))
    if w is not None:
        loss = loss * w.to(loss.dtype)
    return finish(loss, reduction, sh, "query")


class InfoNCELoss(ContrastiveLoss):
    """Module form of :func:`infonce`; the arguments are the same.

    With ``similarity="bilinear"``, ``dims=(D_q, D_k)`` creates the learnable matrix
    ``weight`` (initialized to the identity), as in TACO.
    """

    catalog_id = "infonce"
    family = "A. softmax cross-entropy, one positive"
    paper = Paper("Oord et al.", 2018, "1807.03748", "Representation Learning with CPC")
    inputs = ("query", "key")
    peers = ("info_nce.InfoNCE", "pytorch_metric_learning.losses.NTXentLoss")
    supports_distributed = True
    distributed = "split"

    weight: Tensor | None

    def __init__(
        self,
        *,
        temperature: float = 0.07,
        symmetric: bool = False,
        normalize: bool = True,
        similarity: Similarity = "dot",
        dims: tuple[int, int] | None = None,
        reduction: Reduction = "mean",
        chunk_size: int | None = None,
        impl: Impl = "auto",
        gather_distributed: bool = False,
        process_group: ProcessGroup | None = None,
    ) -> None:
        super().__init__()
        v.check_temperature("temperature", temperature)
        v.check_choice("similarity", similarity, S.SIMILARITIES)
        check_common(reduction, chunk_size, impl)
        if (similarity == "bilinear") != (dims is not None):
            raise ValueError(
                "`dims=(D_q, D_k)` sizes the learnable matrix of similarity='bilinear' (TACO); "
                f"give it exactly for that similarity (got similarity={similarity!r}, "
                f"dims={dims!r})."
            )
        self.weight = None if dims is None else nn.Parameter(torch.eye(*dims))
        self.similarity = similarity
        self.temperature, self.symmetric, self.normalize = temperature, symmetric, normalize
        self.set_common(reduction, chunk_size, impl, gather_distributed, process_group)

    def forward(self, query: Tensor, key: Tensor, *, weights: Tensor | None = None) -> Tensor:
        """Compute the loss; see :func:`infonce`."""
        return infonce(
            query,
            key,
            temperature=self.temperature,
            symmetric=self.symmetric,
            normalize=self.normalize,
            weights=weights,
            similarity=self.similarity,
            weight=self.weight,
            **self.common(),
        )
