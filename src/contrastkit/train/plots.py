r"""The report's figures, written as PNG files with matplotlib (imported only when drawing).

- :func:`loss_curve`: training loss against step, from the trainer's log records;
- :func:`similarity_histograms`: cosine similarities of positive pairs against those of
  negative pairs (how far apart the loss pushed them);
- :func:`alignment_uniformity`: points in Wang & Isola's alignment-uniformity plane (lower
  is better on both axes);
- :func:`embedding_map`: a 2-D map (the first two principal components) of the test
  embeddings, coloured by class;
- :func:`metric_bars`: mean and spread per metric of several runs (``contrastkit compare``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor


def _pyplot() -> Any:
    try:
        import matplotlib
    except ImportError as exc:
        raise ImportError(
            "plots need matplotlib: pip install matplotlib (or run with --no-plots)"
        ) from exc
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig: Any, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    _pyplot().close(fig)
    return path


def loss_curve(records: Sequence[Mapping[str, Any]], path: Path, *, title: str = "") -> Path:
    """Training loss against step (records of kind ``"train"``)."""
    plt = _pyplot()
    steps = [r["step"] for r in records if r.get("kind") == "train"]
    losses = [r["loss"] for r in records if r.get("kind") == "train"]
    fig, ax = plt.subplots(figsize=(5.5, 3.5))
    ax.plot(steps, losses, lw=1.2)
    ax.set_xlabel("step")
    ax.set_ylabel("training loss")
    ax.set_title(title or "loss curve")
    ax.grid(alpha=0.3)
    return _save(fig, path)


def pair_similarities(a: Tensor, b: Tensor, *, negatives: int = 20_000) -> tuple[Tensor, Tensor]:
    """Cosine similarities of the pairs ``(a_i, b_i)`` and of random pairs ``(a_i, b_j)``, i≠j.

    The negatives are drawn from a fixed seed (``negatives`` of them), so no ``N x N``
    matrix is formed.
    """
    a, b = F.normalize(a.float(), dim=1), F.normalize(b.float(), dim=1)
    pos = (a * b).sum(1)
    n = a.shape[0]
    gen = torch.Generator().manual_seed(0)
    i = torch.randint(n, (negatives,), generator=gen)
    j = (i + torch.randint(1, max(n, 2), (negatives,), generator=gen)) % n
    neg = (a[i.to(a.device)] * b[j.to(b.device)]).sum(1)
    return pos.cpu(), neg.cpu()


def similarity_histograms(panels: Mapping[str, tuple[Tensor, Tensor]], path: Path) -> Path:
    """One panel per model: histograms of positive and negative pair cosine similarities.

    Args:
        panels: Title -> ``(a, b)`` row-aligned embeddings (row ``i`` of each is a positive).
        path: The PNG file.
    """
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.3), squeeze=False)
    for ax, (title, (a, b)) in zip(axes[0], panels.items(), strict=True):
        pos, neg = pair_similarities(a, b)
        bins = torch.linspace(-1, 1, 61).tolist()
        ax.hist(neg.numpy(), bins=bins, density=True, alpha=0.6, label="negative pairs")
        ax.hist(pos.numpy(), bins=bins, density=True, alpha=0.6, label="positive pairs")
        ax.set_title(title)
        ax.set_xlabel("cosine similarity")
        ax.legend(fontsize=8)
    return _save(fig, path)


def alignment_uniformity(points: Mapping[str, Mapping[str, float]], path: Path) -> Path:
    """Each named run as a point (uniformity, alignment); lower-left is better."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(4.8, 4.0))
    for name, m in points.items():
        ax.scatter([m["uniformity"]], [m["alignment"]], s=40)
        ax.annotate(
            name,
            (m["uniformity"], m["alignment"]),
            fontsize=8,
            xytext=(4, 4),
            textcoords="offset points",
        )
    ax.set_xlabel("uniformity (log mean Gaussian potential)")
    ax.set_ylabel("alignment (mean squared distance of positives)")
    ax.set_title("alignment vs uniformity (lower is better)")
    ax.grid(alpha=0.3)
    return _save(fig, path)


def embedding_map(
    embeddings: Tensor, labels: Tensor | None, path: Path, *, title: str = ""
) -> Path:
    """The first two principal components of the L2-normalized ``embeddings``, by class."""
    plt = _pyplot()
    x = F.normalize(embeddings.float().cpu(), dim=1)
    x = x - x.mean(0)
    _, _, vt = torch.linalg.svd(x, full_matrices=False)
    xy = (x @ vt[:2].T).numpy()
    fig, ax = plt.subplots(figsize=(4.8, 4.4))
    colors = labels.cpu().numpy() if labels is not None else None
    sc = ax.scatter(xy[:, 0], xy[:, 1], c=colors, s=6, cmap="tab10", alpha=0.8)
    if labels is not None and int(labels.max()) < 20:
        ax.legend(*sc.legend_elements(), fontsize=7, loc="best", title="class")
    ax.set_title(title or "embedding map (PCA)")
    ax.set_xticks([])
    ax.set_yticks([])
    return _save(fig, path)


def metric_bars(summary: Mapping[str, Mapping[str, tuple[float, float]]], path: Path) -> Path:
    """One panel per metric: mean (bar) and standard deviation (error bar) of each run name.

    Args:
        summary: Run name -> metric -> ``(mean, std)``.
        path: The PNG file.
    """
    plt = _pyplot()
    names = list(summary)
    metric_names = [m for m in next(iter(summary.values()))]
    fig, axes = plt.subplots(
        1, len(metric_names), figsize=(3.2 * len(metric_names), 3.4), squeeze=False
    )
    for ax, metric in zip(axes[0], metric_names, strict=True):
        means = [summary[n][metric][0] for n in names]
        stds = [summary[n][metric][1] for n in names]
        ax.bar(range(len(names)), means, yerr=stds, capsize=3, color="tab:blue", alpha=0.75)
        ax.set_xticks(range(len(names)))
        ax.set_xticklabels(names, rotation=45, ha="right", fontsize=8)
        ax.set_title(metric, fontsize=9)
        ax.grid(axis="y", alpha=0.3)
    return _save(fig, path)
