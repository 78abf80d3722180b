"""PamC: the authors' meta-node loss, Graph-MLP's exact loss, and what the estimates preserve."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor

from contrastkit.losses.pamc import PamCLoss, pamc

f64 = torch.float64


def _feature_dis(x: Tensor) -> Tensor:
    """Graph-MLP's ``get_feature_dis``: cosine similarities with a zeroed diagonal."""
    norms = x.norm(dim=1, keepdim=True)
    return (x @ x.T) / (norms @ norms.T) * (1 - torch.eye(x.shape[0], dtype=x.dtype))


def _graph(n: int, gen: torch.Generator) -> tuple[Tensor, Tensor, Tensor]:
    """Embeddings, a dense 0/1 adjacency with self-loops and at least one edge per node, ids."""
    z = torch.randn(n, 6, generator=gen, dtype=f64)
    adj = (torch.rand(n, n, generator=gen) < 0.3).to(f64)
    adj.fill_diagonal_(1.0)
    ids = torch.arange(n) % 3
    return z, adj, ids


def test_meta_matches_the_authors_ncontrastcc(gen: torch.Generator) -> None:
    """negatives="meta" is PamC's NcontrastCC (cluster sums of one-hot argmax, tau = 2)."""
    z, adj, ids = _graph(11, gen)
    tau = 2.0
    x = z.clone().requires_grad_()
    cc = torch.sum(x.unsqueeze(1) * F.one_hot(ids).unsqueeze(2), dim=0)
    pos = torch.sum(torch.exp(tau * _feature_dis(x)) * adj, 1)
    neg = torch.sum(torch.exp(tau * _feature_dis(cc)), 1)
    expected = -torch.log(pos + 1e-10).mean() + torch.log(neg + 1e-10).mean()
    (want,) = torch.autograd.grad(expected, x)
    y = z.clone().requires_grad_()
    edges = adj.nonzero().T
    value = pamc(y, edges, clusters=ids, temperature=1 / tau)
    (got,) = torch.autograd.grad(value, y)
    torch.testing.assert_close(value, expected)
    torch.testing.assert_close(got, want)


def test_edge_list_matches_the_authors_sparse_form(gen: torch.Generator) -> None:
    """Weighted edges with self-loops: PamC's NcontrastCCSP (the sparse adjacency form)."""
    z, adj, ids = _graph(9, gen)
    weights = adj * (0.5 + torch.rand(9, 9, generator=gen, dtype=f64))
    edges = weights.nonzero().T
    w = weights[edges[0], edges[1]]
    src, dst = edges
    cos = F.cosine_similarity(z[src], z[dst], dim=1)
    cos[src == dst] = 0.0
    pos = torch.zeros(9, dtype=f64).scatter_add(0, src, torch.exp(cos) * w)
    cc = torch.sum(z.unsqueeze(1) * F.one_hot(ids).unsqueeze(2), dim=0)
    neg = torch.sum(torch.exp(_feature_dis(cc)), 1)
    expected = -torch.log(pos + 1e-10).mean() + torch.log(neg + 1e-10).mean()
    torch.testing.assert_close(pamc(z, edges, clusters=ids, edge_weight=w), expected)


def test_exact_matches_graph_mlp_ncontrast(gen: torch.Generator) -> None:
    """negatives="exact" is Graph-MLP's Ncontrast (up to its 1e-8 inside the log)."""
    z, adj, _ = _graph(10, gen)
    x = torch.exp(_feature_dis(z))
    expected = -torch.log((x * adj).sum(1) / x.sum(1) + 1e-8).mean()
    got = pamc(z, adj.nonzero().T, negatives="exact", impl="tiled", chunk_size=3)
    torch.testing.assert_close(got, expected, atol=1e-6, rtol=0)


def test_sized_is_exact_when_every_cluster_is_one_point(gen: torch.Generator) -> None:
    """If each cluster's members coincide, the size-weighted meta-node sum is exact."""
    centers = torch.randn(4, 5, generator=gen, dtype=f64)
    ids = torch.tensor([0, 0, 1, 1, 1, 2, 3, 3, 0, 2])
    z = centers[ids] * (1 + torch.rand(10, 1, generator=gen, dtype=f64))  # scaled copies
    edges = torch.stack([torch.arange(10), torch.arange(10).roll(1)])
    for t in (0.3, 1.0):
        exact = pamc(z, edges, negatives="exact", temperature=t, reduction="none")
        sized = pamc(z, edges, clusters=ids, negatives="sized", temperature=t, reduction="none")
        torch.testing.assert_close(sized, exact)


def test_meta_sits_about_log_n_over_k_below_exact(gen: torch.Generator) -> None:
    """Tight clusters: PamC's term counts each cluster once, exact counts every node."""
    n, k = 400, 8
    centers = F.normalize(torch.randn(k, 16, generator=gen, dtype=f64), dim=1)
    ids = torch.arange(n) % k
    z = centers[ids] + 1e-3 * torch.randn(n, 16, generator=gen, dtype=f64)
    edges = torch.stack([torch.arange(n), (torch.arange(n) + k) % n])  # same-cluster partner
    gap = pamc(z, edges, negatives="exact") - pamc(z, edges, clusters=ids)
    assert abs(float(gap) - math.log(n / k)) < 0.2


def test_nodes_without_positive_are_left_out(gen: torch.Generator) -> None:
    """A node with no edge (or only zero-weight edges) contributes 0 and leaves the mean."""
    z = torch.randn(5, 4, generator=gen, dtype=f64, requires_grad=True)
    edges = torch.tensor([[0, 1, 2, 3], [1, 0, 3, 2]])
    ids = torch.tensor([0, 0, 1, 1, 1])
    per = pamc(z, edges, clusters=ids, reduction="none").detach()
    assert float(per[4]) == 0.0
    torch.testing.assert_close(pamc(z, edges, clusters=ids).detach(), per[:4].mean())
    weights = torch.tensor([1.0, 1.0, 0.0, 1.0], dtype=f64)
    per = pamc(z, edges, clusters=ids, edge_weight=weights, reduction="none").detach()
    assert float(per[2]) == 0.0
    assert float(per[4]) == 0.0
    nobody = pamc(z, edges[:, :0], clusters=ids)
    assert float(nobody.detach()) == 0.0
    nobody.backward()


def test_empty_cluster_ids_are_skipped(gen: torch.Generator) -> None:
    """Cluster ids need not be contiguous: an unused id is not a meta-node (no NaN)."""
    z = torch.randn(6, 4, generator=gen, dtype=f64)
    edges = torch.stack([torch.arange(6), torch.arange(6).roll(1)])
    dense = pamc(z, edges, clusters=torch.tensor([0, 0, 1, 1, 2, 2]))
    sparse = pamc(z, edges, clusters=torch.tensor([0, 0, 5, 5, 9, 9]))
    torch.testing.assert_close(sparse, dense)


def test_clusters_are_needed_unless_exact() -> None:
    """The meta-node estimates need cluster ids; the error says how to proceed."""
    z, edges = torch.randn(4, 3), torch.tensor([[0, 1], [1, 0]])
    with pytest.raises(ValueError, match=r"clusters"):
        pamc(z, edges)
    with pytest.raises(ValueError, match=r"clusters"):
        PamCLoss(negatives="sized")(z, edges)
    assert torch.isfinite(pamc(z, edges, negatives="exact"))


def test_module_passes_graph_inputs_through(gen: torch.Generator) -> None:
    """PamCLoss forwards edge_index, clusters and edge weights to :func:`pamc`."""
    z = torch.randn(6, 4, generator=gen, dtype=f64)
    edges = torch.stack([torch.arange(6), torch.arange(6).roll(2)])
    ids, w = torch.arange(6) % 2, torch.rand(6, generator=gen, dtype=f64) + 0.1
    module = PamCLoss(temperature=0.5, negatives="sized")
    expected = pamc(z, edges, clusters=ids, edge_weight=w, temperature=0.5, negatives="sized")
    torch.testing.assert_close(module(z, edges, clusters=ids, edge_weight=w), expected)
