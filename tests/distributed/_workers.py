"""Code that runs inside the spawned gloo ranks (kept importable for ``spawn``)."""

from __future__ import annotations

import traceback
from datetime import timedelta
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

import contrastkit.losses as L
from tests.losses.cases import Case, make_case

D_IN, D = 5, 4

# Settings per loss (keys as in tests/losses/cases.py); "weighted" passes per-anchor weights.
SETTINGS: dict[str, list[dict[str, Any]]] = {
    "infonce": [
        {},
        {"symmetric": True},
        {"weighted": True},
        {"similarity": "maxsim", "symmetric": True},
        {"similarity": "neg_sq_l2"},
    ],
    "clip": [{}],
    "ntxent": [{}],
    "supcon": [{}, {"variant": "in"}],
    "multi_positive": [{}],
    "dcl": [{}],
    "dclw": [{}],
    "listwise": [{"multi": True, "cand_weights": True, "ids": True}],
    "hard_infonce": [{"k": 2}],
    "focal_supcon": [{}],
    "cwcl": [{}],
    "soft_target": [{"alpha": 0.4}],
    "mixco": [{}],
    "pair_weighted": [{}],
    "siglip": [{}, {"gamma": 2.0}],
    "soft_bce": [{}],
    "mw_auc": [{}, {"scope": "query"}],
    "pairwise_logistic": [{}],
    "contrastive_margin": [{}],
    "triplet": [{"margin": 0.5}],
    "koleo": [{}],
    "uniformity": [{}],
    "alignment": [{"alpha": 1.5}],
}


def cases() -> list[tuple[str, str, dict[str, Any], str]]:
    """Every distributed case: (id, loss id, setting, impl)."""
    return [
        (f"{loss_id}-{k}-{impl}", loss_id, setting, impl)
        for loss_id, cls in sorted(L.REGISTRY.items())
        if cls.supports_distributed
        for k, setting in enumerate(SETTINGS.get(loss_id, [{}]))
        for impl in ("dense", "tiled")
    ]


def _global_case(loss_id: str, setting: dict[str, Any], sizes: list[int]) -> Case:
    """Inputs of the global batch; embeddings are model inputs (last dim ``D_IN``)."""
    g = torch.Generator().manual_seed(7)
    case = make_case(loss_id, sum(sizes), D_IN, setting, g)
    case = case.rows(torch.arange(sum(sizes)), sum(sizes))  # detached copies
    if "partner" in case.tensors:  # mixup partners index each rank's own rows
        case.tensors["partner"] = torch.cat(
            [torch.randperm(n, generator=g) + sum(sizes[:r]) for r, n in enumerate(sizes)]
        )
    return case


def _forward(model: nn.Module, case: Case) -> Case:
    """The case with its embedding inputs replaced by the model's outputs."""
    which = [t.is_floating_point() and t.shape[-1] == D_IN for t in case.args]
    flat = [t.reshape(-1, D_IN) for t, w in zip(case.args, which, strict=True) if w]
    outs = iter(model(torch.cat(flat)).split([f.shape[0] for f in flat]))  # one DDP forward
    args = [
        next(outs).reshape(*t.shape[:-1], D) if w else t
        for t, w in zip(case.args, which, strict=True)
    ]
    return Case(args, dict(case.tensors), dict(case.kwargs))


def _model() -> nn.Module:
    torch.manual_seed(11)
    return nn.Linear(D_IN, D).double()


def check_case(loss_id: str, setting: dict[str, Any], impl: str, sizes: list[int]) -> None:
    """Global loss, DDP parameter gradients and loss-parameter gradients equal one process."""
    rank = dist.get_rank()
    n_global = sum(sizes)
    case = _global_case(loss_id, setting, sizes)
    ctor = dict(case.kwargs)
    ctor.update(impl=impl, chunk_size=3 if impl == "tiled" else None)
    cls = L.REGISTRY[loss_id]

    ref_model = _model()
    ref_loss = cls(**ctor).double()
    ref_case = _forward(ref_model, case)
    expected = ref_loss(*ref_case.args, **ref_case.tensors)
    expected.backward()

    model = _model()
    ddp = DistributedDataParallel(model)
    loss = cls(**ctor, gather_distributed=True).double()
    off = sum(sizes[:rank])
    local = case.rows(torch.arange(off, off + sizes[rank]), n_global)
    if "partner" in case.tensors:
        local.tensors["partner"] = case.tensors["partner"][off : off + sizes[rank]] - off
    local_case = _forward(ddp, local)
    value = loss(*local_case.args, **local_case.tensors)
    value.backward()
    torch.testing.assert_close(value.detach(), expected.detach())
    for p, q in zip(model.parameters(), ref_model.parameters(), strict=True):
        torch.testing.assert_close(p.grad, q.grad)
    for p, q in zip(loss.parameters(), ref_loss.parameters(), strict=True):
        torch.testing.assert_close(p.grad, q.grad)


def _expect_error(fn: Any, match: str) -> str:
    try:
        fn()
    except ValueError as exc:
        return "ok" if match in str(exc) else f"wrong message: {exc}"
    return "no error raised"


def check_errors(rank: int) -> dict[str, str]:
    """Inputs that cannot work raise the same clear error on every rank, without hanging."""
    g = torch.Generator().manual_seed(rank)
    width = 4 if rank == 0 else 5
    results = {
        "width": _expect_error(
            lambda: L.infonce(
                torch.randn(3, width, generator=g),
                torch.randn(3, width, generator=g),
                gather_distributed=True,
            ),
            "same embedding width",
        ),
        "dtype": _expect_error(
            lambda: L.ntxent(
                torch.randn(3, 4, dtype=torch.float64 if rank == 0 else torch.float32),
                torch.randn(3, 4, dtype=torch.float64 if rank == 0 else torch.float32),
                gather_distributed=True,
            ),
            "different dtypes",
        ),
        "weights-on-some-ranks": _expect_error(
            lambda: L.infonce(
                torch.randn(3, 4),
                torch.randn(3, 4),
                weights=torch.ones(3) if rank == 0 else None,
                gather_distributed=True,
            ),
            "given on ranks [0] only",
        ),
        "symmetric-differs": _expect_error(
            lambda: L.infonce(
                torch.randn(3, 4), torch.randn(3, 4), symmetric=rank == 0, gather_distributed=True
            ),
            "`symmetric` differs across ranks",
        ),
        "type-error-on-one-rank": _expect_error(
            lambda: L.clip(
                torch.randn(3, 4),
                torch.randn(3, 4),
                logit_scale=None if rank == 1 else 2.0,  # type: ignore[arg-type]
                gather_distributed=True,
            ),
            "rank 1 of",
        ),
        "nan-on-one-rank": _expect_error(
            lambda: L.supcon(
                torch.full((3, 4), float("nan")) if rank == 1 else torch.randn(3, 4),
                torch.tensor([0, 1, 0]),
                gather_distributed=True,
            ),
            "rank 1 of",
        ),
    }
    return results


def check_loss_inside_ddp(sizes: list[int]) -> None:
    """A loss module wrapped in DDP itself: its logit scale still gets the global gradient."""
    rank, n_global = dist.get_rank(), sum(sizes)
    g = torch.Generator().manual_seed(21)
    x, t = (torch.randn(n_global, D, generator=g, dtype=torch.float64) for _ in range(2))
    ref_loss = L.CLIPLoss().double()
    expected = ref_loss(x, t)
    expected.backward()
    loss = L.CLIPLoss(gather_distributed=True).double()
    wrapped = DistributedDataParallel(loss)
    off = sum(sizes[:rank])
    local = slice(off, off + sizes[rank])
    value = wrapped(x[local], t[local])
    value.backward()
    torch.testing.assert_close(value.detach(), expected.detach())
    torch.testing.assert_close(loss.logit_scale.grad, ref_loss.logit_scale.grad)


def check_queue(sizes: list[int]) -> None:
    """A Queue pushed on every rank stays identical and equals one process's bank.

    Its shards, as extra negatives of a gathered InfoNCE, give the single-process loss with the
    whole bank.
    """
    from contrastkit.state import Queue

    rank, n_global = dist.get_rank(), sum(sizes)
    g = torch.Generator().manual_seed(5)
    steps = [torch.randn(n_global, D, generator=g, dtype=torch.float64) for _ in range(3)]
    labels = [torch.arange(n_global) + 100 * t for t in range(3)]
    ref, local = (
        Queue(7, D, labels=True, dtype=torch.float64),
        Queue(7, D, labels=True, dtype=torch.float64),
    )
    off = sum(sizes[:rank])
    mine = slice(off, off + sizes[rank])
    for keys, y in zip(steps, labels, strict=True):
        ref.push(keys, y)
        local.push(keys[mine], y[mine], gather_distributed=True)
    torch.testing.assert_close(local.keys(), ref.keys())
    assert local.labels().tolist() == ref.labels().tolist()
    q, k = (torch.randn(n_global, D, generator=g, dtype=torch.float64) for _ in range(2))
    expected = L.infonce(q, torch.cat([k, ref.keys()]))
    value = L.infonce(q[mine], torch.cat([k[mine], local.shard()]), gather_distributed=True)
    torch.testing.assert_close(value, expected)


def check_grad_cache(sizes: list[int]) -> None:
    """GradCache under DDP: global loss, single-process gradients, one gradient sync."""
    from torch.distributed.algorithms.ddp_comm_hooks import default_hooks

    from contrastkit.train import GradCache

    rank, n_global = dist.get_rank(), sum(sizes)
    g = torch.Generator().manual_seed(9)
    x1, x2 = (torch.randn(n_global, D_IN, generator=g, dtype=torch.float64) for _ in range(2))
    ref_model = _model()
    expected = L.ntxent(ref_model(x1), ref_model(x2), temperature=0.3)
    expected.backward()

    model = _model()
    ddp = DistributedDataParallel(model)
    syncs = [0]

    def counting(state, bucket):  # type: ignore[no-untyped-def]  # DDP rejects string annotations
        syncs[0] += 1
        return default_hooks.allreduce_hook(state, bucket)

    ddp.register_comm_hook(None, counting)
    off = sum(sizes[:rank])
    local = slice(off, off + sizes[rank])
    step = GradCache(
        [ddp, ddp], L.NTXentLoss(temperature=0.3, gather_distributed=True), chunk_size=2
    )
    value = step(x1[local], x2[local])
    torch.testing.assert_close(value, expected.detach())
    for p, q in zip(model.parameters(), ref_model.parameters(), strict=True):
        torch.testing.assert_close(p.grad, q.grad)
    assert syncs[0] == 1, f"{syncs[0]} gradient synchronizations in one step"


def run(rank: int, world: int, init_file: str, out_dir: str, sizes: list[int]) -> None:
    """Entry point of one rank: run every case, save the outcomes."""
    dist.init_process_group(
        "gloo",
        init_method=f"file://{init_file}",
        rank=rank,
        world_size=world,
        timeout=timedelta(seconds=60),
    )
    torch.set_num_threads(1)
    results: dict[str, str] = {}
    try:
        for case_id, loss_id, setting, impl in cases():
            try:
                check_case(loss_id, setting, impl, sizes)
                results[case_id] = "ok"
            except Exception:  # recorded, reported by the test in the parent
                results[case_id] = traceback.format_exc(limit=3)
        for name, check in (
            ("grad-cache", check_grad_cache),
            ("loss-in-ddp", check_loss_inside_ddp),
            ("queue", check_queue),
        ):
            try:
                check(sizes)
                results[name] = "ok"
            except Exception:
                results[name] = traceback.format_exc(limit=3)
        for name, outcome in check_errors(rank).items():
            results[f"error-{name}"] = outcome
    finally:
        torch.save(results, Path(out_dir) / f"rank{rank}.pt")
        dist.barrier()  # nobody tears the group down while another rank still uses it
        dist.destroy_process_group()
