r"""The geometry of a representation: alignment, uniformity, tolerance and effective rank.

Each function takes embeddings (and labels where needed), works on detached copies under
``torch.no_grad`` and returns a Python ``float``. None holds an ``N x N`` matrix:
:func:`uniformity` streams tiles of pairs, :func:`tolerance` uses class sums and
:func:`effective_rank` a ``D x D`` covariance accumulated over blocks of rows.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from contrastkit.core import validation as v
from contrastkit.losses.uniformity import alignment as _alignment_loss
from contrastkit.losses.uniformity import uniformity as _uniformity_loss
from contrastkit.metrics._common import BLOCK_ELEMENTS, check_bool, prepare, prepare_labels


def alignment(x: Tensor, y: Tensor, *, alpha: float = 2.0, normalize: bool = True) -> float:
    r"""Alignment of positive pairs (Wang & Isola): the mean distance between paired rows.

    .. math::

        \mathcal{A} = \frac{1}{N} \sum_{i} \lVert x_i - y_i \rVert_2^{\alpha}

    on L2-normalized rows. Lower is better aligned; on the unit sphere and with
    :math:`\alpha = 2` it lies in :math:`[0, 4]`. The value of the loss
    :func:`contrastkit.losses.uniformity.alignment`, detached.

    Args:
        x: Shape ``(N, D)``.
        y: Shape ``(N, D)``; row ``i`` is the positive (the other view) of ``x_i``.
        alpha: :math:`\alpha > 0` (the paper: 2).
        normalize: L2-normalize the rows first (the paper's setting).

    Returns:
        :math:`\mathcal{A}` as a float.

    Example:
        >>> import torch
        >>> x = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
        >>> alignment(x, x)
        0.0
        >>> alignment(x, -x)
        4.0

    References:
        Wang & Isola, 2020, "Understanding Contrastive Representation Learning through Alignment
        and Uniformity on the Hypersphere", arXiv:2005.10242.
    """
    v.check_positive_float("alpha", alpha)
    check_bool("normalize", normalize)
    a, b = prepare("x", x, normalize=normalize), prepare("y", y, normalize=normalize)
    v.check_same_width("x", a, "y", b)
    v.check_same_batch("x", a, "y", b)
    with torch.no_grad():
        return float(_alignment_loss(a, b, alpha=float(alpha), normalize=False))


def uniformity(
    x: Tensor, *, t: float = 2.0, normalize: bool = True, chunk_size: int | None = None
) -> float:
    r"""Uniformity (Wang & Isola): the log of the mean Gaussian potential between rows.

    .. math::

        \mathcal{U} = \log \frac{1}{N (N - 1)} \sum_{i \ne j} e^{-t \lVert x_i - x_j \rVert_2^2}

    on L2-normalized rows. Lower is more uniform; on the unit sphere :math:`\mathcal{U} \le 0`
    (0 when all rows coincide, :math:`-4t` at best for two antipodal points). The value of the
    loss :func:`contrastkit.losses.uniformity.uniformity`, detached: a log-sum-exp over tiles of
    pairs, memory linear in ``N``.

    Args:
        x: Shape ``(N, D)`` with ``N >= 2``.
        t: :math:`t > 0` (the paper: 2).
        normalize: L2-normalize the rows first (the paper's setting).
        chunk_size: Rows and columns per tile; ``None`` lets the engine choose (a dense matrix
            for small ``N``).

    Returns:
        :math:`\mathcal{U}` as a float.

    Example:
        >>> import torch
        >>> uniformity(torch.tensor([[1.0, 0.0], [-1.0, 0.0]]))
        -8.0

    References:
        Wang & Isola, 2020, arXiv:2005.10242.
    """
    v.check_positive_float("t", t)
    check_bool("normalize", normalize)
    v.check_chunk_size(chunk_size)
    z = prepare("x", x, normalize=normalize)
    if z.shape[0] < 2:
        raise ValueError(
            f"`x` needs at least 2 rows: uniformity averages over pairs i != j; got {z.shape[0]}."
        )
    impl: v.Impl = "auto" if chunk_size is None else "tiled"
    with torch.no_grad():
        return float(
            _uniformity_loss(z, t=float(t), normalize=False, chunk_size=chunk_size, impl=impl)
        )


def tolerance(embeddings: Tensor, labels: Tensor, *, normalize: bool = True) -> float:
    r"""Tolerance (Wang & Liu): the mean cosine similarity of two samples of the same class.

    .. math::

        T = \frac{1}{|P|} \sum_{(i, j) \in P} \langle z_i, z_j \rangle, \qquad
        P = \{(i, j) : i \ne j,\ y_i = y_j\}

    on L2-normalized rows. High tolerance means semantically similar samples stay close; the
    paper shows it falls as the temperature of the contrastive loss falls (the
    uniformity-tolerance dilemma). The paper states tolerance as an expectation over pairs of
    :math:`f(x)^\top f(y)` times the indicator of equal labels and describes it as the mean
    similarity of samples of the same class; this function takes the latter reading and
    normalizes by the number of same-class pairs (multiply by the fraction of ordered pairs
    that share a class for the mean over all pairs). Exact in ``O(N D)`` memory and time, from
    class sums: :math:`\sum_{(i,j) \in P} \langle z_i, z_j \rangle = \sum_c \lVert
    \sum_{y_i = c} z_i \rVert^2 - \sum_i \lVert z_i \rVert^2`, accumulated in float64.

    Args:
        embeddings: Shape ``(N, D)``.
        labels: Shape ``(N,)`` integer class ids; at least one class must have two samples.
        normalize: L2-normalize the rows first (``False``: the mean dot product).

    Returns:
        :math:`T` as a float in :math:`[-1, 1]` (with ``normalize=True``).

    Example:
        >>> import torch
        >>> z = torch.tensor([[1.0, 0.0], [1.0, 1.0], [0.0, -1.0]])
        >>> round(tolerance(z, torch.tensor([0, 0, 1])), 4)
        0.7071

    References:
        Wang & Liu, 2021, "Understanding the Behaviour of Contrastive Loss", CVPR,
        arXiv:2012.09740.
    """
    check_bool("normalize", normalize)
    z = prepare("embeddings", embeddings, normalize=normalize)
    y = prepare_labels("labels", labels, z.shape[0], z)
    with torch.no_grad():
        classes, inverse, counts = torch.unique(y, return_inverse=True, return_counts=True)
        n_pairs = int((counts * (counts - 1)).sum())
        if n_pairs == 0:
            raise ValueError(
                f"`labels` has no two samples of the same class ({z.shape[0]} samples, "
                f"{classes.numel()} classes); tolerance averages over same-class pairs."
            )
        z64 = z.double()
        sums = torch.zeros(classes.numel(), z.shape[1], dtype=torch.float64, device=z.device)
        sums.index_add_(0, inverse, z64)
        total = sums.pow(2).sum() - z64.pow(2).sum()
        return float(total) / n_pairs


def effective_rank(embeddings: Tensor, *, center: bool = True) -> float:
    r"""Effective rank (Roy & Vetterli): the exponential of the entropy of the singular values.

    With :math:`\sigma_1, \dots, \sigma_D` the singular values of the (column-centered)
    embedding matrix and :math:`p_k = \sigma_k / \sum_l \sigma_l`,

    .. math::

        \operatorname{erank}(Z) = \exp\Big(-\sum_k p_k \log p_k\Big)

    a real number between 1 and the rank of :math:`Z`; a collapsed representation has a small
    effective rank. Convention: a zero matrix (all rows equal, when centered) has effective rank
    0. The singular values come from the ``D x D`` covariance accumulated in float64 over blocks
    of rows (memory ``O(D^2)``, independent of ``N``); eigenvalues below
    :math:`D \epsilon_{64} \lambda_{max}` are rounding noise and count as zero.

    Args:
        embeddings: Shape ``(N, D)``.
        center: Subtract the column mean first (the usual choice for representations).

    Returns:
        The effective rank as a float.

    Example:
        >>> import torch
        >>> round(effective_rank(torch.eye(4), center=False), 4)
        4.0

    References:
        Roy & Vetterli, 2007, "The effective rank: a measure of effective dimensionality",
        EUSIPCO.
    """
    check_bool("center", center)
    z = prepare("embeddings", embeddings, normalize=False)
    stats = EffectiveRank(center=center)
    stats.update(z)
    return stats.compute()


class EffectiveRank:
    """Effective rank accumulated over batches of embeddings (see :func:`effective_rank`).

    Keeps the row count, the mean and the centered second moment (``D x D``, float64), merged
    batch by batch with Chan et al.'s parallel update, so the result equals
    :func:`effective_rank` of the concatenated batches.

    Args:
        center: Subtract the column mean of all rows seen.

    Example:
        >>> import torch
        >>> er = EffectiveRank(center=False)
        >>> er.update(torch.eye(4)[:2])
        >>> er.update(torch.eye(4)[2:])
        >>> round(er.compute(), 4)
        4.0
    """

    def __init__(self, *, center: bool = True) -> None:
        check_bool("center", center)
        self.center = center
        self.reset()

    def reset(self) -> None:
        """Forget every batch seen."""
        self.count = 0
        self.mean: Tensor | None = None
        self.m2: Tensor | None = None

    def update(self, embeddings: Tensor) -> None:
        """Add a batch of rows, shape ``(n, D)`` (``D`` fixed across batches)."""
        z = prepare("embeddings", embeddings, normalize=False)
        if self.m2 is not None and z.shape[1] != self.m2.shape[0]:
            raise ValueError(
                f"`embeddings` must keep the width of the first batch ({self.m2.shape[0]}); "
                f"got {z.shape[1]}."
            )
        rows = max(1, BLOCK_ELEMENTS // max(1, z.shape[1]))
        with torch.no_grad():
            for r0 in range(0, z.shape[0], rows):
                self._merge(z[r0 : r0 + rows].double())

    def _merge(self, x: Tensor) -> None:
        n_b = x.shape[0]
        if not self.center:
            mean_b = torch.zeros(x.shape[1], dtype=x.dtype, device=x.device)
            m2_b = x.T @ x
        else:
            mean_b = x.mean(0)
            xc = x - mean_b
            m2_b = xc.T @ xc
        if self.mean is None or self.m2 is None:
            self.count, self.mean, self.m2 = n_b, mean_b, m2_b
            return
        n_a, n = self.count, self.count + n_b
        delta = (mean_b - self.mean).to(self.mean.device)
        self.m2 = self.m2 + m2_b.to(self.m2.device) + torch.outer(delta, delta) * (n_a * n_b / n)
        self.mean = self.mean + delta * (n_b / n)
        self.count = n

    def compute(self) -> float:
        """The effective rank of every row seen so far."""
        if self.m2 is None:
            raise RuntimeError("EffectiveRank.compute() called before any update().")
        with torch.no_grad():
            m2 = 0.5 * (self.m2 + self.m2.T)
            eig = torch.linalg.eigvalsh(m2).flip(0)
            top = float(eig[0]) if eig.numel() else 0.0
            if top <= 0.0:
                return 0.0
            eig = torch.where(eig > top * m2.shape[0] * torch.finfo(m2.dtype).eps, eig, 0.0)
            sigma = eig.sqrt()
            p = sigma / sigma.sum()
            entropy = -torch.where(p > 0, p * p.clamp_min(1e-300).log(), 0.0).sum()
            return math.exp(float(entropy))
