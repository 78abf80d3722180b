r"""SogCLR and iSogCLR: the global contrastive loss with per-sample moving-average estimates.

SogCLR optimizes, for every sample :math:`x_i` of the dataset (not only of the batch),

.. math::

    F = \frac{1}{n} \sum_i \tau \log \mathbb{E}_{z \in S_i^-}
        \exp\Big(\frac{s(x_i, z) - s(x_i, x_i')}{\tau}\Big)

whose inner expectation over all negatives is estimated by a per-sample moving average
:math:`u_i \leftarrow (1 - \gamma) u_i + \gamma g_i` of the mini-batch estimates :math:`g_i`, and
the gradient uses :math:`\tau \nabla g_i / u_i` (the gradient of :math:`\tau \log g_i` with the
denominator replaced by the running estimate). iSogCLR adds a temperature per sample learned by
a distributionally robust objective (:math:`+\rho \tau_i`, manual momentum steps on
:math:`\tau_i`).

Three losses live here, each as a pure functional form and a stateful module:

- :func:`sogclr` / :class:`SogCLRLoss`: two views, global temperature (LibAUC ``GCLoss_v1``);
- :func:`isogclr` / :class:`ISogCLRLoss`: two views, per-sample learned temperatures
  (``GCLoss_v1(enable_isogclr=True)``);
- :func:`sogclr_bimodal` / :class:`SogCLRBimodalLoss`: image-text pairs, one estimate (and
  optionally one learned temperature) per sample and modality (``GCLoss_v2``).

**Functional = module minus the state.** The functional forms take the estimates
:math:`\log u` as tensors and treat them as constants; the loss per direction is the
linearization of :math:`\tau \log(\cdot)` at :math:`u`, evaluated at the batch estimate
:math:`g`:

.. math::

    \tau \big(\log u + g / u - 1\big)

Its value is the objective's estimate :math:`\tau \log u` plus the first-order correction
(exactly :math:`\tau \log g` when :math:`u = g`), and its gradient is
:math:`\tau \nabla g / u`, SogCLR's gradient. Without estimates (``None``) the functional is the
plain mini-batch objective :math:`\tau \log g`. Each module call computes
:math:`\log u_{new}` from its buffers and the batch (detached), returns the functional at
those estimates, and then writes the new state. So
``module(z1, z2, index) == sogclr(z1, z2, log_u1=L1, log_u2=L2)`` where ``L1``, ``L2`` are the
moving averages the module computes (see :class:`SogCLRLoss`).

**Equality with LibAUC** (``tests/peers/test_vs_libauc.py``): for ``GCLoss_v1`` the gradients
w.r.t. the embeddings and the state after every step (estimates, temperatures and their momentum)
are equal step for step, including LibAUC's first-visit rule and repeated indices. LibAUC
returns a surrogate whose value is not the objective; here the value is the estimate above.
``GCLoss_v2`` has the same state, and its gradient is ``(B - 1) / 2`` times ours (it sums, rather
than averages, over the ``B - 1`` negatives and halves the two directions).

Deviations from LibAUC, all documented where they apply:

- the state is kept in log space (no overflow at small temperatures), so LibAUC's clamps of tiny
  estimates (``1e-8`` in ``GCLoss_v1``'s weights, ``1e-20`` on ``GCLoss_v2``'s max-shifted
  estimate) are not reproduced. They matter only when an estimate falls below them: never in
  ``GCLoss_v1`` unless nearly all negatives are antipodal at ``tau ~ 0.05``, but in
  ``GCLoss_v2`` whenever a positive beats every negative by more than about ``46 tau`` (0.46 at
  its default ``tau = 0.01``), where LibAUC's clamp all but removes that anchor's negative
  gradient and we keep the exact one;
- a repeated index in a batch: the last occurrence writes the state (what LibAUC's indexed
  assignment does on CPU, made deterministic);
- a batch with a single item has no negative: it contributes zero and leaves the state alone
  (LibAUC returns NaN);
- the state is updated only in training mode (``module.train()``, the default), so evaluation
  passes do not move it;
- under ``gather_distributed`` every rank updates its (identical) state from the gathered global
  batch, and the first-visit rule looks at the global batch (LibAUC decides per rank);
- only the constant-``gamma`` schedule exists, with the first-visit rule always on (LibAUC's
  ``adjust_gamma(epoch >= 1)`` turns its rule off); assign ``loss.gamma`` between epochs for
  another schedule. ``first_visit="row"`` (an option, not LibAUC's rule) starts each new sample
  at its own batch estimate, whatever the rest of the batch.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
from torch import Tensor, nn

from contrastkit import core
from contrastkit.core import PairMask
from contrastkit.core import validation as v
from contrastkit.core.pairmap import pair_reduce
from contrastkit.core.validation import Impl, Reduction
from contrastkit.distributed import ProcessGroup, Shard, shard
from contrastkit.losses._base import ContrastiveLoss, Paper, Requires
from contrastkit.losses._inputs import (
    check_common,
    finish,
    gathered,
    prepare_pair,
    requires_grad,
)

FirstVisit = Literal["batch", "row"]

_FAMILY = "C. decoupled denominators"
_SOGCLR = Paper(
    "Yuan et al.",
    2022,
    "2202.12387",
    "Provable Stochastic Optimization for Global Contrastive Learning (SogCLR)",
)
_ISOGCLR = Paper(
    "Qiu et al.",
    2023,
    "2305.11965",
    "Not All Semantics are Created Equal: Automatic Temperature Individualization (iSogCLR)",
)


# --------------------------------------------------------------------------- checks


def _check_rows(name: str, x: object, n: int, *, positive: bool = False) -> Tensor:
    """Check a per-row float tensor of shape ``(n,)`` (finite; ``> 0`` if ``positive``)."""
    if not isinstance(x, Tensor):
        raise ValueError(f"`{name}` must be a tensor of shape ({n},); got {type(x).__name__}.")
    if x.shape != (n,):
        raise ValueError(
            f"`{name}` must have shape ({n},), one value per row of the batch; got shape "
            f"{tuple(x.shape)}."
        )
    if not x.is_floating_point():
        raise ValueError(f"`{name}` must be floating point; got dtype {x.dtype}. Use x.float().")
    if not bool(torch.isfinite(x).all()):
        hint = (
            "temperatures must be finite numbers > 0."
            if positive
            else "a sample without an estimate yet has none: pass None to use the batch's own "
            "estimate (or use the module form, which handles first visits)."
        )
        raise ValueError(f"`{name}` contains non-finite values; {hint}")
    if positive and not bool((x > 0).all()):
        raise ValueError(
            f"`{name}` must be > 0 everywhere; got a minimum of {float(x.min())}. Typical "
            "temperatures are 0.01 to 0.7."
        )
    return x


def _check_temperature(name: str, value: float | Tensor, n: int) -> bool:
    """Check a temperature that is a scalar or one per row; return whether it is per row."""
    if isinstance(value, Tensor) and value.numel() != 1:
        if value.dim() != 1 or value.shape[0] != n:
            raise ValueError(
                f"`{name}` must be a float, a 0-dim tensor or one temperature per row with "
                f"shape ({n},); got shape {tuple(value.shape)}."
            )
        _check_rows(name, value, n, positive=True)
        return True
    v.check_temperature(name, value)
    return False


def _check_index(index: object, n: int, num_samples: int) -> Tensor:
    """Check dataset indices: integer, shape ``(n,)``, values in ``[0, num_samples)``."""
    if not isinstance(index, Tensor):
        raise ValueError(
            f"`index` must be a torch.Tensor of dataset indices with shape ({n},); got "
            f"{type(index).__name__}."
        )
    if index.dim() != 1 or index.shape[0] != n:
        raise ValueError(
            f"`index` must have shape ({n},), the dataset index of each row of the batch; got "
            f"shape {tuple(index.shape)}."
        )
    if index.is_floating_point() or index.is_complex() or index.dtype == torch.bool:
        raise ValueError(
            f"`index` must hold integer dataset indices; got dtype {index.dtype}. Use index.long()."
        )
    lo, hi = int(index.min()), int(index.max())
    if lo < 0 or hi >= num_samples:
        raise ValueError(
            f"`index` must hold dataset indices in [0, num_samples) = [0, {num_samples}); got "
            f"values from {lo} to {hi}. Pass each sample's position in the dataset, and set "
            "num_samples to the dataset size."
        )
    return index.long()


def _check_state_options(
    num_samples: int, temperature: float, gamma: float, first_visit: FirstVisit, dtype: object
) -> None:
    v.check_int("num_samples", num_samples, 1)
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise ValueError(
            f"`dtype` (of the state) must be a floating torch.dtype such as torch.float32; got "
            f"{dtype!r}."
        )
    v.check_temperature("temperature", temperature)
    v.check_positive_float("gamma", gamma)
    if gamma > 1.0:
        raise ValueError(
            f"`gamma` must be in (0, 1] (the weight of the new batch estimate); got {gamma}."
        )
    v.check_choice("first_visit", first_visit, ("batch", "row"))


def _check_tau_options(rho: float, eta: float, tau_min: float, tau_max: float, beta: float) -> None:
    v.check_nonnegative_float("rho", rho)
    v.check_positive_float("eta", eta)
    v.check_positive_float("tau_min", tau_min)
    v.check_positive_float("tau_max", tau_max)
    if tau_min > tau_max:
        raise ValueError(f"`tau_min` ({tau_min}) must not exceed `tau_max` ({tau_max}).")
    v.check_positive_float("beta", beta)
    if beta > 1.0:
        raise ValueError(f"`beta` must be in (0, 1] (the momentum weight); got {beta}.")


# --------------------------------------------------------------------------- maths


def _as_rows(value: float | Tensor, like: Tensor, n: int) -> Tensor:
    """A temperature as a ``(n,)`` tensor on ``like``'s device and dtype (keeps autograd)."""
    t = value if isinstance(value, Tensor) else torch.tensor(float(value))
    t = t.to(device=like.device, dtype=like.dtype)
    return t.reshape(-1).expand(n) if t.numel() == 1 else t


def _unimodal_lse(
    a: Tensor, b: Tensor, tau: Tensor, chunk_size: int | None, impl: Impl
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    r"""Log-sum-exp of :math:`s / \tau_i` over the ``2(N - 1)`` negatives of each view.

    Returns:
        ``(lse (2N,), anchors, candidates, items)``: anchors ``[a; b] / tau`` and candidates
        ``[a; b]``; pairs of the same item are excluded.
    """
    n = a.shape[0]
    anchors = torch.cat([a, b]) / tau.repeat(2)[:, None]
    candidates = torch.cat([a, b])
    items = torch.arange(n, device=a.device).repeat(2)
    mask = PairMask(row_groups=items, col_groups=items, groups="different")
    one = core.as_scale(1.0, a)
    lse, _ = core.logsumexp(anchors, candidates, one, mask=mask, chunk_size=chunk_size, impl=impl)
    return lse, anchors, candidates, items


def _cross_lse(
    a: Tensor, b: Tensor, tau: Tensor, chunk_size: int | None, impl: Impl
) -> tuple[Tensor, Tensor]:
    r"""Log-sum-exp of :math:`\langle a_i, b_j \rangle / \tau_i` over :math:`j \ne i`."""
    anchors = a / tau[:, None]
    mask = PairMask(exclude_self=True)
    one = core.as_scale(1.0, a)
    lse, _ = core.logsumexp(anchors, b, one, mask=mask, chunk_size=chunk_size, impl=impl)
    return lse, anchors


def _linearized(log_g: Tensor, log_u: Tensor | None, tau: Tensor) -> Tensor:
    r""":math:`\tau (\log u + g / u - 1)`, or :math:`\tau \log g` without an estimate."""
    if log_u is None:
        return tau * log_g
    return tau * (log_u + torch.exp(log_g - log_u) - 1.0)


def _softmax_mean(
    anchors: Tensor,
    lse: Tensor,
    candidates: Tensor,
    row_groups: Tensor,
    col_groups: Tensor,
    chunk_size: int | None,
    impl: Impl,
) -> Tensor:
    r""":math:`\sum_j \operatorname{softmax}_j(s_{ij}) s_{ij}` over pairs of different groups.

    ``s = anchors @ candidates.T`` (already divided by the temperatures). No gradient.
    """

    def weighted(
        r: list[Tensor], c: list[Tensor], p: list[Tensor], ri: Tensor, ci: Tensor
    ) -> Tensor:
        s = r[0] @ c[0].T
        keep = r[2][:, None] != c[1][None, :]
        weight = torch.exp(torch.where(keep, s - r[1][:, None], -math.inf))
        return weight * torch.where(keep, s, 0.0)

    with torch.no_grad():
        out, _ = pair_reduce(
            weighted,
            [anchors.detach(), lse.detach(), row_groups],
            [candidates.detach(), col_groups],
            chunk_size=chunk_size,
            impl=impl,
        )
    return out


def _tau_gradient(log_u: Tensor, log_g: Tensor, mean_score: Tensor, rho: float) -> Tensor:
    r"""LibAUC's temperature gradient :math:`\log u + \rho - (g / u) \mathbb{E}_p[s / \tau]`."""
    return log_u + rho - torch.exp(log_g - log_u) * mean_score


def _moving_average(stored: Tensor, log_g: Tensor, gamma: float, first_visit: FirstVisit) -> Tensor:
    r""":math:`\log((1 - \gamma) u + \gamma g)` with :math:`\gamma = 1` on first visits.

    ``stored`` is ``-inf`` for samples never visited. ``"batch"`` (LibAUC) uses
    :math:`\gamma = 1` for the whole batch when none of its samples was visited, else ``gamma``
    for every row (an unvisited row then gets :math:`\gamma g`); ``"row"`` decides per row.
    """
    fresh = torch.isneginf(stored)
    if first_visit == "batch":
        fresh = fresh.all().expand_as(fresh)
    weight = torch.full_like(stored, gamma).masked_fill(fresh, 1.0)
    return torch.logaddexp(torch.log1p(-weight) + stored, torch.log(weight) + log_g)


def _last_rows(index: Tensor) -> Tensor:
    """Positions of the last occurrence of each value of ``index`` (the row that writes)."""
    uniq, inverse = torch.unique(index, return_inverse=True)
    pos = torch.arange(index.numel(), device=index.device)
    last = torch.full(uniq.shape, -1, dtype=pos.dtype, device=index.device)
    return last.scatter_reduce(0, inverse, pos, "amax")


def _write(buffer: Tensor, index: Tensor, rows: Tensor, values: Tensor) -> None:
    """``buffer[index[rows]] = values[rows]`` (rows: one per distinct index)."""
    buffer[index[rows]] = values[rows].to(buffer.dtype)


def _gather_optional(sh: Shard | None, name: str, x: Tensor | None) -> Tensor | None:
    """``gathered`` for an optional per-row input."""
    return None if x is None else gathered(sh, name, x)


def _follow(module: nn.Module, device: torch.device) -> None:
    """Move the module's buffers to ``device`` if they live elsewhere."""
    for name, buf in list(module.named_buffers(recurse=False)):
        if buf.device != device:
            setattr(module, name, buf.to(device))


def _unimodal_rows(
    lse: Tensor,
    pos: Tensor,
    log_u1: Tensor | None,
    log_u2: Tensor | None,
    tau: Tensor,
    rho: float,
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Per-item loss (both views summed), validity, and the batch estimates ``log g``."""
    n = pos.shape[0]
    valid = torch.isfinite(lse[:n]) & torch.isfinite(lse[n:])  # N = 1: no negative
    log_g = torch.where(torch.isfinite(lse), lse, 0.0) - math.log(max(2 * (n - 1), 1))
    g1, g2 = log_g[:n], log_g[n:]
    per_row = _linearized(g1, log_u1, tau) + _linearized(g2, log_u2, tau) - 2.0 * pos
    if rho:
        per_row = per_row + 2.0 * rho * tau
    return per_row, valid, g1, g2


def _bimodal_rows(
    lse_i: Tensor,
    lse_t: Tensor,
    pos: Tensor,
    log_u_i: Tensor | None,
    log_u_t: Tensor | None,
    tau_i: Tensor,
    tau_t: Tensor,
    rho: float,
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Per-pair loss (both directions summed), validity, and the batch estimates ``log G``."""
    n = pos.shape[0]
    valid = torch.isfinite(lse_i) & torch.isfinite(lse_t)
    log_m = math.log(max(n - 1, 1))
    g_i = torch.where(valid, lse_i, 0.0) - log_m - pos / tau_i
    g_t = torch.where(valid, lse_t, 0.0) - log_m - pos / tau_t
    per_row = _linearized(g_i, log_u_i, tau_i) + _linearized(g_t, log_u_t, tau_t)
    if rho:
        per_row = per_row + rho * (tau_i + tau_t)
    return per_row, valid, g_i, g_t


# --------------------------------------------------------------------------- functional forms


def _unimodal(
    z1: Tensor,
    z2: Tensor,
    log_u1: Tensor | None,
    log_u2: Tensor | None,
    temperature: float | Tensor,
    rho: float,
    normalize: bool,
    reduction: Reduction,
    chunk_size: int | None,
    impl: Impl,
    gather_distributed: bool,
    process_group: ProcessGroup | None,
    per_row_allowed: bool,
) -> Tensor:
    def check() -> tuple[Tensor, Tensor, Tensor | None, Tensor | None, Tensor | None]:
        check_common(reduction, chunk_size, impl)
        v.check_nonnegative_float("rho", rho)
        a, b = prepare_pair("z1", z1, "z2", z2, normalize=normalize, same_batch=True)
        n = a.shape[0]
        if per_row_allowed:
            per_row = _check_temperature("temperature", temperature, n)
        else:
            v.check_temperature("temperature", temperature)
            per_row = False
        lu1 = None if log_u1 is None else _check_rows("log_u1", log_u1, n).to(a)
        lu2 = None if log_u2 is None else _check_rows("log_u2", log_u2, n).to(a)
        tau = temperature.to(a) if per_row and isinstance(temperature, Tensor) else None
        return a, b, lu1, lu2, tau

    (a, b, lu1, lu2, tau_rows), sh = shard(
        gather_distributed,
        process_group,
        check,
        lambda r: {"z1": r[0], "z2": r[1], "log_u1": r[2], "log_u2": r[3], "temperature": r[4]},
        {"reduction": reduction, "rho": rho, "temperature_grad": requires_grad(temperature)},
    )
    a, b = gathered(sh, "z1", a), gathered(sh, "z2", b)
    lu1, lu2 = _gather_optional(sh, "log_u1", lu1), _gather_optional(sh, "log_u2", lu2)
    n = a.shape[0]
    tau = _gather_optional(sh, "temperature", tau_rows)
    tau = _as_rows(temperature if tau is None else tau, a, n)
    lse, _, _, _ = _unimodal_lse(a, b, tau, chunk_size, impl)
    pos = (a * b).sum(1)
    per_row, valid, _, _ = _unimodal_rows(lse, pos, lu1, lu2, tau, rho)
    return finish(per_row, reduction, sh, "z1", valid=valid)


def sogclr(
    z1: Tensor,
    z2: Tensor,
    *,
    log_u1: Tensor | None = None,
    log_u2: Tensor | None = None,
    temperature: float | Tensor = 0.1,
    normalize: bool = True,
    reduction: Reduction = "mean",
    chunk_size: int | None = None,
    impl: Impl = "auto",
    gather_distributed: bool = False,
    process_group: ProcessGroup | None = None,
) -> Tensor:
    r"""SogCLR's global contrastive loss for two views, at given denominator estimates.

    For the anchor :math:`z^1_i` the negatives are the ``K = 2(N - 1)`` other rows of both views,
    :math:`S_i = \{z^1_j, z^2_j : j \ne i\}` (the positive is not among them). With
    :math:`s(x, y) = \langle x, y \rangle` (cosine when normalizing),

    .. math::

        g^1_i = \frac{1}{K} \sum_{z \in S_i} e^{s(z^1_i, z) / \tau}, \qquad
        \ell^1_i = \tau \Big(\log u^1_i + \frac{g^1_i}{u^1_i} - 1\Big) - s(z^1_i, z^2_i)

    and :math:`\ell^2_i` the same for the anchor :math:`z^2_i`; the loss of item :math:`i` is
    :math:`\ell^1_i + \ell^2_i` (the directions are summed, as in LibAUC) and the mean is over
    items. :math:`u` are the moving-average estimates of :math:`g` kept by
    :class:`SogCLRLoss` and passed here as constants: the gradient is SogCLR's
    :math:`(\tau / u^1_i) \nabla g^1_i - \nabla s(z^1_i, z^2_i)` and the value the objective's
    estimate :math:`\tau \log u^1_i - s(z^1_i, z^2_i)` plus its first-order correction. With
    ``log_u1=None`` (the default), :math:`u^1 = g^1`: the mini-batch objective
    :math:`\tau \log \frac{1}{K} \sum_{z \in S_i} e^{(s(z^1_i, z) - s(z^1_i, z^2_i)) / \tau}`.

    The log-sum-exp over negatives is tiled (no ``2N x 2N`` matrix). A batch of one item has no
    negative: it contributes zero and the mean is 0.

    Args:
        z1: First views, shape ``(N, D)``.
        z2: Second views, shape ``(N, D)``.
        log_u1: Shape ``(N,)``, :math:`\log u^1`, the estimates for the anchors ``z1`` (finite;
            constants by intent, differentiable if they require grad); ``None``: :math:`g^1`.
        log_u2: Shape ``(N,)``, :math:`\log u^2` for the anchors ``z2``; ``None``: :math:`g^2`.
        temperature: :math:`\tau > 0`, a float or a 0-dim tensor (may require grad).
        normalize: L2-normalize first (LibAUC does).
        reduction: ``"mean"``, ``"sum"`` or ``"none"`` (shape ``(N,)``,
            :math:`\ell^1_i + \ell^2_i`).
        chunk_size: Rows and columns per tile; ``None`` chooses.
        impl: ``"auto"``, ``"dense"`` or ``"tiled"``.
        gather_distributed: Loss of the global batch over all ranks (every rank evaluates the
            gathered batch; ``log_u1`` / ``log_u2`` are gathered with the rows); see
            :mod:`contrastkit.distributed`.
        process_group: The group to gather over; ``None`` is the default group.

    Example:
        >>> import torch
        >>> z1, z2 = torch.randn(4, 8), torch.randn(4, 8)
        >>> sogclr(z1, z2).shape, sogclr(z1, z2, log_u1=torch.zeros(4), log_u2=torch.zeros(4)).shape
        (torch.Size([]), torch.Size([]))

    References:
        Yuan et al., 2022, "Provable Stochastic Optimization for Global Contrastive Learning:
        Small Batch Does Not Harm Performance", arXiv:2202.12387.

    Peers: ``libauc.losses.GCLoss_v1`` (gradients; see the module docstring).
    """
    return _unimodal(
        z1,
        z2,
        log_u1,
        log_u2,
        temperature,
        0.0,
        normalize,
        reduction,
        chunk_size,
        impl,
        gather_distributed,
        process_group,
        per_row_allowed=False,
    )


def isogclr(
    z1: Tensor,
    z2: Tensor,
    *,
    temperature: float | Tensor = 0.1,
    log_u1: Tensor | None = None,
    log_u2: Tensor | None = None,
    rho: float = 0.3,
    normalize: bool = True,
    reduction: Reduction = "mean",
    chunk_size: int | None = None,
    impl: Impl = "auto",
    gather_distributed: bool = False,
    process_group: ProcessGroup | None = None,
) -> Tensor:
    r"""Robust global contrastive loss of iSogCLR: :func:`sogclr` with per-item temperatures.

    Item :math:`i` has its own temperature :math:`\tau_i` (both of its views use it), and the
    distributionally robust objective adds :math:`\rho \tau_i` per direction:

    .. math::

        \ell_i = \sum_{v=1,2} \Big[\tau_i \Big(\log u^v_i + \frac{g^v_i}{u^v_i} - 1\Big)
                 - s(z^1_i, z^2_i) + \rho \tau_i\Big], \qquad
        g^v_i = \frac{1}{K} \sum_{z \in S_i} e^{s(z^v_i, z) / \tau_i}

    with :math:`S_i` and :math:`K = 2(N - 1)` as in :func:`sogclr`. The value is the estimate of
    :math:`\tau_i \log \mathbb{E}_{z \in S_i} e^{h_i(z) / \tau_i} + \rho \tau_i` summed over the
    two views; the gradient w.r.t. the embeddings is that of :func:`sogclr` at temperatures
    :math:`\tau_i`. :class:`ISogCLRLoss` learns :math:`\tau_i` with LibAUC's manual momentum
    steps, not with the autograd gradient of this function (whose temperature derivative differs
    from LibAUC's by :math:`g / u - 1` per view, zero when :math:`u = g`).

    Args:
        z1: First views, shape ``(N, D)``.
        z2: Second views, shape ``(N, D)``.
        temperature: :math:`\tau`: shape ``(N,)`` (one per item, > 0), or a float / 0-dim
            tensor shared by all; may require grad.
        log_u1: Shape ``(N,)``, :math:`\log u^1` (estimates for anchors ``z1``); ``None``:
            :math:`g^1`.
        log_u2: Shape ``(N,)``, :math:`\log u^2`; ``None``: :math:`g^2`.
        rho: :math:`\rho \ge 0` of the robust objective (adds :math:`2 \rho \tau_i`).
        normalize: L2-normalize first.
        reduction: ``"mean"``, ``"sum"`` or ``"none"`` (shape ``(N,)``).
        chunk_size: Rows and columns per tile; ``None`` chooses.
        impl: ``"auto"``, ``"dense"`` or ``"tiled"``.
        gather_distributed: Loss of the global batch over all ranks (per-row tensors are
            gathered with the rows); see :mod:`contrastkit.distributed`.
        process_group: The group to gather over; ``None`` is the default group.

    Example:
        >>> import torch
        >>> z1, z2 = torch.randn(4, 8), torch.randn(4, 8)
        >>> isogclr(z1, z2, temperature=torch.tensor([0.1, 0.2, 0.1, 0.3])).shape
        torch.Size([])

    References:
        Qiu et al., 2023, "Not All Semantics are Created Equal: Contrastive Self-supervised
        Learning with Automatic Temperature Individualization", arXiv:2305.11965.

    Peers: ``libauc.losses.GCLoss_v1(enable_isogclr=True)`` (gradients and temperatures).
    """
    return _unimodal(
        z1,
        z2,
        log_u1,
        log_u2,
        temperature,
        rho,
        normalize,
        reduction,
        chunk_size,
        impl,
        gather_distributed,
        process_group,
        per_row_allowed=True,
    )


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
    reduction: Reduction = "mean",
    chunk_size: int | None = None,
    impl: Impl = "auto",
    gather_distributed: bool = False,
    process_group: ProcessGroup | None = None,
) -> Tensor:
    r"""SogCLR / iSogCLR for image-text pairs (LibAUC's ``GCLoss_v2``), at given estimates.

    Image :math:`x_i` and text :math:`t_i` form pair :math:`i`; the negatives of an image are the
    ``N - 1`` other texts and vice versa. With :math:`s_{ij} = \langle x_i, t_j \rangle` and
    :math:`h_{ij} = s_{ij} - s_{ii}`,

    .. math::

        G^x_i = \frac{1}{N - 1} \sum_{j \ne i} e^{h_{ij} / \tau_i}, \qquad
        G^t_i = \frac{1}{N - 1} \sum_{j \ne i} e^{h_{ji}' / \tau'_i}, \quad
        h'_{ji} = s_{ji} - s_{ii}

    .. math::

        \ell_i = \tau_i \Big(\log U^x_i + \frac{G^x_i}{U^x_i} - 1\Big)
               + \tau'_i \Big(\log U^t_i + \frac{G^t_i}{U^t_i} - 1\Big)
               + \rho (\tau_i + \tau'_i)

    :math:`U` estimate :math:`G` (here the estimated quantity includes the positive, as in
    ``GCLoss_v2``: it is :math:`\mathbb{E}\, e^{h / \tau}`, not :math:`\mathbb{E}\, e^{s / \tau}`).
    With ``None`` estimates this is the mini-batch objective
    :math:`\tau_i \log G^x_i + \tau'_i \log G^t_i (+ \rho(\tau_i + \tau'_i))`. The gradient of
    ``GCLoss_v2`` is ``(N - 1) / 2`` times the gradient of the mean of :math:`\ell_i` (it sums over
    the negatives and averages the two directions).

    Args:
        image: Shape ``(N, D)``.
        text: Shape ``(N, D)``; row ``i`` pairs with ``image[i]``.
        log_u_image: Shape ``(N,)``, :math:`\log U^x` (image anchors); ``None``: :math:`G^x`.
        log_u_text: Shape ``(N,)``, :math:`\log U^t` (text anchors); ``None``: :math:`G^t`.
        temperature_image: :math:`\tau`, shape ``(N,)`` or a float / 0-dim tensor (> 0).
        temperature_text: :math:`\tau'`, shape ``(N,)`` or a float / 0-dim tensor (> 0).
        rho: :math:`\rho \ge 0`; iSogCLR's robust term (LibAUC's default there is 6.0).
        normalize: L2-normalize first (``GCLoss_v2`` expects normalized features and does not
            normalize).
        reduction: ``"mean"``, ``"sum"`` or ``"none"`` (shape ``(N,)``).
        chunk_size: Rows and columns per tile; ``None`` chooses.
        impl: ``"auto"``, ``"dense"`` or ``"tiled"``.
        gather_distributed: Loss of the global batch over all ranks (per-row tensors are
            gathered with the rows); see :mod:`contrastkit.distributed`.
        process_group: The group to gather over; ``None`` is the default group.

    Example:
        >>> import torch
        >>> sogclr_bimodal(torch.randn(4, 8), torch.randn(4, 8)).shape
        torch.Size([])

    References:
        Qiu et al., 2023, arXiv:2305.11965; Yuan et al., 2022, arXiv:2202.12387.

    Peers: ``libauc.losses.GCLoss_v2`` (gradients up to the factor above, state).
    """

    def check() -> tuple[
        Tensor, Tensor, Tensor | None, Tensor | None, Tensor | None, Tensor | None
    ]:
        check_common(reduction, chunk_size, impl)
        v.check_nonnegative_float("rho", rho)
        x, y = prepare_pair("image", image, "text", text, normalize=normalize, same_batch=True)
        n = x.shape[0]
        rows_i = _check_temperature("temperature_image", temperature_image, n)
        rows_t = _check_temperature("temperature_text", temperature_text, n)
        lu_i = None if log_u_image is None else _check_rows("log_u_image", log_u_image, n).to(x)
        lu_t = None if log_u_text is None else _check_rows("log_u_text", log_u_text, n).to(x)
        ti = temperature_image.to(x) if rows_i and isinstance(temperature_image, Tensor) else None
        tt = temperature_text.to(x) if rows_t and isinstance(temperature_text, Tensor) else None
        return x, y, lu_i, lu_t, ti, tt

    (x, y, lu_i, lu_t, ti, tt), sh = shard(
        gather_distributed,
        process_group,
        check,
        lambda r: {
            "image": r[0],
            "text": r[1],
            "log_u_image": r[2],
            "log_u_text": r[3],
            "temperature_image": r[4],
            "temperature_text": r[5],
        },
        {
            "reduction": reduction,
            "rho": rho,
            "temperature_grad": (requires_grad(temperature_image), requires_grad(temperature_text)),
        },
    )
    x, y = gathered(sh, "image", x), gathered(sh, "text", y)
    lu_i = _gather_optional(sh, "log_u_image", lu_i)
    lu_t = _gather_optional(sh, "log_u_text", lu_t)
    n = x.shape[0]
    ti = _gather_optional(sh, "temperature_image", ti)
    tt = _gather_optional(sh, "temperature_text", tt)
    tau_i = _as_rows(temperature_image if ti is None else ti, x, n)
    tau_t = _as_rows(temperature_text if tt is None else tt, x, n)
    lse_i, _ = _cross_lse(x, y, tau_i, chunk_size, impl)
    lse_t, _ = _cross_lse(y, x, tau_t, chunk_size, impl)
    pos = (x * y).sum(1)
    per_row, valid, _, _ = _bimodal_rows(lse_i, lse_t, pos, lu_i, lu_t, tau_i, tau_t, rho)
    return finish(per_row, reduction, sh, "image", valid=valid)


# --------------------------------------------------------------------------- modules


def _prepare_step(
    names: tuple[str, str],
    x: Tensor,
    y: Tensor,
    index: Tensor,
    num_samples: int,
    normalize: bool,
    reduction: Reduction,
    training: bool,
    gather_distributed: bool,
    process_group: ProcessGroup | None,
) -> tuple[Tensor, Tensor, Tensor, Shard | None]:
    """Validate a module call, gather embeddings and indices of every rank."""

    def check() -> tuple[Tensor, Tensor, Tensor]:
        a, b = prepare_pair(names[0], x, names[1], y, normalize=normalize, same_batch=True)
        return a, b, _check_index(index, a.shape[0], num_samples).to(a.device)

    (a, b, idx), sh = shard(
        gather_distributed,
        process_group,
        check,
        lambda r: {names[0]: r[0], names[1]: r[1], "index": r[2]},
        {"reduction": reduction, "training": training, "num_samples": num_samples},
    )
    return gathered(sh, names[0], a), gathered(sh, names[1], b), gathered(sh, "index", idx), sh


class SogCLRLoss(ContrastiveLoss):
    r"""SogCLR (LibAUC ``GCLoss_v1``): :func:`sogclr` with the estimates kept per sample.

    The buffer ``log_u`` (shape ``(num_samples,)``, ``-inf`` = never visited) holds
    :math:`\log u` per dataset index. A call ``loss(z1, z2, index)``

    1. computes the batch estimates :math:`g^1, g^2` and the moving averages
       :math:`u^v = (1 - \gamma_i) u_{index} + \gamma_i g^v` (``L1``, ``L2`` below), where
       :math:`\gamma_i = 1` on a first visit (``first_visit="batch"``, LibAUC's rule: when no
       sample of the batch was visited before; ``"row"``: per sample) and ``gamma`` otherwise;
    2. returns ``sogclr(z1, z2, log_u1=L1, log_u2=L2, temperature=temperature)``;
    3. in training mode, stores :math:`u_{index} = (u^1 + u^2) / 2` (a repeated index: its last
       row writes).

    The state is a set of buffers: it moves to the embeddings' device on the first call (and
    with ``.to()``), follows ``.double()``, and ``state_dict`` / ``load_state_dict`` restore it
    exactly. Gradients w.r.t. the embeddings equal those of LibAUC's ``GCLoss_v1`` with the same
    ``N``, ``tau``, ``gamma`` and the constant schedule, step for step; the returned value is the
    estimate of the objective, not LibAUC's surrogate. See the module docstring for the
    remaining deviations.

    Args:
        num_samples: Dataset size (entries of the state); indices must lie in
            ``[0, num_samples)``.
        temperature: :math:`\tau > 0`.
        gamma: :math:`\gamma \in (0, 1]`, the weight of the new batch estimate.
        first_visit: ``"batch"`` (LibAUC) or ``"row"``; see above.
        dtype: Storage dtype of the state (float32 or float64; ``.double()`` also converts it,
            but only a float64 state holds ``temperature`` exactly).
        normalize, reduction, chunk_size, impl, gather_distributed, process_group: As in
            :func:`sogclr`. Under ``gather_distributed`` the indices of all ranks are gathered and
            every rank applies the same update, so the state stays identical on every rank.

    Example:
        >>> import torch
        >>> loss_fn = SogCLRLoss(num_samples=100)
        >>> z1, z2 = torch.randn(8, 16), torch.randn(8, 16)
        >>> loss_fn(z1, z2, torch.arange(8)).shape
        torch.Size([])
        >>> seen = torch.isfinite(loss_fn.log_u)  # -inf: never visited
        >>> bool(seen[:8].all()), bool(seen[8:].any())
        (True, False)
    """

    catalog_id = "sogclr"
    family = _FAMILY
    paper = _SOGCLR
    inputs = ("z1", "z2", "index")
    requires = Requires(index=True, state=True)
    symmetric_inputs = True
    supports_distributed = True
    peers = ("libauc.losses.GCLoss_v1",)

    log_u: Tensor

    def __init__(
        self,
        *,
        num_samples: int,
        temperature: float = 0.1,
        gamma: float = 0.9,
        first_visit: FirstVisit = "batch",
        dtype: torch.dtype = torch.float32,
        normalize: bool = True,
        reduction: Reduction = "mean",
        chunk_size: int | None = None,
        impl: Impl = "auto",
        gather_distributed: bool = False,
        process_group: ProcessGroup | None = None,
    ) -> None:
        super().__init__()
        _check_state_options(num_samples, temperature, gamma, first_visit, dtype)
        check_common(reduction, chunk_size, impl)
        self.num_samples, self.temperature, self.gamma = num_samples, temperature, gamma
        self.first_visit, self.normalize = first_visit, normalize
        self.set_common(reduction, chunk_size, impl, gather_distributed, process_group)
        self.register_buffer("log_u", torch.full((num_samples,), -math.inf, dtype=dtype))

    def forward(self, z1: Tensor, z2: Tensor, index: Tensor) -> Tensor:
        """Compute the loss at the updated estimates, then update the state; see the class."""
        return _unimodal_step(self, z1, z2, index, None)


class ISogCLRLoss(ContrastiveLoss):
    r"""iSogCLR (LibAUC ``GCLoss_v1(enable_isogclr=True)``): :func:`isogclr` with learned state.

    Buffers, one entry per dataset index: ``log_u`` (:math:`\log u`, as in
    :class:`SogCLRLoss`), ``tau`` (:math:`\tau_i`, initialized to ``temperature``) and
    ``tau_grad`` (the momentum :math:`m_i` of its gradient, initialized to 0). A call computes
    ``L1``, ``L2`` as :class:`SogCLRLoss` does, at the current :math:`\tau_{index}`, returns
    ``isogclr(z1, z2, temperature=tau[index], log_u1=L1, log_u2=L2, rho=rho)`` and, in training
    mode, stores :math:`u` and takes LibAUC's temperature step

    .. math::

        d_i = \frac{1}{2} \sum_{v=1,2} \Big[\log u^v_i + \rho
              - \frac{g^v_i}{u^v_i} \sum_{z \in S_i} p^v_{iz} \frac{s(z^v_i, z)}{\tau_i}\Big],
        \quad m_i \leftarrow (1 - \beta) m_i + \beta d_i, \quad
        \tau_i \leftarrow \operatorname{clip}(\tau_i - \eta m_i, \tau_{min}, \tau_{max})

    where :math:`p^v_{i\cdot}` is the softmax of :math:`s(z^v_i, \cdot) / \tau_i` over the
    negatives (computed tile by tile, without gradient). Gradients w.r.t. the embeddings and the
    state after each step equal LibAUC's, step for step.

    Args:
        num_samples: Dataset size; indices must lie in ``[0, num_samples)``.
        temperature: Initial :math:`\tau_i` (> 0).
        gamma: :math:`\gamma \in (0, 1]`.
        rho: :math:`\rho \ge 0` (LibAUC recommends 0.1 to 0.5 for unimodal data).
        eta: Step size of the temperature update (> 0).
        tau_min: Lower bound of :math:`\tau_i`.
        tau_max: Upper bound of :math:`\tau_i`.
        beta: :math:`\beta \in (0, 1]`, the momentum weight of the new gradient.
        first_visit: ``"batch"`` (LibAUC) or ``"row"``; see :class:`SogCLRLoss`.
        dtype: Storage dtype of the state; see :class:`SogCLRLoss`.
        normalize, reduction, chunk_size, impl, gather_distributed, process_group: As in
            :func:`isogclr`; see :class:`SogCLRLoss` for the distributed state.

    Example:
        >>> import torch
        >>> loss_fn = ISogCLRLoss(num_samples=100)
        >>> loss = loss_fn(torch.randn(8, 16), torch.randn(8, 16), torch.arange(8))
        >>> bool((loss_fn.tau[:8] != 0.1).all()), bool((loss_fn.tau[8:] == 0.1).all())
        (True, True)
    """

    catalog_id = "isogclr"
    family = _FAMILY
    paper = _ISOGCLR
    inputs = ("z1", "z2", "index")
    requires = Requires(index=True, state=True)
    symmetric_inputs = True
    supports_distributed = True
    peers = ("libauc.losses.GCLoss_v1",)

    log_u: Tensor
    tau: Tensor
    tau_grad: Tensor

    def __init__(
        self,
        *,
        num_samples: int,
        temperature: float = 0.1,
        gamma: float = 0.9,
        rho: float = 0.3,
        eta: float = 0.01,
        tau_min: float = 0.05,
        tau_max: float = 0.7,
        beta: float = 0.9,
        first_visit: FirstVisit = "batch",
        dtype: torch.dtype = torch.float32,
        normalize: bool = True,
        reduction: Reduction = "mean",
        chunk_size: int | None = None,
        impl: Impl = "auto",
        gather_distributed: bool = False,
        process_group: ProcessGroup | None = None,
    ) -> None:
        super().__init__()
        _check_state_options(num_samples, temperature, gamma, first_visit, dtype)
        _check_tau_options(rho, eta, tau_min, tau_max, beta)
        check_common(reduction, chunk_size, impl)
        self.num_samples, self.temperature, self.gamma = num_samples, temperature, gamma
        self.rho, self.eta, self.tau_min, self.tau_max, self.beta = rho, eta, tau_min, tau_max, beta
        self.first_visit, self.normalize = first_visit, normalize
        self.set_common(reduction, chunk_size, impl, gather_distributed, process_group)
        self.register_buffer("log_u", torch.full((num_samples,), -math.inf, dtype=dtype))
        self.register_buffer("tau", torch.full((num_samples,), float(temperature), dtype=dtype))
        self.register_buffer("tau_grad", torch.zeros(num_samples, dtype=dtype))

    def forward(self, z1: Tensor, z2: Tensor, index: Tensor) -> Tensor:
        """Compute the loss at the updated estimates, then update the state; see the class."""
        return _unimodal_step(self, z1, z2, index, self)


def _unimodal_step(
    loss: SogCLRLoss | ISogCLRLoss,
    z1: Tensor,
    z2: Tensor,
    index: Tensor,
    learned: ISogCLRLoss | None,
) -> Tensor:
    """One step of :class:`SogCLRLoss` or (with ``learned``) :class:`ISogCLRLoss`."""
    a, b, idx, sh = _prepare_step(
        ("z1", "z2"),
        z1,
        z2,
        index,
        loss.num_samples,
        loss.normalize,
        loss.reduction,
        loss.training,
        loss.gather_distributed,
        loss.process_group,
    )
    _follow(loss, a.device)
    n, dt = a.shape[0], a.dtype
    if learned is None:
        tau, rho = _as_rows(loss.temperature, a, n), 0.0
    else:
        tau, rho = learned.tau[idx].to(dt), learned.rho
    lse, anchors, candidates, items = _unimodal_lse(a, b, tau, loss.chunk_size, loss.impl)
    pos = (a * b).sum(1)
    with torch.no_grad():
        _, _, g1, g2 = _unimodal_rows(lse.detach(), pos.detach(), None, None, tau, 0.0)
        stored = loss.log_u[idx].to(dt)
        log_u1 = _moving_average(stored, g1, loss.gamma, loss.first_visit)
        log_u2 = _moving_average(stored, g2, loss.gamma, loss.first_visit)
    per_row, valid, _, _ = _unimodal_rows(lse, pos, log_u1, log_u2, tau, rho)
    if loss.training and n > 1:
        with torch.no_grad():
            rows = _last_rows(idx)
            _write(loss.log_u, idx, rows, torch.logaddexp(log_u1, log_u2) - math.log(2.0))
            if learned is not None:
                mean = _softmax_mean(
                    anchors, lse, candidates, items, items, loss.chunk_size, loss.impl
                )
                d = 0.5 * (
                    _tau_gradient(log_u1, g1, mean[:n], rho)
                    + _tau_gradient(log_u2, g2, mean[n:], rho)
                )
                m = (1.0 - learned.beta) * learned.tau_grad[idx].to(dt) + learned.beta * d
                step = (tau - learned.eta * m).clamp(learned.tau_min, learned.tau_max)
                _write(learned.tau_grad, idx, rows, m)
                _write(learned.tau, idx, rows, step)
    return finish(per_row, loss.reduction, sh, "z1", valid=valid)


class SogCLRBimodalLoss(ContrastiveLoss):
    r"""SogCLR / iSogCLR for image-text pairs (LibAUC ``GCLoss_v2``), with per-sample state.

    Buffers, one entry per dataset index: ``log_u_image`` and ``log_u_text`` (the estimates
    :math:`\log U^x`, :math:`\log U^t` of :func:`sogclr_bimodal`, ``-inf`` = never visited),
    ``tau_image`` and ``tau_text`` (per-sample temperatures, initialized to ``temperature``,
    learned only with ``learn_temperature=True``) and ``tau_grad_image`` / ``tau_grad_text``
    (their gradient momentum). A call computes, per modality,
    :math:`U = (1 - \gamma_i) U_{index} + \gamma_i G` (each modality's first visits decided
    separately, as LibAUC does), returns ``sogclr_bimodal`` at those estimates and, in training
    mode, stores them and (with ``learn_temperature``) takes the temperature step of
    :class:`ISogCLRLoss` per modality with :math:`d_i = \log U_i + \rho - (G_i / U_i)
    \mathbb{E}_{p}[h_{i\cdot} / \tau_i]` (``temperature_scheme="individual_learnable"``).
    Without ``learn_temperature`` the temperature is the constant ``temperature`` and ``rho``
    is unused (``"global_constant"``).

    The gradient w.r.t. the embeddings is ``2 / (B - 1)`` times LibAUC's for a batch of ``B``
    (see :func:`sogclr_bimodal`); the estimates and temperatures equal LibAUC's (its estimate is
    ``u * exp(b)`` with its running shift ``b``), up to the clamp noted in the module docstring.

    Args:
        num_samples: Dataset size; indices must lie in ``[0, num_samples)``.
        temperature: :math:`\tau` (the initial one when learned; > 0).
        gamma: :math:`\gamma \in (0, 1]`.
        learn_temperature: Learn a temperature per sample and modality (iSogCLR).
        rho: :math:`\rho \ge 0` (LibAUC's bimodal default 6.0).
        eta: Step size of the temperature update.
        tau_min: Lower bound of the temperatures.
        tau_max: Upper bound of the temperatures.
        beta: :math:`\beta \in (0, 1]`, the momentum weight.
        first_visit: ``"batch"`` (LibAUC) or ``"row"``; see :class:`SogCLRLoss`.
        dtype: Storage dtype of the state; see :class:`SogCLRLoss`.
        normalize, reduction, chunk_size, impl, gather_distributed, process_group: As in
            :func:`sogclr_bimodal`.

    Example:
        >>> import torch
        >>> loss_fn = SogCLRBimodalLoss(num_samples=100, learn_temperature=True)
        >>> loss_fn(torch.randn(8, 16), torch.randn(8, 16), torch.arange(8)).shape
        torch.Size([])
    """

    catalog_id = "sogclr_bimodal"
    family = _FAMILY
    paper = _ISOGCLR
    inputs = ("image", "text", "index")
    requires = Requires(index=True, state=True)
    symmetric_inputs = True
    supports_distributed = True
    peers = ("libauc.losses.GCLoss_v2",)

    log_u_image: Tensor
    log_u_text: Tensor
    tau_image: Tensor
    tau_text: Tensor
    tau_grad_image: Tensor
    tau_grad_text: Tensor

    def __init__(
        self,
        *,
        num_samples: int,
        temperature: float = 0.01,
        gamma: float = 0.9,
        learn_temperature: bool = False,
        rho: float = 6.0,
        eta: float = 0.01,
        tau_min: float = 0.005,
        tau_max: float = 0.05,
        beta: float = 0.9,
        first_visit: FirstVisit = "batch",
        dtype: torch.dtype = torch.float32,
        normalize: bool = True,
        reduction: Reduction = "mean",
        chunk_size: int | None = None,
        impl: Impl = "auto",
        gather_distributed: bool = False,
        process_group: ProcessGroup | None = None,
    ) -> None:
        super().__init__()
        _check_state_options(num_samples, temperature, gamma, first_visit, dtype)
        _check_tau_options(rho, eta, tau_min, tau_max, beta)
        check_common(reduction, chunk_size, impl)
        self.num_samples, self.temperature, self.gamma = num_samples, temperature, gamma
        self.learn_temperature = learn_temperature
        self.rho, self.eta, self.tau_min, self.tau_max, self.beta = rho, eta, tau_min, tau_max, beta
        self.first_visit, self.normalize = first_visit, normalize
        self.set_common(reduction, chunk_size, impl, gather_distributed, process_group)
        for name in ("image", "text"):
            self.register_buffer(
                f"log_u_{name}", torch.full((num_samples,), -math.inf, dtype=dtype)
            )
            self.register_buffer(
                f"tau_{name}", torch.full((num_samples,), temperature, dtype=dtype)
            )
            self.register_buffer(f"tau_grad_{name}", torch.zeros(num_samples, dtype=dtype))

    def forward(self, image: Tensor, text: Tensor, index: Tensor) -> Tensor:
        """Compute the loss at the updated estimates, then update the state; see the class."""
        x, y, idx, sh = _prepare_step(
            ("image", "text"),
            image,
            text,
            index,
            self.num_samples,
            self.normalize,
            self.reduction,
            self.training,
            self.gather_distributed,
            self.process_group,
        )
        _follow(self, x.device)
        n, dt = x.shape[0], x.dtype
        if self.learn_temperature:
            tau_i, tau_t, rho = self.tau_image[idx].to(dt), self.tau_text[idx].to(dt), self.rho
        else:
            tau_i = tau_t = _as_rows(self.temperature, x, n)
            rho = 0.0
        lse_i, anchors_i = _cross_lse(x, y, tau_i, self.chunk_size, self.impl)
        lse_t, anchors_t = _cross_lse(y, x, tau_t, self.chunk_size, self.impl)
        pos = (x * y).sum(1)
        with torch.no_grad():
            _, _, g_i, g_t = _bimodal_rows(
                lse_i.detach(), lse_t.detach(), pos.detach(), None, None, tau_i, tau_t, 0.0
            )
            lu_i = _moving_average(self.log_u_image[idx].to(dt), g_i, self.gamma, self.first_visit)
            lu_t = _moving_average(self.log_u_text[idx].to(dt), g_t, self.gamma, self.first_visit)
        per_row, valid, _, _ = _bimodal_rows(lse_i, lse_t, pos, lu_i, lu_t, tau_i, tau_t, rho)
        if self.training and n > 1:
            with torch.no_grad():
                rows = _last_rows(idx)
                _write(self.log_u_image, idx, rows, lu_i)
                _write(self.log_u_text, idx, rows, lu_t)
                if self.learn_temperature:
                    ids = torch.arange(n, device=x.device)
                    for anchors, cands, lse, lu, g, tau, name in (
                        (anchors_i, y, lse_i, lu_i, g_i, tau_i, "image"),
                        (anchors_t, x, lse_t, lu_t, g_t, tau_t, "text"),
                    ):
                        mean = _softmax_mean(
                            anchors, lse, cands, ids, ids, self.chunk_size, self.impl
                        )
                        d = _tau_gradient(lu, g, mean - pos / tau, rho)
                        grads: Tensor = getattr(self, f"tau_grad_{name}")
                        m = (1.0 - self.beta) * grads[idx].to(dt) + self.beta * d
                        step = (tau - self.eta * m).clamp(self.tau_min, self.tau_max)
                        _write(grads, idx, rows, m)
                        _write(getattr(self, f"tau_{name}"), idx, rows, step)
        return finish(per_row, self.reduction, sh, "image", valid=valid)
