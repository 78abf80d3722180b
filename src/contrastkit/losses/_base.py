"""The base class of every loss module: metadata and the registry, no behaviour."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from torch import nn


@dataclass(frozen=True)
class Paper:
    """Where a loss comes from.

    Attributes:
        authors: First author et al.
        year: Publication year.
        arxiv: arXiv id, e.g. ``"1807.03748"``.
        title: Short title.
    """

    authors: str
    year: int
    arxiv: str
    title: str


@dataclass(frozen=True)
class Requires:
    """What a loss needs besides the embeddings.

    Attributes:
        labels: Integer class ids ``(N,)``.
        teacher: Teacher embeddings or soft targets.
        index: Dataset indices ``(N,)`` (per-sample state).
        state: Keeps state across steps.
    """

    labels: bool = False
    teacher: bool = False
    index: bool = False
    state: bool = False


REGISTRY: dict[str, type[ContrastiveLoss]] = {}
"""Catalog id -> loss module class, filled by :class:`ContrastiveLoss` subclasses."""


class ContrastiveLoss(nn.Module):
    """Base class of the loss modules; holds catalog metadata only.

    A subclass that sets ``catalog_id`` is added to :data:`REGISTRY`.

    Attributes:
        catalog_id: The id in CATALOG.md; also the module file and the functional name.
        family: The catalog section, e.g. ``"softmax, one positive"``.
        paper: The paper the loss is from.
        inputs: Names of the tensor arguments of ``forward``, in order.
        requires: What the loss needs besides embeddings.
        symmetric_inputs: ``loss(x, y) == loss(y, x)`` for the two embedding inputs.
        supports_distributed: Exact under ``gather_distributed=True``.
        distributed: How: ``"split"`` (each rank computes the rows it owns) or
            ``"replicated"`` (every rank evaluates the gathered global batch: the same exact
            value and gradients, without dividing the work).
        peers: Peer implementations it is tested against (``package.Class``).
        stop_gradient: Part of the loss is a constant by design (e.g. DCLW's weights), so
            finite differences of the embeddings differ from its gradient.
    """

    catalog_id: ClassVar[str] = ""
    family: ClassVar[str] = ""
    paper: ClassVar[Paper]
    inputs: ClassVar[tuple[str, ...]] = ()
    requires: ClassVar[Requires] = Requires()
    symmetric_inputs: ClassVar[bool] = False
    supports_distributed: ClassVar[bool] = False
    distributed: ClassVar[str] = "replicated"
    peers: ClassVar[tuple[str, ...]] = ()
    stop_gradient: ClassVar[bool] = False

    def __init_subclass__(cls) -> None:
        super().__init_subclass__()
        if cls.catalog_id:
            if cls.catalog_id in REGISTRY:
                raise RuntimeError(f"catalog id {cls.catalog_id!r} registered twice")
            REGISTRY[cls.catalog_id] = cls
