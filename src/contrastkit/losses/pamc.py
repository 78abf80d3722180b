"""PamC: graph neighbour contrast with the denominator approximated through cluster meta-nodes."""

from __future__ import annotations

import math
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor

from contrastkit import core
from contrastkit.core import PairMask
from contrastkit.core import validation as v
from contrastkit.core.pairmap import pair_reduce
from contrastkit.core.validation import Impl, Reduction
from contrastkit.distributed import ProcessGroup, shard
from contrastkit.losses._base import ContrastiveLoss, Paper, Requires
from contrastkit.losses._inputs import (
    check_common,
    finish,
    gathered,
    prepare_one,
    requires_grad,
)

Negatives = Literal["meta", "sized", "exact"]


def pamc(
    embeddings: Tensor,
    edge_index: Tensor,
    *,
    clusters: Tensor | None = None,
    edge_weight: Tensor | None = None,
    temperature: float | Tensor = 1.0,
    negatives: Negatives = "meta",
    normalize: bool = True,
    reduction: Reduction = "mean",
    chunk_size: int | None = None,
    impl: Impl = "auto",
    gather_distributed: bool = False,
    process_group: ProcessGroup | None = None,
) -> Tensor:
    r"""PamC (Kulatilleke et al.): neighbour contrast whose negatives go through cluster sums.

    The exact loss it approximates is Graph-MLP's neighbourhood contrast: with
    :math:`\sigma(a, b)` the cosine (``normalize=True``) or the dot product,
    :math:`s_{ij} = \sigma(z_i, z_j) / \tau` for :math:`i \ne j` and :math:`s_{ii} = 0` (its
    zeroed diagonal), and edges :math:`(i, j)` of weight :math:`A_{ij} \ge 0` as positives,

    .. math::

        \ell_i = -\log \sum_{j : (i, j) \in E} A_{ij} e^{s_{ij}} + \log \mathcal{D}_i, \qquad
        \mathcal{D}^{exact}_i = 1 + \sum_{j \ne i} e^{s_{ij}}

    PamC replaces the ``O(N^2)`` denominators by meta-nodes: with cluster ids :math:`k_i`
    (PamC: the argmax of its DEC soft assignment, given here, not differentiated), the
    meta-node :math:`c_k` is the mean (cosine: equivalently the sum, as in PamC) of its
    :math:`n_k` members, and :math:`t_{kl} = \sigma(c_k, c_l) / \tau` (:math:`t_{kk} = 0`):

    - ``negatives="meta"`` (the paper, the authors' ``NcontrastCC``): one term for the whole
      batch, :math:`\frac{1}{K} \sum_k \log \sum_l e^{t_{kl}}` over the :math:`K` non-empty
      clusters, added to every row. It counts each cluster once, so it sits about
      :math:`\log(N / K)` below the exact term: its gradient points the same way, its value
      does not estimate the exact loss (see ``benchmarks/pamc_error.py``).
    - ``negatives="sized"`` (contrastkit's variant, not in the paper): the exact denominator
      with every node replaced by its meta-node,
      :math:`\mathcal{D}_i = 1 + (n_k - 1) e^{\sigma(c_k, c_k) / \tau} + \sum_{l \ne k} n_l
      e^{t_{kl}}`, :math:`k = k_i`; an estimate of the exact loss in the same ``O(K^2)``.
    - ``negatives="exact"``: :math:`\mathcal{D}^{exact}`, tiled (memory linear in ``N``);
      ``clusters`` is not needed.

    The positive sums cost ``O(E D)`` from the edge list (no ``N x N`` matrix); the meta-node
    terms ``O(N D + K^2 D)``, with the ``K x K`` block tiled too. ``temperature`` is a divisor:
    PamC's ``tau`` (a multiplier, default 1) is ``1 / temperature``. A self-loop ``(i, i)``
    counts :math:`A_{ii} e^0`, as in PamC. A node without an edge of positive weight
    contributes zero and is excluded from the mean (PamC's ``log(0 + 1e-10)`` would add a
    constant 23.03 without gradient); the ``1e-10`` inside the authors' logs is omitted.
    An empty cluster id is skipped (in the authors' code it gives NaN).

    Args:
        embeddings: Node embeddings, shape ``(N, D)``.
        edge_index: Shape ``(2, E)`` integer (anchor, positive) pairs, rows ``[0, N)``, as
            PyTorch Geometric's ``edge_index`` (pass both directions for an undirected graph;
            powers :math:`A^r` are computed by the caller).
        clusters: Shape ``(N,)`` integer cluster ids (any values); needed unless ``"exact"``.
        edge_weight: Shape ``(E,)``, :math:`A_{ij} \ge 0`; ``None`` is 1 for every edge.
        temperature: :math:`\tau > 0` (PamC's ``tau = 1 / temperature``; default 1 either way).
        negatives: ``"meta"`` (PamC), ``"sized"`` or ``"exact"``; see above.
        normalize: Cosine similarities (PamC) instead of dot products.
        reduction: ``"mean"`` (over nodes with a positive), ``"sum"`` or ``"none"``
            (shape ``(N,)``, zero for nodes without positive).
        chunk_size: Rows and columns per tile; ``None`` chooses.
        impl: ``"auto"``, ``"dense"`` or ``"tiled"``.
        gather_distributed: Loss of the global batch over all ranks (every rank evaluates the
            gathered batch). Each rank's ``edge_index`` indexes its own rows; cluster ids are
            global.
        process_group: The group to gather over; ``None`` is the default group.

    Example:
        >>> import torch
        >>> z = torch.randn(6, 4)
        >>> edges = torch.tensor([[0, 1, 2, 3, 4, 5], [1, 0, 3, 2, 5, 4]])
        >>> pamc(z, edges, clusters=torch.tensor([0, 0, 1, 1, 2, 2])).shape
        torch.Size([])

    References:
        Kulatilleke et al., 2022, "Efficient block contrastive learning via parameter-free
        meta-node approximation" (PamC), arXiv:2209.14067; code github.com/gayanku/PAMC. Hu et
        al., 2021, Graph-MLP (the exact ``Ncontrast`` loss), arXiv:2106.04051.
    """

    def check() -> tuple[Tensor, Tensor, Tensor | None, Tensor | None]:
        v.check_temperature("temperature", temperature)
        v.check_choice("negatives", negatives, ("meta", "sized", "exact"))
        check_common(reduction, chunk_size, impl)
        z = prepare_one("embeddings", embeddings, normalize=False)
        n = z.shape[0]
        edges = _check_edges(edge_index, n).to(z.device)
        w = None if edge_weight is None else _check_edge_weight(edge_weight, edges.shape[1])
        ids = None
        if clusters is not None:
            ids = v.check_labels("clusters", clusters, n).to(z.device)
        elif negatives != "exact":
            raise ValueError(
                f"negatives={negatives!r} needs `clusters` (one integer id per node, shape "
                f"({n},)); pass them, or use negatives='exact'."
            )
        return z, edges.T, ids, None if w is None else w.to(device=z.device, dtype=z.dtype)

    (z, edges, ids, w), sh = shard(
        gather_distributed,
        process_group,
        check,
        lambda r: {"embeddings": r[0], "edges": r[1], "clusters": r[2], "edge_weight": r[3]},
        {
            "reduction": reduction,
            "negatives": negatives,
            "temperature_grad": requires_grad(temperature),
        },
    )
    if sh is not None:
        edges = sh.global_index("embeddings", edges)
    z = gathered(sh, "embeddings", z)
    ids = None if ids is None else gathered(sh, "clusters", ids)
    w = None if w is None else gathered(sh, "edge_weight", w)
    if sh is None or sh.total("edges") > 0:
        edges = gathered(sh, "edges", edges)
    scale = 1.0 / core.as_scale(temperature, z)
    log_pos, valid = _log_positives(z, edges.T, w, scale, normalize)
    if negatives == "exact":
        lse, _ = core.logsumexp(
            z,
            z,
            scale,
            mask=PairMask(exclude_self=True),
            normalize=normalize,
            chunk_size=chunk_size,
            impl=impl,
        )
        log_den = torch.logaddexp(lse, torch.zeros_like(lse))
    else:
        assert ids is not None
        log_den = _meta_denominators(z, ids, scale, negatives, normalize, chunk_size, impl)
    return finish(log_den - log_pos, reduction, sh, "embeddings", valid=valid)


def _check_edges(edge_index: object, n: int) -> Tensor:
    if not isinstance(edge_index, Tensor):
        raise ValueError(
            f"`edge_index` must be a torch.Tensor of shape (2, E) with node indices; got "
            f"{type(edge_index).__name__}."
        )
    if edge_index.dim() != 2 or edge_index.shape[0] != 2:
        raise ValueError(
            f"`edge_index` must have shape (2, E) (row 0: anchors, row 1: their positives); got "
            f"shape {tuple(edge_index.shape)}. Transpose an (E, 2) list with .T."
        )
    if edge_index.is_floating_point() or edge_index.is_complex() or edge_index.dtype == torch.bool:
        raise ValueError(
            f"`edge_index` must hold integer node indices; got dtype {edge_index.dtype}. "
            "Use edge_index.long()."
        )
    if edge_index.numel() and (int(edge_index.min()) < 0 or int(edge_index.max()) >= n):
        bad = int(edge_index.min()) if int(edge_index.min()) < 0 else int(edge_index.max())
        raise ValueError(
            f"`edge_index` must index the {n} embedding rows, in [0, {n}); got node {bad}."
        )
    return edge_index.long()


def _check_edge_weight(edge_weight: object, e: int) -> Tensor:
    w = v.check_weights("edge_weight", edge_weight, e)
    if bool((w < 0).any()):
        raise ValueError(
            f"`edge_weight` must be >= 0 (adjacency values); got minimum {float(w.min())}."
        )
    return w


def _log_positives(
    z: Tensor, edges: Tensor, w: Tensor | None, scale: Tensor, normalize: bool
) -> tuple[Tensor, Tensor]:
    """``log sum_{(i,j) in E} A_ij exp(s_ij)`` per node, and which nodes have a positive."""
    n = z.shape[0]
    src, dst = edges[0], edges[1]
    unit = F.normalize(z, dim=1) if normalize else z
    dots = (unit.index_select(0, src) * unit.index_select(0, dst)).sum(1)
    s = torch.where(src == dst, 0.0, dots * scale)
    weight = torch.ones_like(s) if w is None else w
    counted = torch.where(weight.detach() > 0, s.detach(), -math.inf)
    shift = s.new_zeros(n).scatter_reduce(0, src, counted, reduce="amax", include_self=False)
    shift = torch.where(torch.isfinite(shift), shift, 0.0)
    total = s.new_zeros(n).index_add(0, src, weight * torch.exp(s - shift[src]))
    valid = s.new_zeros(n).index_add(0, src, weight.detach()) > 0
    valid = valid & (total.detach() > 0)
    return shift + torch.log(torch.where(valid, total, 1.0)), valid


def _meta_denominators(
    z: Tensor,
    ids: Tensor,
    scale: Tensor,
    negatives: Negatives,
    normalize: bool,
    chunk_size: int | None,
    impl: Impl,
) -> Tensor:
    """``log D_i`` per node from the meta-nodes (cluster means)."""
    ids = torch.unique(ids, return_inverse=True)[1]
    counts = torch.bincount(ids)
    meta = z.new_zeros(int(counts.shape[0]), z.shape[1]).index_add(0, ids, z)
    meta = meta / counts[:, None].to(z.dtype)
    if negatives == "meta":
        lse, _ = core.logsumexp(
            meta,
            meta,
            scale,
            mask=PairMask(exclude_self=True),
            normalize=normalize,
            chunk_size=chunk_size,
            impl=impl,
        )
        per_cluster = torch.logaddexp(lse, torch.zeros_like(lse))
        return per_cluster.mean().expand(z.shape[0])
    unit = F.normalize(meta, dim=1) if normalize else meta
    log_n = torch.log(counts.to(z.dtype))
    others, _ = pair_reduce(
        lambda r, c, p, ri, ci: torch.where(
            ri[:, None] == ci[None, :], -math.inf, r[0] @ c[0].T * p[0] + c[1][None, :]
        ),
        [unit],
        [unit, log_n],
        [scale],
        mode="lse",
        chunk_size=chunk_size,
        impl=impl,
    )
    own = torch.log(counts.to(z.dtype) - 1) + scale * (unit * unit).sum(1)
    per_cluster = torch.logsumexp(torch.stack([others, own, torch.zeros_like(own)]), 0)
    return per_cluster[ids]


class PamCLoss(ContrastiveLoss):
    """Module form of :func:`pamc`; ``clusters`` and ``edge_weight`` go to forward."""

    catalog_id = "pamc"
    family = "I. prototypes, proxies, approximations"
    paper = Paper(
        "Kulatilleke et al.",
        2022,
        "2209.14067",
        "Efficient block contrastive learning via parameter-free meta-node approximation",
    )
    inputs = ("embeddings", "edge_index")
    requires = Requires()
    supports_distributed = True

    def __init__(
        self,
        *,
        temperature: float = 1.0,
        negatives: Negatives = "meta",
        normalize: bool = True,
        reduction: Reduction = "mean",
        chunk_size: int | None = None,
        impl: Impl = "auto",
        gather_distributed: bool = False,
        process_group: ProcessGroup | None = None,
    ) -> None:
        super().__init__()
        v.check_temperature("temperature", temperature)
        v.check_choice("negatives", negatives, ("meta", "sized", "exact"))
        check_common(reduction, chunk_size, impl)
        self.temperature, self.negatives, self.normalize = temperature, negatives, normalize
        self.set_common(reduction, chunk_size, impl, gather_distributed, process_group)

    def forward(
        self,
        embeddings: Tensor,
        edge_index: Tensor,
        *,
        clusters: Tensor | None = None,
        edge_weight: Tensor | None = None,
    ) -> Tensor:
        """Compute the loss; see :func:`pamc`."""
        return pamc(
            embeddings,
            edge_index,
            clusters=clusters,
            edge_weight=edge_weight,
            temperature=self.temperature,
            negatives=self.negatives,
            normalize=self.normalize,
            **self.common(),
        )
