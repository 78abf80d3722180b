r"""Linear-probe accuracy: a multinomial logistic regression on frozen embeddings.

:class:`LinearProbe` fits the classifier in PyTorch (full-batch L-BFGS on standardized
features, L2 penalty on the weights); :func:`linear_probe_accuracy` fits it on a training split
and scores it on a held-out split, given or drawn by :func:`train_test_split` from a seed. The
fit is deterministic: the objective is convex, the start is zero and L-BFGS draws no random
numbers.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from contrastkit.core import validation as v
from contrastkit.core.split import check_test_fraction, split_positions
from contrastkit.metrics._common import check_bool, prepare, prepare_labels


def train_test_split(
    embeddings: Tensor,
    labels: Tensor,
    *,
    test_fraction: float = 0.25,
    seed: int = 0,
    stratify: bool = True,
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Split embeddings and labels into a training and a held-out part, reproducibly.

    The permutation is drawn on the CPU from ``torch.Generator().manual_seed(seed)``, so the
    split depends on ``seed`` only (not on the device or the global RNG). With ``stratify``,
    each class is split on its own: ``floor(test_fraction * n_c + 0.5)`` of its ``n_c``
    samples go to the test part, but at most ``n_c - 1`` (a class keeps one training sample).
    Without it, ``floor(test_fraction * N + 0.5)`` samples are drawn, at least 1 and at most
    ``N - 1``. Both parts keep the original order of the rows.

    Args:
        embeddings: Shape ``(N, D)`` (any tensor with ``N`` leading rows).
        labels: Shape ``(N,)`` integer class ids.
        test_fraction: Fraction of the rows held out, in ``(0, 1)``.
        seed: Seed of the permutation.
        stratify: Split each class in the same proportion.

    Returns:
        ``(train_x, train_y, test_x, test_y)``.

    Example:
        >>> import torch
        >>> x, y = torch.arange(8.0)[:, None], torch.tensor([0, 0, 0, 0, 1, 1, 1, 1])
        >>> train_x, train_y, test_x, test_y = train_test_split(x, y, test_fraction=0.5)
        >>> train_y.tolist(), test_y.tolist()
        ([0, 0, 1, 1], [0, 0, 1, 1])
    """
    if not isinstance(embeddings, Tensor) or embeddings.dim() == 0:
        raise ValueError(
            f"`embeddings` must be a tensor with one row per sample; got {embeddings!r:.80}."
        )
    n = embeddings.shape[0]
    y = v.check_labels("labels", labels, n)
    check_test_fraction(test_fraction)
    v.check_int("seed", seed, 0)
    check_bool("stratify", stratify)
    if n < 2:
        raise ValueError(f"`embeddings` needs at least 2 rows to split; got {n}.")
    gen = torch.Generator().manual_seed(seed)
    _, test = split_positions(n, y if stratify else None, test_fraction, gen)
    is_test = torch.zeros(n, dtype=torch.bool)
    is_test[test] = True
    train_idx = torch.nonzero(~is_test).flatten().to(embeddings.device)
    test_idx = torch.nonzero(is_test).flatten().to(embeddings.device)
    y_dev = y.to(embeddings.device)
    return embeddings[train_idx], y_dev[train_idx], embeddings[test_idx], y_dev[test_idx]


class LinearProbe:
    r"""Multinomial logistic regression fitted by full-batch L-BFGS.

    Minimizes the mean cross-entropy plus an L2 penalty on the weights (not the bias),

    .. math::

        \min_{W, b} \ \frac{1}{N} \sum_i -\log \operatorname{softmax}(W^\top \tilde x_i + b)_{y_i}
            + \frac{\lambda}{2} \lVert W \rVert_F^2

    where :math:`\tilde x` are the features standardized with the training mean and standard
    deviation (a constant feature is only centered). This is scikit-learn's
    ``LogisticRegression(C=1 / (lambda * N))`` (multinomial, lbfgs) on the same standardized
    features. Arithmetic is float32 (float64 for float64 inputs).

    Args:
        weight_decay: :math:`\lambda \ge 0`.
        max_iter: Maximum L-BFGS iterations.
        standardize: Standardize the features with the training statistics.

    Example:
        >>> import torch
        >>> x = torch.tensor([[0.0], [1.0], [3.0], [4.0]])
        >>> probe = LinearProbe().fit(x, torch.tensor([0, 0, 1, 1]))
        >>> probe.predict(torch.tensor([[0.5], [3.5]]))
        tensor([0, 1])
    """

    def __init__(
        self, *, weight_decay: float = 1e-4, max_iter: int = 1000, standardize: bool = True
    ) -> None:
        v.check_nonnegative_float("weight_decay", weight_decay)
        v.check_int("max_iter", max_iter, 1)
        check_bool("standardize", standardize)
        self.weight_decay, self.max_iter, self.standardize = weight_decay, max_iter, standardize
        self.classes: Tensor | None = None
        self.mean: Tensor | None = None
        self.scale: Tensor | None = None
        self.weight: Tensor | None = None
        self.bias: Tensor | None = None

    def fit(self, x: Tensor, y: Tensor) -> LinearProbe:
        """Fit on features ``x (N, D)`` and integer labels ``y (N,)``; returns ``self``."""
        feats = prepare("x", x, normalize=False)
        labels = prepare_labels("y", y, feats.shape[0], feats)
        classes, target = torch.unique(labels, return_inverse=True)
        if classes.numel() < 2:
            raise ValueError(
                f"`y` must contain at least 2 classes to fit a classifier; got only "
                f"{classes.tolist()}."
            )
        with torch.no_grad():
            if self.standardize:
                mean = feats.mean(0)
                std = feats.std(0, unbiased=False)
                scale = torch.where(std > 0, std, torch.ones_like(std))
            else:
                mean = torch.zeros_like(feats[0])
                scale = torch.ones_like(feats[0])
            xs = (feats - mean) / scale
        weight = torch.zeros(
            feats.shape[1],
            classes.numel(),
            dtype=feats.dtype,
            device=feats.device,
            requires_grad=True,
        )
        bias = torch.zeros(
            classes.numel(), dtype=feats.dtype, device=feats.device, requires_grad=True
        )
        eps = torch.finfo(feats.dtype).eps
        opt = torch.optim.LBFGS(
            [weight, bias],
            lr=1.0,
            max_iter=self.max_iter,
            max_eval=self.max_iter * 2,
            tolerance_grad=eps * 10,
            tolerance_change=eps * 10,
            history_size=20,
            line_search_fn="strong_wolfe",
        )
        wd = float(self.weight_decay)

        def closure() -> Tensor:
            opt.zero_grad()
            loss = F.cross_entropy(xs @ weight + bias, target) + 0.5 * wd * weight.pow(2).sum()
            loss.backward()  # type: ignore[no-untyped-call]
            return loss

        with torch.enable_grad():
            opt.step(closure)  # type: ignore[no-untyped-call]
        self.classes, self.mean, self.scale = classes, mean, scale
        self.weight, self.bias = weight.detach(), bias.detach()
        return self

    def logits(self, x: Tensor) -> Tensor:
        """Class scores ``(Q, C)`` of features ``x (Q, D)``, columns in the order of ``classes``."""
        if self.weight is None or self.bias is None or self.mean is None or self.scale is None:
            raise RuntimeError("LinearProbe is not fitted; call fit(x, y) first.")
        feats = prepare("x", x, normalize=False)
        if feats.shape[1] != self.weight.shape[0]:
            raise ValueError(
                f"`x` must have the width of the training features ({self.weight.shape[0]}); "
                f"got {feats.shape[1]}."
            )
        with torch.no_grad():
            feats = feats.to(device=self.weight.device, dtype=self.weight.dtype)
            return ((feats - self.mean) / self.scale) @ self.weight + self.bias

    def predict_proba(self, x: Tensor) -> Tensor:
        """Class probabilities ``(Q, C)``."""
        return self.logits(x).softmax(1)

    def predict(self, x: Tensor) -> Tensor:
        """Predicted class ids ``(Q,)``."""
        scores = self.logits(x)
        assert self.classes is not None
        return self.classes[scores.argmax(1)]

    def score(self, x: Tensor, y: Tensor) -> float:
        """Accuracy on features ``x (Q, D)`` with labels ``y (Q,)``."""
        pred = self.predict(x)
        labels = v.check_labels("y", y, pred.shape[0]).to(pred.device)
        return float((pred == labels).double().mean())


def linear_probe_accuracy(
    train_x: Tensor,
    train_y: Tensor,
    test_x: Tensor | None = None,
    test_y: Tensor | None = None,
    *,
    weight_decay: float = 1e-4,
    max_iter: int = 1000,
    standardize: bool = True,
    test_fraction: float = 0.25,
    seed: int = 0,
) -> float:
    r"""Held-out accuracy of a :class:`LinearProbe` fitted on frozen embeddings.

    With ``test_x`` and ``test_y``, the probe is fitted on ``(train_x, train_y)`` and scored on
    ``(test_x, test_y)``. Without them, ``(train_x, train_y)`` is first split by
    :func:`train_test_split` (stratified, ``test_fraction``, ``seed``). A test class absent from
    the training labels is always misclassified.

    Args:
        train_x: Shape ``(N, D)``.
        train_y: Shape ``(N,)`` integer class ids.
        test_x: Shape ``(Q, D)``, or ``None`` to split ``train_x``.
        test_y: Shape ``(Q,)``, or ``None`` to split ``train_y``.
        weight_decay: :math:`\lambda \ge 0` of the L2 penalty (see :class:`LinearProbe`).
        max_iter: Maximum L-BFGS iterations.
        standardize: Standardize the features with the training statistics.
        test_fraction: Held-out fraction when the split is drawn.
        seed: Seed of the drawn split.

    Returns:
        The accuracy in :math:`[0, 1]` as a float.

    Example:
        >>> import torch
        >>> x = torch.tensor([[0.0], [1.0], [3.0], [4.0]])
        >>> y = torch.tensor([0, 0, 1, 1])
        >>> linear_probe_accuracy(x, y, torch.tensor([[0.2], [3.9]]), torch.tensor([0, 1]))
        1.0
    """
    if (test_x is None) != (test_y is None):
        missing = "test_y" if test_y is None else "test_x"
        raise ValueError(
            f"Give both `test_x` and `test_y` (a held-out split) or neither (a split is drawn "
            f"from the training data); `{missing}` is missing."
        )
    probe = LinearProbe(weight_decay=weight_decay, max_iter=max_iter, standardize=standardize)
    if test_x is None or test_y is None:
        v.check_embeddings("train_x", train_x)
        train_x, train_y, test_x, test_y = train_test_split(
            train_x, train_y, test_fraction=test_fraction, seed=seed
        )
    else:
        tx = v.check_embeddings("test_x", test_x)
        v.check_embeddings("train_x", train_x)
        v.check_same_width("train_x", train_x, "test_x", tx)
        v.check_labels("test_y", test_y, tx.shape[0])
    probe.fit(train_x, train_y)
    return probe.score(test_x, test_y)
