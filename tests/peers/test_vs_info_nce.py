"""contrastkit's InfoNCE against info-nce-pytorch (``info_nce.info_nce`` / ``info_nce.InfoNCE``).

Mapping (info_nce/__init__.py):

* Always L2-normalizes ``query``, ``positive_key`` and ``negative_keys``; logits are cosine
  similarities divided by ``temperature`` (default 0.1 there, 0.07 in contrastkit, so it is
  always passed explicitly); ``F.cross_entropy(logits / temperature, labels, reduction=...)``,
  so ``reduction`` in {"mean", "sum", "none"} maps one to one.
* ``negative_keys=None``: ``logits = query @ positive_key.T``, labels ``arange(N)`` = our one-way
  ``infonce(query, positive_key)``.
* ``negative_mode="unpaired"``, ``negative_keys`` (M, D): row i has logits
  ``[<q_i, p_i>, <q_i, n_1>, ..., <q_i, n_M>]`` -- the OTHER rows' positives are NOT in the
  denominator, whereas our ``infonce(q, cat([p, n]))`` shares them as negatives. The exact
  mapping is per row: ``info_nce(...)[i] = infonce(q[i:i+1], cat([p[i:i+1], n]))``.
* ``negative_mode="paired"``, ``negative_keys`` (N, M, D): row i uses its own negatives,
  ``info_nce(...)[i] = infonce(q[i:i+1], cat([p[i:i+1], n[i]]))``.
* It has no symmetric mode: our ``symmetric=True`` = ``(info_nce(q, k) + info_nce(k, q)) / 2``.
"""

import pytest
import torch
from info_nce import InfoNCE, info_nce
from torch.nn.functional import normalize

from contrastkit.losses import InfoNCELoss, infonce

pytestmark = pytest.mark.peer

SHAPES = [
    pytest.param(2, 3, id="N2-D3"),
    pytest.param(7, 5, id="N7-D5"),
    pytest.param(16, 32, id="N16-D32"),
]
IMPLS = [
    pytest.param({"impl": "dense"}, id="dense"),
    pytest.param({"impl": "tiled", "chunk_size": 3}, id="tiled-c3"),
]


def _randn(*shape, seed):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, generator=g, dtype=torch.float64)


def _value_and_grads(fn, inputs):
    """Run ``fn`` on fresh leaf copies of ``inputs``; return its value and grads w.r.t. them.

    A non-scalar output (``reduction="none"``) is contracted with fixed distinct weights first.
    """
    leaves = [x.detach().clone().requires_grad_(True) for x in inputs]
    out = fn(*leaves)
    scalar = out if out.ndim == 0 else (out * torch.linspace(0.5, 1.5, out.numel()).to(out)).sum()
    return out.detach(), torch.autograd.grad(scalar, leaves)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("temperature", [0.1, 0.07], ids=lambda t: f"t{t}")
@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize(("n", "d"), SHAPES)
def test_infonce_matches_info_nce_in_batch(n, d, impl, temperature, reduction):
    """One-way infonce() equals info_nce() with in-batch negatives, for every reduction."""
    qk = [_randn(n, d, seed=10 * n + d), _randn(n, d, seed=10 * n + d + 1)]
    kwargs = {"temperature": temperature, "reduction": reduction}
    ours = _value_and_grads(lambda q, k: infonce(q, k, **kwargs, **impl), qk)
    peer = _value_and_grads(lambda q, k: info_nce(q, k, **kwargs), qk)
    torch.testing.assert_close(ours, peer)


@pytest.mark.parametrize(("n", "d"), SHAPES)
def test_infonce_module_matches_info_nce(n, d):
    """InfoNCELoss(temperature=0.1) equals InfoNCE() (whose default temperature is 0.1)."""
    qk = [_randn(n, d, seed=n), _randn(n, d, seed=n + 1)]
    ours = _value_and_grads(InfoNCELoss(temperature=0.1), qk)
    torch.testing.assert_close(ours, _value_and_grads(InfoNCE(), qk))


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize(("n", "d"), SHAPES)
def test_infonce_prenormalized_matches_info_nce(n, d, impl):
    """infonce(normalize=False) on F.normalize'd inputs equals info_nce() on the raw inputs."""
    qk = [_randn(n, d, seed=2 * n), _randn(n, d, seed=2 * n + 1)]
    ours = _value_and_grads(
        lambda q, k: infonce(normalize(q), normalize(k), normalize=False, **impl), qk
    )
    torch.testing.assert_close(
        ours, _value_and_grads(lambda q, k: info_nce(q, k, temperature=0.07), qk)
    )


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize(("n", "d"), SHAPES)
def test_symmetric_infonce_matches_two_info_nce_directions(n, d, impl):
    """infonce(symmetric=True) equals the mean of info_nce(q, k) and info_nce(k, q)."""
    qk = [_randn(n, d, seed=3 * n), _randn(n, d, seed=3 * n + 1)]
    ours = _value_and_grads(lambda q, k: infonce(q, k, symmetric=True, **impl), qk)
    peer = _value_and_grads(
        lambda q, k: (info_nce(q, k, temperature=0.07) + info_nce(k, q, temperature=0.07)) / 2, qk
    )
    torch.testing.assert_close(ours, peer)


@pytest.mark.parametrize("m", [1, 6], ids=lambda m: f"M{m}")
@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize(("n", "d"), SHAPES)
def test_infonce_matches_info_nce_unpaired_negatives_per_row(n, d, impl, m):
    """info_nce(unpaired)[i] equals infonce(q[i], [p[i]; negatives]) row by row."""
    inputs = [_randn(n, d, seed=n), _randn(n, d, seed=n + 1), _randn(m, d, seed=n + 2)]

    def ours(q, p, neg):
        rows = [
            infonce(q[i : i + 1], torch.cat([p[i : i + 1], neg]), reduction="none", **impl)
            for i in range(n)
        ]
        return torch.cat(rows)

    def peer(q, p, neg):
        return info_nce(q, p, neg, temperature=0.07, reduction="none", negative_mode="unpaired")

    torch.testing.assert_close(_value_and_grads(ours, inputs), _value_and_grads(peer, inputs))


@pytest.mark.parametrize("m", [1, 6], ids=lambda m: f"M{m}")
@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize(("n", "d"), SHAPES)
def test_infonce_matches_info_nce_paired_negatives_per_row(n, d, impl, m):
    """info_nce(paired)[i] equals infonce(q[i], [p[i]; negatives[i]]) row by row."""
    inputs = [_randn(n, d, seed=n), _randn(n, d, seed=n + 1), _randn(n, m, d, seed=n + 2)]

    def ours(q, p, neg):
        rows = [
            infonce(q[i : i + 1], torch.cat([p[i : i + 1], neg[i]]), reduction="none", **impl)
            for i in range(n)
        ]
        return torch.cat(rows)

    def peer(q, p, neg):
        return info_nce(q, p, neg, temperature=0.07, reduction="none", negative_mode="paired")

    torch.testing.assert_close(_value_and_grads(ours, inputs), _value_and_grads(peer, inputs))
