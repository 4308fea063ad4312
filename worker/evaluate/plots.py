"""PNG plots next to the metrics: training curve, confusion matrix, contact sheet with boxes.

matplotlib runs on the Agg backend (no display on workers) with explicit figures that are
always closed, so a long-lived task process does not accumulate figures.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

DPI = 100
BOX_COLORS = ("#e6194b", "#3cb44b", "#4363d8", "#f58231", "#911eb4", "#42d4f4", "#f032e6")


def _save(fig: Figure, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=DPI, bbox_inches="tight")
    plt.close(fig)
    return path


def training_curve(losses: Sequence[tuple[int, float]], path: Path) -> Path:
    """Loss vs step (log scale when the loss spans more than a decade)."""
    fig, ax = plt.subplots(figsize=(6, 4))
    steps = [s for s, _ in losses]
    values = [v for _, v in losses]
    ax.plot(steps, values, marker="." if len(steps) < 50 else None)
    positive = [v for v in values if v > 0]
    if positive and max(positive) / min(positive) > 10:
        ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel("training loss")
    ax.set_title(f"training loss over {steps[-1]:,} steps: last {values[-1]:.4g}" if steps else "training loss")
    ax.grid(True, alpha=0.3)
    return _save(fig, path)


def confusion_plot(matrix: Sequence[Sequence[int]], path: Path,
                   class_names: Sequence[str] | None = None) -> Path:
    """Counts with row-normalised shading (true class per row)."""
    counts = np.asarray(matrix, np.int64)
    n = counts.shape[0]
    shares = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    names = list(class_names) if class_names else [str(i) for i in range(n)]
    side = max(4.0, 0.5 * n)
    fig, ax = plt.subplots(figsize=(side, side))
    ax.imshow(shares, cmap="Blues", vmin=0, vmax=1)
    if n <= 30:
        for i in range(n):
            for j in range(n):
                ax.text(j, i, str(counts[i, j]), ha="center", va="center", fontsize=8,
                        color="white" if shares[i, j] > 0.5 else "black")
    ax.set_xticks(range(n), names, rotation=90 if n > 10 else 0)
    ax.set_yticks(range(n), names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(confusion_title(counts))
    return _save(fig, path)


def confusion_title(counts: np.ndarray) -> str:
    """The figure says what it shows and how good it is: the accuracy over how many images."""
    total = int(counts.sum())
    accuracy = float(np.trace(counts)) / total if total else 0.0
    return f"confusion matrix: accuracy {accuracy:.1%} of {total:,} images"


def contact_sheet(images: Sequence[np.ndarray], boxes: Sequence[Sequence[Sequence[float]]],
                  path: Path, *, labels: Sequence[Sequence[str]] | None = None,
                  classes: Sequence[Sequence[int]] | None = None, columns: int = 4) -> Path:
    """Images (H, W) or (H, W, 3) uint8 in a grid with their [x, y, w, h] boxes drawn."""
    count = max(1, len(images))
    cols = min(columns, count)
    rows = math.ceil(count / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3 * cols, 3 * rows), squeeze=False)
    for k, ax in enumerate(axes.flat):
        ax.axis("off")
        if k >= len(images):
            continue
        ax.imshow(images[k], cmap="gray" if images[k].ndim == 2 else None)
        for b, (x, y, w, h) in enumerate(boxes[k]):
            cls = classes[k][b] if classes else 0
            color = BOX_COLORS[int(cls) % len(BOX_COLORS)]
            ax.add_patch(Rectangle((x, y), w, h, fill=False, edgecolor=color, linewidth=1.2))
            if labels:
                ax.text(x, y, labels[k][b], fontsize=6, color="white",
                        bbox={"facecolor": color, "pad": 0.5, "linewidth": 0})
    return _save(fig, path)
