"""SimCLR on scikit-learn's digits over several processes, exactly as one process would train.

Each rank embeds its share of every global batch; ``NTXentLoss(gather_distributed=True)``
computes the loss of the whole global batch and, after DDP's gradient averaging, the same
parameter gradients as one process holding the global batch. So the loss curves agree:

    torchrun --nproc_per_node=2 examples/distributed_train.py --out dist.json
    python examples/distributed_train.py --out single.json
    python examples/distributed_train.py --compare dist.json single.json

(gloo on CPU; the same script runs on NCCL with one GPU per process.)
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import torch
import torch.distributed as dist
from sklearn.datasets import load_digits
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel

import contrastkit as ck


def views(x: Tensor, gen: torch.Generator) -> tuple[Tensor, Tensor]:
    """Two noisy, randomly masked views of a batch of flattened 8x8 digits."""
    out = []
    for _ in range(2):
        keep = (torch.rand(x.shape, generator=gen, dtype=x.dtype) > 0.2).to(x.dtype)
        out.append(x * keep + 0.1 * torch.randn(x.shape, generator=gen, dtype=x.dtype))
    return out[0], out[1]


def main() -> None:
    """Train and write the per-step global loss."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--global-batch", type=int, default=256)
    parser.add_argument("--double", action="store_true", help="float64 (differences ~1e-12)")
    parser.add_argument("--out", type=Path, help="write the loss curve here (JSON)")
    parser.add_argument("--compare", type=Path, nargs=2, help="compare two curves and exit")
    args = parser.parse_args()
    if args.compare:
        a, b = (json.loads(p.read_text()) for p in args.compare)
        diff = max(abs(x - y) for x, y in zip(a["loss"], b["loss"], strict=True))
        print(f"{a['world']} vs {b['world']} process(es): largest loss difference {diff:.2e}")
        return

    distributed = "RANK" in os.environ
    if distributed:
        dist.init_process_group("gloo")
    rank, world = (dist.get_rank(), dist.get_world_size()) if distributed else (0, 1)
    dtype = torch.float64 if args.double else torch.float32
    torch.set_num_threads(max(1, (os.cpu_count() or 1) // world))

    data = torch.tensor(load_digits().data, dtype=dtype) / 16.0
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 64)).to(dtype)
    net: nn.Module = DistributedDataParallel(model) if distributed else model
    loss_fn = ck.losses.NTXentLoss(temperature=0.2, gather_distributed=distributed)
    opt = torch.optim.SGD(model.parameters(), lr=0.5, momentum=0.9)

    share = args.global_batch // world
    mine = slice(rank * share, (rank + 1) * share)
    gen = torch.Generator().manual_seed(1)  # same stream on every rank: same global batches
    curve = []
    for step in range(args.steps):
        idx = torch.randint(0, data.shape[0], (share * world,), generator=gen)
        v1, v2 = views(data[idx], gen)
        z = net(torch.cat([v1[mine], v2[mine]]))
        z1, z2 = z.split(v1[mine].shape[0])
        loss = loss_fn(z1, z2)
        opt.zero_grad()
        loss.backward()
        opt.step()
        curve.append(loss.item())
        if rank == 0 and step % 5 == 0:
            print(f"step {step:3d}  global NT-Xent {loss.item():.6f}  ({world} process(es))")
    if rank == 0 and args.out:
        args.out.write_text(json.dumps({"world": world, "loss": curve}))
    if distributed:
        dist.barrier()
        dist.destroy_process_group()


if __name__ == "__main__":
    main()
