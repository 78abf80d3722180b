"""The similarity functions against direct pair-by-pair definitions."""

from __future__ import annotations

import math

import torch

from contrastkit.core import similarity as S


def test_distances_match_pairwise_definitions(gen: torch.Generator) -> None:
    """Squared and plain L2 distances, bilinear and dot, against loops over pairs."""
    x = torch.randn(5, 3, generator=gen, dtype=torch.float64)
    y = torch.randn(4, 3, generator=gen, dtype=torch.float64)
    w = torch.randn(3, 3, generator=gen, dtype=torch.float64)
    for i in range(5):
        for j in range(4):
            diff = x[i] - y[j]
            torch.testing.assert_close(S.sq_l2(x, y)[i, j], (diff * diff).sum())
            torch.testing.assert_close(S.neg_sq_l2(x, y)[i, j], -(diff * diff).sum())
            torch.testing.assert_close(S.l2(x, y)[i, j], diff.norm())
            torch.testing.assert_close(S.dot(x, y)[i, j], x[i] @ y[j])
            torch.testing.assert_close(S.bilinear(x, y, w)[i, j], x[i] @ w @ y[j])


def test_l2_has_zero_gradient_at_zero_distance() -> None:
    """Identical rows: distance 0 and a zero (not NaN) gradient."""
    x = torch.ones(2, 3, dtype=torch.float64, requires_grad=True)
    d = S.l2(x, x)
    (g,) = torch.autograd.grad(d.sum(), x)
    assert float(d.detach().abs().max()) == 0.0
    assert bool(torch.isfinite(g).all())


def test_log_student_t_is_san_kernel() -> None:
    """exp(log kernel) = 2 pi g(nu)^2 (1 + d / (sigma nu))^-(nu + 1), g the t density at 0."""
    d2 = torch.tensor([0.0, 0.3, 2.0, 40.0], dtype=torch.float64)
    # closed forms of the Student-t density at 0 for nu = 1, 2, 3
    density = {1.0: 1 / math.pi, 2.0: 1 / (2 * math.sqrt(2)), 3.0: 2 / (math.pi * math.sqrt(3))}
    for nu, sigma in ((1.0, 1.0), (2.0, 0.5), (3.0, 10.0)):
        g = density[nu]
        want = 2 * math.pi * g**2 * (1 + d2 / (sigma * nu)) ** (-(nu + 1))
        torch.testing.assert_close(S.log_student_t(d2, nu, sigma).exp(), want)


def test_maxsim_is_sum_of_token_maxima(gen: torch.Generator) -> None:
    """MaxSim: for each query token the best key token, summed over query tokens."""
    x = torch.randn(3, 4, 5, generator=gen, dtype=torch.float64)
    y = torch.randn(2, 6, 5, generator=gen, dtype=torch.float64)
    got = S.maxsim(x, y)
    for i in range(3):
        for j in range(2):
            want = sum(max(float(x[i, t] @ y[j, u]) for u in range(6)) for t in range(4))
            assert abs(float(got[i, j]) - want) < 1e-12
