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
    "palm": [{}, {"k": 1, "lambda_pcon": 0.5}],
    "pamc": [{}, {"negatives": "sized", "weighted": True}, {"negatives": "exact"}],
    "prototype_margin": [{}],
    "sogclr": [{}],
    "isogclr": [{}],
    "sogclr_bimodal": [{}],
    "patchnce": [{}, {"ids": True}],
    "asp": [{"progress": 0.9, "ids": True}],
    "proxy_nce": [{}, {"prior": "none", "loss_scale": 1.5}],
    "gram": [
        {},
        {"modalities": 2},
        {"modalities": 4, "symmetric": False, "label_smoothing": 0.0},
        {"learnable": True},
    ],
    "multimodal_pairwise": [
        {},
        {"modalities": 4, "aggregate": "mean"},
        {"symmetric": False},
        {"modalities": 2},
    ],
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
    if "edge_index" in case.tensors:  # PamC: each rank's edges join its own rows
        case.tensors["edge_index"] = torch.cat(
            [
                torch.stack([torch.arange(n).repeat(2), torch.randint(0, n, (2 * n,), generator=g)])
                + sum(sizes[:r])
                for r, n in enumerate(sizes)
            ],
            1,
        )
        if "edge_weight" in case.tensors:
            e = case.tensors["edge_index"].shape[1]
            case.tensors["edge_weight"] = torch.rand(e, generator=g, dtype=torch.float64) + 0.2
    if "prototypes" in case.tensors:  # PALM: the bank lives in the output space (width D)
        shape = (*case.tensors["prototypes"].shape[:2], D)
        case.tensors["prototypes"] = torch.randn(*shape, generator=g, dtype=torch.float64)
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


def _loss_module(cls: type[nn.Module], case: Case, **ctor: Any) -> nn.Module:
    """The loss module with the case's hyper-parameters.

    A module that owns a prototype bank (PALM) is built for the case's bank and loaded with it;
    in training mode it updates the bank from the batch before the loss.
    """
    if "prototypes" not in case.tensors:
        return cls(**ctor).double()
    bank = case.tensors["prototypes"]
    module = cls(bank.shape[0], bank.shape[2], prototypes_per_class=bank.shape[1], **ctor)
    module = module.double()
    with torch.no_grad():
        module.prototypes.copy_(bank)
    return module


def _call_tensors(case: Case) -> dict[str, torch.Tensor]:
    """The tensor keywords of forward (a bank owned by the module is not passed)."""
    return {k: t for k, t in case.tensors.items() if k != "prototypes"}


def check_case(loss_id: str, setting: dict[str, Any], impl: str, sizes: list[int]) -> None:
    """Global loss, DDP parameter gradients and loss-parameter gradients equal one process."""
    rank = dist.get_rank()
    n_global = sum(sizes)
    case = _global_case(loss_id, setting, sizes)
    ctor = dict(case.kwargs)
    if L.REGISTRY[loss_id].requires.index:  # per-sample state keyed by dataset index
        ctor["num_samples"] = n_global + 2
        g = torch.Generator().manual_seed(3)
        case.tensors["index"] = torch.randperm(n_global + 2, generator=g)[:n_global]
    ctor.update(impl=impl, chunk_size=3 if impl == "tiled" else None)
    cls = L.REGISTRY[loss_id]
    proxies = None
    if loss_id == "proxy_nce":  # the module owns its (C, D) proxies: the same values in both
        c = case.tensors.pop("proxies").shape[0]
        proxies = torch.randn(c, D, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
        ctor.update(num_classes=c, embedding_dim=D)

    ref_model = _model()
    ref_loss = _loss_module(cls, case, **ctor)
    if proxies is not None:
        with torch.no_grad():
            ref_loss.proxies.copy_(proxies)
    ref_case = _forward(ref_model, case)
    expected = ref_loss(*ref_case.args, **_call_tensors(ref_case))
    expected.backward()

    model = _model()
    ddp = DistributedDataParallel(model)
    loss = _loss_module(cls, case, **ctor, gather_distributed=True)
    if proxies is not None:
        with torch.no_grad():
            loss.proxies.copy_(proxies)
    off = sum(sizes[:rank])
    local = case.rows(torch.arange(off, off + sizes[rank]), n_global)
    if "partner" in case.tensors:
        local.tensors["partner"] = case.tensors["partner"][off : off + sizes[rank]] - off
    local_case = _forward(ddp, local)
    value = loss(*local_case.args, **_call_tensors(local_case))
    value.backward()
    torch.testing.assert_close(value.detach(), expected.detach())
    for p, q in zip(model.parameters(), ref_model.parameters(), strict=True):
        torch.testing.assert_close(p.grad, q.grad)
    for p, q in zip(loss.parameters(), ref_loss.parameters(), strict=True):
        torch.testing.assert_close(p.grad, q.grad)
    for b, c in zip(loss.buffers(), ref_loss.buffers(), strict=True):  # state after the step
        torch.testing.assert_close(b, c)


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


def check_sogclr_state(sizes: list[int]) -> None:
    """SogCLR-family modules over three steps equal one process on the global batch.

    Global value, DDP gradients and the per-sample state match, and the state is identical on
    every rank; the functional forms with per-row estimates and temperatures are exact (their
    per-row tensors get the W-scaled slice of the global gradient, like embeddings).
    """
    from contrastkit.losses.sogclr import (
        ISogCLRLoss,
        SogCLRBimodalLoss,
        SogCLRLoss,
        isogclr,
        sogclr_bimodal,
    )

    rank, world, n_global = dist.get_rank(), dist.get_world_size(), sum(sizes)
    off = sum(sizes[:rank])
    mine = slice(off, off + sizes[rank])
    f64 = torch.float64
    g = torch.Generator().manual_seed(13)
    num = n_global + 4
    steps = []
    for _ in range(3):  # random indices: repeats within and across ranks, new and visited
        x1 = torch.randn(n_global, D_IN, generator=g, dtype=f64)
        x2 = x1 + torch.randn(n_global, D_IN, generator=g, dtype=f64)
        steps.append((x1, x2, torch.randint(0, num, (n_global,), generator=g)))
    makers = [
        lambda **kw: SogCLRLoss(num_samples=num, dtype=f64, **kw),
        lambda **kw: ISogCLRLoss(num_samples=num, eta=0.2, dtype=f64, **kw),
        lambda **kw: SogCLRBimodalLoss(
            num_samples=num,
            temperature=0.1,
            learn_temperature=True,
            tau_min=0.05,
            tau_max=0.5,
            dtype=f64,
            **kw,
        ),
    ]
    for make in makers:
        for impl in ("dense", "tiled"):
            kw = {"impl": impl, "chunk_size": 3 if impl == "tiled" else None}
            ref_model, ref_loss = _model(), make(**kw)
            model = _model()
            ddp = DistributedDataParallel(model)
            loss = make(gather_distributed=True, **kw)
            for x1, x2, index in steps:
                ref_model.zero_grad()
                model.zero_grad()
                expected = ref_loss(ref_model(x1), ref_model(x2), index)
                expected.backward()
                y1, y2 = ddp(torch.cat([x1[mine], x2[mine]])).split(sizes[rank])
                value = loss(y1, y2, index[mine])
                value.backward()
                torch.testing.assert_close(value.detach(), expected.detach())
                for p, q in zip(model.parameters(), ref_model.parameters(), strict=True):
                    torch.testing.assert_close(p.grad, q.grad)
                ours = loss.state_dict()
                for k, t in ref_loss.state_dict().items():
                    torch.testing.assert_close(ours[k], t)
                    copies = [torch.empty_like(t) for _ in range(world)]
                    dist.all_gather(copies, ours[k])
                    assert all(torch.equal(c, ours[k]) for c in copies), k

    z1, z2 = (torch.randn(n_global, D, generator=g, dtype=f64) for _ in range(2))
    rows = {
        "temperature": 0.2 + 0.3 * torch.rand(n_global, generator=g, dtype=f64),
        "log_u1": torch.randn(n_global, generator=g, dtype=f64),
        "log_u2": torch.randn(n_global, generator=g, dtype=f64),
    }
    bi_rows = {
        "temperature_image": rows["temperature"],
        "log_u_image": rows["log_u1"],
        "log_u_text": rows["log_u2"],
    }
    for fn, per_row in ((isogclr, rows), (sogclr_bimodal, bi_rows)):
        for reduction in ("mean", "none"):
            leaves = [z1, z2, *per_row.values()]
            ref = [t.clone().requires_grad_() for t in leaves]
            loc = [t[mine].clone().requires_grad_() for t in leaves]
            names = list(per_row)
            expected = fn(
                ref[0], ref[1], **dict(zip(names, ref[2:], strict=True)), reduction=reduction
            )
            value = fn(
                loc[0],
                loc[1],
                **dict(zip(names, loc[2:], strict=True)),
                reduction=reduction,
                gather_distributed=True,
            )
            if reduction == "none":
                torch.testing.assert_close(value.detach(), expected.detach()[mine])
                expected = expected.sum()
                value = value.sum()  # each rank's terms; their sum over ranks is the global sum
            else:
                torch.testing.assert_close(value.detach(), expected.detach())
            expected.backward()
            value.backward()
            for r, lo in zip(ref, loc, strict=True):
                torch.testing.assert_close(lo.grad, world * r.grad[mine])


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
            ("sogclr-state", check_sogclr_state),
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
