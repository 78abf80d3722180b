"""The `contrastkit` command: a smoke test of every command, errors and exit codes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from contrastkit import cli
from contrastkit.data import DataSourceMissingError

TINY = ["--quiet", "--seed", "1", "--device", "cpu"]


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_demo_writes_the_report(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(capsys, "demo", "--out", str(tmp_path), "--epochs", "3", *TINY)
    assert code == 0
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert set(metrics) == {"raw", "random", "trained"}
    for row in metrics.values():
        assert set(row) == {"knn_accuracy", "linear_accuracy", "alignment", "uniformity"}
        assert 0.0 <= row["knn_accuracy"] <= 1.0
        assert 0.0 <= row["linear_accuracy"] <= 1.0
        assert 0.0 <= row["alignment"] <= 4.0
        assert -4.0 <= row["uniformity"] <= 0.0
    for name in ("loss", "similarities", "alignment_uniformity", "embedding_map"):
        png = (tmp_path / f"{name}.png").read_bytes()
        assert png[:8] == b"\x89PNG\r\n\x1a\n"
        assert len(png) > 5_000
    assert (tmp_path / "log.jsonl").exists()
    assert (tmp_path / "log.csv").exists()
    assert "random encoder" in out
    assert "trained encoder" in out
    assert "kNN acc" in out


def test_resume_refuses_other_settings(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["demo", "--out", str(tmp_path), "--no-plots", *TINY]
    assert _run(capsys, *args, "--epochs", "2")[0] == 0
    code, _, err = _run(capsys, *args, "--epochs", "4", "--resume")
    assert code == 2
    assert "cosine" in err
    code, _, err = _run(capsys, *args, "--epochs", "2", "--loss", "dcl", "--resume")
    assert code == 2
    assert "loss.name" in err
    # a finished run resumed as it was: no new steps, one final evaluation in the log
    assert _run(capsys, *args, "--epochs", "2", "--resume")[0] == 0
    records = [json.loads(x) for x in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert [r["kind"] for r in records].count("eval") == 1
    assert max(r["step"] for r in records) == 2 * (1346 // 256)


def test_train_with_config_and_overrides(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "run.toml"
    config.write_text(
        '[loss]\nname = "supcon"\ntemperature = 0.1\n[train]\nepochs = 2\nbatch_size = 128\n'
        '[model]\nencoder = "cnn"\nwidth = 8\n'
    )
    out = tmp_path / "out"
    code, _, _ = _run(
        capsys,
        "train",
        "--config",
        str(config),
        "--set",
        "train.lr=0.001",
        "--set",
        "loss.temperature=0.5",
        "--out",
        str(out),
        "--no-plots",
        *TINY,
    )
    assert code == 0
    written = (out / "config.toml").read_text()
    assert 'name = "supcon"' in written
    assert "temperature = 0.5" in written
    assert "lr = 0.001" in written
    assert 'encoder = "cnn"' in written
    assert set(json.loads((out / "metrics.json").read_text())) == {"raw", "random", "trained"}


def test_train_paired_data(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    try:
        from contrastkit.data import load_multifeature

        load_multifeature()
    except DataSourceMissingError as exc:
        pytest.skip(str(exc))
    code, out, _ = _run(
        capsys,
        "train",
        "--set",
        "data.name=multifeature",
        "--set",
        'data.views=["pix","fou"]',
        "--set",
        "loss.name=clip",
        "--set",
        "train.epochs=2",
        "--set",
        "train.batch_size=128",
        "--out",
        str(tmp_path),
        "--no-plots",
        *TINY,
    )
    assert code == 0
    assert "recall@1" in out  # the printed table shows the retrieval metrics
    trained = json.loads((tmp_path / "metrics.json").read_text())["trained"]
    assert {"recall@1", "recall@10", "mrr", "roc_auc"} <= set(trained)


def test_compare_table(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(
        capsys,
        "compare",
        "--losses",
        "ntxent,dcl",
        "--seeds",
        "2",
        "--set",
        "data.limit=600",
        "--set",
        "train.epochs=1",
        "--out",
        str(tmp_path),
        *TINY,
    )
    assert code == 0
    assert "ntxent" in out
    assert "dcl" in out
    assert "±" in out
    rows = (tmp_path / "compare.csv").read_text().splitlines()
    assert rows[0].startswith("name,knn_accuracy_mean,knn_accuracy_std")
    assert [r.split(",")[0] for r in rows[1:]] == ["raw", "random", "ntxent", "dcl"]
    runs = json.loads((tmp_path / "compare.json").read_text())["runs"]
    assert len(runs["ntxent"]) == 2
    assert len(runs["dcl"]) == 2
    assert (tmp_path / "compare.png").read_bytes()[:4] == b"\x89PNG"


def test_losses_lists_the_catalog(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from contrastkit.losses import REGISTRY

    code, out, _ = _run(capsys, "losses")
    assert code == 0
    assert all(name in out for name in REGISTRY)
    code, out, _ = _run(capsys, "losses", "supcon")
    assert code == 0
    assert "Khosla" in out
    assert "labels" in out
    code, out, _ = _run(capsys, "losses", "--trainable")
    assert "mixco" not in out
    target = tmp_path / "catalog.md"
    code, out, _ = _run(capsys, "losses", "--markdown", "--out", str(target))
    assert code == 0
    assert target.read_text() == out
    assert "| `supcon` |" in out
    assert "ntxent" in out


def test_bench_runs_the_engine_benchmark(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    small = ["--sizes", "64", "--impls", "contrastkit", "dense", "--repeats", "1"]
    small += ["--gemm-size", "64", "--gemm-repeats", "1"]
    code, out, _ = _run(capsys, "bench", "--out", str(tmp_path), "--seed", "1", "--", *small)
    assert code == 0
    assert "contrastkit" in out
    assert "dense" in out
    assert (tmp_path / "bench.md").read_text() == out
    payload = json.loads((tmp_path / "bench.json").read_text())
    assert payload  # the machine-readable results of the same run


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["demo", "--loss", "mixco"], "cannot be trained"),
        (["demo", "--loss", "nope"], "unknown catalog id"),
        (["demo", "--epochs", "0"], "epochs"),
        (["demo", "--device", "quantum"], "--device"),
        (["train", "--set", "train.epochs"], "section.key=value"),
        (["train", "--set", "optim.lr=1"], "unknown table [optim]"),
        (["train", "--set", "train.learning_rate=1"], "unknown key(s) learning_rate"),
        (["train", "--set", "data.name=cifar100"], "must be one of the data sets"),
        (["train", "--config", "missing.toml"], "no file"),
        (["compare", "--losses", "ntxent,ntxent"], "twice"),
        (["compare", "--losses", "ntxent", "--seeds", "0"], "--seeds"),
        (["losses", "nope"], "unknown catalog id"),
        (["train", "--resume"], "no checkpoint"),
        (["bench", "nope"], "unknown benchmark"),
        (["bench", "--seed", "1", "distributed"], "has no seed"),
        (["train", "--set", "data.options=3"], "data.options: must be a table"),
        (["train", "--set", "model.hidden=256"], "model.hidden: must be a list"),
        (["train", "--set", "data.limit=-5"], "data.limit: must be an int >= 0"),
        (["train", "--set", "loss.supervised=no"], "loss.supervised: must be true or false"),
        (["train", "--set", "loss.name=dcl", "--set", "loss.margin=1.0"], "takes no option"),
        (
            ["train", "--set", "loss.name=proxy_nce", "--set", "loss.supervised=false"],
            "needs class",
        ),
    ],
)
def test_bad_arguments_exit_2(
    argv: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = ["--out", str(tmp_path)] if argv[0] in ("demo", "train", "compare") else []
    code, _, err = _run(capsys, *argv, *out)
    assert code == 2
    assert message in err


def test_missing_data_source_exits_3(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import contrastkit.data as data

    def missing(**_: object) -> object:
        raise DataSourceMissingError("WordNet 3.0", "/nowhere", "apt-get install -y wordnet-base")

    monkeypatch.setattr(data, "load", lambda name, **kw: missing(**kw))
    code, _, err = _run(capsys, "train", "--set", "data.name=wordnet", "--out", str(tmp_path))
    assert code == 3
    assert "apt-get install -y wordnet-base" in err


def test_ctrl_c_then_resume_equals_an_uninterrupted_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import os
    import signal

    import torch

    from contrastkit.train import trainer

    whole = ["demo", "--out", str(tmp_path / "whole"), "--epochs", "2", "--no-plots", *TINY]
    assert _run(capsys, *whole)[0] == 0

    original = trainer.Trainer._step
    calls = {"n": 0}

    def interrupted(self: trainer.Trainer, *args: object) -> float:
        calls["n"] += 1
        if calls["n"] == 3:  # Ctrl-C in the middle of the third step
            os.kill(os.getpid(), signal.SIGINT)
        return original(self, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(trainer.Trainer, "_step", interrupted)
    cut = ["demo", "--out", str(tmp_path / "cut"), "--epochs", "2", "--no-plots", *TINY]
    code, _, err = _run(capsys, *cut)
    assert code == 130
    assert "--resume" in err
    assert torch.load(tmp_path / "cut" / "checkpoint.pt", weights_only=False)["step"] == 3
    monkeypatch.setattr(trainer.Trainer, "_step", original)
    assert _run(capsys, *cut, "--resume")[0] == 0

    a = torch.load(tmp_path / "whole" / "checkpoint.pt", weights_only=False)
    b = torch.load(tmp_path / "cut" / "checkpoint.pt", weights_only=False)
    assert a["step"] == b["step"]
    for key, value in a["task"].items():
        assert torch.equal(value, b["task"][key]), key
    assert (
        json.loads((tmp_path / "whole" / "metrics.json").read_text())["trained"]
        == json.loads((tmp_path / "cut" / "metrics.json").read_text())["trained"]
    )


def test_help_and_module_entry_point() -> None:
    for command in ("demo", "train", "compare", "bench", "losses"):
        with pytest.raises(SystemExit) as exc:
            cli.main([command, "--help"])
        assert exc.value.code == 0
    proc = subprocess.run(
        [sys.executable, "-m", "contrastkit", "--help"], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0
    assert "demo" in proc.stdout
    assert "compare" in proc.stdout
    proc = subprocess.run(
        [sys.executable, "-m", "contrastkit"], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 2
