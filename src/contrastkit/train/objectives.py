r"""Any catalog loss on two embedded views: how the trainer and the command line call a loss.

A training step embeds two views of the same ``N`` items, ``z1`` and ``z2`` (two augmentations
of an image, or an image and its caption). :func:`two_view_loss` hands them to a catalog loss in
the form its signature asks for (its ``inputs`` and ``requires`` metadata):

====================================  ================================================
loss takes                            call
====================================  ================================================
two row-aligned sets (``query, key``,  ``loss(z1, z2)``
``image, text``, ``z1, z2``, ...)
modalities (GRAM, pairwise)           ``loss(z1, z2)``
``z1, z2, index`` (SogCLR family)     ``loss(z1, z2, index)``
``embeddings, labels``                ``loss(cat(z1, z2), cat(labels, labels))``
``embeddings``                        ``loss(cat(z1, z2))``
a teacher (CWCL, soft targets,        the ``teacher`` rows given: the flattened images
soft BCE)                             (image runs) or the detached second view (paired)
====================================  ================================================

Losses that need inputs two views cannot provide (mixup partners, attribute vectors,
candidate lists, patch ids, graph edges, prototypes) raise a ``ValueError`` that says what
they need; call them directly as their docstrings show.

:func:`build_loss` makes a loss from its catalog id and keyword arguments, filling the
arguments that depend on the data (``num_samples``, ``num_classes``, ``embedding_dim``) when
the loss asks for them and the caller did not give them.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor

from contrastkit.losses import REGISTRY, ContrastiveLoss

_PAIR_INPUTS = {
    ("query", "key"),
    ("image", "text"),
    ("z1", "z2"),
    ("query", "doc"),
    ("x", "y"),
    ("a", "b"),
    ("anchor", "*others"),
    ("modalities[0]", "modalities[1]", "*modalities[2:]"),
}
_CONTEXT = ("num_samples", "num_classes", "embedding_dim")


def unsupported_reason(loss_id: str) -> str | None:
    """Why :func:`two_view_loss` cannot call the loss ``loss_id`` (``None`` if it can)."""
    cls = REGISTRY[loss_id]
    inputs, req = cls.inputs, cls.requires
    if req.index and inputs[-1] == "index":
        return None
    if inputs == ("a", "b") and loss_id == "pair_weighted":
        return "it needs attribute vectors (attributes_a, attributes_b) for its pair weights"
    if inputs in _PAIR_INPUTS or inputs in {("embeddings", "labels"), ("embeddings",)}:
        return None
    if inputs == ("embeddings", "reference"):
        return None
    return f"it takes {', '.join(inputs)}, which two embedded views cannot provide"


def trainable_losses() -> list[str]:
    """The catalog ids :func:`two_view_loss` can train with, in registry order."""
    return [name for name in REGISTRY if unsupported_reason(name) is None]


def build_loss(
    loss_id: str,
    options: Mapping[str, Any] | None = None,
    *,
    num_samples: int | None = None,
    num_classes: int | None = None,
    embedding_dim: int | None = None,
) -> ContrastiveLoss:
    """Make the catalog loss ``loss_id`` with ``options``, filling data-dependent arguments.

    Args:
        loss_id: A key of :data:`contrastkit.losses.REGISTRY`, e.g. ``"ntxent"``.
        options: Keyword arguments of the loss module (``{"temperature": 0.2}``).
        num_samples: The training-set size, for losses with per-sample state (SogCLR).
        num_classes: The number of classes, for losses with class prototypes or proxies.
        embedding_dim: The embedding width, for the same.

    Returns:
        The loss module.

    Raises:
        ValueError: For an unknown id, an unknown option, or a data-dependent argument the
            loss needs that neither ``options`` nor the keywords give.

    Example:
        >>> build_loss("ntxent", {"temperature": 0.2}).temperature
        0.2
    """
    if loss_id not in REGISTRY:
        known = ", ".join(sorted(REGISTRY))
        raise ValueError(f"loss: unknown catalog id {loss_id!r}; choose one of: {known}")
    cls = REGISTRY[loss_id]
    params = inspect.signature(cls.__init__).parameters
    kwargs = dict(options or {})
    unknown = sorted(set(kwargs) - set(params) - {"self"})
    if unknown:
        allowed = ", ".join(p for p in params if p != "self")
        raise ValueError(
            f"loss {loss_id!r}: unknown option(s) {', '.join(unknown)}; it accepts: {allowed}"
        )
    context = {"num_samples": num_samples, "num_classes": num_classes}
    context["embedding_dim"] = embedding_dim
    for name in _CONTEXT:
        if name in params and name not in kwargs:
            if context[name] is None:
                raise ValueError(
                    f"loss {loss_id!r} needs {name}; pass it in the loss options "
                    f"(e.g. {name} = 10 in the config's [loss] table)"
                )
            kwargs[name] = context[name]
    return cls(**kwargs)


def two_view_loss(
    loss: ContrastiveLoss,
    z1: Tensor,
    z2: Tensor,
    *,
    labels: Tensor | None = None,
    index: Tensor | None = None,
    teacher: Tensor | None = None,
) -> Tensor:
    """The loss of two embedded views ``z1``, ``z2`` of the same ``N`` items.

    Args:
        loss: A catalog loss module.
        z1: Shape ``(N, D)``, the first view.
        z2: Shape ``(N, D')``, the second view of the same items.
        labels: Shape ``(N,)`` int64 class ids, for losses over labelled embeddings.
            Without them, such losses get instance labels (each item its own class), which
            makes SupCon and its relatives self-supervised.
        index: Shape ``(N,)`` dataset indices, for losses with per-sample state.
        teacher: Shape ``(N, T)`` teacher features, for losses that need a teacher.

    Returns:
        The loss (a scalar with the loss's default reduction).

    Raises:
        ValueError: If the loss needs inputs two views cannot provide, or ``index`` /
            ``teacher`` is needed and missing.

    Example:
        >>> import contrastkit.losses as L
        >>> z1, z2 = torch.randn(8, 4), torch.randn(8, 4)
        >>> two_view_loss(L.SupConLoss(), z1, z2).shape
        torch.Size([])
    """
    out: Tensor = _call(loss, z1, z2, labels=labels, index=index, teacher=teacher)
    return out


def _call(
    loss: ContrastiveLoss,
    z1: Tensor,
    z2: Tensor,
    *,
    labels: Tensor | None,
    index: Tensor | None,
    teacher: Tensor | None,
) -> Any:
    name = type(loss).catalog_id
    reason = unsupported_reason(name)
    if reason is not None:
        raise ValueError(f"loss {name!r} cannot be trained on two views: {reason}")
    inputs, req = type(loss).inputs, type(loss).requires
    if req.index:
        if index is None:
            raise ValueError(f"loss {name!r} keeps per-sample state: pass index (N,)")
        return loss(z1, z2, index)
    if req.teacher:
        if teacher is None:
            raise ValueError(f"loss {name!r} needs a teacher: pass teacher (N, T)")
        if name == "cwcl":
            return loss(z1, z2, teacher=teacher)
        if name == "soft_target":
            return loss(z1, z2, teacher_a=teacher)
        return loss(torch.cat([z1, z2]), torch.cat([teacher, teacher]))
    if inputs == ("embeddings", "labels"):
        if labels is None:
            labels = torch.arange(z1.shape[0], device=z1.device)
        return loss(torch.cat([z1, z2]), torch.cat([labels, labels]))
    if inputs == ("embeddings",):
        return loss(torch.cat([z1, z2]))
    return loss(z1, z2)
