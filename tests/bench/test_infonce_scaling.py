"""Smoke test of the InfoNCE scaling benchmark: one small case per implementation, no timings."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path


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
