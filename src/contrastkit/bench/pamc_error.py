"""PamC's error against the exact loss it approximates, and its time, as the graph grows.

On synthetic clustered graphs (``K`` clusters on the sphere, ``degree`` out-edges per node to
random nodes of the same true cluster, cluster ids with a fraction ``flip`` reassigned at
random to mimic an imperfect DEC clustering), for each ``N``:

* ``exact``: Graph-MLP's all-pairs neighbour contrast, ``pamc(..., negatives="exact")``, on
  contrastkit's tiled engine (memory linear in ``N``);
* ``meta``: PamC as published (``negatives="meta"``, the authors' ``NcontrastCC``);
* ``sized``: the size-weighted meta-node estimate (``negatives="sized"``).

Reported: forward + backward time (median over ``repeats``), the loss values, the relative
error ``|L - L_exact| / |L_exact|`` and the cosine between the embedding gradients of each
approximation and of the exact loss. One torch thread by default
(``--threads``): on a shared machine extra threads mostly measure contention. Usage::

    python benchmarks/pamc_error.py --sizes 1000 2000 4000 8000 16000 32000
"""

from __future__ import annotations

import argparse
import math
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from contrastkit.losses.pamc import Negatives, pamc

METHODS: tuple[Negatives, ...] = ("exact", "meta", "sized")


@dataclass(frozen=True)
class Graph:
    """A synthetic graph: node embeddings, positive edges and (noisy) cluster ids."""

    embeddings: Tensor
    edge_index: Tensor
    clusters: Tensor


@dataclass(frozen=True)
class Measure:
    """One method at one size: median time (s), loss value and embedding gradient."""

    seconds: float
    loss: float
    grad: Tensor


def make_graph(
    n: int,
    dim: int = 64,
    clusters: int = 10,
    degree: int = 5,
    noise: float = 1.0,
    flip: float = 0.1,
    seed: int = 0,
) -> Graph:
    """Clustered embeddings, same-cluster edges and cluster ids with a fraction reassigned."""
    g = torch.Generator().manual_seed(seed)
    centers = F.normalize(torch.randn(clusters, dim, generator=g), dim=1)
    truth = torch.randint(0, clusters, (n,), generator=g)
    z = centers[truth] + noise * torch.randn(n, dim, generator=g) / math.sqrt(dim)
    order = torch.argsort(truth)
    sizes = torch.bincount(truth, minlength=clusters)
    starts = torch.cumsum(sizes, 0) - sizes
    src = torch.arange(n).repeat_interleave(degree)
    own = truth[src]
    pick = (torch.rand(n * degree, generator=g) * sizes[own]).long()
    dst = order[starts[own] + pick]
    ids = truth.clone()
    noisy = torch.rand(n, generator=g) < flip
    ids[noisy] = torch.randint(0, clusters, (int(noisy.sum()),), generator=g)
    return Graph(z, torch.stack([src, dst]), ids)


def measure(graph: Graph, negatives: Negatives, repeats: int) -> Measure:
    """Median forward + backward time of one method, its value and its gradient."""
    times, loss, grad = [], 0.0, torch.empty(0)
    for _ in range(repeats):
        z = graph.embeddings.clone().requires_grad_()
        start = time.perf_counter()
        value = pamc(z, graph.edge_index, clusters=graph.clusters, negatives=negatives)
        (grad,) = torch.autograd.grad(value, z)
        times.append(time.perf_counter() - start)
        loss = float(value.detach())
    return Measure(statistics.median(times), loss, grad)


def run(
    sizes: Sequence[int],
    *,
    dim: int = 64,
    clusters: int = 10,
    degree: int = 5,
    repeats: int = 3,
    seed: int = 0,
) -> list[dict[str, float]]:
    """One row per size: times, values, relative errors and gradient cosines."""
    rows = []
    for n in sizes:
        graph = make_graph(n, dim, clusters, degree, seed=seed)
        reps = repeats if n <= 8192 else 1
        got = {m: measure(graph, m, reps) for m in METHODS}
        exact = got["exact"]
        row: dict[str, float] = {"n": n, "k": clusters, "edges": graph.edge_index.shape[1]}
        for m in METHODS:
            row[f"{m}_seconds"] = got[m].seconds
            row[f"{m}_loss"] = got[m].loss
        for m in ("meta", "sized"):
            row[f"{m}_rel_error"] = abs(got[m].loss - exact.loss) / abs(exact.loss)
            row[f"{m}_grad_cos"] = float(
                F.cosine_similarity(got[m].grad.flatten(), exact.grad.flatten(), dim=0)
            )
        rows.append(row)
    return rows


def render(rows: Sequence[dict[str, float]]) -> str:
    """A Markdown table of :func:`run`'s rows."""
    head = (
        "| N | K | edges | exact (s) | PamC meta (s) | sized (s) | exact loss | PamC meta loss "
        "| meta rel. error | meta grad cos | sized loss | sized rel. error | sized grad cos |"
    )
    lines = [head, "|" + "---|" * head.count(" | ") + "---|"]
    lines += [
        f"| {int(r['n']):,} | {int(r['k'])} | {int(r['edges']):,} "
        f"| {r['exact_seconds']:.3f} | {r['meta_seconds']:.4f} | {r['sized_seconds']:.4f} "
        f"| {r['exact_loss']:.4f} | {r['meta_loss']:.4f} | {r['meta_rel_error']:.1%} "
        f"| {r['meta_grad_cos']:.4f} | {r['sized_loss']:.4f} | {r['sized_rel_error']:.2%} "
        f"| {r['sized_grad_cos']:.4f} |"
        for r in rows
    ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    """Run the benchmark and print the Markdown table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--sizes", type=int, nargs="+", default=[1000, 2000, 4000, 8000, 16000, 32000]
    )
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--clusters", type=int, default=10)
    parser.add_argument("--degree", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=3, help="timed runs for N <= 8192")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--threads", type=int, default=1, help="torch threads (1: stable on a shared machine)"
    )
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    rows = run(
        args.sizes,
        dim=args.dim,
        clusters=args.clusters,
        degree=args.degree,
        repeats=args.repeats,
        seed=args.seed,
    )
    print(
        f"PamC vs the exact loss (D={args.dim}, {args.degree} same-cluster out-edges per node, "
        f"10% of cluster ids reassigned; float32, {torch.get_num_threads()} threads; "
        "forward + backward)\n"
    )
    print(render(rows))


if __name__ == "__main__":
    main()
