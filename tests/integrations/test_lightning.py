"""ContrastiveModule: Lightning fits, logs finite metrics, learns, and is exact under DDP.

The DDP test runs Lightning's own launcher (``DDPStrategy(process_group_backend="gloo")``,
two CPU processes) on ``_lightning_ddp.py`` and compares every step's loss, the final weights
and the validation metrics with one process reading the same global batches (float64).
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
import types
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

pl = pytest.importorskip("lightning.pytorch", reason="pip install lightning")

import contrastkit.losses as L  # noqa: E402
from contrastkit.integrations.lightning import ContrastiveModule  # noqa: E402
from tests.integrations import _lightning_ddp as ddp  # noqa: E402

DDP_SCRIPT = Path(ddp.__file__)
DDP_LOSSES = ("siglip", "supcon")


def fit(model: ContrastiveModule, train: DataLoader, val: DataLoader | None, **kw: Any) -> Any:
    """A quiet CPU trainer (no logger, no checkpoints, no progress bar) after ``fit``."""
    record = ddp.Record()
    trainer = pl.Trainer(
        accelerator="cpu",
        devices=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        callbacks=[record],
        **kw,
    )
    trainer.fit(model, train, val)
    trainer.record = record
    return trainer


class DictData(torch.utils.data.Dataset[dict[str, torch.Tensor]]):
    """The rows of a TensorDataset as dicts ``{"view_a", "view_b", "labels"}``."""

    def __init__(self, data: TensorDataset) -> None:
        self.data = data

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        a, b, y = self.data[i]
        return {"view_a": a, "view_b": b, "labels": y}


class PairsOnly(torch.utils.data.Dataset[tuple[torch.Tensor, torch.Tensor]]):
    """The rows of a TensorDataset as ``(view_a, view_b)`` (labels dropped)."""

    def __init__(self, data: TensorDataset) -> None:
        self.data = data

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        a, b, _ = self.data[i]
        return a, b


@pytest.mark.parametrize(
    ("loss_id", "batches"),
    [("ntxent", "pairs"), ("supcon", "tuples"), ("siglip", "dicts")],
)
def test_fit_logs_finite_metrics(loss_id: str, batches: str) -> None:
    """Three steps and a validation epoch log the loss and every metric the batches allow."""
    wrap = {"pairs": PairsOnly, "tuples": lambda d: d, "dicts": DictData}[batches]
    train = DataLoader(wrap(ddp.dataset(48, 0)), batch_size=16)
    val = DataLoader(wrap(ddp.dataset(24, 1)), batch_size=8)
    model = ddp.module(loss_id)
    before = {k: v.clone() for k, v in model.loss.state_dict().items()}
    trainer = fit(model, train, val, max_steps=3)
    logged = trainer.callback_metrics
    expected = {"train/loss", "val/loss", "val/alignment", "val/uniformity"}
    expected |= {"val/recall_at_1", "val/mrr"}
    if batches != "pairs":
        expected |= {"val/knn_accuracy", "val/linear_probe_accuracy"}
    else:
        assert "val/knn_accuracy" not in logged
    if loss_id == "siglip":
        expected |= {"train/logit_scale", "train/logit_bias"}
    assert expected <= set(logged)
    for name in expected:
        assert math.isfinite(float(logged[name])), name
    assert 0.0 <= float(logged["val/recall_at_1"]) <= 1.0
    assert len(trainer.record.losses) == 3
    for name, value in model.loss.state_dict().items():  # the loss's own parameters trained
        assert not torch.equal(value, before[name]), name


def test_loss_decreases_on_a_learnable_task() -> None:
    """InfoNCE on two noisy views of clustered points: the last steps' loss is far lower."""
    train = DataLoader(ddp.dataset(64, 0), batch_size=16, shuffle=True)
    torch.manual_seed(0)
    model = ContrastiveModule(
        nn.Sequential(nn.Linear(6, 32), nn.ReLU(), nn.Linear(32, 16)),
        L.InfoNCELoss(temperature=0.2, symmetric=True),
        lr=0.01,
    ).double()
    losses = fit(model, train, None, max_epochs=8).record.losses
    assert len(losses) == 32
    first, last = sum(losses[:4]) / 4, sum(losses[-4:]) / 4
    assert last < 0.7 * first, (first, last)


def test_one_process_equals_a_plain_loop() -> None:
    """Lightning's run equals AdamW by hand: encoder and head decayed, the loss's parameters not."""
    result = ddp.train("siglip", devices=1)
    model = ddp.module("siglip")
    loss_params = list(model.loss.parameters())
    others = [p for n, p in model.named_parameters() if not n.startswith("loss.")]
    assert len(loss_params) == 2
    opt = torch.optim.AdamW(
        [{"params": others, "weight_decay": 0.1}, {"params": loss_params, "weight_decay": 0.0}],
        lr=0.05,
    )
    a, b, _ = ddp.dataset(ddp.GLOBAL_BATCH * ddp.STEPS, 0).tensors
    perm = torch.randperm(len(a), generator=torch.Generator().manual_seed(0))
    losses = []
    for step in range(ddp.STEPS):
        idx = perm[step * ddp.GLOBAL_BATCH : (step + 1) * ddp.GLOBAL_BATCH]
        z_a = model.head(model.encoder(a[idx]))
        z_b = model.head(model.encoder(b[idx]))
        loss = L.siglip(
            z_a, z_b, logit_scale=model.loss.logit_scale, logit_bias=model.loss.logit_bias
        )
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    torch.testing.assert_close(torch.tensor(result["losses"]), torch.tensor(losses))
    for name, value in model.state_dict().items():
        torch.testing.assert_close(result["state"][name], value, msg=name)


@pytest.fixture(scope="module")
def ddp_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[dict[str, Any]]]:
    """Lightning DDP on 2 CPU processes (gloo), once for every loss of ``DDP_LOSSES``."""
    out = tmp_path_factory.mktemp("lightning_ddp")
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(root)}
    proc = subprocess.run(
        [sys.executable, str(DDP_SCRIPT), str(out), *DDP_LOSSES],
        env=env,
        cwd=root,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return {loss: [torch.load(out / f"{loss}-rank{r}.pt") for r in range(2)] for loss in DDP_LOSSES}


@pytest.mark.distributed
@pytest.mark.parametrize("loss_id", DDP_LOSSES)
def test_ddp_two_processes_equal_one_process(
    ddp_runs: dict[str, list[dict[str, Any]]], loss_id: str
) -> None:
    """Per-step losses, final weights and validation metrics of DDP equal one process's run."""
    single = ddp.train(loss_id, devices=1)
    assert single["world"] == 1
    assert not single["gathered"]
    for rank, run in enumerate(ddp_runs[loss_id]):
        assert (run["rank"], run["world"]) == (rank, 2)
        assert run["gathered"], "gather_distributed was not switched on under DDP"
        torch.testing.assert_close(
            torch.tensor(run["losses"]), torch.tensor(single["losses"]), rtol=1e-10, atol=1e-12
        )
        for name, value in single["state"].items():
            torch.testing.assert_close(run["state"][name], value, rtol=1e-9, atol=1e-12, msg=name)
        for name in ("val/loss", "val/alignment", "val/uniformity", "val/mrr", "val/knn_accuracy"):
            assert run["metrics"][name] == pytest.approx(single["metrics"][name], rel=1e-9), name


def test_second_encoder_and_head_embed_view_b() -> None:
    """``encoder_b`` and ``head_b`` embed view b (another width); both receive gradients."""
    torch.manual_seed(0)
    enc_a, enc_b = nn.Linear(6, 8), nn.Linear(3, 5)
    head_a, head_b = nn.Linear(8, 4), nn.Linear(5, 4)
    model = ContrastiveModule(enc_a, "clip", encoder_b=enc_b, head=head_a, head_b=head_b)
    x_a, x_b = torch.randn(7, 6), torch.randn(7, 3)
    out = model.run_batch((x_a, x_b))
    torch.testing.assert_close(out.embeddings_b, head_b(enc_b(x_b)))
    torch.testing.assert_close(out.embeddings_a, head_a(enc_a(x_a)))
    torch.testing.assert_close(out.features_a, enc_a(x_a))
    torch.testing.assert_close(out.loss, model.loss(head_a(enc_a(x_a)), head_b(enc_b(x_b))))
    out.loss.backward()
    for module in (enc_a, enc_b, head_a, head_b):
        assert module.weight.grad is not None
        assert module.weight.grad.abs().sum() > 0


def test_dict_batch_passes_extra_keys_to_the_loss() -> None:
    """A dict batch's other keys are keyword arguments of the loss (InfoNCE's ``weights``)."""
    torch.manual_seed(0)
    model = ContrastiveModule(nn.Linear(5, 4), L.InfoNCELoss(temperature=0.3))
    a, b, w = torch.randn(6, 5), torch.randn(6, 5), torch.rand(6)
    out = model.run_batch({"view_a": a, "view_b": b, "weights": w})
    expected = L.infonce(model.encoder(a), model.encoder(b), temperature=0.3, weights=w)
    torch.testing.assert_close(out.loss, expected)
    unweighted = model.run_batch({"view_a": a, "view_b": b}).loss
    assert not torch.allclose(out.loss, unweighted)


def test_labeled_loss_sees_both_views_stacked() -> None:
    """SupCon gets ``cat([z_a, z_b])`` with the labels repeated (the multi-view batch)."""
    torch.manual_seed(0)
    model = ContrastiveModule(nn.Linear(5, 4), "supcon", loss_kwargs={"temperature": 0.2})
    a, b, y = torch.randn(6, 5), torch.randn(6, 5), torch.tensor([0, 1, 2, 0, 1, 2])
    out = model.run_batch((a, b, y))
    z = torch.cat([model.encoder(a), model.encoder(b)])
    torch.testing.assert_close(out.loss, L.supcon(z, torch.cat([y, y]), temperature=0.2))


@pytest.mark.parametrize(
    ("configured", "world", "expected"),
    [(None, 1, False), (None, 2, True), (False, 2, False), (True, 1, True)],
    ids=["auto-one", "auto-two", "off-two", "on-one"],
)
def test_setup_sets_gather_distributed(configured: bool | None, world: int, expected: bool) -> None:
    """``gather_distributed=None`` follows ``trainer.world_size``; True / False are kept."""
    model = ContrastiveModule(nn.Linear(4, 4), "infonce", gather_distributed=configured)
    model._trainer = types.SimpleNamespace(world_size=world)
    model.setup("fit")
    assert model.loss.gather_distributed is expected


class _MSE(nn.Module):
    """A loss module from outside the catalog (no ``gather_distributed`` option)."""

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return (a - b).pow(2).mean()


def test_a_loss_without_gather_option_warns_under_ddp() -> None:
    """Any nn.Module loss trains as a pair loss; under DDP a warning says it sees local batches."""
    model = ContrastiveModule(nn.Linear(4, 4), _MSE())
    a, b = torch.randn(3, 4), torch.randn(3, 4)
    torch.testing.assert_close(model.run_batch((a, b)).loss, (model(a) - model(b)).pow(2).mean())
    model._trainer = types.SimpleNamespace(world_size=2)
    with pytest.warns(UserWarning, match="local batch"):
        model.setup("fit")


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"loss": "no_such_loss"}, "unknown id 'no_such_loss'"),
        ({"loss": L.InfoNCELoss(), "loss_kwargs": {"temperature": 0.1}}, "loss_kwargs"),
        ({"loss": "pamc"}, "override `compute_loss"),
        ({"loss": 3}, "`loss` must be an nn.Module"),
        ({"encoder": "mlp"}, "`encoder` must be an nn.Module"),
        ({"lr": -1.0}, "`lr` must be a float >= 0"),
        ({"knn_k": 0}, "`knn_k` must be an int >= 1"),
        ({"gather_distributed": "yes"}, "`gather_distributed` must be None"),
    ],
    ids=["unknown-id", "kwargs-with-module", "pamc", "not-a-module", "encoder", "lr", "knn", "gd"],
)
def test_bad_arguments_raise(kwargs: dict[str, Any], match: str) -> None:
    """Bad constructor arguments raise a ValueError naming the argument."""
    args: dict[str, Any] = {"encoder": nn.Linear(4, 4), "loss": "infonce", **kwargs}
    with pytest.raises(ValueError, match=match):
        ContrastiveModule(**args)


@pytest.mark.parametrize(
    ("loss", "batch", "match"),
    [
        ("supcon", (torch.randn(4, 4), torch.randn(4, 4)), "needs labels"),
        ("infonce", (torch.randn(4, 4),), "A batch must be"),
        ("infonce", {"view_a": torch.randn(4, 4)}, "missing \\['view_b'\\]"),
    ],
    ids=["no-labels", "one-view", "dict-missing-key"],
)
def test_bad_batches_raise(loss: str, batch: Any, match: str) -> None:
    """A batch the loss cannot use raises a ValueError that says what to pass."""
    model = ContrastiveModule(nn.Linear(4, 4), loss)
    with pytest.raises(ValueError, match=match):
        model.run_batch(batch)


def test_falls_back_to_pytorch_lightning_and_names_the_install() -> None:
    """Without ``lightning`` the module uses ``pytorch_lightning``; without both, a clear error."""
    code = """
import sys
sys.modules["lightning"] = None
sys.modules["pytorch_lightning"] = None
try:
    import contrastkit.integrations.lightning
except ImportError as exc:
    assert "pip install lightning" in str(exc), exc
else:
    raise SystemExit("no ImportError without lightning")
del sys.modules["pytorch_lightning"]
sys.modules.pop("contrastkit.integrations.lightning", None)
from contrastkit.integrations.lightning import ContrastiveModule
import pytorch_lightning
assert issubclass(ContrastiveModule, pytorch_lightning.LightningModule)
print("ok")
"""
    if not _has("pytorch_lightning"):
        pytest.skip("pip install pytorch-lightning (checks the fallback import)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip().endswith("ok")


def _has(name: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(name) is not None
