"""PatchNCE and Adaptive Supervised PatchNCE: patches as samples, negatives from the same image."""

from __future__ import annotations

import math
from typing import Literal

import torch
from torch import Tensor

from contrastkit import core
from contrastkit.core import PairMask
from contrastkit.core import validation as v
from contrastkit.core.validation import Impl, Reduction
from contrastkit.distributed import ProcessGroup, Shard, shard
from contrastkit.losses._base import ContrastiveLoss, Paper
from contrastkit.losses._inputs import (
    check_common,
    finish,
    gathered,
    prepare_pair,
    requires_grad,
)

Schedule = Literal["lambda", "sigmoid", "linear", "zero"]
Lookup = Literal["linear", "top", "bell", "uniform"]
SCHEDULES: tuple[Schedule, ...] = ("lambda", "sigmoid", "linear", "zero")
LOOKUPS: tuple[Lookup, ...] = ("linear", "top", "bell", "uniform")


def patchnce(
    query: Tensor,
    key: Tensor,
    image_ids: Tensor | None = None,
    *,
    temperature: float | Tensor = 0.07,
    normalize: bool = True,
    reduction: Reduction = "mean",
    chunk_size: int | None = None,
    impl: Impl = "auto",
    gather_distributed: bool = False,
    process_group: ProcessGroup | None = None,
) -> Tensor:
    r"""PatchNCE (CUT): InfoNCE over patches, the negatives being the same image's other patches.

    Patch ``p`` of ``query`` (e.g. a generated image's feature at a sampled location) is
    positive with patch ``p`` of ``key`` (the input's or the target's feature at the same
    location); the negatives are the keys of the other patches of the same image
    :math:`g(p)`. With :math:`s_{pq} = \langle q_p, k_q \rangle / \tau`,

    .. math::

        \ell_p = -s_{pp} + \log \sum_{q \,:\, g(q) = g(p)} e^{s_{pq}}

    Equivalent to ``F.cross_entropy(s.masked_fill(g[:, None] != g[None, :], -inf), arange(P))``
    but, tiled, never materializes the ``P x P`` matrix: the same-image rule is a group mask
    evaluated one tile at a time, memory ``O(P D)`` plus one tile.

    Without ``image_ids`` all patches come from one image (CUT's
    ``nce_includes_all_negatives_from_minibatch=True``, or a batch of one image). Sampling
    patches, the projection MLP, the feature layers (CUT averages the loss over 5 layers) and
    stop-gradients are outside the loss: the authors' code (CUT, ASP, CDS) detaches the key,
    so pass ``key.detach()`` to reproduce it.

    Quirk of the authors' code, not reproduced: it fills the (duplicate) diagonal negative
    :math:`q_p \cdot k_p` with ``-10`` before dividing by :math:`\tau`, which leaves an extra
    :math:`e^{-10/\tau}` (:math:`e^{-142.9}` at :math:`\tau = 0.07`) in the denominator. This
    function uses the paper's form above (the positive appears once); the difference is below
    ``1e-60`` at the default temperature.

    Args:
        query: Shape ``(P, D)``, one row per patch (all images' patches stacked).
        key: Shape ``(P, D)``; row ``p`` is the positive of ``query[p]``.
        image_ids: Shape ``(P,)`` non-negative integer image of each patch; ``None`` means
            every patch is from the same image. Under ``gather_distributed`` the ids are
            compared as given across ranks: make them global (e.g. add
            ``rank * images_per_rank``) unless images should merge across ranks.
        temperature: :math:`\tau > 0` (CUT's ``nce_T``); a float or a 0-dim tensor (may
            require grad).
        normalize: L2-normalize ``query`` and ``key`` first (the authors' features are
            normalized).
        reduction: ``"mean"``, ``"sum"`` or ``"none"`` (shape ``(P,)``).
        chunk_size: Rows and columns per tile; ``None`` chooses.
        impl: ``"auto"``, ``"dense"`` or ``"tiled"``.
        gather_distributed: Loss of the global batch over all ranks (every rank evaluates the
            gathered batch; see :mod:`contrastkit.distributed`).
        process_group: The group to gather over; ``None`` is the default group.

    Example:
        >>> import torch
        >>> q, k = torch.randn(8, 16), torch.randn(8, 16)
        >>> patchnce(q, k, torch.tensor([0, 0, 0, 0, 1, 1, 1, 1])).shape
        torch.Size([])

    References:
        Park et al., 2020, "Contrastive Learning for Unpaired Image-to-Image Translation"
        (CUT), arXiv:2007.15651. Used by: Li et al., 2023, "Adaptive Supervised PatchNCE Loss"
        (ASP; SP = PatchNCE against the ground truth), arXiv:2303.06193; Israr & Zhao, 2025,
        "Dual Contrastive Denoising Score", arXiv:2508.12718. Chaitanya et al., 2020, local
        contrastive loss, arXiv:2006.10511: the same form over regions, but its negatives are a
        few predefined neighbouring regions per anchor taken from both views, which a
        partition into images cannot express (not covered here).
    """
    loss, _, sh = _patch_terms(
        query,
        key,
        image_ids,
        temperature,
        normalize,
        chunk_size,
        impl,
        gather_distributed,
        process_group,
        {"reduction": reduction},
        reduction,
    )
    return finish(loss, reduction, sh, "query")


def asp(
    query: Tensor,
    key: Tensor,
    image_ids: Tensor | None = None,
    *,
    progress: float = 0.0,
    schedule: Schedule = "lambda",
    lookup: Lookup = "linear",
    decay_start: float = 0.75,
    temperature: float | Tensor = 0.07,
    normalize: bool = True,
    reduction: Reduction = "mean",
    chunk_size: int | None = None,
    impl: Impl = "auto",
    gather_distributed: bool = False,
    process_group: ProcessGroup | None = None,
) -> Tensor:
    r"""Adaptive Supervised PatchNCE (ASP): PatchNCE with scheduled per-patch weights.

    Each patch's PatchNCE term :math:`\ell_p` (see :func:`patchnce`) is weighted by how well
    its query already matches its key, :math:`x_p = \langle q_p, k_p \rangle` (the cosine when
    normalizing; a constant, without gradient), mixed with uniform weights by a schedule
    :math:`\pi(t)` of the training progress :math:`t`:

    .. math::

        w_p = \pi(t) + (1 - \pi(t))\, \varphi(x_p), \qquad
        \hat w_p = \frac{P\, w_p}{\sum_{q=1}^{P} w_q}, \qquad
        L = \frac{1}{P} \sum_{p=1}^{P} \hat w_p \ell_p

    so the weights have mean 1. Early in training (:math:`\pi = 1`) this is PatchNCE; as
    :math:`\pi \to 0` patches whose ground truth is inconsistent with the input (low
    :math:`x_p`) count less. Schedules :math:`\pi(t)`: ``"lambda"`` is 1 until
    :math:`t \ge \kappa` (``decay_start``) then :math:`(1 - t) / (1 - \kappa)`; ``"sigmoid"``
    is :math:`1 / (1 + e^{10 (t - 0.5)})`; ``"linear"`` is :math:`1 - t`; ``"zero"`` is 1
    (no adaptation; the name is the authors'). Lookups :math:`\varphi(x)`: ``"linear"`` is
    :math:`\max(x, 0)`; ``"top"`` is :math:`\sqrt{1 - (x - 1)^2}` on :math:`x` clipped to
    :math:`[0, 1]`; ``"bell"`` is :math:`\frac{1}{\sqrt{2\pi}} e^{-8 (x - 0.5)^2}`;
    ``"uniform"`` is 1.

    The defaults are the authors' MIST setting (``asp_loss_mode="lambda_linear"``, 30 epochs
    plus 10 decay epochs, so :math:`\kappa = 1 - 10/40`; ``nce_T = 0.07``): with
    :math:`t = (\text{epoch} - 1) / 40` (see :func:`asp_progress`) the weights are uniform
    for 30 epochs, then move linearly toward ``relu(cosine)``. The loss weight
    :math:`\lambda_{asp} = 10` and the average over feature layers are outside the loss.

    Deviations from the authors' code: the ``-10`` diagonal fill of :func:`patchnce`;
    ``"top"`` clips :math:`x` above at 1 (only reachable without normalization, where the
    code gives NaN); when every weight is 0 (:math:`\pi = 0` and :math:`\varphi = 0` for all
    patches, NaN in the code) every term is 0; the code normalizes the weights over all
    patches of one call (one feature layer), as here, also under ``gather_distributed``
    (over the global batch).

    Args:
        query: Shape ``(P, D)``, patch features of the generated image(s).
        key: Shape ``(P, D)``, features of the ground truth at the same locations (the
            authors detach them: pass ``key.detach()``).
        image_ids: Shape ``(P,)`` image of each patch; ``None``: one image. See
            :func:`patchnce`.
        progress: :math:`t \in [0, 1]`, the fraction of training done.
        schedule: :math:`\pi`, one of ``"lambda"``, ``"sigmoid"``, ``"linear"``, ``"zero"``.
        lookup: :math:`\varphi`, one of ``"linear"``, ``"top"``, ``"bell"``, ``"uniform"``.
        decay_start: :math:`\kappa \in [0, 1)` of the ``"lambda"`` schedule.
        temperature: :math:`\tau > 0`; a float or a 0-dim tensor (may require grad).
        normalize: L2-normalize ``query`` and ``key`` first.
        reduction: ``"mean"``, ``"sum"`` or ``"none"`` (shape ``(P,)``,
            :math:`\hat w_p \ell_p`).
        chunk_size: Rows and columns per tile; ``None`` chooses.
        impl: ``"auto"``, ``"dense"`` or ``"tiled"``.
        gather_distributed: Loss of the global batch over all ranks (every rank evaluates the
            gathered batch; see :mod:`contrastkit.distributed`).
        process_group: The group to gather over; ``None`` is the default group.

    Example:
        >>> import torch
        >>> q, k = torch.randn(8, 16), torch.randn(8, 16)
        >>> asp(q, k, progress=asp_progress(38)).shape
        torch.Size([])

    References:
        Li et al., 2023, "Adaptive Supervised PatchNCE Loss for Learning H&E-to-IHC Stain
        Translation with Inconsistent Groundtruth Image Pairs", arXiv:2303.06193.
    """
    _check_schedule(progress, schedule, lookup, decay_start)
    loss, pos, sh = _patch_terms(
        query,
        key,
        image_ids,
        temperature,
        normalize,
        chunk_size,
        impl,
        gather_distributed,
        process_group,
        {
            "reduction": reduction,
            "progress": float(progress),
            "schedule": schedule,
            "lookup": lookup,
            "decay_start": float(decay_start),
        },
        reduction,
    )
    w = asp_weights(
        pos, progress=progress, schedule=schedule, lookup=lookup, decay_start=decay_start
    )
    return finish(loss * w.to(loss.dtype), reduction, sh, "query")


def asp_progress(epoch: int, n_epochs: int = 30, n_epochs_decay: int = 10) -> float:
    """The ASP training progress ``t = (epoch - 1) / (n_epochs + n_epochs_decay)``.

    ``epoch`` counts from 1, as in the authors' training loop. The matching ``decay_start`` of
    the ``"lambda"`` schedule is ``1 - n_epochs_decay / (n_epochs + n_epochs_decay)``.

    Example:
        >>> asp_progress(1), asp_progress(31)
        (0.0, 0.75)
    """
    v.check_int("epoch", epoch, 1)
    v.check_int("n_epochs", n_epochs, 0)
    v.check_int("n_epochs_decay", n_epochs_decay, 0)
    total = n_epochs + n_epochs_decay
    if total < 1 or epoch > total:
        raise ValueError(f"`epoch` must be in 1..n_epochs + n_epochs_decay = {total}; got {epoch}.")
    return (epoch - 1) / total


def asp_weights(
    cosine: Tensor,
    *,
    progress: float,
    schedule: Schedule = "lambda",
    lookup: Lookup = "linear",
    decay_start: float = 0.75,
) -> Tensor:
    r"""The normalized ASP weights :math:`\hat w_p` (mean 1, no gradient) of :func:`asp`.

    Args:
        cosine: Shape ``(P,)``, :math:`x_p = \langle q_p, k_p \rangle` (detached here).
        progress: :math:`t \in [0, 1]`.
        schedule: :math:`\pi`; see :func:`asp`.
        lookup: :math:`\varphi`; see :func:`asp`.
        decay_start: :math:`\kappa` of the ``"lambda"`` schedule.

    Returns:
        Shape ``(P,)``; all zeros if every raw weight is 0.
    """
    _check_schedule(progress, schedule, lookup, decay_start)
    x = cosine.detach()
    t = float(progress)
    if schedule == "lambda":
        pi = 1.0 if t < decay_start else (1.0 - t) / (1.0 - decay_start)
    elif schedule == "sigmoid":
        pi = 1.0 / (1.0 + math.exp(10.0 * (t - 0.5)))
    elif schedule == "linear":
        pi = 1.0 - t
    else:
        pi = 1.0
    if lookup == "linear":
        phi = x.clamp(min=0.0)
    elif lookup == "top":
        phi = torch.sqrt(1.0 - (x.clamp(0.0, 1.0) - 1.0) ** 2)
    elif lookup == "bell":
        phi = torch.exp(-(((x - 0.5) * 4.0) ** 2) / 2.0) / math.sqrt(2.0 * math.pi)
    else:
        phi = torch.ones_like(x)
    w = pi + (1.0 - pi) * phi
    total = w.sum()
    return torch.where(
        total > 0, w * (w.shape[0] / total.clamp(min=torch.finfo(w.dtype).tiny)), 0.0
    )


def _check_schedule(progress: float, schedule: str, lookup: str, decay_start: float) -> None:
    v.check_choice("schedule", schedule, SCHEDULES)
    v.check_choice("lookup", lookup, LOOKUPS)
    _check_unit("progress", progress, closed=True)
    _check_unit("decay_start", decay_start, closed=False)


def _check_unit(name: str, value: object, *, closed: bool) -> None:
    """``value`` is a float in ``[0, 1]`` (``[0, 1)`` unless ``closed``)."""
    upper = "1]" if closed else "1)"
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"`{name}` must be a float in [0, {upper}; got {value!r}.")
    x = float(value)
    if not (0.0 <= x <= 1.0) or (not closed and x == 1.0):
        hint = (
            " It is the fraction of training done, e.g. asp_progress(epoch)."
            if name == "progress"
            else ""
        )
        raise ValueError(f"`{name}` must be a float in [0, {upper}; got {value!r}.{hint}")


def _patch_terms(
    query: Tensor,
    key: Tensor,
    image_ids: Tensor | None,
    temperature: float | Tensor,
    normalize: bool,
    chunk_size: int | None,
    impl: Impl,
    gather_distributed: bool,
    process_group: ProcessGroup | None,
    options: dict[str, object],
    reduction: Reduction,
) -> tuple[Tensor, Tensor, Shard | None]:
    """Per-patch PatchNCE terms of the (global) batch, and the positives' plain similarities."""

    def check() -> tuple[Tensor, Tensor, Tensor | None]:
        v.check_temperature("temperature", temperature)
        check_common(reduction, chunk_size, impl)
        q, k = prepare_pair("query", query, "key", key, normalize=normalize, same_batch=True)
        return q, k, _check_image_ids(image_ids, q.shape[0], q.device)

    (q, k, ids), sh = shard(
        gather_distributed,
        process_group,
        check,
        lambda r: {"query": r[0], "key": r[1], "image_ids": r[2]},
        {**options, "temperature_grad": requires_grad(temperature)},
    )
    q, k = gathered(sh, "query", q), gathered(sh, "key", k)
    if ids is not None:
        ids = gathered(sh, "image_ids", ids)
    scale = 1.0 / core.as_scale(temperature, q)
    mask = None if ids is None else PairMask(row_groups=ids, col_groups=ids, groups="same")
    stats = core.score_stats(q, k, scale, mask=mask, paired=True, chunk_size=chunk_size, impl=impl)
    cosine = (q.detach() * k.detach()).sum(1)
    return stats.rows - stats.paired, cosine, sh


def _check_image_ids(image_ids: Tensor | None, n: int, device: torch.device) -> Tensor | None:
    if image_ids is None:
        return None
    ids = v.check_labels("image_ids", image_ids, n)
    if bool((ids < 0).any()):
        raise ValueError(
            f"`image_ids` must be non-negative image indices; got {int(ids.min())}. Use "
            "0..B-1 for the B images of the batch."
        )
    return ids.to(device)


class PatchNCELoss(ContrastiveLoss):
    """Module form of :func:`patchnce`; ``image_ids`` is an optional third input of forward."""

    catalog_id = "patchnce"
    family = "A. softmax cross-entropy, one positive"
    paper = Paper(
        "Park et al.",
        2020,
        "2007.15651",
        "Contrastive Learning for Unpaired Image-to-Image Translation",
    )
    inputs = ("query", "key", "image_ids")
    supports_distributed = True

    def __init__(
        self,
        *,
        temperature: float = 0.07,
        normalize: bool = True,
        reduction: Reduction = "mean",
        chunk_size: int | None = None,
        impl: Impl = "auto",
        gather_distributed: bool = False,
        process_group: ProcessGroup | None = None,
    ) -> None:
        super().__init__()
        v.check_temperature("temperature", temperature)
        check_common(reduction, chunk_size, impl)
        self.temperature, self.normalize = temperature, normalize
        self.set_common(reduction, chunk_size, impl, gather_distributed, process_group)

    def forward(self, query: Tensor, key: Tensor, image_ids: Tensor | None = None) -> Tensor:
        """Compute the loss; see :func:`patchnce`."""
        return patchnce(
            query,
            key,
            image_ids,
            temperature=self.temperature,
            normalize=self.normalize,
            **self.common(),
        )


class ASPLoss(ContrastiveLoss):
    """Module form of :func:`asp`; the arguments are the same.

    ``progress`` is an attribute to update as training goes, e.g.
    ``loss_fn.progress = asp_progress(epoch)`` at the start of each epoch.
    """

    catalog_id = "asp"
    family = "A. softmax cross-entropy, one positive"
    paper = Paper(
        "Li et al.",
        2023,
        "2303.06193",
        "Adaptive Supervised PatchNCE Loss for Learning H&E-to-IHC Stain Translation",
    )
    inputs = ("query", "key", "image_ids")
    supports_distributed = True
    stop_gradient = True

    def __init__(
        self,
        *,
        progress: float = 0.0,
        schedule: Schedule = "lambda",
        lookup: Lookup = "linear",
        decay_start: float = 0.75,
        temperature: float = 0.07,
        normalize: bool = True,
        reduction: Reduction = "mean",
        chunk_size: int | None = None,
        impl: Impl = "auto",
        gather_distributed: bool = False,
        process_group: ProcessGroup | None = None,
    ) -> None:
        super().__init__()
        _check_schedule(progress, schedule, lookup, decay_start)
        v.check_temperature("temperature", temperature)
        check_common(reduction, chunk_size, impl)
        self.progress, self.schedule, self.lookup = progress, schedule, lookup
        self.decay_start, self.temperature, self.normalize = decay_start, temperature, normalize
        self.set_common(reduction, chunk_size, impl, gather_distributed, process_group)

    def forward(self, query: Tensor, key: Tensor, image_ids: Tensor | None = None) -> Tensor:
        """Compute the loss at the current ``progress``; see :func:`asp`."""
        return asp(
            query,
            key,
            image_ids,
            progress=self.progress,
            schedule=self.schedule,
            lookup=self.lookup,
            decay_start=self.decay_start,
            temperature=self.temperature,
            normalize=self.normalize,
            **self.common(),
        )
