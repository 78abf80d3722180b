"""The loss implementations compared by :mod:`contrastkit.bench.infonce_scaling`.

Every implementation maps two float32 ``(N, D)`` leaf tensors ``q`` and ``k`` (row ``i`` of
``q`` and row ``i`` of ``k`` are a positive pair) to a scalar loss. Two families are compared,
each only within itself:

* ``clip``: symmetric InfoNCE (the CLIP loss), ``N x N`` logits, temperature 0.07.
* ``ntxent``: NT-Xent as in SimCLR, the ``2N`` views ``cat(q, k)`` against each other, ``2N x 2N``
  logits without the self-similarities, temperature 0.07.

Peer libraries (open_clip, lightly, pytorch_metric_learning) are optional. They are imported
only inside the builders, which run in the benchmark's worker processes.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor
from torch.nn.functional import cross_entropy, normalize

from contrastkit.core.validation import Impl

TEMPERATURE = 0.07
"""Temperature of every loss in the benchmark (logit scale ``1 / 0.07``)."""

LossFn = Callable[[Tensor, Tensor], Tensor]
"""A loss: ``(q, k) -> scalar``."""

Family = Literal["clip", "ntxent"]


@dataclass(frozen=True)
class ImplSpec:
    """One implementation and what the benchmark's predictions assume about it.

    Attributes:
        name: Name used on the command line and in the tables.
        family: ``"clip"`` (``N x N`` logits) or ``"ntxent"`` (``2N x 2N`` logits).
        description: One line for the table legend.
        module: Top-level module the implementation needs, for the "not installed" check.
        mem_exponent: The loss's own memory grows like ``N ** mem_exponent``.
        time_exponent: Its time grows like ``N ** time_exponent``.
        prior_bytes: Guess of the memory increment in bytes for ``(N, D)``, used only until a
            measurement of this implementation exists.
        build: Returns the loss function; runs inside the worker (peer imports happen here).
        variant: For contrastkit, the ``impl`` argument passed ("auto", "dense", "tiled").
    """

    name: str
    family: Family
    description: str
    module: str
    mem_exponent: int
    time_exponent: int
    prior_bytes: Callable[[int, int], float]
    build: Callable[[], LossFn]
    variant: Impl | None = None


def _labels(n: int, device: torch.device) -> Tensor:
    return torch.arange(n, device=device)


def _build_dense() -> LossFn:
    def loss(q: Tensor, k: Tensor) -> Tensor:
        logits = normalize(q, dim=1) @ normalize(k, dim=1).T / TEMPERATURE
        labels = _labels(q.shape[0], q.device)
        return 0.5 * (cross_entropy(logits, labels) + cross_entropy(logits.T, labels))

    return loss


def _build_open_clip() -> LossFn:
    clip_loss = importlib.import_module("open_clip.loss").ClipLoss()
    logit_scale = torch.tensor(1.0 / TEMPERATURE)

    def loss(q: Tensor, k: Tensor) -> Tensor:
        out: Tensor = clip_loss(normalize(q, dim=1), normalize(k, dim=1), logit_scale)
        return out

    return loss


def _build_lightly() -> LossFn:
    ntxent = importlib.import_module("lightly.loss").NTXentLoss(temperature=TEMPERATURE)

    def loss(q: Tensor, k: Tensor) -> Tensor:
        out: Tensor = ntxent(q, k)
        return out

    return loss


def _build_pml() -> LossFn:
    losses = importlib.import_module("pytorch_metric_learning.losses")
    ntxent = losses.SelfSupervisedLoss(losses.NTXentLoss(temperature=TEMPERATURE))

    def loss(q: Tensor, k: Tensor) -> Tensor:
        out: Tensor = ntxent(q, k)
        return out

    return loss


def _build_contrastkit(impl: Impl) -> Callable[[], LossFn]:
    def build() -> LossFn:
        from contrastkit.losses import infonce

        def loss(q: Tensor, k: Tensor) -> Tensor:
            return infonce(q, k, temperature=TEMPERATURE, symmetric=True, impl=impl)

        return loss

    return build


def _build_contrastkit_ntxent(impl: Impl) -> Callable[[], LossFn]:
    def build() -> LossFn:
        from contrastkit.losses import ntxent

        def loss(q: Tensor, k: Tensor) -> Tensor:
            return ntxent(q, k, temperature=TEMPERATURE, impl=impl)

        return loss

    return build


def _matrices(count: float, views: int) -> Callable[[int, int], float]:
    """Prior: ``count`` float32 matrices of ``(views N) x (views N)`` plus the inputs' grads."""

    def prior(n: int, d: int) -> float:
        return count * 4.0 * (views * n) ** 2 + 16.0 * n * d

    return prior


def _linear_prior(n: int, d: int) -> float:
    # Inputs, grads and normalized copies (~8 N x D) plus a few 1024-row tiles of width N.
    return 32.0 * n * d + 3 * 4.0 * 1024 * n


def _pml_prior(n: int, d: int) -> float:
    # NTXentLoss compares each of the 2N positive pairs with each of the ~4N^2 negative pairs:
    # (2N) x (4N^2) masks and float32 matrices, ~16 bytes per element in total.
    return 16.0 * (2 * n) * (4 * n * n) + 16.0 * n * d


def _contrastkit_specs() -> list[ImplSpec]:
    specs = []
    impls: tuple[Impl, ...] = ("auto", "tiled", "dense")
    for impl in impls:
        suffix = "" if impl == "auto" else f"-{impl}"
        specs.append(
            ImplSpec(
                name=f"contrastkit{suffix}",
                family="clip",
                description=(
                    f"contrastkit.losses.infonce(q, k, temperature=0.07, symmetric=True, "
                    f'impl="{impl}")'
                ),
                module="contrastkit",
                mem_exponent=2 if impl == "dense" else 1,
                time_exponent=2,
                prior_bytes=_matrices(4, 1) if impl == "dense" else _linear_prior,
                build=_build_contrastkit(impl),
                variant=impl,
            )
        )
        specs.append(
            ImplSpec(
                name=f"contrastkit-ntxent{suffix}",
                family="ntxent",
                description=(
                    f'contrastkit.losses.ntxent(q, k, temperature=0.07, impl="{impl}") (2N views)'
                ),
                module="contrastkit",
                mem_exponent=2 if impl == "dense" else 1,
                time_exponent=2,
                prior_bytes=_matrices(6, 2) if impl == "dense" else _linear_prior,
                build=_build_contrastkit_ntxent(impl),
                variant=impl,
            )
        )
    return specs


IMPLS: dict[str, ImplSpec] = {
    spec.name: spec
    for spec in [
        ImplSpec(
            name="dense",
            family="clip",
            description=(
                "plain PyTorch: logits = normalize(q) @ normalize(k).T / 0.07; "
                "mean of cross_entropy over rows and over columns"
            ),
            module="torch",
            mem_exponent=2,
            time_exponent=2,
            prior_bytes=_matrices(4, 1),
            build=_build_dense,
        ),
        ImplSpec(
            name="open_clip",
            family="clip",
            description=(
                "open_clip.loss.ClipLoss()(normalize(q), normalize(k), 1/0.07) "
                "(single process: two N x N GEMMs, one per direction)"
            ),
            module="open_clip",
            mem_exponent=2,
            time_exponent=2,
            prior_bytes=_matrices(6, 1),
            build=_build_open_clip,
        ),
        ImplSpec(
            name="lightly",
            family="ntxent",
            description="lightly.loss.NTXentLoss(temperature=0.07)(q, k) (2N views)",
            module="lightly",
            mem_exponent=2,
            time_exponent=2,
            prior_bytes=_matrices(6, 2),
            build=_build_lightly,
        ),
        ImplSpec(
            name="pml",
            family="ntxent",
            description=(
                "pytorch_metric_learning SelfSupervisedLoss(NTXentLoss(temperature=0.07))(q, k) "
                "(2N views; pair-based, memory grows like N^3)"
            ),
            module="pytorch_metric_learning",
            mem_exponent=3,
            time_exponent=3,
            prior_bytes=_pml_prior,
            build=_build_pml,
        ),
        *_contrastkit_specs(),
    ]
}
"""Every implementation the benchmark knows, by name."""

DEFAULT_IMPLS: tuple[str, ...] = (
    "contrastkit",
    "dense",
    "open_clip",
    "contrastkit-ntxent",
    "lightly",
    "pml",
)
"""Implementations run when ``--impls`` is not given."""
