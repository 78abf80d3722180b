"""Float64 references for PatchNCE (Park et al., 2020, CUT) and ASP (Li et al., 2023)."""

from __future__ import annotations

import math

import torch
from torch import Tensor


def _unit(x: Tensor, normalize: bool) -> Tensor:
    x = x.to(torch.float64)
    return x / x.norm(dim=1, keepdim=True) if normalize else x


def _patch_terms(
    query: Tensor, key: Tensor, image_ids: Tensor | None, temperature: float, normalize: bool
) -> tuple[Tensor, list[float]]:
    """Per-patch terms ``-s_pp + log sum_{q in image(p)} exp(s_pq)`` and the raw ``q_p . k_p``."""
    q, k = _unit(query, normalize), _unit(key, normalize)
    n = q.shape[0]
    ids = [0] * n if image_ids is None else image_ids.tolist()
    terms, cosines = [], []
    for p in range(n):
        same_image = [j for j in range(n) if ids[j] == ids[p]]
        row = (q[p] @ k.T) / temperature  # s_pj for every j
        terms.append(torch.logsumexp(row[same_image], dim=0) - row[p])
        cosines.append(float((q[p] @ k[p]).detach()))
    return torch.stack(terms), cosines


def _reduce(per_patch: Tensor, reduction: str) -> Tensor:
    if reduction == "none":
        return per_patch
    if reduction == "sum":
        return per_patch.sum()
    return per_patch.mean()


def patchnce(
    query: Tensor,
    key: Tensor,
    image_ids: Tensor | None = None,
    *,
    temperature: float = 0.07,
    normalize: bool = True,
    reduction: str = "mean",
) -> Tensor:
    """PatchNCE: cross-entropy of each patch's positive among the keys of its own image.

    ``l_p = -log(exp(s_pp) / sum_{q : image(q) = image(p)} exp(s_pq))`` with
    ``s_pq = <q_p, k_q> / temperature``; without ``image_ids`` all patches are one image.
    """
    terms, _ = _patch_terms(query, key, image_ids, temperature, normalize)
    return _reduce(terms, reduction)


def _schedule(schedule: str, t: float, decay_start: float) -> float:
    if schedule == "sigmoid":
        return 1.0 / (1.0 + math.exp((t - 0.5) * 10.0))
    if schedule == "linear":
        return 1.0 - t
    if schedule == "lambda":
        m = 1.0 / (1.0 - decay_start)
        return m - m * t if t >= decay_start else 1.0
    return 1.0  # "zero"


def _lookup(lookup: str, x: float) -> float:
    if lookup == "top":
        x = min(max(x, 0.0), 1.0)
        return math.sqrt(1.0 - (x - 1.0) ** 2)
    if lookup == "linear":
        return max(x, 0.0)
    if lookup == "bell":
        return math.exp(-(((x - 0.5) * 4.0) ** 2) / 2.0) / math.sqrt(2.0 * math.pi)
    return 1.0  # "uniform"


def asp(
    query: Tensor,
    key: Tensor,
    image_ids: Tensor | None = None,
    *,
    progress: float = 0.0,
    schedule: str = "lambda",
    lookup: str = "linear",
    decay_start: float = 0.75,
    temperature: float = 0.07,
    normalize: bool = True,
    reduction: str = "mean",
) -> Tensor:
    """ASP: PatchNCE terms times ``w_p = pi(t) + (1 - pi(t)) phi(x_p)`` normalized to mean 1.

    ``x_p = <q_p, k_p>`` is a constant; all-zero raw weights give all-zero terms.
    """
    terms, cosines = _patch_terms(query, key, image_ids, temperature, normalize)
    pi = _schedule(schedule, progress, decay_start)
    raw = [pi * 1.0 + (1.0 - pi) * _lookup(lookup, x) for x in cosines]
    total = sum(raw)
    weights = [w / total * len(raw) if total > 0 else 0.0 for w in raw]
    return _reduce(terms * torch.tensor(weights, dtype=torch.float64), reduction)
