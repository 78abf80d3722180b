"""Lightning training on fixed data, run by ``test_lightning.py`` in one or two processes.

``python _lightning_ddp.py OUT_DIR LOSS_ID...`` trains with Lightning's own DDP launcher on
two CPU processes (gloo) and saves, per loss and rank, the per-step losses, the final weights
and the logged metrics. :func:`train` with ``devices=1`` is the single-process reference on
the same global batches.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

pl = pytest.importorskip("lightning.pytorch", reason="pip install lightning")
from lightning.pytorch.strategies import DDPStrategy  # noqa: E402

from contrastkit.integrations.lightning import ContrastiveModule  # noqa: E402

GLOBAL_BATCH, STEPS, VAL = 16, 3, 16
LOSS_KWARGS: dict[str, dict[str, Any]] = {
    "siglip": {},
    "supcon": {"temperature": 0.5},
    "ntxent": {"temperature": 0.5},
}


def dataset(n: int, seed: int) -> TensorDataset:
    """Two noisy views of points around 4 class centres, float64, with the class labels."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.arange(n) % 4
    centres = torch.randn(4, 6, generator=g, dtype=torch.float64)
    x = centres[labels] + 0.3 * torch.randn(n, 6, generator=g, dtype=torch.float64)
    a = x + 0.1 * torch.randn(n, 6, generator=g, dtype=torch.float64)
    b = x + 0.1 * torch.randn(n, 6, generator=g, dtype=torch.float64)
    return TensorDataset(a, b, labels)


def module(loss_id: str) -> ContrastiveModule:
    """The same initial weights in every process (no batch norm: exact under DDP)."""
    torch.manual_seed(0)
    encoder = nn.Sequential(nn.Linear(6, 16), nn.Tanh(), nn.Linear(16, 8))
    return ContrastiveModule(
        encoder,
        loss_id,
        head=nn.Linear(8, 4),
        loss_kwargs=LOSS_KWARGS[loss_id],
        lr=0.05,
        weight_decay=0.1,
        knn_k=3,
    ).double()


class Record(pl.Callback):
    """Keeps the loss returned by every training step."""

    def __init__(self) -> None:
        self.losses: list[float] = []

    def on_train_batch_end(self, trainer: Any, pl_module: Any, outputs: Any, *args: Any) -> None:
        self.losses.append(float(outputs["loss"]))


def train(loss_id: str, devices: int) -> dict[str, Any]:
    """Fit one epoch of ``STEPS`` global batches of ``GLOBAL_BATCH`` rows on ``devices``."""
    data = dataset(GLOBAL_BATCH * STEPS, 0)
    if devices == 1:
        # Lightning's DDP replaces the training sampler by a shuffling DistributedSampler (seed 0):
        # rank r takes rows perm[r::W], so global batch s is perm[s B : (s + 1) B] for B the global
        # batch. One process reads the same global batches from this sampler.
        perm = torch.randperm(len(data), generator=torch.Generator().manual_seed(0)).tolist()
        train_loader = DataLoader(data, batch_size=GLOBAL_BATCH, sampler=perm)
    else:
        train_loader = DataLoader(data, batch_size=GLOBAL_BATCH // devices)
    val_loader = DataLoader(dataset(VAL, 1), batch_size=VAL // devices)
    record = Record()
    strategy: Any = DDPStrategy(process_group_backend="gloo") if devices > 1 else "auto"
    trainer = pl.Trainer(
        accelerator="cpu",
        devices=devices,
        strategy=strategy,
        max_epochs=1,
        num_sanity_val_steps=0,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[record],
    )
    model = module(loss_id)
    trainer.fit(model, train_loader, val_loader)
    return {
        "rank": trainer.global_rank,
        "world": trainer.world_size,
        "gathered": bool(getattr(model.loss, "gather_distributed", False)),
        "losses": record.losses,
        "state": {k: v.detach().clone() for k, v in model.state_dict().items()},
        "metrics": {k: float(v) for k, v in trainer.callback_metrics.items()},
    }


if __name__ == "__main__":
    torch.set_num_threads(1)
    out_dir = Path(sys.argv[1])
    for loss in sys.argv[2:]:
        result = train(loss, devices=2)
        torch.save(result, out_dir / f"{loss}-rank{result['rank']}.pt")
