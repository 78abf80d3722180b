r"""The two tasks of the command line: two augmented views of images, and paired modalities.

- :class:`ViewsTask` (SimCLR-style): a batch of images, two random augmentations of each, one
  encoder and a projection head; the loss sees the projections. Judged, as the SSL literature
  does, on the *encoder's* output (the representation): kNN and linear-probe accuracy with the
  training split as the bank / probe-training set, and alignment (of two augmentations of each
  test image) and uniformity (of the test set).
- :class:`PairedTask` (CLIP-style): two row-aligned views of the same items (two feature sets,
  an image and its caption, a word and its pronunciation), one encoder per view; judged by
  cross-view retrieval on the test split (recall@1/10, MRR, pair ROC-AUC) and by alignment and
  uniformity of the paired embeddings.

:func:`evaluate_features` computes the image metrics of any feature function, so raw pixels, a
random encoder and a trained one are judged by the same code.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import Tensor, nn

from contrastkit import metrics
from contrastkit.data import ImageData, PairedData
from contrastkit.losses import ContrastiveLoss
from contrastkit.train.objectives import two_view_loss
from contrastkit.train.trainer import Task

Augment = Callable[[Tensor, torch.Generator], tuple[Tensor, Tensor]]
FeatureFn = Callable[[Tensor], Tensor]
View = Tensor | list[str]

EVAL_SEED = 12345
"""Seed of the augmentations used to measure alignment (fixed, so evaluations compare)."""


def embed(fn: FeatureFn, x: Tensor, *, batch_size: int = 1024) -> Tensor:
    """``fn`` applied to ``x`` in batches under ``no_grad``; float32 rows ``(N, D)``."""
    with torch.no_grad():
        parts = [fn(x[i : i + batch_size]).flatten(1).float() for i in range(0, len(x), batch_size)]
    return torch.cat(parts)


def evaluate_features(
    fn: FeatureFn,
    train: ImageData,
    test: ImageData,
    augment: Augment,
    *,
    k: int = 20,
    device: torch.device | None = None,
) -> dict[str, float]:
    """Judge the features ``fn(images)``: kNN and linear-probe accuracy, alignment, uniformity.

    Args:
        fn: Maps images ``(B, C, H, W)`` to features ``(B, ...)`` (flattened).
        train: The kNN bank and the probe's training set.
        test: The queries and the probe's test set; alignment is measured on two
            augmentations of each test image (drawn from :data:`EVAL_SEED`), uniformity on
            the test features.
        augment: ``augment(images, generator) -> (view1, view2)``.
        k: Neighbours of the kNN vote.
        device: Where ``fn`` runs (``None``: the images' device).

    Returns:
        ``{"knn_accuracy", "linear_accuracy", "alignment", "uniformity"}`` as floats.
    """
    dev = device if device is not None else train.images.device
    f_train = embed(fn, train.images.to(dev))
    f_test = embed(fn, test.images.to(dev))
    y_train, y_test = train.labels.to(dev), test.labels.to(dev)
    gen = torch.Generator().manual_seed(EVAL_SEED)
    v1, v2 = augment(test.images.to(dev), gen)
    return {
        "knn_accuracy": metrics.knn_accuracy(f_train, y_train, f_test, y_test, k=k),
        "linear_accuracy": metrics.linear_probe_accuracy(f_train, y_train, f_test, y_test),
        "alignment": metrics.alignment(embed(fn, v1), embed(fn, v2)),
        "uniformity": metrics.uniformity(f_test),
    }


class ViewsTask(Task):
    """SimCLR-style training: two augmentations per image, encoder + head, any catalog loss.

    Args:
        train: The training images (labels are used only by losses over labelled embeddings
            when ``supervised``).
        test: The held-out images for evaluation.
        encoder: Images ``(B, C, H, W)`` to representations ``(B, F)``.
        head: Representations to the loss's embeddings ``(B, D)`` (``nn.Identity()`` for none).
        loss: A catalog loss (see :func:`contrastkit.train.objectives.two_view_loss`).
        augment: ``augment(images, generator) -> (view1, view2)``.
        supervised: Give class labels to losses over labelled embeddings (SupCon etc.);
            otherwise they get instance labels and are self-supervised.
    """

    def __init__(
        self,
        train: ImageData,
        test: ImageData,
        encoder: nn.Module,
        head: nn.Module,
        loss: ContrastiveLoss,
        augment: Augment,
        *,
        supervised: bool = True,
    ) -> None:
        super().__init__()
        self.train_data, self.test_data = train, test
        self.encoder, self.head, self.loss = encoder, head, loss
        self.augment = augment
        self.supervised = supervised
        self.num_samples = len(train)

    def _device(self) -> torch.device:
        return next(self.encoder.parameters()).device

    def batch_loss(self, index: Tensor, generator: torch.Generator) -> Tensor:
        """Two augmentations of the images ``index``, embedded, through the loss."""
        dev = self._device()
        x = self.train_data.images[index].to(dev)
        v1, v2 = self.augment(x, generator)
        z = self.head(self.encoder(torch.cat([v1, v2])))
        z1, z2 = z.chunk(2)
        labels = self.train_data.labels[index].to(dev) if self.supervised else None
        return two_view_loss(
            self.loss, z1, z2, labels=labels, index=index.to(dev), teacher=x.flatten(1)
        )

    def evaluate(self) -> dict[str, float]:
        """:func:`evaluate_features` of the encoder."""
        return evaluate_features(
            self.encoder, self.train_data, self.test_data, self.augment, device=self._device()
        )

    def test_embeddings(self) -> tuple[Tensor, Tensor, Tensor | None]:
        """Representations of two augmentations of each test image, and the test labels."""
        dev = self._device()
        v1, v2 = self.augment(
            self.test_data.images.to(dev), torch.Generator().manual_seed(EVAL_SEED)
        )
        return embed(self.encoder, v1), embed(self.encoder, v2), self.test_data.labels


def _take(view: View, index: Tensor) -> View:
    if isinstance(view, Tensor):
        return view[index]
    return [view[i] for i in index.tolist()]


def _to(view: View, device: torch.device) -> View:
    return view.to(device) if isinstance(view, Tensor) else view


def _embed_view(encoder: nn.Module, view: View, device: torch.device) -> Tensor:
    parts = []
    with torch.no_grad():
        for i in range(0, len(view), 1024):
            part = view[i : i + 1024]
            parts.append(encoder(_to(part, device)).float())
    return torch.cat(parts)


def paired_metrics(a: Tensor, b: Tensor, labels: Tensor | None = None) -> dict[str, float]:
    """Retrieval of ``b`` rows by ``a`` rows (row ``i`` relevant to query ``i``) and geometry.

    Returns:
        ``recall@1``, ``recall@10``, ``mrr``, ``roc_auc`` (pair ROC-AUC), ``alignment`` (of the
        pairs) and ``uniformity`` (of ``a``); with labels also ``class_recall@1`` (the top
        item shares the query's class).
    """
    positives = torch.arange(a.shape[0], device=a.device)
    ks = (1, 10) if a.shape[0] >= 10 else (1,)
    out = metrics.retrieval_metrics(a, b, positives=positives, k=ks)
    result = {f"recall@{k}": out[f"recall@{k}"] for k in ks}
    result["mrr"] = out["mrr"]
    result["roc_auc"] = metrics.pair_roc_auc(a, b, positives=positives)
    if labels is not None:
        lab = labels.to(a.device)
        cls = metrics.retrieval_metrics(a, b, query_labels=lab, gallery_labels=lab, k=1)
        result["class_recall@1"] = cls["recall@1"]
    if a.shape[1] == b.shape[1]:
        result["alignment"] = metrics.alignment(a, b)
    result["uniformity"] = metrics.uniformity(a)
    return result


class PairedTask(Task):
    """CLIP-style training on two row-aligned views, one encoder per view.

    Args:
        train: The training pairs.
        test: The held-out pairs.
        views: The two view names of ``train.views`` (query side first).
        encoders: One encoder per view; each maps its view's rows to ``(B, D)``.
        loss: A catalog loss (see :func:`contrastkit.train.objectives.two_view_loss`).
        supervised: Give class labels (when the data has them) to losses over labelled
            embeddings.
    """

    def __init__(
        self,
        train: PairedData,
        test: PairedData,
        views: Sequence[str],
        encoders: Sequence[nn.Module],
        loss: ContrastiveLoss,
        *,
        supervised: bool = True,
    ) -> None:
        super().__init__()
        if len(views) != 2 or len(encoders) != 2:
            raise ValueError(f"views: give two view names and two encoders, got {list(views)}")
        for name in views:
            if name not in train.views:
                raise ValueError(
                    f"views: {name!r} is not a view of {train.name}; it has {sorted(train.views)}"
                )
        self.train_data, self.test_data = train, test
        self.view_names = (views[0], views[1])
        self.encoder_a, self.encoder_b = encoders[0], encoders[1]
        self.loss = loss
        self.supervised = supervised
        self.num_samples = len(train)

    def _device(self) -> torch.device:
        return next(self.encoder_a.parameters()).device

    def batch_loss(self, index: Tensor, generator: torch.Generator) -> Tensor:
        """Both views of the items ``index``, embedded, through the loss."""
        dev = self._device()
        a = _to(_take(self.train_data.views[self.view_names[0]], index), dev)
        b = _to(_take(self.train_data.views[self.view_names[1]], index), dev)
        z1, z2 = self.encoder_a(a), self.encoder_b(b)
        labels = None
        if self.supervised and self.train_data.labels is not None:
            labels = self.train_data.labels[index].to(dev)
        teacher = z2.detach()
        return two_view_loss(self.loss, z1, z2, labels=labels, index=index.to(dev), teacher=teacher)

    def evaluate(self) -> dict[str, float]:
        """:func:`paired_metrics` of the test split, view ``a`` querying view ``b``."""
        a, b, labels = self.test_embeddings()
        return paired_metrics(a, b, labels)

    def test_embeddings(self) -> tuple[Tensor, Tensor, Tensor | None]:
        """Embeddings of both views of the test pairs, and the test labels (if any)."""
        dev = self._device()
        a = _embed_view(self.encoder_a, self.test_data.views[self.view_names[0]], dev)
        b = _embed_view(self.encoder_b, self.test_data.views[self.view_names[1]], dev)
        return a, b, self.test_data.labels
