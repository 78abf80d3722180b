"""The loss implementations compared by :mod:`contrastkit.bench.infonce_scaling`.

Every implementation maps two tensors made by :func:`make_inputs` to a scalar loss: for the
paired families two float32 ``(N, D)`` leaf tensors ``q`` and ``k`` (row ``i`` of ``q`` and row
``i`` of ``k`` are a positive pair), for ``supcon`` one float32 ``(N, D)`` leaf tensor and its
``(N,)`` integer class labels. Four families are compared, each only within itself:

* ``clip``: symmetric InfoNCE (the CLIP loss), ``N x N`` logits, temperature 0.07.
* ``ntxent``: NT-Xent as in SimCLR, the ``2N`` views ``cat(q, k)`` against each other, ``2N x 2N``
  logits without the self-similarities, temperature 0.07.
* ``siglip``: the pairwise sigmoid loss of SigLIP over all ``N x N`` image-text pairs, logit
  scale ``log 10`` and bias ``-10`` (0-dim tensors requiring grad, as when they are learned).
* ``supcon``: SupCon ``L_out`` over ``N`` embeddings with labels drawn uniformly from
  ``SUPCON_CLASSES`` classes, ``N x N`` logits without the self-similarities, temperature 0.1.

Peer libraries (open_clip, lightly, pytorch_metric_learning) are optional. They are imported
only inside the builders, which run in the benchmark's worker processes.
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor
from torch.nn.functional import cross_entropy, logsigmoid, normalize

from contrastkit.core.validation import Impl

TEMPERATURE = 0.07
"""Temperature of every loss in the benchmark (logit scale ``1 / 0.07``)."""

SIGLIP_LOGIT_SCALE = math.log(10.0)
"""SigLIP's ``t'``, the log of the logit scale (the paper's initialization)."""
SIGLIP_LOGIT_BIAS = -10.0
"""SigLIP's logit bias (the paper's initialization)."""
SUPCON_TEMPERATURE = 0.1
"""Temperature of SupCon (pytorch_metric_learning's default)."""
SUPCON_CLASSES = 100
"""Classes the SupCon labels are drawn from (uniformly, so about N / 100 samples per class)."""

LossFn = Callable[[Tensor, Tensor], Tensor]
"""A loss: ``(q, k) -> scalar``, or ``(embeddings, labels) -> scalar`` for ``supcon``."""

Family = Literal["clip", "ntxent", "siglip", "supcon"]

FAMILIES: tuple[Family, ...] = ("clip", "ntxent", "siglip", "supcon")
"""Every family, in the order of the report."""

FAMILY_VIEWS: dict[Family, int] = {"clip": 1, "ntxent": 2, "siglip": 1, "supcon": 1}
"""Rows of the logits matrix per pair (or per sample): its side is ``views * N``."""


def make_inputs(
    family: Family, n: int, dim: int, generator: torch.Generator
) -> tuple[Tensor, Tensor]:
    """The two arguments of a ``family`` loss at batch size ``n``, drawn from ``generator``.

    Args:
        family: The loss family.
        n: Batch size N.
        dim: Embedding dimension D.
        generator: Source of the random values.

    Returns:
        ``(q, k)``, two standard normal ``(N, D)`` leaf tensors requiring grad; for ``supcon``
        ``(embeddings, labels)``, one such tensor and ``(N,)`` int64 labels drawn uniformly from
        ``SUPCON_CLASSES`` classes.
    """
    first = torch.randn(n, dim, generator=generator).requires_grad_()
    if family == "supcon":
        return first, torch.randint(0, SUPCON_CLASSES, (n,), generator=generator)
    return first, torch.randn(n, dim, generator=generator).requires_grad_()


@dataclass(frozen=True)
class ImplSpec:
    """One implementation and what the benchmark's predictions assume about it.

    Attributes:
        name: Name used on the command line and in the tables.
        family: ``"clip"``, ``"siglip"``, ``"supcon"`` (``N x N`` logits) or ``"ntxent"``
            (``2N x 2N`` logits).
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


def _siglip_params() -> tuple[Tensor, Tensor]:
    """Fresh 0-dim ``(logit_scale, logit_bias)`` leaves requiring grad, one pair per run."""
    logit_scale = torch.tensor(SIGLIP_LOGIT_SCALE, requires_grad=True)
    logit_bias = torch.tensor(SIGLIP_LOGIT_BIAS, requires_grad=True)
    return logit_scale, logit_bias


def _build_dense_siglip() -> LossFn:
    def loss(image: Tensor, text: Tensor) -> Tensor:
        logit_scale, logit_bias = _siglip_params()
        n = image.shape[0]
        scaled = logit_scale.exp() * normalize(image, dim=1)
        logits = scaled @ normalize(text, dim=1).T + logit_bias
        labels = 2.0 * torch.eye(n, dtype=logits.dtype, device=logits.device) - 1.0
        return -logsigmoid(labels * logits).sum() / n

    return loss


def _build_open_clip_siglip() -> LossFn:
    siglip_loss = importlib.import_module("open_clip.loss").SigLipLoss()

    def loss(image: Tensor, text: Tensor) -> Tensor:
        logit_scale, logit_bias = _siglip_params()
        out: Tensor = siglip_loss(
            normalize(image, dim=1), normalize(text, dim=1), logit_scale.exp(), logit_bias
        )
        return out

    return loss


def _build_dense_supcon() -> LossFn:
    def loss(embeddings: Tensor, labels: Tensor) -> Tensor:
        z = normalize(embeddings, dim=1)
        n = z.shape[0]
        is_self = torch.eye(n, dtype=torch.bool, device=z.device)
        logits = (z @ z.T / SUPCON_TEMPERATURE).masked_fill(is_self, float("-inf"))
        log_prob = logits - torch.logsumexp(logits, dim=1, keepdim=True)
        positive = (labels[:, None] == labels[None, :]) & ~is_self
        n_positive = positive.sum(dim=1)
        per_anchor = -log_prob.masked_fill(~positive, 0.0).sum(dim=1) / n_positive.clamp(min=1)
        return per_anchor[n_positive > 0].mean()

    return loss


def _build_pml_supcon() -> LossFn:
    supcon = importlib.import_module("pytorch_metric_learning.losses").SupConLoss(
        temperature=SUPCON_TEMPERATURE
    )

    def loss(embeddings: Tensor, labels: Tensor) -> Tensor:
        out: Tensor = supcon(embeddings, labels)
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


def _build_contrastkit_siglip(impl: Impl) -> Callable[[], LossFn]:
    def build() -> LossFn:
        from contrastkit.losses import siglip

        def loss(image: Tensor, text: Tensor) -> Tensor:
            logit_scale, logit_bias = _siglip_params()
            return siglip(image, text, logit_scale=logit_scale, logit_bias=logit_bias, impl=impl)

        return loss

    return build


def _build_contrastkit_supcon(impl: Impl) -> Callable[[], LossFn]:
    def build() -> LossFn:
        from contrastkit.losses import supcon

        def loss(embeddings: Tensor, labels: Tensor) -> Tensor:
            return supcon(embeddings, labels, temperature=SUPCON_TEMPERATURE, impl=impl)

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
        specs.append(
            ImplSpec(
                name=f"contrastkit-siglip{suffix}",
                family="siglip",
                description=(
                    "contrastkit.losses.siglip(image, text, logit_scale=log(10), "
                    f'logit_bias=-10, impl="{impl}")'
                ),
                module="contrastkit",
                mem_exponent=2 if impl == "dense" else 1,
                time_exponent=2,
                prior_bytes=_matrices(4, 1) if impl == "dense" else _linear_prior,
                build=_build_contrastkit_siglip(impl),
                variant=impl,
            )
        )
        specs.append(
            ImplSpec(
                name=f"contrastkit-supcon{suffix}",
                family="supcon",
                description=(
                    f'contrastkit.losses.supcon(z, labels, temperature=0.1, impl="{impl}") '
                    '(variant "out")'
                ),
                module="contrastkit",
                mem_exponent=2 if impl == "dense" else 1,
                time_exponent=2,
                prior_bytes=_matrices(6, 1) if impl == "dense" else _linear_prior,
                build=_build_contrastkit_supcon(impl),
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
        ImplSpec(
            name="dense-siglip",
            family="siglip",
            description=(
                "plain PyTorch: logits = exp(logit_scale) · normalize(image) @ normalize(text).T "
                "+ logit_bias; -logsigmoid((2I - 1) · logits).sum() / N"
            ),
            module="torch",
            mem_exponent=2,
            time_exponent=2,
            prior_bytes=_matrices(7, 1),
            build=_build_dense_siglip,
        ),
        ImplSpec(
            name="open_clip-siglip",
            family="siglip",
            description=(
                "open_clip.loss.SigLipLoss()(normalize(image), normalize(text), "
                "logit_scale.exp(), logit_bias) (single process)"
            ),
            module="open_clip",
            mem_exponent=2,
            time_exponent=2,
            prior_bytes=_matrices(7, 1),
            build=_build_open_clip_siglip,
        ),
        ImplSpec(
            name="dense-supcon",
            family="supcon",
            description=(
                "plain PyTorch SupCon L_out: logits = normalize(z) @ normalize(z).T / 0.1 with "
                "-inf on the diagonal, log-softmax over rows, mean log-probability of the "
                "positives (same label, not self), mean over anchors with a positive"
            ),
            module="torch",
            mem_exponent=2,
            time_exponent=2,
            prior_bytes=_matrices(6, 1),
            build=_build_dense_supcon,
        ),
        ImplSpec(
            name="pml-supcon",
            family="supcon",
            description=(
                "pytorch_metric_learning.losses.SupConLoss(temperature=0.1)(z, labels) "
                "(N x N similarity, float masks and int64 indices of all pairs)"
            ),
            module="pytorch_metric_learning",
            mem_exponent=2,
            time_exponent=2,
            prior_bytes=_matrices(16, 1),
            build=_build_pml_supcon,
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
    "contrastkit-siglip",
    "dense-siglip",
    "open_clip-siglip",
    "contrastkit-supcon",
    "dense-supcon",
    "pml-supcon",
)
"""Implementations run when ``--impls`` is not given."""
