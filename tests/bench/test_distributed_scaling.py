"""Smoke test of the distributed benchmark: both implementations run and agree."""

from __future__ import annotations

import pytest

from contrastkit.bench.distributed_scaling import run

pytestmark = pytest.mark.distributed


@pytest.mark.parametrize("world", [1, 2])
def test_both_implementations_run_and_agree(world: int) -> None:
    """Ours and open_clip give the same global loss; times and memory are reported."""
    ours = run("contrastkit", world, 256, 32, repeats=1)
    peer = run("open_clip", world, 256, 32, repeats=1)
    assert ours["time"] > 0
    assert ours["peak_gib"] > 0
    assert abs(ours["loss"] - peer["loss"]) < 1e-4
