"""Inputs for every registered loss, shared by the contract suite and the distributed tests.

A :class:`Case` holds the positional tensors of a call (embeddings, labels), its tensor keyword
arguments (a teacher, mixup weights, attributes...) and its other keyword arguments, built from
a setting of ``SETTINGS``-style dicts. Keys that shape the inputs rather than being arguments:
``extra`` (rows of the second input beyond N), ``weighted`` (per-anchor weights), ``teacher_b``,
``multi`` / ``cand_weights`` / ``ids`` (listwise options).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

import contrastkit.losses as L

NOT_BATCH = ("weight",)  # tensor keywords that are not per-row (the bilinear matrix)
INPUT_KEYS = ("extra", "weighted", "teacher_b", "multi", "cand_weights", "ids")

# The scalar hyper-parameter gradcheck differentiates (None: embeddings only).
PARAM: dict[str, str | None] = {
    "clip": "logit_scale",
    "siglip": "logit_scale",
    "contrastive_margin": None,
    "triplet": None,
    "soft_bce": None,
    "koleo": None,
    "uniformity": None,
    "alignment": None,
}


@dataclass
class Case:
    """One call of a loss: positional tensors, tensor keywords, other keywords."""

    args: list[Tensor]
    tensors: dict[str, Tensor] = field(default_factory=dict)
    kwargs: dict[str, Any] = field(default_factory=dict)

    def leaves(self) -> list[Tensor]:
        """The float tensors whose gradients are checked."""
        every = [*self.args, *self.tensors.values()]
        return [t for t in every if t.is_floating_point() and t.requires_grad]

    def clone(self) -> Case:
        """Fresh leaves with the same values and ``requires_grad``."""

        def c(t: Tensor) -> Tensor:
            return t.detach().clone().requires_grad_(t.requires_grad)

        return Case(
            [c(t) for t in self.args],
            {k: c(t) for k, t in self.tensors.items()},
            dict(self.kwargs),
        )

    def call(self, fn: Callable[..., Tensor], **extra: Any) -> Tensor:
        """``fn(*args, **tensors, **kwargs, **extra)``."""
        return fn(*self.args, **self.tensors, **{**self.kwargs, **extra})

    def rows(self, index: Tensor, n: int) -> Case:
        """The case restricted (or permuted) to batch rows ``index`` of the ``n`` rows.

        Tensors with ``n`` leading rows are indexed; mixup partners are remapped.
        """

        def pick(t: Tensor) -> Tensor:
            return t.detach()[index] if t.dim() and t.shape[0] == n else t.detach()

        tensors = {
            k: pick(t) if k not in NOT_BATCH else t.detach() for k, t in self.tensors.items()
        }
        if "partner" in tensors:
            where = torch.full((n,), -1, dtype=torch.long)
            where[index] = torch.arange(index.numel())
            tensors["partner"] = where[self.tensors["partner"][index]]
        return Case([pick(t) for t in self.args], tensors, dict(self.kwargs))


def make_case(loss_id: str, n: int, d: int, setting: dict[str, Any], gen: torch.Generator) -> Case:
    """Float64 inputs (leaves requiring grad where the loss differentiates them)."""
    names = L.REGISTRY[loss_id].inputs
    kwargs = {k: v for k, v in setting.items() if k not in INPUT_KEYS}
    f64 = torch.float64

    def randn(*shape: int, grad: bool = True) -> Tensor:
        return torch.randn(*shape, generator=gen, dtype=f64).requires_grad_(grad)

    if len(names) == 1:  # regularizers on one batch of embeddings
        return Case([randn(n, d)], {}, kwargs)
    if names[1] == "labels":
        labels = torch.randint(0, max(1, n // 3), (n,), generator=gen)
        return Case([randn(n, d), labels], {}, kwargs)
    if loss_id == "listwise":
        k = 4
        q = randn(n, d, grad=False)
        cands = q[:, None, :] + 0.8 * torch.randn(n, k, d, generator=gen, dtype=f64)
        tensors: dict[str, Tensor] = {}
        if setting.get("multi"):
            pos = torch.rand(n, k, generator=gen) < 0.4
            pos[:, 0] = True
            pos[0] = False  # one anchor without a positive
            tensors["positives"] = pos
        if setting.get("cand_weights"):
            tensors["weights"] = torch.rand(n, k, generator=gen, dtype=f64) + 0.2
        if setting.get("ids"):
            tensors["ids"] = torch.randint(0, 3, (n, k), generator=gen)
        return Case([q.requires_grad_(), cands.requires_grad_()], tensors, kwargs)
    if loss_id == "soft_bce":
        return Case([randn(n, d), randn(n, d + 2)], {}, kwargs)
    m = n + setting.get("extra", 0)
    shape = (3, d) if kwargs.get("similarity") == "maxsim" else (d,)  # token sets for MaxSim
    a = randn(n, *shape, grad=False)
    b = a[torch.arange(m) % n] + 0.7 * torch.randn(m, *shape, generator=gen, dtype=f64)
    case = Case([a.requires_grad_(), b.requires_grad_()], {}, kwargs)
    if kwargs.get("similarity") == "bilinear":
        case.tensors["weight"] = torch.eye(d, dtype=f64) + 0.3 * randn(d, d, grad=False)
        case.tensors["weight"].requires_grad_()
    if setting.get("weighted"):
        case.tensors["weights"] = torch.rand(n, generator=gen, dtype=f64) + 0.5
    if loss_id == "cwcl":
        case.tensors["teacher"] = randn(n, d + 1)
    if loss_id == "soft_target":
        case.tensors["teacher_a"] = randn(n, d + 1)
        if setting.get("teacher_b"):
            case.tensors["teacher_b"] = randn(m, d + 1)
    if loss_id == "mixco":
        case.tensors["lam"] = torch.rand(n, generator=gen, dtype=f64)
        case.tensors["partner"] = torch.randperm(n, generator=gen)
    if loss_id == "pair_weighted":
        case.tensors["attributes_a"] = torch.randn(n, 3, 2, generator=gen, dtype=f64)
        case.tensors["attributes_b"] = torch.randn(n, 3, 2, generator=gen, dtype=f64)
    return case
