"""Per-rank step time and peak memory of a distributed CLIP loss as the world size grows.

For a fixed global batch, each world size ``W`` runs ``W`` gloo processes on this machine (the
cores are shared: ``max(1, cores // W)`` threads per rank). Compared per rank:

* ``contrastkit``: ``clip(..., gather_distributed=True)``: embeddings are exchanged and each
  rank evaluates its rows in tiles (memory ``O(N_global D)`` per rank);
* ``open_clip``: ``ClipLoss(local_loss=True, gather_with_grad=True)``, the usual way: gather
  the embeddings with gradient and materialize the local-by-global logits.

Each configuration runs in fresh processes. Usage::

    python benchmarks/distributed_scaling.py --global-batch 16384 --worlds 1 2 4
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import statistics
import tempfile
import time
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn.functional as F

TEMPERATURE = 0.07


def _rank_main(
    rank: int, world: int, impl: str, n_global: int, dim: int, repeats: int, out: str
) -> None:
    """One rank: time forward + backward of the loss on its share of the global batch."""
    dist.init_process_group(
        "gloo",
        init_method=f"file://{out}.init",
        rank=rank,
        world_size=world,
        timeout=timedelta(seconds=1800),
    )
    torch.set_num_threads(max(1, (os.cpu_count() or 1) // world))
    local = n_global // world
    g = torch.Generator().manual_seed(rank)
    q = torch.randn(local, dim, generator=g).requires_grad_()
    k = torch.randn(local, dim, generator=g).requires_grad_()
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    if impl == "contrastkit":
        from contrastkit.losses import clip

        scale = torch.tensor(math.log(1 / TEMPERATURE))

        def step() -> float:
            loss = clip(q, k, logit_scale=scale, gather_distributed=True)
            loss.backward()  # type: ignore[no-untyped-call]
            return float(loss.detach())
    else:
        from open_clip.loss import ClipLoss

        peer = ClipLoss(local_loss=True, gather_with_grad=True, rank=rank, world_size=world)
        scale = torch.tensor(1 / TEMPERATURE)

        def step() -> float:
            loss = peer(F.normalize(q, dim=1), F.normalize(k, dim=1), scale)
            loss.backward()
            return float(loss.detach())

    times, value = [], 0.0
    for r in range(repeats + 1):
        dist.barrier()
        start = time.perf_counter()
        value = step()
        q.grad, k.grad = None, None
        if r > 0:
            times.append(time.perf_counter() - start)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    Path(f"{out}.rank{rank}.json").write_text(
        json.dumps({"times": times, "peak_kib": peak, "base_kib": base, "loss": value})
    )
    dist.barrier()  # nobody tears the group down while another rank still uses it
    dist.destroy_process_group()


def run(impl: str, world: int, n_global: int, dim: int, repeats: int) -> dict[str, float]:
    """Spawn ``world`` ranks for one configuration; the slowest rank's median and peak RSS."""
    with tempfile.TemporaryDirectory() as tmp:
        out = str(Path(tmp) / "case")
        files = [Path(f"{out}.rank{r}.json") for r in range(world)]
        try:
            mp.spawn(  # type: ignore[attr-defined,no-untyped-call]
                _rank_main,
                args=(world, impl, n_global, dim, repeats, out),
                nprocs=world,
                join=True,
            )
        except mp.ProcessExitedException:  # type: ignore[attr-defined]
            # gloo may abort a process while tearing down, after its results are written.
            if not all(f.exists() for f in files):
                raise
        ranks = [json.loads(f.read_text()) for f in files]
    return {
        "time": max(statistics.median(r["times"]) for r in ranks),
        "peak_gib": max(r["peak_kib"] for r in ranks) / 2**20,
        "incr_gib": max(r["peak_kib"] - r["base_kib"] for r in ranks) / 2**20,
        # open_clip returns each rank's local loss (equal local batches: their mean is global).
        "loss": statistics.mean(r["loss"] for r in ranks),
    }


def main(argv: Sequence[str] | None = None) -> None:
    """Run every (world size, implementation) and print a Markdown table.

    Args:
        argv: Arguments without the program name; None for ``sys.argv[1:]``.
    """
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--global-batch", type=int, default=16384)
    parser.add_argument("--dim", type=int, default=256)
    parser.add_argument("--worlds", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--impls", nargs="+", default=["contrastkit", "open_clip"])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    print(
        f"symmetric InfoNCE (CLIP), global batch {args.global_batch}, D = {args.dim}, gloo, "
        f"{os.cpu_count()} cores shared by the ranks; median of {args.repeats} steps after "
        "one warm-up; time and peak RSS of the slowest / largest rank\n"
    )
    print(
        "| world | impl | local batch | step time (s) | peak RSS per rank (GiB) | increment (GiB) |"
    )
    print("| --: | --- | --: | --: | --: | --: |")
    for world in args.worlds:
        for impl in args.impls:
            r = run(impl, world, args.global_batch, args.dim, args.repeats)
            print(
                f"| {world} | {impl} | {args.global_batch // world} | {r['time']:.2f} | "
                f"{r['peak_gib']:.2f} | {r['incr_gib']:+.2f} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
