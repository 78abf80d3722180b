"""Listwise InfoNCE: each anchor against its own list of candidates."""

from __future__ import annotations

import math

import torch
from torch import Tensor

from contrastkit import core
from contrastkit.core import validation as v
from contrastkit.core.tiled import stats_dtype
from contrastkit.core.validation import Impl, Reduction
from contrastkit.distributed import ProcessGroup, shard
from contrastkit.losses._base import ContrastiveLoss, Paper
from contrastkit.losses._inputs import check_common, finish, gathered, requires_grad


def listwise(
    query: Tensor,
    candidates: Tensor,
    *,
    positives: Tensor | None = None,
    weights: Tensor | None = None,
    ids: Tensor | None = None,
    temperature: float | Tensor = 0.05,
    normalize: bool = True,
    reduction: Reduction = "mean",
    chunk_size: int | None = None,
    impl: Impl = "auto",
    gather_distributed: bool = False,
    process_group: ProcessGroup | None = None,
) -> Tensor:
    r"""Softmax cross-entropy of each anchor over its own list of candidates.

    Each anchor has its positives and hard negatives, optional candidate weights and merged
    duplicates.

    With :math:`s_{ik} = \langle q_i, c_{ik} \rangle / \tau`, positives :math:`P_i` (column 0
    by default), candidate weights :math:`w_{ik}` and the kept candidates :math:`K_i` (the first
    occurrence of each id),

    .. math::

        \ell_i = -\log \frac{\sum_{k \in P_i \cap K_i} w_{ik} e^{s_{ik}}}
                            {\sum_{k \in K_i} w_{ik} e^{s_{ik}}}

    One positive and unit weights give the listwise loss of rerankers and retrievers (one
    positive among its ``K - 1`` hard negatives); several positives give the :math:`L^{in}`
    form of ColloSSL, whose :math:`w` down-weights negatives (e.g. by 1 / MMD). ``ids`` merges
    duplicates (Just Ask: two questions with the same answer string), so a copy of the positive
    is not a negative. The scores are ``N x K`` (the size of the input), so nothing is tiled.

    Args:
        query: Shape ``(N, D)``.
        candidates: Shape ``(N, K, D)``; row ``i`` lists anchor ``i``'s candidates.
        positives: Shape ``(N, K)`` bool; ``None`` marks column 0.
        weights: Shape ``(N, K)`` candidate weights ``> 0``; ``None`` is all ones.
        ids: Shape ``(N, K)`` integer keys; a candidate with the key of an earlier candidate
            of the same row is dropped.
        temperature: :math:`\tau > 0`; a float or a 0-dim tensor (may require grad).
        normalize: L2-normalize the query and every candidate (cosine).
        reduction: ``"mean"`` (over anchors with a kept positive), ``"sum"`` or ``"none"``.
        chunk_size: Unused (kept for the common signature).
        impl: Unused (kept for the common signature).
        gather_distributed: Loss of the global batch over all ranks (rows are independent; each
            rank's rows are gathered; see :mod:`contrastkit.distributed`).
        process_group: The group to gather over; ``None`` is the default group.

    Example:
        >>> import torch
        >>> listwise(torch.randn(4, 8), torch.randn(4, 5, 8)).shape
        torch.Size([])

    References:
        Dai et al., 2025, "Supervised Fine-Tuning or Contrastive Learning? Towards Better
        Multimodal LLM Reranking", arXiv:2510.14824. Yang et al., 2021, "Just Ask",
        arXiv:2012.00451. Jain et al., 2022, "ColloSSL", arXiv:2202.00758.
    """

    def check() -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
        v.check_temperature("temperature", temperature)
        check_common(reduction, chunk_size, impl)
        v.check_embeddings("query", query)
        v.check_embeddings("candidates", candidates, shape="(N, K, D)")
        n, kk, d = candidates.shape
        if query.shape[0] != n or query.shape[1] != d:
            raise ValueError(
                f"`candidates` must have shape (N, K, D) = ({query.shape[0]}, K, "
                f"{query.shape[1]}) to match `query` {tuple(query.shape)}; got "
                f"{tuple(candidates.shape)}."
            )
        cdt = stats_dtype(query.dtype)
        q, c = query.to(cdt), candidates.to(cdt)
        if normalize:
            q, c = (
                torch.nn.functional.normalize(q, dim=-1),
                torch.nn.functional.normalize(c, dim=-1),
            )
        pos = _mask("positives", positives, n, kk, q.device)
        w = _weights(weights, n, kk, q)
        keep = _first_occurrence(ids, n, kk, q.device)
        return q, c, pos, w, keep

    (q, c, pos, w, keep), sh = shard(
        gather_distributed,
        process_group,
        check,
        lambda r: {
            "query": r[0],
            "candidates": r[1],
            "positives": r[2],
            "weights": r[3],
            "keep": r[4],
        },
        {"reduction": reduction, "temperature_grad": requires_grad(temperature)},
    )
    q, c = gathered(sh, "query", q), gathered(sh, "candidates", c)
    pos, w, keep = (
        gathered(sh, "positives", pos),
        gathered(sh, "weights", w),
        gathered(sh, "keep", keep),
    )
    scale = 1.0 / core.as_scale(temperature, q)
    s = torch.einsum("nd,nkd->nk", q, c) * scale + w.log()
    denominator = torch.logsumexp(s.masked_fill(~keep, -math.inf), 1)
    top = pos & keep
    valid = top.any(1)
    numerator = torch.logsumexp(s.masked_fill(~top, -math.inf).masked_fill(~valid[:, None], 0.0), 1)
    return finish(denominator - numerator, reduction, sh, "query", valid=valid)


def _mask(name: str, x: Tensor | None, n: int, k: int, device: torch.device) -> Tensor:
    if x is None:
        out = torch.zeros(n, k, dtype=torch.bool, device=device)
        out[:, 0] = True
        return out
    if not isinstance(x, Tensor) or x.dtype != torch.bool or tuple(x.shape) != (n, k):
        got = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
        raise ValueError(f"`{name}` must be a bool tensor of shape (N, K) = ({n}, {k}); got {got}.")
    return x.to(device)


def _weights(x: Tensor | None, n: int, k: int, like: Tensor) -> Tensor:
    if x is None:
        return torch.ones(n, k, dtype=like.dtype, device=like.device)
    if not isinstance(x, Tensor) or not x.is_floating_point() or tuple(x.shape) != (n, k):
        got = (tuple(x.shape), x.dtype) if isinstance(x, Tensor) else type(x).__name__
        raise ValueError(
            f"`weights` must be a float tensor of shape (N, K) = ({n}, {k}); got {got}."
        )
    if not bool(torch.isfinite(x).all()) or bool((x <= 0).any()):
        raise ValueError(
            "`weights` must be finite and > 0 (drop a candidate with `ids`, not a zero weight)."
        )
    return x.detach().to(device=like.device, dtype=like.dtype)


def _first_occurrence(ids: Tensor | None, n: int, k: int, device: torch.device) -> Tensor:
    if ids is None:
        return torch.ones(n, k, dtype=torch.bool, device=device)
    if (
        not isinstance(ids, Tensor)
        or ids.is_floating_point()
        or ids.dtype == torch.bool
        or tuple(ids.shape) != (n, k)
    ):
        got = (tuple(ids.shape), ids.dtype) if isinstance(ids, Tensor) else type(ids).__name__
        raise ValueError(
            f"`ids` must be an integer tensor of shape (N, K) = ({n}, {k}); got {got}."
        )
    ids = ids.to(device)
    earlier = torch.ones(k, k, dtype=torch.bool, device=device).tril(-1)  # [k, k'] for k' < k
    dup = ((ids[:, :, None] == ids[:, None, :]) & earlier).any(2)
    return ~dup


class ListwiseLoss(ContrastiveLoss):
    """Module form of :func:`listwise`; ``positives``, ``weights`` and ``ids`` go to forward."""

    catalog_id = "listwise"
    family = "A. softmax cross-entropy, one positive"
    paper = Paper(
        "Dai et al.", 2025, "2510.14824", "SFT or Contrastive Learning for MLLM Reranking"
    )
    inputs = ("query", "candidates")
    supports_distributed = True

    def __init__(
        self,
        *,
        temperature: float = 0.05,
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
        self.temperature, self.normalize = temperature, normalize
        self.set_common(reduction, chunk_size, impl, gather_distributed, process_group)

    def forward(
        self,
        query: Tensor,
        candidates: Tensor,
        *,
        positives: Tensor | None = None,
        weights: Tensor | None = None,
        ids: Tensor | None = None,
    ) -> Tensor:
        """Compute the loss; see :func:`listwise`."""
        return listwise(
            query,
            candidates,
            positives=positives,
            weights=weights,
            ids=ids,
            temperature=self.temperature,
            normalize=self.normalize,
            **self.common(),
        )
