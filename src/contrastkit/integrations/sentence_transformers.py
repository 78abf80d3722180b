"""Any contrastkit loss as a sentence-transformers loss.

:class:`SentenceTransformerLoss` wraps a SentenceTransformer model and a contrastkit loss
module into the loss interface of ``SentenceTransformerTrainer``: it is called with the
tokenized columns of a batch (``anchor``, ``positive``, optional negatives, in dataset column
order) and the dataset's label column, embeds every column with the model and hands the
contrastkit loss the inputs it needs. How the columns become loss inputs depends on the loss:

============================================  ==============================================
Losses (catalog id)                           Inputs built from the columns
============================================  ==============================================
infonce, hard_infonce, mw_auc                 ``(anchor, cat(positive, *negatives))``: the
                                              negatives are extra candidates of every anchor
clip, siglip, dcl, dclw, ntxent, alignment,   ``(anchor, positive)``; no negative column
patchnce, asp
gram, multimodal_pairwise                     every column, as row-aligned views
listwise                                      ``(anchor, stack(positive, *negatives))``: each
                                              anchor's own candidate list (N, K, D)
supcon, focal_supcon, multi_positive,         ``(cat(columns), labels repeated per column)``:
pairwise_logistic, contrastive_margin,        every column of a row has the row's label
triplet, proxy_nce, palm                      (the dataset's ``label`` column)
koleo, uniformity                             ``cat(columns)``
cwcl                                          ``(anchor, positive, teacher=T(anchor))``
soft_target                                   ``(anchor, cat(positive, *negatives),
                                              teacher_a=T(anchor), teacher_b=T(candidates))``
soft_bce                                      ``(cat(columns), reference=cat(T(columns)))``
============================================  ==============================================

``T`` is the ``teacher`` option: a callable on a column's features (e.g. a frozen
SentenceTransformer with the same tokenizer), or ``"labels"`` when the label column holds
precomputed teacher embeddings, as in sentence-transformers' distillation datasets (then
``teacher_b`` is ``None`` and soft_bce repeats the row's reference for every column). Losses
that need inputs a sentence-transformers batch does not carry (sogclr's dataset indices,
mixco's mixing coefficients, pamc's graph, ...) are refused with the reason.

Example:
    >>> import pytest
    >>> _ = pytest.importorskip("sentence_transformers")  # pip install sentence-transformers
    >>> import torch
    >>> from torch import nn
    >>> import contrastkit as ck
    >>> class Toy(nn.Module):  # stands in for a SentenceTransformer
    ...     def __init__(self) -> None:
    ...         super().__init__()
    ...         self.lin = nn.Linear(6, 4)
    ...     def forward(self, features: dict) -> dict:
    ...         return {"sentence_embedding": self.lin(features["x"])}
    >>> loss = SentenceTransformerLoss(Toy(), ck.losses.InfoNCELoss(temperature=0.05))
    >>> columns = [{"x": torch.randn(8, 6)} for _ in range(3)]  # anchor, positive, negative
    >>> loss(columns, None).shape
    torch.Size([])
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Literal

import torch
from torch import Tensor, nn

from contrastkit.losses._base import ContrastiveLoss

__all__ = ["SentenceTransformerLoss"]

Teacher = Callable[[dict[str, Any]], Tensor | Mapping[str, Tensor]]

_INSTALL = "pip install sentence-transformers"

_CANDIDATES = frozenset({"infonce", "hard_infonce", "mw_auc"})
_PAIR = frozenset({"clip", "siglip", "dcl", "dclw", "ntxent", "alignment", "patchnce", "asp"})
_VIEWS = frozenset({"gram", "multimodal_pairwise"})
_TEACHER = frozenset({"cwcl", "soft_target", "soft_bce"})
_REFUSED = {
    "sogclr": "dataset indices (`index`) for its per-sample state",
    "isogclr": "dataset indices (`index`) for its per-sample state",
    "sogclr_bimodal": "dataset indices (`index`) for its per-sample state",
    "mixco": "mixup coefficients (`lam`, `partner`) of mixed inputs",
    "pair_weighted": "per-sample attributes (`attributes_a`, `attributes_b`)",
    "pamc": "a graph over the samples (`edge_index`)",
    "prototype_margin": "class prototypes and a co-occurrence matrix, not sentence embeddings",
}
_SKIPPED_OPTIONS = frozenset({"self", "process_group", "dims"})


def _require_sentence_transformers() -> None:
    try:
        import sentence_transformers  # noqa: F401
    except ImportError as error:
        raise ImportError(
            "contrastkit.integrations.sentence_transformers needs the sentence-transformers "
            f"package: `{_INSTALL}`."
        ) from error


def _mode(loss: ContrastiveLoss) -> str:
    """How the columns become this loss's inputs (see the module docstring); raises if none."""
    cid, cls = loss.catalog_id, type(loss)
    if cid in _REFUSED:
        raise ValueError(
            f"{cls.__name__} ({cid!r}) needs {_REFUSED[cid]}, which a sentence-transformers batch "
            "does not carry; train it with your own loop, or pick a loss such as "
            "InfoNCELoss, CLIPLoss or SupConLoss."
        )
    for mode, ids in (("candidates", _CANDIDATES), ("pair", _PAIR), ("views", _VIEWS)):
        if cid in ids:
            return mode
    if cid in _TEACHER or cid == "listwise":
        return cid
    if cls.inputs == ("embeddings", "labels"):
        return "labeled"
    if cls.inputs == ("embeddings",):
        return "embeddings"
    raise ValueError(
        f"{cls.__name__} ({cid!r}, inputs {cls.inputs}) is not supported by "
        "SentenceTransformerLoss; pick a pair loss (e.g. InfoNCELoss) or a labeled one "
        "(e.g. SupConLoss)."
    )


def _citation(loss: ContrastiveLoss) -> str:
    paper = type(loss).paper
    key = "".join(ch for ch in paper.authors.split()[0].lower() if ch.isalpha()) + str(paper.year)
    return (
        f"@misc{{{key},\n"
        f"    title = {{{paper.title}}},\n"
        f"    author = {{{paper.authors}}},\n"
        f"    year = {{{paper.year}}},\n"
        f"    eprint = {{{paper.arxiv}}},\n"
        "    archivePrefix = {arXiv},\n"
        "}"
    )


class SentenceTransformerLoss(nn.Module):
    """A contrastkit loss as a sentence-transformers loss (for ``SentenceTransformerTrainer``).

    The batch's columns are embedded with ``model(features)["sentence_embedding"]`` and passed
    to ``loss`` as the module docstring's table says; with ``InfoNCELoss(temperature=0.05)``
    this is sentence-transformers' ``MultipleNegativesRankingLoss(model, scale=20)`` (its
    default one-direction form), hard-negative columns included. Losses with learnable
    parameters (CLIP's logit scale) are submodules, so the trainer's optimizer updates them.

    Args:
        model: The SentenceTransformer (any module mapping a features dict to a dict with
            ``"sentence_embedding"`` of shape ``(N, D)``).
        loss: A contrastkit loss module, e.g. ``ck.losses.InfoNCELoss(temperature=0.05)``.
        teacher: For the losses that need teacher embeddings (``cwcl``, ``soft_target``,
            ``soft_bce``): a callable on one column's features dict returning ``(N, D')``
            (or a dict with ``"sentence_embedding"``, so a frozen SentenceTransformer sharing
            the model's tokenizer works as it is), run without gradients; or ``"labels"``: the
            label column holds the teacher embeddings ``(N, D')``. A teacher module is not
            registered as a submodule: it is neither trained nor moved between devices.
        gather_distributed: If not ``None``, sets the loss's ``gather_distributed``: the loss
            of the global batch over all ranks (see :mod:`contrastkit.distributed`), the
            counterpart of sentence-transformers' ``gather_across_devices``.

    Raises:
        ImportError: sentence-transformers is not installed.
        TypeError: ``loss`` is not a contrastkit loss module.
        ValueError: the loss needs inputs a sentence-transformers batch cannot give, or a
            ``teacher`` is missing or not wanted.

    Example:
        >>> import contrastkit as ck
        >>> from sentence_transformers import SentenceTransformer  # doctest: +SKIP
        >>> model = SentenceTransformer("all-MiniLM-L6-v2")  # doctest: +SKIP
        >>> loss = SentenceTransformerLoss(model, ck.losses.CLIPLoss())  # doctest: +SKIP
    """

    def __init__(
        self,
        model: nn.Module,
        loss: ContrastiveLoss,
        *,
        teacher: Teacher | Literal["labels"] | None = None,
        gather_distributed: bool | None = None,
    ) -> None:
        super().__init__()
        _require_sentence_transformers()
        if not isinstance(loss, ContrastiveLoss):
            raise TypeError(
                "`loss` must be a contrastkit loss module (e.g. "
                f"ck.losses.InfoNCELoss()); got {type(loss).__name__}. For a sentence-"
                "transformers loss, pass it to the trainer directly."
            )
        self.mode = _mode(loss)
        needs_teacher = type(loss).requires.teacher
        if needs_teacher and teacher is None:
            raise ValueError(
                f"{type(loss).__name__} needs teacher embeddings; pass teacher=<callable on a "
                "column's features returning (N, D')> (e.g. a frozen SentenceTransformer with "
                "the same tokenizer) or teacher='labels' when the label column holds them."
            )
        if not needs_teacher and teacher is not None:
            raise ValueError(
                f"{type(loss).__name__} takes no teacher; got teacher={teacher!r}. Drop it, or "
                "use CWCLLoss, SoftTargetLoss or SoftBCELoss."
            )
        if teacher is not None and teacher != "labels" and not callable(teacher):
            raise ValueError(f"`teacher` must be a callable or 'labels'; got {teacher!r}.")
        if gather_distributed is not None:
            if gather_distributed and not type(loss).supports_distributed:
                raise ValueError(
                    f"{type(loss).__name__} does not support gather_distributed=True; use "
                    "gather_distributed=False or a loss that does."
                )
            loss.gather_distributed = bool(gather_distributed)
        self.model = model
        self.loss = loss
        # Not a submodule: a teacher is neither trained by the trainer's optimizer nor moved.
        self._teacher: Teacher | Literal["labels"] | None = teacher

    def forward(
        self, sentence_features: Iterable[dict[str, Tensor]], labels: Tensor | None
    ) -> Tensor:
        """The loss of one batch.

        Args:
            sentence_features: One tokenized features dict per column: anchor, positive,
                then optional negatives (``N`` rows each).
            labels: The dataset's label column, ``(N,)`` class ids for labeled losses or
                ``(N, D')`` teacher embeddings with ``teacher="labels"``; ``None`` without one.

        Returns:
            The scalar loss.
        """
        columns = list(sentence_features)
        name = type(self.loss).__name__
        least = {"labeled": 1, "embeddings": 1, "soft_bce": 1, "listwise": 2}.get(self.mode, 2)
        if len(columns) < least:
            raise ValueError(
                f"{name} needs at least {least} text column(s) (anchor, positive, ...); the "
                f"batch has {len(columns)}. Check the dataset's columns."
            )
        if self.mode == "pair" and len(columns) > 2:
            raise ValueError(
                f"{name} takes row-aligned (anchor, positive) pairs; the batch has "
                f"{len(columns) - 2} extra (negative) column(s). Drop them, or use a loss "
                "that takes extra candidates: InfoNCELoss, HardInfoNCELoss, MWAUCLoss."
            )
        if self.mode == "labeled" and labels is None:
            raise ValueError(
                f"{name} needs class labels, but the dataset has no label column; add one named "
                "'label' with an integer class id per row (every column of a row gets it)."
            )
        if self._teacher == "labels" and labels is None:
            raise ValueError(
                "teacher='labels' needs the teacher embeddings in the dataset's label column; "
                "the batch has none. Add a 'label' column of (D',) vectors."
            )
        teach = [self._teach(features, labels) for features in columns]
        emb = [self._embed(features) for features in columns]
        return self._compute(emb, teach, labels)

    def _embed(self, features: dict[str, Tensor]) -> Tensor:
        out = self.model(features)
        if not isinstance(out, Mapping) or "sentence_embedding" not in out:
            raise TypeError(
                "`model(features)` must return a dict with 'sentence_embedding' (as a "
                f"SentenceTransformer does); got {type(out).__name__}."
            )
        emb: Tensor = out["sentence_embedding"]
        return emb

    def _teach(self, features: dict[str, Tensor], labels: Tensor | None) -> Tensor | None:
        """This column's teacher embeddings (before the student touches ``features``)."""
        if self._teacher is None or self._teacher == "labels":
            return None
        with torch.no_grad():
            out = self._teacher(dict(features))
        if isinstance(out, Mapping):
            out = out["sentence_embedding"]
        return out.detach()

    def _compute(
        self, emb: list[Tensor], teach: list[Tensor | None], labels: Tensor | None
    ) -> Tensor:
        mode, loss, from_labels = self.mode, self.loss, self._teacher == "labels"
        anchor, rest = emb[0], emb[1:]
        out: Tensor
        if mode == "candidates":
            out = loss(anchor, torch.cat(rest))
        elif mode == "pair":
            out = loss(anchor, rest[0])
        elif mode == "views":
            out = loss(*emb)
        elif mode == "listwise":
            out = loss(anchor, torch.stack(rest, dim=1))
        elif mode == "labeled":
            assert labels is not None  # checked in forward
            out = loss(torch.cat(emb), labels.repeat(len(emb)))
        elif mode == "embeddings":
            out = loss(torch.cat(emb))
        elif mode == "cwcl":
            out = loss(anchor, rest[0], teacher=labels if from_labels else teach[0])
        elif mode == "soft_target":
            t_b = None if from_labels else torch.cat([t for t in teach[1:] if t is not None])
            out = loss(
                anchor,
                torch.cat(rest),
                teacher_a=labels if from_labels else teach[0],
                teacher_b=t_b,
            )
        else:  # soft_bce
            if from_labels:
                assert labels is not None  # checked in forward
                ref = labels.repeat(len(emb), *([1] * (labels.dim() - 1)))
            else:
                ref = torch.cat([t for t in teach if t is not None])
            out = loss(torch.cat(emb), ref)
        return out

    @property
    def citation(self) -> str:
        """BibTeX of the wrapped loss's paper (shown in the trainer's model card)."""
        return _citation(self.loss)

    def get_config_dict(self) -> dict[str, Any]:
        """The wrapped loss and its options (shown in the trainer's model card)."""
        config: dict[str, Any] = {"loss": type(self.loss).__name__}
        for name in inspect.signature(type(self.loss).__init__).parameters:
            if name in _SKIPPED_OPTIONS or not hasattr(self.loss, name):
                continue
            value = getattr(self.loss, name)
            if value is None or isinstance(value, bool | int | float | str | tuple):
                config[name] = value
        if self._teacher is not None:
            teacher = self._teacher
            config["teacher"] = teacher if teacher == "labels" else type(teacher).__name__
        return config
