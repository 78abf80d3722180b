"""Smoke tests of the scaling benchmark: small cases, loss agreement, rendering; no timings."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from contrastkit.bench._impls import DEFAULT_IMPLS, IMPLS, make_inputs
from contrastkit.bench._report import FAMILY_TITLES, CaseRow
from contrastkit.bench._worker import run_loss_case
from contrastkit.bench.infonce_scaling import Options, Runner, parse_options, render


def test_small_case_produces_rows(tmp_path: Path) -> None:
    """N=256 of dense and contrastkit runs in fresh workers and yields table and JSON rows."""
    out = tmp_path / "out.json"
    command = [
        sys.executable,
        "-m",
        "contrastkit.bench.infonce_scaling",
        "--sizes",
        "256",
        "--impls",
        "dense",
        "contrastkit",
        "--repeats",
        "1",
        "--gemm-size",
        "256",
        "--gemm-repeats",
        "1",
        "--threads",
        "1",
        "--json",
        str(out),
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stderr
    assert "| 256 | dense |" in done.stdout
    assert "| 256 | contrastkit" in done.stdout
    payload = json.loads(out.read_text())
    assert payload["ceiling_gflops"] > 0
    rows = {row["impl"]: row for row in payload["rows"] if not row["calibration"]}
    assert set(rows) == {"dense", "contrastkit"}
    for row in rows.values():
        assert row["status"] == "ok", row
        assert row["n"] == 256
        assert len(row["times"]) == 1
        assert row["peak_rss"] >= row["baseline_rss"] > 0
    assert abs(rows["dense"]["loss"] - rows["contrastkit"]["loss"]) < 1e-3 * rows["dense"]["loss"]


SIGLIP_IMPLS = (
    "contrastkit-siglip",
    "contrastkit-siglip-tiled",
    "contrastkit-siglip-dense",
    "dense-siglip",
    "open_clip-siglip",
)
SUPCON_IMPLS = (
    "contrastkit-supcon",
    "contrastkit-supcon-tiled",
    "contrastkit-supcon-dense",
    "dense-supcon",
    "pml-supcon",
)


def _worker_rows(names: tuple[str, ...], n: int) -> list[CaseRow]:
    """Run each case in this process through the worker's own function (no subprocess)."""
    rows = []
    for name in names:
        spec = {"impl": name, "n": n, "dim": 32, "seed": 0, "repeats": 1, "time_budget": 60.0}
        result = run_loss_case(spec)
        assert result["status"] == "ok", (name, result)
        rows.append(
            CaseRow(
                n=n,
                impl=name,
                status="ok",
                times=result["times"],
                warmup=result["warmup"],
                loss=result["loss"],
                baseline_rss=result["baseline_rss"],
                peak_rss=result["peak_rss"],
            )
        )
    return rows


@pytest.mark.parametrize("names", [SIGLIP_IMPLS, SUPCON_IMPLS], ids=["siglip", "supcon"])
def test_new_families_agree_and_render(names: tuple[str, ...]) -> None:
    """Each SigLIP / SupCon implementation runs at a tiny N; losses agree; the table renders."""
    pytest.importorskip("open_clip")
    pytest.importorskip("pytorch_metric_learning")
    rows = _worker_rows(names, 96)
    losses = [float(row.loss or "nan") for row in rows]
    assert max(losses) - min(losses) <= 1e-4 * max(abs(v) for v in losses), losses
    family = IMPLS[names[0]].family
    options = parse_options(["--sizes", "96", "--impls", *names])
    assert isinstance(options, Options)
    runner = Runner(options, None)
    runner.rows = rows
    report = render(options, [], runner)
    assert f"## {FAMILY_TITLES[family]}" in report
    for name in names:
        assert f"| 96 | {name}" in report
    assert f"## Ratios against {names[0]} (same run)" in report
    assert "Loss values agree" in report
    assert "DISAGREE" not in report


@pytest.mark.parametrize("names", [SIGLIP_IMPLS, SUPCON_IMPLS], ids=["siglip", "supcon"])
def test_new_families_gradients_agree(names: tuple[str, ...]) -> None:
    """Same gradients w.r.t. the embeddings from every implementation of a family."""
    pytest.importorskip("open_clip")
    pytest.importorskip("pytorch_metric_learning")
    grads = []
    for name in names:
        spec = IMPLS[name]
        first, second = make_inputs(spec.family, 80, 16, torch.Generator().manual_seed(1))
        torch.autograd.backward(spec.build()(first, second))
        grads.append((first.grad, second.grad if second.requires_grad else None))
    for grad_first, grad_second in grads[1:]:
        torch.testing.assert_close(grad_first, grads[0][0], rtol=1e-4, atol=1e-6)
        if grads[0][1] is not None:
            torch.testing.assert_close(grad_second, grads[0][1], rtol=1e-4, atol=1e-6)


def test_new_impls_are_known_and_run_by_default() -> None:
    """The new names are accepted and run by default; --max-size skips larger N."""
    new = ("contrastkit-siglip", "dense-siglip", "open_clip-siglip")
    new += ("contrastkit-supcon", "dense-supcon", "pml-supcon")
    assert set(new) <= set(DEFAULT_IMPLS)
    options = parse_options(["--impls", ",".join(new), "--max-size", "pml-supcon=2048"])
    assert isinstance(options, Options)
    assert options.impls == new
    assert options.max_sizes == {"pml-supcon": 2048}
    row = Runner(options, None).case(IMPLS["pml-supcon"], 4096)
    assert (row.status, row.message) == ("skipped", "--max-size 2048")
