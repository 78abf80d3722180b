"""Float64 reference for CWCL (Srinivasa et al., 2023, "CWCL: Cross-Modal Transfer ...").

"CWCL: Cross-Modal Transfer with Continuously Weighted Contrastive Loss".
"""

from __future__ import annotations

import torch
from torch import Tensor


def _embed64(x: Tensor, normalize: bool) -> Tensor:
    """Casts to float64 (differentiably) and optionally L2-normalizes each row."""
    x = x.to(torch.float64)
    if normalize:
        x = x / x.norm(dim=1, keepdim=True)
    return x


def _scalar64(x: float | Tensor) -> Tensor:
    """A float or 0-dim tensor as a float64 0-dim tensor (differentiably for tensors)."""
    if isinstance(x, Tensor):
        return x.to(torch.float64)
    return torch.tensor(float(x), dtype=torch.float64)


def cwcl(
    a: Tensor,
    b: Tensor,
    *,
    teacher: Tensor,
    temperature: float | Tensor = 0.07,
    normalize: bool = True,
    reduction: str = "mean",
) -> Tensor:
    """Continuously weighted contrastive loss, transcribed densely in float64.

    With ``s_ij = <a_i, b_j> / temperature`` (cosine when ``normalize``) and weights from the
    teacher rows ``u`` (always cosine) ``w_ij = (1 + cos(u_i, u_j)) / 2``:

        l^r_i = -(1 / sum_j w_ij) sum_j w_ij log softmax_j(s_i.)
        l^c_j = -(1 / sum_i w_ij) sum_i w_ij log softmax_i(s_.j)
        loss  = mean_i l^r_i + mean_j l^c_j      (the two directions are summed)

    Gradients flow into ``teacher`` when it requires grad.

    Args:
        a: First modality, shape (N, D).
        b: Second modality, shape (N, D); row i pairs with ``a_i``.
        teacher: Teacher rows u, shape (N, D').
        temperature: Softmax temperature (float or 0-dim tensor).
        normalize: L2-normalize ``a`` and ``b`` before the dot products.
        reduction: ``"mean"`` (each direction over N, then summed), ``"sum"`` or ``"none"``.

    Returns:
        A float64 scalar, or shape (N,) with entry ``l^r_i + l^c_i`` for ``reduction="none"``.
    """
    x = _embed64(a, normalize)
    y = _embed64(b, normalize)
    u = _embed64(teacher, True)  # cos(u_i, u_j) = <u_i, u_j> after normalizing
    t = _scalar64(temperature)
    n = x.shape[0]
    rows = []
    for i in range(n):
        scores = (y @ x[i]) / t  # s_ij for all j
        log_softmax = scores - torch.logsumexp(scores, dim=0)
        w = (1.0 + u @ u[i]) / 2.0  # w_ij for all j
        rows.append(-(w * log_softmax).sum() / w.sum())
    cols = []
    for j in range(n):
        scores = (x @ y[j]) / t  # s_ij for all i
        log_softmax = scores - torch.logsumexp(scores, dim=0)
        w = (1.0 + u @ u[j]) / 2.0  # w_ij for all i (cos(u_i, u_j))
        cols.append(-(w * log_softmax).sum() / w.sum())
    l_r, l_c = torch.stack(rows), torch.stack(cols)
    if reduction == "none":
        return l_r + l_c
    if reduction == "sum":
        return l_r.sum() + l_c.sum()
    return l_r.sum() / n + l_c.sum() / n
