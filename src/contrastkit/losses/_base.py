"""The base class of every loss module: metadata, the registry and the common options."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from torch import nn

from contrastkit.core.validation import Impl, Reduction


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


class CommonOptions:
    """The options every loss module stores and passes on to its functional form."""

    reduction: Reduction
    chunk_size: int | None
    impl: Impl
    gather_distributed: bool
    process_group: Any

    def set_common(
        self,
        reduction: Reduction,
        chunk_size: int | None,
        impl: Impl,
        gather_distributed: bool,
        process_group: Any,
    ) -> None:
        """Store the common options (validated by the caller)."""
        self.reduction, self.chunk_size, self.impl = reduction, chunk_size, impl
        self.gather_distributed, self.process_group = gather_distributed, process_group

    def common(self) -> dict[str, Any]:
        """The common options as keyword arguments of the functional form."""
        return {
            "reduction": self.reduction,
            "chunk_size": self.chunk_size,
            "impl": self.impl,
            "gather_distributed": self.gather_distributed,
            "process_group": self.process_group,
        }


REGISTRY: dict[str, type[ContrastiveLoss]] = {}
"""Catalog id -> loss module class, filled by :class:`ContrastiveLoss` subclasses."""


class ContrastiveLoss(nn.Module, CommonOptions):
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
