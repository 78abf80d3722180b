"""GRAM: InfoNCE over the Gram-determinant volume spanned by k >= 2 modality vectors."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from contrastkit import core
from contrastkit.core import validation as v
from contrastkit.core.pairmap import pair_reduce
from contrastkit.core.validation import Impl, Reduction
from contrastkit.distributed import ProcessGroup, shard
from contrastkit.losses._base import ContrastiveLoss, Paper
from contrastkit.losses._inputs import check_common, finish, gathered, prepare_one, requires_grad

MIN_MODALITIES, MAX_MODALITIES = 2, 5


def gram(
    anchor: Tensor,
    *others: Tensor,
    temperature: float | Tensor = 0.07,
    label_smoothing: float = 0.1,
    symmetric: bool = True,
    normalize: bool = True,
    reduction: Reduction = "mean",
    chunk_size: int | None = None,
    impl: Impl = "auto",
    gather_distributed: bool = False,
    process_group: ProcessGroup | None = None,
) -> Tensor:
    r"""GRAM: InfoNCE whose score is minus the volume spanned by the anchor and a candidate tuple.

    Call it as ``gram(text, video, audio)``: the first tensor is the anchor modality, the
    others (``k - 1`` of them, ``k = 2..5``) are the candidate's modalities, row ``j`` of each
    belonging to sample ``j``. For anchor :math:`a_i` and candidate tuple
    :math:`(b^{(2)}_j, \dots, b^{(k)}_j)`, let :math:`G_{ij}` be the ``k x k`` Gram matrix of
    the vectors :math:`(a_i, b^{(2)}_j, \dots, b^{(k)}_j)` and

    .. math::

        V_{ij} = \sqrt{|\det G_{ij}|}, \qquad s_{ij} = -V_{ij} / \tau,

    the volume of the parallelotope the ``k`` vectors span (0 when they are collinear). With
    label smoothing :math:`\varepsilon` over the :math:`N` candidates,

    .. math::

        \ell_i = \log \sum_j e^{s_{ij}} - (1 - \varepsilon) s_{ii}
                 - \frac{\varepsilon}{N} \sum_j s_{ij}

    and, when symmetric, the same over the column :math:`s_{\cdot i}` (candidate tuple ``i``
    against every anchor), the two directions averaged: :math:`(\ell_i + \ell'_i) / 2`.
    This is ``0.5 * (F.cross_entropy(-V / tau, arange(N), label_smoothing=eps) +
    F.cross_entropy(-V.T / tau, arange(N), label_smoothing=eps))`` without materializing
    ``V`` or the ``N x N x k x k`` Gram matrices.

    At ``k = 2`` the volume is :math:`\sqrt{|a|^2 |b|^2 - \langle a, b\rangle^2}`, i.e.
    :math:`|\sin \theta_{ij}|` for unit vectors: a sine-based InfoNCE. Like every volume it is
    0 for **anti-aligned** as well as aligned vectors (:math:`\theta = \pi`), so the score is
    not monotone in the cosine over the whole sphere (a quirk of the method, kept).

    How it is computed: write :math:`G_{ij} = \begin{pmatrix} |a_i|^2 & c_{ij}^\top \\ c_{ij}
    & H_j \end{pmatrix}` with :math:`c_{ij} = (\langle a_i, b^{(p)}_j \rangle)_p` and
    :math:`H_j` the ``(k-1) x (k-1)`` Gram matrix of candidate ``j``'s own modalities. The
    Schur-complement identity :math:`\det G_{ij} = |a_i|^2 \det H_j - c_{ij}^\top
    \operatorname{adj}(H_j) c_{ij}` (a polynomial identity, exact even for singular
    :math:`H_j`) needs :math:`\det H_j` and the adjugate once per candidate (``O(N k^4)``),
    then per pair only the ``k - 1`` dot products and a quadratic form. The log-sum-exps and
    the label-smoothing sums run tile by tile (:func:`~contrastkit.core.pairmap.pair_reduce`);
    memory is the inputs plus one tile of ``(k - 1)`` dot products. Exactly degenerate
    tuples (:math:`\det G = 0`) get a zero gradient instead of the infinite one of
    :math:`\sqrt{\cdot}` at 0.

    Following the authors' code (``ispamm/GRAM``, ``model/gram.py``), the anchor is the text
    and the candidates the other modalities, both directions are averaged, label smoothing is
    0.1 and the temperature divides the volume (learned there, initialized at 0.07, no clamp;
    pass a tensor that requires grad, or use :class:`GRAMLoss`). They take
    :math:`\sqrt{|\det G|}` of a float32 LU determinant; the expansion above gives the same
    value in exact arithmetic. Their additional matching (ITM) loss with hard negatives
    sampled from :math:`\operatorname{softmax}(-V)` needs a fusion model and is not part of
    this loss.

    Args:
        anchor: Shape ``(N, D)``, the anchor modality (text in GRAM).
        *others: ``k - 1`` tensors of shape ``(N, D)`` (``1 <= k - 1 <= 4``), the candidate
            modalities; row ``j`` of every one belongs to sample ``j``. ``D >= k`` is required
            (``k`` vectors in fewer dimensions always span volume 0).
        temperature: :math:`\tau > 0`; a float or a 0-dim tensor (may require grad).
        label_smoothing: :math:`\varepsilon \in [0, 1]`, as in ``F.cross_entropy``.
        symmetric: Average in the candidate-to-anchor direction (the authors' default).
        normalize: L2-normalize every modality first (the volume of unit vectors).
        reduction: ``"mean"``, ``"sum"`` or ``"none"`` (shape ``(N,)``, the per-sample term
            :math:`(\ell_i + \ell'_i) / 2`).
        chunk_size: Rows and columns per tile; ``None`` chooses.
        impl: ``"auto"``, ``"dense"`` or ``"tiled"``.
        gather_distributed: Loss of the global batch over all ranks (every rank evaluates the
            gathered batch; see :mod:`contrastkit.distributed`).
        process_group: The group to gather over; ``None`` is the default group.

    Returns:
        The loss, in float32 for low-precision inputs (statistics dtype).

    Raises:
        ValueError: If the number of modalities ``k`` is outside ``2..5``, ``D < k``, or an
            input is malformed.

    Example:
        >>> import torch
        >>> text, video, audio = torch.randn(4, 8), torch.randn(4, 8), torch.randn(4, 8)
        >>> gram(text, video, audio).shape
        torch.Size([])

    References:
        Cicchetti et al., 2025, "Gramian Multimodal Representation Learning and Alignment"
        (GRAM, ICLR 2025), arXiv:2412.11959.
    """

    def check() -> tuple[Tensor, list[Tensor]]:
        k = 1 + len(others)
        if not MIN_MODALITIES <= k <= MAX_MODALITIES:
            raise ValueError(
                f"gram takes k = {MIN_MODALITIES}..{MAX_MODALITIES} modalities (`anchor` and 1 "
                f"to {MAX_MODALITIES - 1} `others`); got k = {k} (anchor + {len(others)} "
                "others). Call it as gram(anchor, other_1, ..., other_{k-1})."
            )
        v.check_temperature("temperature", temperature)
        _check_label_smoothing(label_smoothing)
        check_common(reduction, chunk_size, impl)
        a = prepare_one("anchor", anchor, normalize=normalize)
        bs = []
        for p, other in enumerate(others):
            name = f"others[{p}]"
            b = prepare_one(name, other, normalize=normalize)
            v.check_same_width("anchor", a, name, b)
            v.check_same_batch("anchor", a, name, b)
            bs.append(b)
        if a.shape[1] < k:
            raise ValueError(
                f"gram needs an embedding width D >= k: `anchor` has D = {a.shape[1]} for "
                f"k = {k} modalities, and {k} vectors in {a.shape[1]} dimensions always span "
                "volume 0 (the loss would be constant). Use wider embeddings."
            )
        dt = a.dtype
        for b in bs:
            dt = torch.promote_types(dt, b.dtype)
        return a.to(dt), [b.to(device=a.device, dtype=dt) for b in bs]

    (a, bs), sh = shard(
        gather_distributed,
        process_group,
        check,
        lambda r: {"anchor": r[0], **{f"others[{p}]": b for p, b in enumerate(r[1])}},
        {
            "k": len(others) + 1,
            "symmetric": symmetric,
            "reduction": reduction,
            "label_smoothing": label_smoothing,
            "temperature_grad": requires_grad(temperature),
        },
    )
    a = gathered(sh, "anchor", a)
    bs = [gathered(sh, f"others[{p}]", b) for p, b in enumerate(bs)]
    n, k = a.shape[0], 1 + len(bs)
    scale = 1.0 / core.as_scale(temperature, a)

    # Per candidate: the Gram matrix H_j of its own modalities, det H_j and adj(H_j).
    h = torch.stack([torch.stack([(bp * bq).sum(1) for bq in bs], -1) for bp in bs], -2)
    det_h, adj_h = _det(h), _adjugate(h)
    aa = (a * a).sum(1)

    def scores(r: list[Tensor], c: list[Tensor], p: list[Tensor], ri: Tensor, ci: Tensor) -> Tensor:
        x, x2 = r
        *ys, dh, adj = c
        cross = torch.stack([x @ y.T for y in ys], -1)  # (n, m, k - 1): <a_i, b^(p)_j>
        quad = torch.einsum("ijp,jpq,ijq->ij", cross, adj, cross)
        return -_volume(x2[:, None] * dh[None, :] - quad) * p[0]

    rows, cols = [a, aa], [*bs, det_h, adj_h]
    lse_r, lse_c = pair_reduce(
        scores,
        rows,
        cols,
        [scale],
        mode="lse",
        out_cols=symmetric,
        cost=k,
        chunk_size=chunk_size,
        impl=impl,
    )

    cross_ii = torch.stack([(a * b).sum(1) for b in bs], -1)  # (N, k - 1)
    quad_ii = torch.einsum("ip,ipq,iq->i", cross_ii, adj_h, cross_ii)
    pos = -_volume(aa * det_h - quad_ii) * scale

    eps = float(label_smoothing)
    per_row = lse_r - (1.0 - eps) * pos
    col = lse_c - (1.0 - eps) * pos if symmetric else None
    if eps > 0.0:
        sum_r, sum_c = pair_reduce(
            scores,
            rows,
            cols,
            [scale],
            mode="sum",
            out_cols=symmetric,
            cost=k,
            chunk_size=chunk_size,
            impl=impl,
        )
        per_row = per_row - (eps / n) * sum_r
        if col is not None:
            col = col - (eps / n) * sum_c
    if col is not None:
        per_row = 0.5 * (per_row + col)
    return finish(per_row, reduction, sh, "anchor")


def _check_label_smoothing(value: object) -> None:
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not 0.0 <= float(value) <= 1.0
    ):
        raise ValueError(
            f"`label_smoothing` must be a float in [0, 1] (0.1 in GRAM); got {value!r}."
        )


def _volume(det: Tensor) -> Tensor:
    r""":math:`\sqrt{|\det|}`, with zero gradient where the determinant is (numerically) 0."""
    tiny = torch.finfo(det.dtype).tiny
    return torch.sqrt(det.abs().clamp_min(tiny))


def _minor(m: Tensor, row: int, col: int) -> Tensor:
    """``m`` (..., n, n) without row ``row`` and column ``col``."""
    n = m.shape[-1]
    keep_r = [i for i in range(n) if i != row]
    keep_c = [j for j in range(n) if j != col]
    return m[..., keep_r, :][..., keep_c]


def _det(m: Tensor) -> Tensor:
    """Determinant of small matrices (..., n, n), ``n <= 4``, by cofactor expansion.

    A polynomial in the entries: exact gradients everywhere, singular matrices included
    (``torch.linalg.det``'s backward goes through a factorization).
    """
    n = m.shape[-1]
    if n == 1:
        return m[..., 0, 0]
    if n == 2:
        return m[..., 0, 0] * m[..., 1, 1] - m[..., 0, 1] * m[..., 1, 0]
    out = torch.zeros_like(m[..., 0, 0])
    for j in range(n):
        term = m[..., 0, j] * _det(_minor(m, 0, j))
        out = out + term if j % 2 == 0 else out - term
    return out


def _adjugate(m: Tensor) -> Tensor:
    """Adjugate (transposed cofactor matrix) of small matrices (..., n, n)."""
    n = m.shape[-1]
    if n == 1:
        return torch.ones_like(m)
    cof = torch.stack(
        [
            torch.stack([(-1) ** (p + q) * _det(_minor(m, p, q)) for q in range(n)], -1)
            for p in range(n)
        ],
        -2,
    )
    return cof.transpose(-1, -2)


class GRAMLoss(ContrastiveLoss):
    """Module form of :func:`gram`; called as ``loss(anchor, *others)``.

    Args:
        temperature: The (initial) temperature.
        learnable: Make ``temperature`` an ``nn.Parameter`` (as GRAM does: the temperature
            itself, initialized at 0.07, not clamped); otherwise a fixed float.
        label_smoothing: See :func:`gram`.
        symmetric: See :func:`gram`.
        normalize: See :func:`gram`.
        reduction: See :func:`gram`.
        chunk_size: See :func:`gram`.
        impl: See :func:`gram`.
        gather_distributed: See :func:`gram`.
        process_group: See :func:`gram`.
    """

    catalog_id = "gram"
    family = "H. more than two modalities"
    paper = Paper(
        "Cicchetti et al.", 2025, "2412.11959", "Gramian Multimodal Representation Learning"
    )
    inputs = ("anchor", "*others")
    supports_distributed = True

    temperature: float | Tensor

    def __init__(
        self,
        *,
        temperature: float = 0.07,
        learnable: bool = False,
        label_smoothing: float = 0.1,
        symmetric: bool = True,
        normalize: bool = True,
        reduction: Reduction = "mean",
        chunk_size: int | None = None,
        impl: Impl = "auto",
        gather_distributed: bool = False,
        process_group: ProcessGroup | None = None,
    ) -> None:
        super().__init__()
        v.check_temperature("temperature", temperature)
        _check_label_smoothing(label_smoothing)
        check_common(reduction, chunk_size, impl)
        if learnable:
            self.temperature = nn.Parameter(torch.tensor(float(temperature)))
        else:
            self.temperature = temperature
        self.label_smoothing, self.symmetric, self.normalize = label_smoothing, symmetric, normalize
        self.set_common(reduction, chunk_size, impl, gather_distributed, process_group)

    def forward(self, anchor: Tensor, *others: Tensor) -> Tensor:
        """Compute the loss; see :func:`gram`."""
        return gram(
            anchor,
            *others,
            temperature=self.temperature,
            label_smoothing=self.label_smoothing,
            symmetric=self.symmetric,
            normalize=self.normalize,
            **self.common(),
        )
