"""The torchrun example trains exactly like one process holding the global batch."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.distributed

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "distributed_train.py"


def test_torchrun_two_processes_match_one(tmp_path: Path) -> None:
    """Same loss curve (float64) from 2 gloo processes and from 1 process with the double batch."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    common = [str(EXAMPLE), "--steps", "4", "--global-batch", "64", "--double"]
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2"]
    subprocess.run(
        [*torchrun, *common, "--out", str(tmp_path / "dist.json")],
        check=True,
        env=env,
        timeout=300,
        capture_output=True,
    )
    subprocess.run(
        [sys.executable, *common, "--out", str(tmp_path / "one.json")],
        check=True,
        env=env,
        timeout=300,
        capture_output=True,
    )
    dist_curve = json.loads((tmp_path / "dist.json").read_text())
    one_curve = json.loads((tmp_path / "one.json").read_text())
    assert dist_curve["world"] == 2
    assert one_curve["world"] == 1
    assert len(dist_curve["loss"]) == 4
    for a, b in zip(dist_curve["loss"], one_curve["loss"], strict=True):
        assert abs(a - b) < 1e-10
