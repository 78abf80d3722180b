"""Float64 references for SogCLR, iSogCLR and their image-text form, at given estimates.

SogCLR: Yuan et al., 2022, arXiv:2202.12387; iSogCLR: Qiu et al., 2023, arXiv:2305.11965.

Per direction the loss is the linearization of ``tau * log(.)`` at the estimate ``u``, evaluated
at the mini-batch estimate ``g`` of the mean of ``exp(score / tau)`` over the negatives:

    tau * (log u + g / u - 1)            (tau * log g when no estimate is given)

whose gradient is SogCLR's ``tau * grad(g) / u``.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor


def _embed64(x: Tensor, y: Tensor, normalize: bool) -> tuple[Tensor, Tensor]:
    """Casts both inputs to float64 (differentiably), optionally L2-normalizing rows."""
    a, b = x.to(torch.float64), y.to(torch.float64)
    if normalize:
        a = a / a.norm(dim=1, keepdim=True)
        b = b / b.norm(dim=1, keepdim=True)
    return a, b


def _per_row(value: float | Tensor, n: int) -> Tensor:
    """A temperature (scalar or one per row) as an (n,) float64 tensor."""
    t = value.to(torch.float64) if isinstance(value, Tensor) else torch.tensor(float(value))
    t = t.to(torch.float64)
    return t.reshape(-1).expand(n) if t.numel() == 1 else t


def _direction(log_g: Tensor, log_u: Tensor | None, tau: Tensor) -> Tensor:
    """``tau * (log u + g / u - 1)``, or ``tau * log g`` without an estimate."""
    if log_u is None:
        return tau * log_g
    log_u = log_u.to(torch.float64)
    return tau * (log_u + torch.exp(log_g - log_u) - 1.0)


def _single(x: Tensor, y: Tensor, *others: float | Tensor | None) -> Tensor:
    """The loss of a one-item batch (no negative): zero, connected to every tensor input."""
    zero = 0.0 * (x * y).sum(1)
    for t in others:
        if isinstance(t, Tensor):
            zero = zero + 0.0 * t.to(torch.float64).sum()
    return zero


def _reduce(per_item: Tensor, reduction: str) -> Tensor:
    """``"none"`` / ``"sum"`` / ``"mean"`` over items (one item: its zero)."""
    if reduction == "none":
        return per_item
    if reduction == "sum":
        return per_item.sum()
    if per_item.shape[0] == 1:
        return per_item.sum()
    return per_item.mean()


def _unimodal(
    z1: Tensor,
    z2: Tensor,
    log_u1: Tensor | None,
    log_u2: Tensor | None,
    temperature: float | Tensor,
    rho: float,
    normalize: bool,
    reduction: str,
) -> Tensor:
    a, b = _embed64(z1, z2, normalize)
    n = a.shape[0]
    if n == 1:
        return _reduce(_single(a, b, log_u1, log_u2, temperature), reduction)
    tau = _per_row(temperature, n)
    k = 2 * (n - 1)
    terms = []
    for i in range(n):
        positive = a[i] @ b[i]
        item = 2.0 * rho * tau[i] - 2.0 * positive
        for view, log_u in ((a, log_u1), (b, log_u2)):
            anchor = view[i]
            others = [j for j in range(n) if j != i]
            negatives = torch.stack(  # s(z^v_i, z) for the 2(N - 1) other rows of both views
                [anchor @ a[j] for j in others] + [anchor @ b[j] for j in others]
            )
            log_g = torch.logsumexp(negatives / tau[i], dim=0) - math.log(k)
            item = item + _direction(log_g, None if log_u is None else log_u[i], tau[i])
        terms.append(item)
    return _reduce(torch.stack(terms), reduction)


def sogclr(
    z1: Tensor,
    z2: Tensor,
    *,
    log_u1: Tensor | None = None,
    log_u2: Tensor | None = None,
    temperature: float | Tensor = 0.1,
    normalize: bool = True,
    reduction: str = "mean",
) -> Tensor:
    """SogCLR's loss of two views at given estimates ``log_u1`` / ``log_u2``, in float64.

    For item ``i`` and view ``v``, the negatives are the other rows of both views
    (``K = 2(N - 1)`` of them), ``g = mean_z exp(<z^v_i, z> / tau)`` and the item's loss is
    ``sum_v [tau (log u^v_i + g / u^v_i - 1)] - 2 <z1_i, z2_i>``.

    Args:
        z1: First views, shape (N, D).
        z2: Second views, shape (N, D).
        log_u1: (N,) log-estimates of the z1 anchors, or None (the batch's own ``g``).
        log_u2: (N,) log-estimates of the z2 anchors, or None.
        temperature: tau.
        normalize: L2-normalize rows first.
        reduction: ``"mean"`` (over items), ``"sum"`` or ``"none"`` (shape (N,)).
    """
    return _unimodal(z1, z2, log_u1, log_u2, temperature, 0.0, normalize, reduction)


def isogclr(
    z1: Tensor,
    z2: Tensor,
    *,
    temperature: float | Tensor = 0.1,
    log_u1: Tensor | None = None,
    log_u2: Tensor | None = None,
    rho: float = 0.3,
    normalize: bool = True,
    reduction: str = "mean",
) -> Tensor:
    """iSogCLR: :func:`sogclr` with a temperature per item and ``+ rho * tau_i`` per view.

    Args:
        z1: First views, shape (N, D).
        z2: Second views, shape (N, D).
        temperature: (N,) temperatures, or one shared scalar.
        log_u1: (N,) log-estimates of the z1 anchors, or None.
        log_u2: (N,) log-estimates of the z2 anchors, or None.
        rho: Weight of the robust term.
        normalize: L2-normalize rows first.
        reduction: ``"mean"``, ``"sum"`` or ``"none"``.
    """
    return _unimodal(z1, z2, log_u1, log_u2, temperature, rho, normalize, reduction)


def sogclr_bimodal(
    image: Tensor,
    text: Tensor,
    *,
    log_u_image: Tensor | None = None,
    log_u_text: Tensor | None = None,
    temperature_image: float | Tensor = 0.01,
    temperature_text: float | Tensor = 0.01,
    rho: float = 0.0,
    normalize: bool = True,
    reduction: str = "mean",
) -> Tensor:
    """The image-text form (LibAUC GCLoss_v2) at given estimates, in float64.

    Image anchor ``i``: ``G = mean_{j != i} exp((<x_i, t_j> - <x_i, t_i>) / tau_i)`` over the
    other texts; text anchor ``i`` likewise over the other images with ``tau'_i``. The item's
    loss is the two directions' ``tau (log U + G / U - 1)`` plus ``rho (tau_i + tau'_i)``.

    Args:
        image: Shape (N, D).
        text: Shape (N, D).
        log_u_image: (N,) log-estimates of the image anchors, or None.
        log_u_text: (N,) log-estimates of the text anchors, or None.
        temperature_image: (N,) or scalar tau of the image anchors.
        temperature_text: (N,) or scalar tau of the text anchors.
        rho: Weight of the robust term.
        normalize: L2-normalize rows first.
        reduction: ``"mean"``, ``"sum"`` or ``"none"``.
    """
    x, t = _embed64(image, text, normalize)
    n = x.shape[0]
    if n == 1:
        single = _single(x, t, log_u_image, log_u_text, temperature_image, temperature_text)
        return _reduce(single, reduction)
    tau_x, tau_t = _per_row(temperature_image, n), _per_row(temperature_text, n)
    terms = []
    for i in range(n):
        positive = x[i] @ t[i]
        item = rho * (tau_x[i] + tau_t[i])
        for anchor, others, tau, log_u in (
            (x[i], t, tau_x[i], log_u_image),
            (t[i], x, tau_t[i], log_u_text),
        ):
            h = torch.stack([anchor @ others[j] - positive for j in range(n) if j != i])
            log_g = torch.logsumexp(h / tau, dim=0) - math.log(n - 1)
            item = item + _direction(log_g, None if log_u is None else log_u[i], tau)
        terms.append(item)
    return _reduce(torch.stack(terms), reduction)
