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

NOT_BATCH = (
    "weight",
    "proxies",
    "prototypes",
    "cooccurrence",
    "edge_index",
    "edge_weight",
)  # tensor keywords that are not per-row (the bilinear matrix)
INPUT_KEYS = (
    "extra",
    "weighted",
    "teacher_b",
    "multi",
    "cand_weights",
    "ids",
    "modalities",
    "counts",
    "estimates",
    "row_temperatures",
    "per_class",
)

# The scalar hyper-parameter gradcheck differentiates (None: embeddings only).
PARAM: dict[str, str | None] = {
    "clip": "logit_scale",
    "siglip": "logit_scale",
    "contrastive_margin": None,
    "triplet": None,
    "soft_bce": None,
    "koleo": None,
    "isogclr": None,  # its per-row temperatures are tensor inputs (gradchecked as leaves)
    "sogclr_bimodal": "temperature_text",
    "uniformity": None,
    "alignment": None,
    "prototype_margin": None,
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
        if "edge_index" in tensors:  # PamC: renumber the nodes, drop edges leaving the rows
            where = torch.full((n,), -1, dtype=torch.long)
            where[index] = torch.arange(index.numel())
            mapped = where[self.tensors["edge_index"]]
            keep = (mapped >= 0).all(0)
            tensors["edge_index"] = mapped[:, keep]
            if "edge_weight" in tensors:
                tensors["edge_weight"] = self.tensors["edge_weight"].detach()[keep]
        return Case([pick(t) for t in self.args], tensors, dict(self.kwargs))


def make_case(loss_id: str, n: int, d: int, setting: dict[str, Any], gen: torch.Generator) -> Case:
    """Float64 inputs (leaves requiring grad where the loss differentiates them)."""
    names = L.REGISTRY[loss_id].inputs
    kwargs = {k: v for k, v in setting.items() if k not in INPUT_KEYS}
    f64 = torch.float64

    def randn(*shape: int, grad: bool = True) -> Tensor:
        return torch.randn(*shape, generator=gen, dtype=f64).requires_grad_(grad)

    if loss_id in ("gram", "multimodal_pairwise"):  # k paired modalities as positional args
        k = setting.get("modalities", 3)
        width = max(d, k) if loss_id == "gram" else d  # gram needs D >= k
        base = randn(n, width, grad=False)
        mods = [base] + [
            base + 0.7 * torch.randn(n, width, generator=gen, dtype=f64) for _ in range(k - 1)
        ]
        return Case([m.requires_grad_() for m in mods], {}, kwargs)
    if loss_id == "palm":  # prototypes (C, M, D) for the C classes of the labels
        classes = max(1, n // 3)
        labels = torch.randint(0, classes, (n,), generator=gen)
        prototypes = randn(classes, setting.get("per_class", 3), d)
        return Case([randn(n, d), labels], {"prototypes": prototypes}, kwargs)
    if loss_id == "pamc":  # two out-edges per node (self-loops possible), node 0 without any
        src = torch.arange(n).repeat_interleave(2)
        dst = torch.randint(0, n, (2 * n,), generator=gen)
        edge_index = torch.stack([src, dst])[:, 2:] if n > 2 else torch.stack([src, dst])
        tensors = {"edge_index": edge_index}
        tensors["clusters"] = 3 * torch.randint(0, max(1, n // 3), (n,), generator=gen) + 1
        if setting.get("weighted"):
            tensors["edge_weight"] = (
                torch.rand(edge_index.shape[1], generator=gen, dtype=f64) + 0.2
            ).requires_grad_()
        return Case([randn(n, d)], tensors, kwargs)
    if loss_id == "prototype_margin":  # multi-hot identities, some prototypes of two classes
        classes = 3
        identity = torch.zeros(n, classes, dtype=torch.bool)
        identity[torch.arange(n), torch.arange(n) % classes] = True
        identity[torch.arange(n), torch.randint(0, classes, (n,), generator=gen)] = True
        co = torch.rand(classes, classes, generator=gen, dtype=f64)
        co = 0.5 * (co + co.T)
        co.fill_diagonal_(1.0)
        return Case([randn(n, d), identity], {"cooccurrence": co}, kwargs)
    if loss_id == "proxy_nce":
        c = n // 3 + 2  # more classes than the labels use: PCR's batch prior drops the others
        labels = torch.randint(0, max(1, n // 3), (n,), generator=gen)
        if setting.get("counts"):  # a (C,) class-count prior; the last class is left out
            counts = torch.rand(c, generator=gen, dtype=f64) * 3
            counts[-1] = 0.0
            counts[labels] += 1.0
            kwargs["prior"] = counts
        return Case([randn(n, d), labels], {"proxies": randn(c, d)}, kwargs)
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
    if loss_id in ("sogclr", "isogclr", "sogclr_bimodal"):
        bimodal = loss_id == "sogclr_bimodal"
        if setting.get("estimates"):  # moving-average estimates log u, passed as tensors
            for key in ("log_u_image", "log_u_text") if bimodal else ("log_u1", "log_u2"):
                noise = 0.5 * torch.randn(n, generator=gen, dtype=f64)
                case.tensors[key] = (1.0 + noise).requires_grad_()
        if setting.get("row_temperatures"):  # one temperature per row
            key = "temperature_image" if bimodal else "temperature"
            tau = 0.2 + 0.3 * torch.rand(n, generator=gen, dtype=f64)
            case.tensors[key] = tau.requires_grad_()
    if loss_id in ("patchnce", "asp") and setting.get("ids"):
        case.args.append(torch.randint(0, 3, (n,), generator=gen))  # image of each patch
    return case


def module_case(loss_id: str, case: Case) -> tuple[torch.nn.Module, Case]:
    """The module form with default arguments and the call that matches ``case``.

    A module that owns its bank (PALM's prototypes, ProxyNCE's proxies) is built for the case's
    bank and loaded with it (PALM in eval mode: no EMA update), so it computes the functional
    form on the same values; the bank is then not passed to forward.
    """
    cls = L.REGISTRY[loss_id]
    if loss_id == "palm":
        bank = case.tensors["prototypes"]
        module = cls(bank.shape[0], bank.shape[2], prototypes_per_class=bank.shape[1])  # type: ignore[call-arg]
        module = module.double().eval()
        with torch.no_grad():
            module.prototypes.copy_(bank)
        return module, Case(case.args, {}, dict(case.kwargs))
    if loss_id == "proxy_nce":
        proxies = case.tensors["proxies"]
        module = cls(*proxies.shape).double()  # type: ignore[call-arg]
        with torch.no_grad():
            module.proxies.copy_(proxies)
        rest = {k: t for k, t in case.tensors.items() if k != "proxies"}
        return module, Case(case.args, rest, dict(case.kwargs))
    return cls().double(), case
