"""Draw docs/img/tiles.svg: how the engine sweeps the score matrix in tiles.

Run from the repository root: ``python docs/_scripts/draw_tiles.py`` (needs matplotlib). The
output is committed; the script is deterministic (fixed SVG ids, no date), so re-running it
without changes leaves the file identical.

Left panel, forward: anchors ``a (N, D)`` and candidates ``b (M, D)``; the ``N x M`` score
matrix exists one tile at a time; each tile updates the per-row and per-column running
statistics (max and sum of exponentials), then is dropped. Right panel, backward: each tile is
recomputed, ``dL/dS`` is formed in closed form from the saved statistics, and the gradient
accumulators ``dA``, ``dB`` receive ``dS B`` and ``dS^T A``.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib.axes import Axes
from matplotlib.patches import FancyArrowPatch, Rectangle

OUT = Path(__file__).resolve().parents[1] / "img" / "tiles.svg"

ROWS, COLS = 4, 6  # tiles along N and M
TILE = 1.0
D_WIDTH = 1.3  # drawn width of the embedding dimension D
DONE, CURRENT, TODO = "#c5cae9", "#ff9800", "#f5f5f5"
EDGE, INK, STATS = "#3f51b5", "#212121", "#4caf50"


def _box(ax: Axes, x: float, y: float, w: float, h: float, color: str, **kw: Any) -> None:
    ax.add_patch(Rectangle((x, y), w, h, facecolor=color, edgecolor=EDGE, linewidth=1.0, **kw))


def _arrow(ax: Axes, start: tuple[float, float], end: tuple[float, float]) -> None:
    ax.add_patch(
        FancyArrowPatch(start, end, arrowstyle="-|>", mutation_scale=12, color=INK, linewidth=1.2)
    )


def _panel(ax: Axes, *, backward: bool, current: tuple[int, int]) -> None:
    cr, cc = current
    top = ROWS * TILE
    # b^T above the matrix, a to its left (one block per tile row / column).
    for j in range(COLS):
        color = CURRENT if j == cc else "white"
        _box(ax, j * TILE, top + 0.35, TILE, D_WIDTH, color)
    for i in range(ROWS):
        color = CURRENT if i == cr else "white"
        _box(ax, -D_WIDTH - 0.35, top - (i + 1) * TILE, D_WIDTH, TILE, color)
    ax.text(COLS * TILE / 2, top + 0.35 + D_WIDTH + 0.25, r"$b^\top$  (D x M)", ha="center")
    ax.text(-D_WIDTH / 2 - 0.35, top + 0.55, r"$a$  (N x D)", ha="center")

    # The score matrix: tiles already swept, the current tile, tiles still to come.
    order = [(i, j) for i in range(ROWS) for j in range(COLS)]
    k_current = order.index(current)
    for k, (i, j) in enumerate(order):
        color = CURRENT if k == k_current else (DONE if k < k_current else TODO)
        dashed = {} if k == k_current else {"linestyle": (0, (3, 2))}
        _box(ax, j * TILE, top - (i + 1) * TILE, TILE, TILE, color, **dashed)
    ax.text(
        COLS * TILE / 2,
        -1.6,
        r"scores $s_{ij}$ (N x M): never held whole",
        ha="center",
        va="top",
        color=INK,
    )
    cx, cy = cc * TILE + TILE / 2, top - cr * TILE - TILE / 2
    label = "recompute\ntile" if backward else "one GEMM\nper tile"
    ax.text(cx, cy, label, ha="center", va="center", fontsize=7.5, color=INK)

    # Statistics (forward: updated; backward: read) right of and below the matrix.
    sx = COLS * TILE + 0.35
    for i in range(ROWS):
        filled = backward or i <= cr  # backward reads the complete statistics
        _box(ax, sx, top - (i + 1) * TILE, 0.35, TILE, STATS if filled else "white", alpha=0.8)
    sy = -1.35
    for j in range(COLS):
        filled = backward or j <= cc or cr > 0
        _box(ax, j * TILE, sy, TILE, 0.35, STATS if filled else "white", alpha=0.8)
    ax.text(sx + 0.6, top - ROWS * TILE / 2, "row\nlog-sum-exp\n(N,)", va="center", fontsize=8)
    ax.text(COLS * TILE + 0.1, sy + 0.17, "column log-sum-exp (M,)", va="center", fontsize=8)
    if backward:
        _arrow(ax, (sx + 0.17, cy), (cc * TILE + TILE, cy))
        _arrow(ax, (cx, sy + 0.35), (cx, top - (cr + 1) * TILE))
        gy = top + 0.35 + D_WIDTH + 0.9
        ax.text(
            COLS * TILE / 2,
            gy,
            r"$\partial L/\partial S$ from the saved statistics;"
            "\n"
            r"dA += $dS\ b$,  dB += $dS^\top a$",
            ha="center",
            fontsize=9,
        )
    else:
        _arrow(ax, (cc * TILE + TILE, cy), (sx, cy))
        _arrow(ax, (cx, top - (cr + 1) * TILE), (cx, sy + 0.35))
        ax.text(
            COLS * TILE / 2,
            top + 0.35 + D_WIDTH + 0.9,
            "update running max and sum;\nthen drop the tile",
            ha="center",
            fontsize=9,
        )
    ax.set_title("backward" if backward else "forward", fontsize=12, pad=4)
    ax.set_xlim(-D_WIDTH - 0.6, COLS * TILE + 2.3)
    ax.set_ylim(-2.2, top + D_WIDTH + 2.0)
    ax.set_aspect("equal")
    ax.axis("off")


def main() -> None:
    """Write the SVG."""
    plt.rcParams.update(
        {"svg.hashsalt": "contrastkit-tiles", "svg.fonttype": "none", "font.size": 9}
    )
    fig, (fwd, bwd) = plt.subplots(1, 2, figsize=(11, 4.6))
    _panel(fwd, backward=False, current=(1, 3))
    _panel(bwd, backward=True, current=(2, 2))
    fig.tight_layout()
    OUT.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(OUT, format="svg", metadata={"Date": None, "Creator": None})
    print(f"wrote {OUT}", file=sys.stderr)


if __name__ == "__main__":
    main()
