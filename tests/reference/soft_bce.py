"""Float64 reference for the soft binary cross-entropy of SAN (Zang et al.; Student-t kernels)."""

from __future__ import annotations

import math

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


def _log_kernel(d: Tensor, nu: Tensor, sigma: Tensor) -> Tensor:
    """The log kernel, log K(d; nu, sigma) = log c(nu) - (nu + 1) log1p(d / (sigma nu)).

    With c(nu) = 2 pi g(nu)^2 and g(nu) = Gamma((nu + 1) / 2) / (sqrt(nu pi) Gamma(nu / 2)).
    """
    log_g = torch.lgamma((nu + 1.0) / 2.0) - 0.5 * torch.log(nu * math.pi) - torch.lgamma(nu / 2.0)
    log_c = math.log(2.0 * math.pi) + 2.0 * log_g
    return log_c - (nu + 1.0) * torch.log1p(d / (sigma * nu))


def soft_bce(
    embeddings: Tensor,
    reference: Tensor,
    *,
    nu: float | Tensor = 10.0,
    sigma: float | Tensor = 1.0,
    nu_reference: float | Tensor = 100.0,
    sigma_reference: float | Tensor = 10.0,
    normalize: bool = False,
    reduction: str = "mean",
) -> Tensor:
    """Soft binary cross-entropy between Student-t similarities, densely in float64.

    With the Student-t kernel on a squared Euclidean distance ``d``

        K(d; nu, sigma) = c(nu) (1 + d / (sigma nu))^-(nu + 1),
        c(nu) = 2 pi g(nu)^2,  g(nu) = Gamma((nu + 1) / 2) / (sqrt(nu pi) Gamma(nu / 2)),

    ``Q_ij = K(|z_i - z_j|^2; nu, sigma)`` on the embeddings and ``P_ij = K(|h_i - h_j|^2;
    nu_reference, sigma_reference)`` on the reference rows ``h``, each symmetrized as
    ``X_ij <- X_ij + X_ji - X_ij X_ji``. Row ``i`` has the term

        l_i = (1 / (N - 1)) sum_{j != i} -[P_ij log Q_ij + (1 - P_ij) log(1 - Q_ij)]

    with exact logs (no eps): ``log K`` in closed form, ``log(1 - X) = log1p(-X)``.
    ``N = 1`` gives 0. Gradients flow into ``reference`` when it requires grad.

    Args:
        embeddings: Embeddings z, shape (N, D).
        reference: Reference rows h (e.g. input features), shape (N, D').
        nu: Degrees of freedom of the embedding kernel.
        sigma: Scale of the embedding kernel.
        nu_reference: Degrees of freedom of the reference kernel.
        sigma_reference: Scale of the reference kernel.
        normalize: L2-normalize the embedding rows first (the reference rows are used as is).
        reduction: ``"mean"`` (over the N rows), ``"sum"`` or ``"none"``.

    Returns:
        A float64 scalar, or shape (N,) for ``reduction="none"``.
    """
    z = _embed64(embeddings, normalize)
    h = reference.to(torch.float64)
    nu_q, sigma_q = _scalar64(nu), _scalar64(sigma)
    nu_p, sigma_p = _scalar64(nu_reference), _scalar64(sigma_reference)
    n = z.shape[0]

    def log_kernel_table(x: Tensor, nu_: Tensor, sigma_: Tensor) -> list[list[Tensor]]:
        """Log kernel K(|x_i - x_j|^2) of each pair, before symmetrizing (diagonal unused)."""
        return [
            [_log_kernel(((x[i] - x[j]) ** 2).sum(), nu_, sigma_) for j in range(n)]
            for i in range(n)
        ]

    log_q = log_kernel_table(z, nu_q, sigma_q)
    log_p = log_kernel_table(h, nu_p, sigma_p)
    terms = []
    for i in range(n):
        # keeps every input in the graph (zero gradients rather than None when N = 1)
        l_i = 0.0 * (z[i].sum() + h[i].sum() + nu_q + sigma_q + nu_p + sigma_p)
        for j in range(n):
            if j == i:
                continue
            lq_ij, lq_ji = log_q[i][j], log_q[j][i]
            q_ij, q_ji = torch.exp(lq_ij), torch.exp(lq_ji)
            p_ij, p_ji = torch.exp(log_p[i][j]), torch.exp(log_p[j][i])
            q_sym = q_ij + q_ji - q_ij * q_ji
            p_sym = p_ij + p_ji - p_ij * p_ji
            # log(q_ij + q_ji - q_ij q_ji) = log q_ij + log1p((q_ji / q_ij) (1 - q_ij))
            log_q_sym = lq_ij + torch.log1p(torch.exp(lq_ji - lq_ij) * (1.0 - q_ij))
            log_one_minus_q_sym = torch.log1p(-q_sym)
            l_i = l_i - (p_sym * log_q_sym + (1.0 - p_sym) * log_one_minus_q_sym) / (n - 1)
        terms.append(l_i)
    per_anchor = torch.stack(terms)
    if reduction == "none":
        return per_anchor
    if reduction == "sum":
        return per_anchor.sum()
    return per_anchor.sum() / n
