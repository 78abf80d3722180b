"""Smoke test of the PamC error benchmark: small graphs, the table and the expected ordering."""

from __future__ import annotations

import torch

from contrastkit.bench.pamc_error import main, make_graph, render, run


def test_graph_edges_join_same_true_cluster_nodes() -> None:
    """Every node has ``degree`` out-edges; ids are the true clusters up to the flipped share."""
    graph = make_graph(300, dim=8, clusters=5, degree=4, flip=0.0, seed=1)
    src, dst = graph.edge_index
    assert torch.equal(torch.bincount(src, minlength=300), torch.full((300,), 4))
    assert torch.equal(graph.clusters[src], graph.clusters[dst])


def test_rows_report_errors_and_times() -> None:
    """The sized estimate is close to the exact loss, PamC's own value is far; both align."""
    rows = run([200, 400], dim=16, clusters=5, repeats=1)
    assert [int(r["n"]) for r in rows] == [200, 400]
    for r in rows:
        assert r["sized_rel_error"] < 0.1 < 0.5 < r["meta_rel_error"]
        assert r["meta_grad_cos"] > 0.8
        assert r["sized_grad_cos"] > 0.8
        assert min(r["exact_seconds"], r["meta_seconds"], r["sized_seconds"]) > 0
    table = render(rows).splitlines()
    assert len(table) == 4
    assert table[0].startswith("| N |")


def test_main_prints_a_markdown_table(capsys) -> None:  # type: ignore[no-untyped-def]
    """The command line prints the header line and one row per size."""
    threads = torch.get_num_threads()
    try:
        main(["--sizes", "150", "--dim", "8", "--repeats", "1"])
    finally:
        torch.set_num_threads(threads)
    out = capsys.readouterr().out
    assert "| 150 |" in out
