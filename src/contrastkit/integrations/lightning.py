r"""Train any encoder (pair) with any catalog loss in PyTorch Lightning, exactly under DDP.

:class:`ContrastiveModule` is a ``LightningModule`` that embeds two views (or two modalities)
of each item, applies a contrastive loss from :mod:`contrastkit.losses`, and logs the loss and,
at the end of each validation epoch, the metrics of :mod:`contrastkit.metrics`.

Distributed training: when ``trainer.world_size > 1`` (Lightning's ``"ddp"`` /
``"ddp_spawn"`` strategies, or torchrun), the module switches the loss to
``gather_distributed=True`` in :meth:`ContrastiveModule.setup`. Each rank then passes its local
batch, and the loss returns the loss of the **global** batch, the same value on every rank,
with a local gradient that is ``W`` times the rank's slice of the global gradient. DDP averages
parameter gradients over the ``W`` ranks, so the ``W`` cancels:

.. math::

    \frac{1}{W} \sum_{r} W \frac{\partial L}{\partial z_r} \frac{\partial z_r}{\partial \theta}
    = \frac{\partial L}{\partial \theta},

the gradient of one process holding the global batch. Training with ``devices=W`` and a
per-device batch ``B`` therefore follows the same trajectory as ``devices=1`` with batch
``W B`` (up to floating-point summation order), provided the encoders hold no per-batch
statistics (plain ``BatchNorm`` normalizes each rank's local batch; use
``Trainer(sync_batchnorm=True)`` on GPUs, or no batch norm). The loss's own parameters (a
learnable temperature, SigLIP's scale and bias) receive the full global gradient on every rank
(see :mod:`contrastkit.distributed.gather`), so DDP's averaging leaves them unchanged.

Batches are ``(view_a, view_b)`` or ``(view_a, view_b, labels)`` tuples, or dicts with keys
``"view_a"``, ``"view_b"`` and optionally ``"labels"``; any other key of a dict batch is
passed to the loss as a keyword argument (``index`` for SogCLR, ``teacher`` for CWCL,
``image_ids`` for PatchNCE, ...). A view is whatever its encoder takes (a tensor, or a list
of strings for :class:`~contrastkit.models.NGramTower`).

How the loss is called depends on its ``inputs`` metadata:

- pair losses (InfoNCE, NT-Xent, CLIP, SigLIP, DCL, MW-AUC, ...):
  ``loss(z_a, z_b, **extras)``;
- ``(embeddings, labels)`` losses (SupCon, triplet, ProxyNCA, ...): both views stacked,
  ``loss(cat([z_a, z_b]), cat([labels, labels]), **extras)``, the multi-view batch of SupCon;
- one-input losses (uniformity, KoLeo): ``loss(cat([z_a, z_b]), **extras)``.

Losses whose second input is not an embedding of the second view (PamC's ``edge_index``,
the prototype-margin loss, soft-BCE's ``reference``) need a subclass that overrides
:meth:`ContrastiveModule.compute_loss`.

Requires Lightning (``pip install lightning``); the standalone ``pytorch_lightning`` package
is used when ``lightning`` is not installed.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal, NamedTuple

import torch
import torch.distributed as dist
from torch import Tensor, nn

try:
    import lightning.pytorch as pl
except ImportError:  # pragma: no cover - exercised in a subprocess by the tests
    try:
        pl = importlib.import_module("pytorch_lightning")  # the standalone package
    except ImportError as exc:
        raise ImportError(
            "contrastkit.integrations.lightning needs PyTorch Lightning: "
            "`pip install lightning` (or `pip install 'contrastkit[lightning]'`)."
        ) from exc

from contrastkit import metrics
from contrastkit.distributed.gather import gather_rows
from contrastkit.losses import REGISTRY, ContrastiveLoss

__all__ = ["BatchOutput", "ContrastiveModule", "evaluate", "input_kind"]

InputKind = Literal["pair", "labeled", "single"]
OptimizerFactory = Callable[..., torch.optim.Optimizer]
SchedulerFactory = Callable[[torch.optim.Optimizer], torch.optim.lr_scheduler.LRScheduler]

_RESERVED = ("view_a", "view_b", "labels")
# Second inputs that are not an embedding of the second view: the loss needs custom wiring.
_NOT_A_VIEW = ("edge_index", "class_identity", "reference")


class BatchOutput(NamedTuple):
    """What :meth:`ContrastiveModule.run_batch` computes for one batch.

    Attributes:
        loss: The scalar loss (the global batch's under ``gather_distributed``).
        embeddings_a: Shape ``(B, D)``, the loss's inputs for view a (after the head).
        embeddings_b: Shape ``(B, D)``, the same for view b.
        features_a: Shape ``(B, F)``, the encoder's output for view a (before the head).
        labels: Shape ``(B,)`` or ``None``.
    """

    loss: Tensor
    embeddings_a: Tensor
    embeddings_b: Tensor
    features_a: Tensor
    labels: Tensor | None


def input_kind(loss: nn.Module) -> InputKind:
    """How :class:`ContrastiveModule` calls ``loss``, read from its ``inputs`` metadata.

    Args:
        loss: A loss module; modules that are not :class:`~contrastkit.losses.ContrastiveLoss`
            are called as pair losses.

    Returns:
        ``"pair"``, ``"labeled"`` or ``"single"`` (see the module docstring).

    Raises:
        ValueError: If the loss's second input is not an embedding of the second view.

    Example:
        >>> import contrastkit.losses as L
        >>> input_kind(L.InfoNCELoss()), input_kind(L.SupConLoss()), input_kind(L.KoLeoLoss())
        ('pair', 'labeled', 'single')
    """
    inputs: tuple[str, ...] = getattr(loss, "inputs", ()) or ("query", "key")
    if len(inputs) == 1:
        return "single"
    if inputs[1] == "labels":
        return "labeled"
    if inputs[1] in _NOT_A_VIEW:
        raise ValueError(
            f"`loss` {type(loss).__name__} takes ({', '.join(inputs)}): its second input is not "
            "an embedding of the second view, so ContrastiveModule cannot wire it. Subclass "
            "ContrastiveModule and override `compute_loss(z_a, z_b, labels, extras)`."
        )
    return "pair"


def _make_loss(loss: nn.Module | str, loss_kwargs: Mapping[str, Any] | None) -> nn.Module:
    """The loss module: ``loss`` itself, or ``REGISTRY[loss](**loss_kwargs)``."""
    if isinstance(loss, str):
        if loss not in REGISTRY:
            raise ValueError(
                f"`loss` must be a loss module or a catalog id; got unknown id {loss!r}. "
                f"Known ids: {', '.join(sorted(REGISTRY))}."
            )
        return REGISTRY[loss](**dict(loss_kwargs or {}))
    if not isinstance(loss, nn.Module):
        raise ValueError(
            f"`loss` must be an nn.Module (e.g. contrastkit.losses.InfoNCELoss()) or a catalog "
            f"id such as 'infonce'; got {type(loss).__name__}."
        )
    if loss_kwargs:
        raise ValueError(
            "`loss_kwargs` configures a loss given by its catalog id; got a loss module "
            f"({type(loss).__name__}) and loss_kwargs={dict(loss_kwargs)!r}. Pass the options "
            "to the module's constructor instead."
        )
    return loss


def _check_module(name: str, value: object, optional: bool) -> None:
    if value is None and optional:
        return
    if not isinstance(value, nn.Module):
        kind = "an nn.Module or None" if optional else "an nn.Module"
        raise ValueError(f"`{name}` must be {kind}; got {type(value).__name__}.")


class ContrastiveModule(pl.LightningModule):
    r"""A LightningModule that trains an encoder (pair) with a contrastive loss.

    View a goes through ``encoder`` then ``head``; view b through ``encoder_b`` (default:
    ``encoder``, the siamese setting of SimCLR) then ``head_b`` (default: ``head``). The loss
    sees the head outputs; the kNN and linear-probe metrics use the encoder outputs of view a
    (the representation that SimCLR evaluates).

    Logged (``sync_dist=True``): ``train/loss`` (per step and per epoch), every scalar
    parameter of the loss as ``train/<name>`` (e.g. ``train/logit_scale``), ``val/loss``, and
    at the end of each validation epoch, on the whole validation set gathered from every
    rank: ``val/alignment`` and ``val/uniformity`` (Wang & Isola; uniformity averaged over the
    two views), ``val/recall_at_1`` and ``val/mrr`` of retrieving view b from view a, and, when
    the batches carry labels, ``val/knn_accuracy`` (leave-one-out, ``knn_k`` neighbours) and
    ``val/linear_probe_accuracy`` (a held-out quarter, stratified).

    Args:
        encoder: Embeds view a (and view b unless ``encoder_b`` is given).
        loss: A loss module, or a catalog id of :data:`contrastkit.losses.REGISTRY`.
        encoder_b: Embeds view b (a second modality); ``None`` shares ``encoder``.
        head: Projection applied after the encoder (SimCLR's head); ``None``: identity.
        head_b: Projection of view b; ``None`` uses ``head``.
        loss_kwargs: Constructor arguments when ``loss`` is a catalog id.
        lr: Learning rate.
        weight_decay: Weight decay of the encoder and head parameters. The loss's own
            parameters (learnable temperature, SigLIP's scale and bias) are trained in a
            second group without weight decay.
        optimizer: Called as ``optimizer(param_groups, lr=lr)``; default
            ``torch.optim.AdamW``. Use ``functools.partial`` for other options.
        scheduler: Optional ``scheduler(optimizer)``, stepped after every optimizer step.
        gather_distributed: ``None`` (default) turns the loss's ``gather_distributed`` on
            when ``trainer.world_size > 1``; ``True`` / ``False`` force it.
        eval_metrics: Compute the epoch-end validation metrics.
        knn_k: Neighbours of the kNN accuracy (at most the validation size minus one).

    Example:
        >>> import torch
        >>> from torch import nn
        >>> module = ContrastiveModule(nn.Linear(8, 4), "infonce", loss_kwargs={"temperature": 0.1})
        >>> batch = (torch.randn(6, 8), torch.randn(6, 8))
        >>> out = module.run_batch(batch)
        >>> out.loss.shape, out.embeddings_a.shape
        (torch.Size([]), torch.Size([6, 4]))

        Train with ``lightning.Trainer(max_epochs=..., accelerator=..., devices=...)
        .fit(module, train_loader, val_loader)``; ``strategy="ddp"`` is exact.
    """

    def __init__(
        self,
        encoder: nn.Module,
        loss: nn.Module | str = "infonce",
        *,
        encoder_b: nn.Module | None = None,
        head: nn.Module | None = None,
        head_b: nn.Module | None = None,
        loss_kwargs: Mapping[str, Any] | None = None,
        lr: float = 1e-3,
        weight_decay: float = 1e-4,
        optimizer: OptimizerFactory = torch.optim.AdamW,
        scheduler: SchedulerFactory | None = None,
        gather_distributed: bool | None = None,
        eval_metrics: bool = True,
        knn_k: int = 20,
    ) -> None:
        super().__init__()
        _check_module("encoder", encoder, optional=False)
        _check_module("encoder_b", encoder_b, optional=True)
        _check_module("head", head, optional=True)
        _check_module("head_b", head_b, optional=True)
        for name, value in (("lr", lr), ("weight_decay", weight_decay)):
            if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                raise ValueError(f"`{name}` must be a float >= 0; got {value!r}.")
        if not callable(optimizer):
            raise ValueError(
                f"`optimizer` must be callable as optimizer(param_groups, lr=lr), e.g. "
                f"torch.optim.AdamW; got {optimizer!r}."
            )
        if gather_distributed not in (None, True, False):
            raise ValueError(
                f"`gather_distributed` must be None (automatic), True or False; "
                f"got {gather_distributed!r}."
            )
        if isinstance(knn_k, bool) or not isinstance(knn_k, int) or knn_k < 1:
            raise ValueError(f"`knn_k` must be an int >= 1; got {knn_k!r}.")
        self.save_hyperparameters(
            ignore=["encoder", "encoder_b", "head", "head_b", "loss", "optimizer", "scheduler"]
        )
        self.encoder = encoder
        self.encoder_b = encoder_b
        self.head = head
        self.head_b = head_b
        self.loss = _make_loss(loss, loss_kwargs)
        self.input_kind: InputKind = input_kind(self.loss)
        self.lr, self.weight_decay = float(lr), float(weight_decay)
        self.optimizer_factory, self.scheduler_factory = optimizer, scheduler
        self.gather_distributed = gather_distributed
        self.eval_metrics, self.knn_k = eval_metrics, knn_k
        self._val: dict[str, list[Tensor]] = {}

    # ----------------------------------------------------------------- embedding and the loss

    def encode(self, x: Any, *, view: Literal["a", "b"] = "a", project: bool = True) -> Tensor:
        """Embed a batch of view a (``encoder``, ``head``) or view b (``encoder_b``, ``head_b``).

        Args:
            x: A batch of inputs of that view.
            view: ``"a"`` or ``"b"``.
            project: Apply the projection head (``False``: the encoder's features).

        Returns:
            Shape ``(B, D)``.
        """
        if view not in ("a", "b"):
            raise ValueError(f"`view` must be 'a' or 'b'; got {view!r}.")
        encoder = self.encoder if view == "a" or self.encoder_b is None else self.encoder_b
        features: Tensor = encoder(x)
        if not project:
            return features
        head = self.head if view == "a" or self.head_b is None else self.head_b
        return features if head is None else head(features)

    def forward(self, x: Any) -> Tensor:
        """The projected embedding of a batch of view a; see :meth:`encode`."""
        return self.encode(x)

    def compute_loss(
        self, z_a: Tensor, z_b: Tensor, labels: Tensor | None, extras: dict[str, Any]
    ) -> Tensor:
        """Call the loss on the two views' embeddings (override for custom wiring).

        Args:
            z_a: Shape ``(B, D)``, view a after the head.
            z_b: Shape ``(B, D)``, view b after the head.
            labels: Shape ``(B,)`` or ``None``.
            extras: The other keys of a dict batch, passed as keyword arguments.

        Returns:
            The scalar loss.
        """
        if self.input_kind == "pair":
            out: Tensor = self.loss(z_a, z_b, **extras)
        elif self.input_kind == "labeled":
            if labels is None:
                raise ValueError(
                    f"{type(self.loss).__name__} needs labels: give batches as (view_a, view_b, "
                    "labels) tuples or dicts with a 'labels' key."
                )
            out = self.loss(torch.cat([z_a, z_b]), torch.cat([labels, labels]), **extras)
        else:
            out = self.loss(torch.cat([z_a, z_b]), **extras)
        return out

    def run_batch(self, batch: Any) -> BatchOutput:
        """Embed both views of a batch and compute the loss (no logging).

        Args:
            batch: ``(view_a, view_b)``, ``(view_a, view_b, labels)`` or a dict (see the
                module docstring).

        Returns:
            A :class:`BatchOutput`.
        """
        view_a, view_b, labels, extras = _split_batch(batch)
        features_a = self.encode(view_a, project=False)
        head = self.head
        z_a = features_a if head is None else head(features_a)
        z_b = self.encode(view_b, view="b")
        return BatchOutput(
            self.compute_loss(z_a, z_b, labels, extras), z_a, z_b, features_a, labels
        )

    # ----------------------------------------------------------------------- Lightning hooks

    def setup(self, stage: str) -> None:
        """Turn on the loss's ``gather_distributed`` when training over several processes."""
        if self.gather_distributed is None:
            if self.trainer.world_size <= 1:
                return
            want = True
        else:
            want = self.gather_distributed
        if not hasattr(self.loss, "gather_distributed"):
            if want:
                pl.utilities.rank_zero_warn(
                    f"{type(self.loss).__name__} has no `gather_distributed` option: each rank "
                    "computes the loss of its local batch (other ranks' negatives unseen)."
                )
            return
        if want and isinstance(self.loss, ContrastiveLoss) and not self.loss.supports_distributed:
            raise ValueError(
                f"{type(self.loss).__name__} is not exact under gather_distributed; train it "
                "on one device or pass gather_distributed=False to use per-rank batches."
            )
        loss: Any = self.loss
        loss.gather_distributed = want

    def training_step(self, batch: Any, batch_idx: int) -> Tensor:
        """One step: the loss, logged as ``train/loss``, and the loss's scalar parameters."""
        out = self.run_batch(batch)
        size = out.embeddings_a.shape[0]
        self.log(
            "train/loss",
            out.loss.detach(),
            on_step=True,
            on_epoch=True,
            prog_bar=True,
            sync_dist=True,
            batch_size=size,
        )
        for name, p in self.loss.named_parameters():
            if p.numel() == 1:
                self.log(f"train/{name}", p.detach().reshape(()), sync_dist=True, batch_size=size)
        return out.loss

    def on_validation_epoch_start(self) -> None:
        """Forget the previous epoch's validation embeddings."""
        self._val = {}

    def validation_step(self, batch: Any, batch_idx: int) -> Tensor:
        """The validation loss (``val/loss``); keeps the embeddings for the epoch metrics."""
        out = self.run_batch(batch)
        size = out.embeddings_a.shape[0]
        self.log("val/loss", out.loss.detach(), on_epoch=True, sync_dist=True, batch_size=size)
        if self.eval_metrics:
            kept = {"z_a": out.embeddings_a, "z_b": out.embeddings_b, "features": out.features_a}
            if out.labels is not None:
                kept["labels"] = out.labels
            for key, value in kept.items():
                self._val.setdefault(key, []).append(value.detach())
        return out.loss

    def on_validation_epoch_end(self) -> None:
        """Metrics of the whole validation set (all ranks), logged with ``sync_dist=True``."""
        if not self.eval_metrics or "z_a" not in self._val:
            return
        world = self.trainer.world_size if self._trainer is not None else 1
        data = {key: _gather_all(torch.cat(parts), world) for key, parts in self._val.items()}
        self._val = {}
        for name, value in evaluate(data, knn_k=self.knn_k).items():
            self.log(f"val/{name}", value, sync_dist=True)

    def configure_optimizers(self) -> Any:
        """``optimizer`` over the encoder and head parameters and the loss's own parameters."""
        loss_params = [p for p in self.loss.parameters() if p.requires_grad]
        owned = {id(p) for p in loss_params}
        model_params = [p for p in self.parameters() if p.requires_grad and id(p) not in owned]
        groups: list[dict[str, Any]] = [{"params": model_params, "weight_decay": self.weight_decay}]
        if loss_params:
            groups.append({"params": loss_params, "weight_decay": 0.0})
        opt = self.optimizer_factory(groups, lr=self.lr)
        if self.scheduler_factory is None:
            return opt
        sched = self.scheduler_factory(opt)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}


def evaluate(data: Mapping[str, Tensor], *, knn_k: int = 20) -> dict[str, float]:
    """The validation metrics of :class:`ContrastiveModule` on a whole evaluation set.

    Args:
        data: ``"z_a"``, ``"z_b"`` (``(N, D)``, the loss's inputs), ``"features"``
            (``(N, F)``, view a before the head) and optionally ``"labels"`` (``(N,)``).
        knn_k: Neighbours of the kNN accuracy (clipped to ``N - 1``).

    Returns:
        ``alignment``, ``uniformity``, ``recall_at_1``, ``mrr`` and, with labels,
        ``knn_accuracy`` and ``linear_probe_accuracy``. Metrics that need more rows than
        given (uniformity and kNN need 2, the probe 2 classes with 2 rows each) are left out.

    Example:
        >>> import torch
        >>> z = torch.eye(4)
        >>> m = evaluate({"z_a": z, "z_b": z, "features": z, "labels": torch.tensor([0, 0, 1, 1])})
        >>> m["alignment"], m["recall_at_1"], m["mrr"]
        (0.0, 1.0, 1.0)
    """
    z_a, z_b, features = data["z_a"], data["z_b"], data["features"]
    n = z_a.shape[0]
    out: dict[str, float] = {"alignment": metrics.alignment(z_a, z_b)}
    if n >= 2:
        out["uniformity"] = 0.5 * (metrics.uniformity(z_a) + metrics.uniformity(z_b))
    ret = metrics.retrieval_metrics(z_a, z_b, positives=torch.arange(n, device=z_a.device), k=1)
    out["recall_at_1"], out["mrr"] = ret["recall@1"], ret["mrr"]
    labels = data.get("labels")
    if labels is not None and n >= 2:
        feats = features.flatten(1)
        out["knn_accuracy"] = metrics.knn_accuracy(
            feats, labels, feats, labels, k=min(knn_k, n - 1), exclude_self=True
        )
        counts = torch.bincount(labels.flatten().long().cpu())
        if int((counts >= 2).sum()) >= 2:
            out["linear_probe_accuracy"] = metrics.linear_probe_accuracy(feats, labels)
    return out


def _split_batch(batch: Any) -> tuple[Any, Any, Tensor | None, dict[str, Any]]:
    """``(view_a, view_b, labels, extras)`` of a tuple or dict batch."""
    if isinstance(batch, Mapping):
        missing = [k for k in ("view_a", "view_b") if k not in batch]
        if missing:
            raise ValueError(
                f"A dict batch needs the keys 'view_a' and 'view_b' (and optionally 'labels'); "
                f"missing {missing}, got keys {sorted(batch)}."
            )
        extras = {k: v for k, v in batch.items() if k not in _RESERVED}
        return batch["view_a"], batch["view_b"], batch.get("labels"), extras
    if isinstance(batch, Sequence) and not isinstance(batch, str) and len(batch) in (2, 3):
        labels = batch[2] if len(batch) == 3 else None
        return batch[0], batch[1], labels, {}
    size = len(batch) if isinstance(batch, Sequence) else None
    raise ValueError(
        "A batch must be (view_a, view_b), (view_a, view_b, labels) or a dict with 'view_a', "
        f"'view_b' and optional 'labels'; got {type(batch).__name__}"
        + ("" if size is None else f" of length {size}")
        + "."
    )


def _gather_all(x: Tensor, world: int) -> Tensor:
    """Every rank's rows of ``x`` in rank order (local sizes may differ); ``x`` in one process."""
    if world <= 1 or not dist.is_available() or not dist.is_initialized():
        return x
    size = torch.tensor([x.shape[0]], device=x.device)
    sizes = [torch.zeros_like(size) for _ in range(world)]
    dist.all_gather(sizes, size)
    return gather_rows(x.contiguous(), None, [int(s) for s in sizes])
