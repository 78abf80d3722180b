"""InfoNCE's pluggable similarities: the module form, and the errors of a wrong setup."""

from __future__ import annotations

import pytest
import torch

import contrastkit.losses as L
from tests.reference import infonce as reference


def test_bilinear_module_learns_its_matrix(gen: torch.Generator) -> None:
    """InfoNCELoss(similarity="bilinear", dims=...) owns W; its gradient is the reference's."""
    q = torch.randn(6, 4, generator=gen, dtype=torch.float64)
    k = torch.randn(8, 3, generator=gen, dtype=torch.float64)
    loss = L.InfoNCELoss(similarity="bilinear", dims=(4, 3), normalize=False).double()
    with torch.no_grad():
        loss.weight.add_(0.2 * torch.randn(4, 3, generator=gen, dtype=torch.float64))
    value = loss(q, k)
    (got,) = torch.autograd.grad(value, loss.weight)
    w = loss.weight.detach().clone().requires_grad_()
    expected = reference(q, k, temperature=0.07, normalize=False, similarity="bilinear", weight=w)
    (want,) = torch.autograd.grad(expected, w)
    torch.testing.assert_close(value.detach(), expected.detach())
    torch.testing.assert_close(got, want)


def test_maxsim_on_single_tokens_is_dot_product(gen: torch.Generator) -> None:
    """One token per set: MaxSim is the dot product, so the loss is plain InfoNCE."""
    q = torch.randn(5, 1, 4, generator=gen, dtype=torch.float64)
    k = torch.randn(5, 1, 4, generator=gen, dtype=torch.float64)
    torch.testing.assert_close(
        L.infonce(q, k, similarity="maxsim", symmetric=True),
        L.infonce(q[:, 0], k[:, 0], symmetric=True),
    )


BAD = {
    "unknown": ({"similarity": "cosine"}, "similarity"),
    "bilinear-without-weight": ({"similarity": "bilinear"}, "weight"),
    "bilinear-wrong-shape": (
        {"similarity": "bilinear", "weight": torch.eye(3)},
        r"weight.*\(D_q, D_k\)",
    ),
    "weight-without-bilinear": ({"weight": torch.eye(4)}, "bilinear"),
    "weight-with-l2": ({"similarity": "neg_sq_l2", "weight": torch.eye(4)}, "bilinear"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_similarity_setup_raises(case: str) -> None:
    """A similarity without what it needs (or a matrix it does not use) is a clear error."""
    kwargs, match = BAD[case]
    with pytest.raises(ValueError, match=match):
        L.infonce(torch.randn(5, 4), torch.randn(5, 4), **kwargs)


def test_maxsim_needs_token_sets() -> None:
    """MaxSim on (N, D) inputs says it expects (N, T, D)."""
    with pytest.raises(ValueError, match=r"\(N, T, D\)"):
        L.infonce(torch.randn(5, 4), torch.randn(5, 4), similarity="maxsim")


def test_bilinear_module_needs_dims() -> None:
    """The module cannot size W without ``dims`` (and ``dims`` needs the bilinear score)."""
    with pytest.raises(ValueError, match="dims"):
        L.InfoNCELoss(similarity="bilinear")
    with pytest.raises(ValueError, match="dims"):
        L.InfoNCELoss(dims=(3, 3))
