"""ProtoECGNet's prototype contrast: a weighted mean difference over the prototype Gram matrix."""

from __future__ import annotations

import math

import torch
from torch import Tensor

from contrastkit.core import validation as v
from contrastkit.core.pairmap import pair_reduce
from contrastkit.core.validation import Impl, Reduction
from contrastkit.distributed import ProcessGroup, shard
from contrastkit.losses._base import ContrastiveLoss, Paper
from contrastkit.losses._inputs import check_common, finish, gathered, prepare_one

_CLAMP = 1e-6  # cosines are clamped to [-1 + 1e-6, 1 - 1e-6], as in ProtoECGNet
_EPS = 1e-6  # added to both weight normalizers, as in ProtoECGNet


def prototype_margin(
    prototypes: Tensor,
    class_identity: Tensor,
    *,
    cooccurrence: Tensor,
    normalize: bool = True,
    reduction: Reduction = "mean",
    chunk_size: int | None = None,
    impl: Impl = "auto",
    gather_distributed: bool = False,
    process_group: ProcessGroup | None = None,
) -> Tensor:
    r"""ProtoECGNet's contrastive prototype loss: co-occurring classes' prototypes together.

    With prototypes :math:`p_1..p_P`, :math:`S_{pq} = \operatorname{clamp}(\cos(p_p, p_q),
    -1 + 10^{-6}, 1 - 10^{-6})`, the multi-hot class identity :math:`A \in \{0, 1\}^{P \times C}`
    and a label co-occurrence matrix :math:`J \in [0, 1]^{C \times C}` (ProtoECGNet: Jaccard on
    the training labels, diagonal 1; see :func:`jaccard_cooccurrence`), the pair weights are
    :math:`M = A J A^\top` and

    .. math::

        W^+ = \frac{M}{\sum M + 10^{-6}}, \quad
        W^- = \frac{\mathbf{1} - M}{\sum (\mathbf{1} - M) + 10^{-6}}, \qquad
        L = -\frac{1}{\sqrt{P}} \Big( \sum_{p,q} W^+_{pq} S_{pq} - \sum_{p,q} W^-_{pq} S_{pq}
        \Big)

    a linear (no softmax, no temperature) weighted mean of positive-pair similarities minus
    that of negative pairs. The diagonal (:math:`S_{pp}`, a constant after the clamp) is
    included, as in the authors' code. Quirk kept from the authors' code: a prototype of two
    classes (ProtoECGNet's "joint" prototypes) gives :math:`M_{pq} > 1` for some pairs, so
    :math:`1 - M` is negative there and those pairs are *pulled together* by the "negative"
    term too. Per row, :math:`\ell_p = -\sqrt{P} \sum_q (W^+_{pq} - W^-_{pq}) S_{pq}`, so
    ``"mean"`` is :math:`L` (and ``"sum"`` is :math:`P L`). ProtoECGNet weighs it by 300 among
    its other terms (classification, clustering, separation, diversity).

    Tiled, :math:`M`, :math:`W` and :math:`S` are formed tile by tile from :math:`A J` and
    :math:`A` (``O(P C + C^2)`` for the normalizers), so no ``P x P`` matrix is kept.

    Args:
        prototypes: Shape ``(P, D)`` (flatten ``(P, D, T)`` prototypes first, as ProtoECGNet).
        class_identity: Shape ``(P, C)`` multi-hot (bool, integer or float 0/1): the classes
            of each prototype.
        cooccurrence: Shape ``(C, C)``, :math:`J`, a constant (no gradient).
        normalize: Cosine similarity with the clamp (ProtoECGNet); ``False`` uses raw dot
            products without clamp.
        reduction: ``"mean"``, ``"sum"`` or ``"none"`` (shape ``(P,)``).
        chunk_size: Rows and columns per tile; ``None`` chooses.
        impl: ``"auto"``, ``"dense"`` or ``"tiled"``.
        gather_distributed: Prototypes sharded over ranks (each rank passes its rows of
            ``prototypes`` and ``class_identity``; every rank evaluates the gathered set).
            ``cooccurrence`` must be the same on every rank.
        process_group: The group to gather over; ``None`` is the default group.

    Example:
        >>> import torch
        >>> identity = torch.eye(3, dtype=torch.bool).repeat_interleave(2, dim=0)
        >>> prototype_margin(torch.randn(6, 8), identity, cooccurrence=torch.eye(3)).shape
        torch.Size([])

    References:
        Sethi et al., 2025, "ProtoECGNet: Case-Based Interpretable Deep Learning for
        Multi-Label ECG Classification with Contrastive Learning", arXiv:2504.08713; code
        github.com/bbj-lab/protoecgnet (``prototype_loss1d``).
    """

    def check() -> tuple[Tensor, Tensor, Tensor]:
        check_common(reduction, chunk_size, impl)
        p = prepare_one("prototypes", prototypes, normalize=normalize)
        a = _check_identity(class_identity, p.shape[0]).to(device=p.device, dtype=p.dtype)
        j = _check_cooccurrence(cooccurrence, a.shape[1]).to(device=p.device, dtype=p.dtype)
        return p, a, j

    (p, a, j), sh = shard(
        gather_distributed,
        process_group,
        check,
        lambda r: {"prototypes": r[0], "class_identity": r[1]},
        {"reduction": reduction, "normalize": normalize},
    )
    p, a = gathered(sh, "prototypes", p), gathered(sh, "class_identity", a)
    a, j = a.detach(), j.detach()
    n = p.shape[0]
    counts = a.sum(0)
    mass = counts @ j @ counts  # sum of M = 1^T A J A^T 1
    den = torch.stack([mass + _EPS, n * n - mass + _EPS])
    rows, _ = pair_reduce(
        lambda r, c, q, ri, ci: _tile(r[0], c[0], r[1], c[1], q[0], normalize),
        [p, a @ j],
        [p, a],
        [den],
        chunk_size=chunk_size,
        impl=impl,
    )
    return finish(-math.sqrt(n) * rows, reduction, sh, "prototypes")


def _tile(
    p_rows: Tensor, p_cols: Tensor, aj: Tensor, a: Tensor, den: Tensor, clamp: bool
) -> Tensor:
    r""":math:`(W^+ - W^-) \circ S` on one tile."""
    s = p_rows @ p_cols.T
    if clamp:
        s = s.clamp(-1 + _CLAMP, 1 - _CLAMP)
    m = aj @ a.T
    return (m / den[0] - (1 - m) / den[1]) * s


def jaccard_cooccurrence(labels: Tensor) -> Tensor:
    r"""Jaccard label co-occurrence :math:`J_{ab} = |a \wedge b| / |a \vee b|`, diagonal 1.

    ProtoECGNet's :math:`J`, computed on the training labels. Two classes that never occur
    get 0 off the diagonal.

    Args:
        labels: Shape ``(N, C)`` multi-hot training labels.

    Returns:
        Shape ``(C, C)`` float (float32 unless ``labels`` is float64).

    Example:
        >>> jaccard_cooccurrence(torch.tensor([[1, 1, 0], [1, 0, 0], [0, 0, 1]]))
        tensor([[1.0000, 0.5000, 0.0000],
                [0.5000, 1.0000, 0.0000],
                [0.0000, 0.0000, 1.0000]])
    """
    if not isinstance(labels, Tensor) or labels.dim() != 2:
        raise ValueError(
            "`labels` must be a multi-hot tensor of shape (N, C); got "
            f"{tuple(labels.shape) if isinstance(labels, Tensor) else type(labels).__name__}."
        )
    x = labels.to(torch.float64 if labels.dtype == torch.float64 else torch.float32)
    both = x.T @ x
    count = x.sum(0)
    either = count[:, None] + count[None, :] - both
    out = torch.where(either > 0, both / either.clamp_min(1), 0.0)
    out.fill_diagonal_(1.0)
    return out


def _check_identity(class_identity: object, n: int) -> Tensor:
    if not isinstance(class_identity, Tensor):
        raise ValueError(
            f"`class_identity` must be a multi-hot tensor of shape ({n}, C); got "
            f"{type(class_identity).__name__}."
        )
    if class_identity.dim() != 2 or class_identity.shape[0] != n or class_identity.shape[1] < 1:
        raise ValueError(
            f"`class_identity` must have shape ({n}, C), one multi-hot row per prototype; got "
            f"shape {tuple(class_identity.shape)}."
        )
    if class_identity.is_complex() or not bool(
        ((class_identity == 0) | (class_identity == 1)).all()
    ):
        raise ValueError(
            "`class_identity` must hold 0/1 (multi-hot) entries; got values outside {0, 1}."
        )
    return class_identity


def _check_cooccurrence(cooccurrence: object, c: int) -> Tensor:
    j = v.check_embeddings("cooccurrence", cooccurrence, shape="(C, C)")
    if j.shape != (c, c):
        raise ValueError(
            f"`cooccurrence` must have shape ({c}, {c}) for the C={c} classes of "
            f"`class_identity`; got shape {tuple(j.shape)}."
        )
    return j


class PrototypeMarginLoss(ContrastiveLoss):
    """Module form of :func:`prototype_margin`; ``cooccurrence`` goes to forward."""

    catalog_id = "prototype_margin"
    family = "I. prototypes, proxies, approximations"
    paper = Paper(
        "Sethi et al.",
        2025,
        "2504.08713",
        "ProtoECGNet: Case-Based Interpretable Deep Learning for Multi-Label ECG Classification",
    )
    inputs = ("prototypes", "class_identity")
    supports_distributed = True

    def __init__(
        self,
        *,
        normalize: bool = True,
        reduction: Reduction = "mean",
        chunk_size: int | None = None,
        impl: Impl = "auto",
        gather_distributed: bool = False,
        process_group: ProcessGroup | None = None,
    ) -> None:
        super().__init__()
        check_common(reduction, chunk_size, impl)
        self.normalize = normalize
        self.set_common(reduction, chunk_size, impl, gather_distributed, process_group)

    def forward(
        self, prototypes: Tensor, class_identity: Tensor, *, cooccurrence: Tensor
    ) -> Tensor:
        """Compute the loss; see :func:`prototype_margin`."""
        return prototype_margin(
            prototypes,
            class_identity,
            cooccurrence=cooccurrence,
            normalize=self.normalize,
            **self.common(),
        )
