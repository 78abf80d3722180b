"""Float64 reference for listwise InfoNCE (Dai et al., 2025, multimodal LLM reranking).

Weights after ColloSSL (Jain et al., 2022), duplicate merging after Just Ask (Yang et al., 2021).
"""

from __future__ import annotations

import torch
from torch import Tensor


def _scalar64(x: float | Tensor) -> Tensor:
    """A float or 0-dim tensor as a float64 0-dim tensor (differentiably for tensors)."""
    if isinstance(x, Tensor):
        return x.to(torch.float64)
    return torch.tensor(float(x), dtype=torch.float64)


def listwise(
    query: Tensor,
    candidates: Tensor,
    *,
    positives: Tensor | None = None,
    weights: Tensor | None = None,
    ids: Tensor | None = None,
    temperature: float | Tensor = 0.05,
    normalize: bool = True,
    reduction: str = "mean",
) -> Tensor:
    """Listwise softmax cross-entropy over each anchor's own candidates, densely in float64.

    With ``s_ik = <q_i, c_ik> / temperature``, positives ``P_i`` (column 0 by default),
    candidate weights ``w_ik`` (1 by default) and the kept candidates ``K_i`` (a candidate
    whose id equals the id of an earlier candidate of the same row is dropped):

        l_i = -log( sum_{k in P_i and K_i} w_ik exp(s_ik) / sum_{k in K_i} w_ik exp(s_ik) )

    computed as ``logsumexp(s_ik + log w_ik)`` over the two index lists. Anchors without a
    kept positive contribute 0 and are left out of the mean (0.0 when no anchor counts).

    Args:
        query: Anchors q, shape (N, D).
        candidates: Candidate lists c, shape (N, K, D); row i belongs to anchor i.
        positives: Bool mask of positives, shape (N, K); None marks column 0 only.
        weights: Positive candidate weights, shape (N, K); None is all ones.
        ids: Integer candidate keys, shape (N, K); None keeps every candidate.
        temperature: Softmax temperature (float or 0-dim tensor).
        normalize: L2-normalize the query and every candidate before the dot products.
        reduction: ``"mean"`` (over anchors with a kept positive), ``"sum"`` or ``"none"``.

    Returns:
        A float64 scalar, or shape (N,) for ``reduction="none"`` (0 for excluded anchors).
    """
    q = query.to(torch.float64)
    c = candidates.to(torch.float64)
    if normalize:
        q = q / q.norm(dim=1, keepdim=True)
        c = c / c.norm(dim=2, keepdim=True)
    t = _scalar64(temperature)
    n, num_candidates = c.shape[0], c.shape[1]
    if positives is None:
        is_positive = [[k == 0 for k in range(num_candidates)] for _ in range(n)]
    else:
        is_positive = [[bool(p) for p in row] for row in positives.tolist()]
    if weights is None:
        w = torch.ones(n, num_candidates, dtype=torch.float64)
    else:
        w = weights.to(torch.float64)
    keys = None if ids is None else ids.tolist()
    terms = []
    counted = 0
    for i in range(n):
        row = (c[i] @ q[i]) / t  # s_ik for all k
        log_weighted = row + torch.log(w[i])  # log(w_ik exp(s_ik))
        kept = []
        seen = set()
        for k in range(num_candidates):
            if keys is None:
                kept.append(k)
            elif keys[i][k] not in seen:
                seen.add(keys[i][k])
                kept.append(k)
        kept_positives = [k for k in kept if is_positive[i][k]]
        if not kept_positives:
            terms.append(0.0 * log_weighted.sum())  # zero, but still part of the graph
            continue
        counted += 1
        log_numerator = torch.logsumexp(log_weighted[kept_positives], dim=0)
        log_denominator = torch.logsumexp(log_weighted[kept], dim=0)
        terms.append(-(log_numerator - log_denominator))
    per_anchor = torch.stack(terms)
    if reduction == "none":
        return per_anchor
    if reduction == "sum":
        return per_anchor.sum()
    if counted == 0:
        return per_anchor.sum()  # 0.0
    return per_anchor.sum() / counted
