"""Pair-weighted NT-Xent (SiMHand): per-pair logit multipliers from attribute distances."""

from __future__ import annotations

import math

import torch
from torch import Tensor

from contrastkit import core
from contrastkit.core import validation as v
from contrastkit.core.pairmap import pair_reduce, pair_topk
from contrastkit.core.similarity import l2
from contrastkit.core.validation import Impl, Reduction
from contrastkit.distributed import ProcessGroup, shard
from contrastkit.losses._base import ContrastiveLoss, Paper
from contrastkit.losses._inputs import check_common, gathered, prepare_pair, requires_grad


def pair_weighted(
    a: Tensor,
    b: Tensor,
    *,
    attributes_a: Tensor,
    attributes_b: Tensor,
    temperature: float | Tensor = 0.5,
    normalize: bool = True,
    reduction: Reduction = "mean",
    chunk_size: int | None = None,
    impl: Impl = "auto",
    gather_distributed: bool = False,
    process_group: ProcessGroup | None = None,
) -> Tensor:
    r"""NT-Xent whose logits are multiplied by a weight of each pair (SiMHand).

    Over the :math:`2N` views :math:`z = [a; b]` with attributes :math:`x = [x^a; x^b]`
    (SiMHand: 2-D hand keypoints), the distance :math:`d_{uv}` is the mean per-joint Euclidean
    distance (MPJPE) for attributes of shape ``(N, J, C)`` and the Euclidean distance for
    ``(N, P)``. The weight is the min-max-scaled closeness over all pairs :math:`u \ne v` of the
    batch, :math:`m_{uv} = (d_{max} - d_{uv}) / (d_{max} - d_{min})` (all ones if every
    distance is equal), and with :math:`s_{uv} = m_{uv} \langle z_u, z_v \rangle / \tau` and
    :math:`u'` the partner view of :math:`u`,

    .. math::

        \ell_u = -s_{u u'} + \log \sum_{v \ne u} e^{s_{uv}}

    A weight multiplies a logit, i.e. it is a per-pair inverse temperature: a pair with
    weight 0 has logit 0 (it stays in the denominator). The same weight is used for a pair in
    the numerator and the denominator; SiMHand's code weights the positive with its
    positive-pair weight in the numerator and with the negative-pair weight in the denominator.
    The weights are computed tile by tile from the attributes (two passes for the batch's
    minimum and maximum distance, then the tiled log-sum-exp).

    Args:
        a: Shape ``(N, D)``, first views.
        b: Shape ``(N, D)``, second views; ``b_i`` is the positive of ``a_i``.
        attributes_a: Shape ``(N, J, C)`` or ``(N, P)``, attributes of the first views
            (constants, no gradient).
        attributes_b: Same shape, attributes of the second views.
        temperature: :math:`\tau > 0` (SiMHand: 0.5).
        normalize: L2-normalize first.
        reduction: ``"mean"`` (over the :math:`2N` views), ``"sum"`` or ``"none"`` (shape
            ``(2N,)``: ``a``'s views, then ``b``'s).
        chunk_size: Rows and columns per tile; ``None`` chooses.
        impl: ``"auto"``, ``"dense"`` or ``"tiled"``.
        gather_distributed: Loss of the global batch over all ranks (every rank evaluates the
            gathered batch; see :mod:`contrastkit.distributed`).
        process_group: The group to gather over; ``None`` is the default group.

    Example:
        >>> import torch
        >>> x, y, k = torch.randn(4, 8), torch.randn(4, 8), torch.randn(4, 21, 2)
        >>> pair_weighted(x, y, attributes_a=k, attributes_b=k + 0.1).shape
        torch.Size([])

    References:
        Lin et al., 2025, "SiMHand: Mining Similar Hands for Large-Scale 3D Hand Pose
        Pre-training", arXiv:2502.15251.
    """

    def check() -> tuple[Tensor, Tensor, Tensor, Tensor]:
        v.check_temperature("temperature", temperature)
        check_common(reduction, chunk_size, impl)
        x, y = prepare_pair("a", a, "b", b, normalize=normalize, same_batch=True)
        n = x.shape[0]
        for name, t in (("attributes_a", attributes_a), ("attributes_b", attributes_b)):
            if not isinstance(t, Tensor) or t.dim() not in (2, 3) or t.shape[0] != n:
                got = tuple(t.shape) if isinstance(t, Tensor) else type(t).__name__
                raise ValueError(
                    f"`{name}` must have shape (N, J, C) or (N, P) with N = {n}; got {got}."
                )
            if not t.is_floating_point() or not bool(torch.isfinite(t).all()):
                raise ValueError(f"`{name}` must be finite floating-point attributes.")
        if attributes_a.shape != attributes_b.shape:
            raise ValueError(
                f"`attributes_a` {tuple(attributes_a.shape)} and `attributes_b` "
                f"{tuple(attributes_b.shape)} must have the same shape."
            )
        ka = attributes_a.detach().to(device=x.device, dtype=x.dtype)
        kb = attributes_b.detach().to(device=x.device, dtype=x.dtype)
        return x, y, ka, kb

    (x, y, ka, kb), sh = shard(
        gather_distributed,
        process_group,
        check,
        lambda r: {"a": r[0], "b": r[1], "attributes_a": r[2], "attributes_b": r[3]},
        {"reduction": reduction, "temperature_grad": requires_grad(temperature)},
    )
    x, y = gathered(sh, "a", x), gathered(sh, "b", y)
    ka, kb = gathered(sh, "attributes_a", ka), gathered(sh, "attributes_b", kb)
    z, attrs = torch.cat([x, y]), torch.cat([ka, kb])
    n2 = z.shape[0]
    joints = attrs.shape[1] if attrs.dim() == 3 else 1
    cost = attrs[0].numel()
    scale = 1.0 / core.as_scale(temperature, z)

    def distance(
        r: list[Tensor], c: list[Tensor], p: list[Tensor], ri: Tensor, ci: Tensor
    ) -> Tensor:
        return torch.where(ri[:, None] == ci[None, :], -math.inf, _distance(r[1], c[1], joints))

    def closeness(
        r: list[Tensor], c: list[Tensor], p: list[Tensor], ri: Tensor, ci: Tensor
    ) -> Tensor:
        return torch.where(ri[:, None] == ci[None, :], -math.inf, -_distance(r[1], c[1], joints))

    with torch.no_grad():
        d_max = pair_topk(distance, [z, attrs], [z, attrs], k=1, cost=cost, chunk_size=chunk_size)[
            0
        ].max()
        d_min = -pair_topk(
            closeness, [z, attrs], [z, attrs], k=1, cost=cost, chunk_size=chunk_size
        )[0].max()
        span = d_max - d_min if bool(torch.isfinite(d_max)) and bool(d_max > d_min) else None

    def weight(d: Tensor) -> Tensor:
        return torch.ones_like(d) if span is None else (d_max - d) / span

    def logits(r: list[Tensor], c: list[Tensor], p: list[Tensor], ri: Tensor, ci: Tensor) -> Tensor:
        s = weight(_distance(r[1], c[1], joints)) * (r[0] @ c[0].T) * p[0]
        return torch.where(ri[:, None] == ci[None, :], -math.inf, s)

    lse, _ = pair_reduce(
        logits,
        [z, attrs],
        [z, attrs],
        [scale],
        mode="lse",
        cost=cost,
        chunk_size=chunk_size,
        impl=impl,
    )
    partner = torch.arange(n2, device=z.device).roll(n2 // 2)
    d_pos = _distance_rows(attrs, attrs[partner], joints)
    per_row = lse - weight(d_pos) * core.paired_scores(z, z, scale, partner)
    if sh is None or reduction != "none":
        return core.reduce(per_row, reduction)
    half = n2 // 2
    return torch.cat([sh.local_rows("a", per_row[:half]), sh.local_rows("a", per_row[half:])])


def _distance(x: Tensor, y: Tensor, joints: int) -> Tensor:
    """Pairwise attribute distances ``(n, m)``: MPJPE for ``(.., J, C)``, else Euclidean."""
    if x.dim() == 2:
        return l2(x, y)
    diff = x[:, None] - y[None, :]
    return diff.pow(2).sum(-1).sqrt().sum(-1) / joints


def _distance_rows(x: Tensor, y: Tensor, joints: int) -> Tensor:
    """Row-wise distances between ``x[i]`` and ``y[i]``."""
    if x.dim() == 2:
        return (x - y).pow(2).sum(-1).sqrt()
    return (x - y).pow(2).sum(-1).sqrt().sum(-1) / joints


class PairWeightedLoss(ContrastiveLoss):
    """Module form of :func:`pair_weighted`; the attributes go to forward."""

    catalog_id = "pair_weighted"
    family = "D. soft targets"
    paper = Paper("Lin et al.", 2025, "2502.15251", "SiMHand: Mining Similar Hands")
    inputs = ("a", "b")
    supports_distributed = True

    def __init__(
        self,
        *,
        temperature: float = 0.5,
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

    def forward(
        self, a: Tensor, b: Tensor, *, attributes_a: Tensor, attributes_b: Tensor
    ) -> Tensor:
        """Compute the loss; see :func:`pair_weighted`."""
        return pair_weighted(
            a,
            b,
            attributes_a=attributes_a,
            attributes_b=attributes_b,
            temperature=self.temperature,
            normalize=self.normalize,
            **self.common(),
        )
