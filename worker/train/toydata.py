"""Tiny synthetic shape datasets for calibration, benchmarks and tests.

The PoL tolerance and the loop benchmark must not move when the renderer changes, so they train
on these fixed numpy shapes instead: a classification set of noisy glyphs (bar, dash, square,
cross, corner...) and a detection set of coloured rectangles written as PNG + COCO JSON, the
layout the renderer writes.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image

from worker.train.data import ClassificationData
from worker.train.spec import TrainSpec, load_train_spec

GLYPHS = 6
NOISE = 60


def _glyph(kind: int, side: int, x: int, y: int, s: int) -> np.ndarray:
    """Mask (side, side) of glyph `kind` of size `s` at (x, y)."""
    m = np.zeros((side, side), bool)
    t = max(1, s // 4)
    if kind == 0:
        m[y:y + s, x + s // 2 - t // 2:x + s // 2 - t // 2 + t] = True
    elif kind == 1:
        m[y + s // 2 - t // 2:y + s // 2 - t // 2 + t, x:x + s] = True
    elif kind == 2:
        m[y:y + s, x:x + s] = True
    elif kind == 3:
        m[y:y + s, x + s // 2 - t // 2:x + s // 2 - t // 2 + t] = True
        m[y + s // 2 - t // 2:y + s // 2 - t // 2 + t, x:x + s] = True
    elif kind == 4:
        m[y:y + t, x:x + s] = True
        m[y:y + s, x:x + t] = True
    else:
        m[y:y + s, x:x + s] = True
        m[y + t:y + s - t, x + t:x + s - t] = False
    return m


def glyphs(count: int, *, side: int = 16, classes: int = 4, seed: int = 0) -> ClassificationData:
    """`count` gray (side x side) glyph images of `classes` <= 6 kinds, jittered and noisy."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, min(classes, GLYPHS), count)
    images = rng.integers(0, NOISE, (count, side, side)).astype(np.int64)
    for i, kind in enumerate(labels):
        s = int(rng.integers(side // 2, side - side // 8))
        x, y = rng.integers(0, side - s + 1, 2)
        images[i][_glyph(int(kind), side, int(x), int(y), s)] += 255 - NOISE
    return ClassificationData.from_arrays(np.clip(images, 0, 255).astype(np.uint8), labels)


TOY_CNN = {"name": "cnn", "image_size": 16, "num_classes": 4, "width": 8, "depth": 2}
TOY_CENTERNET = {"name": "centernet", "image_size": 64, "num_classes": 2, "width": 8,
                 "head_width": 16, "max_objects": 8}


def toy_spec(model: dict[str, object] | None = None, **fields: object) -> TrainSpec:
    """A small, fast spec (a 16x16 4-class CNN by default); `fields` override the train fields."""
    raw: dict[str, object] = {"model": model or TOY_CNN, "batch_size": 32, "steps": 40,
                              "lr": 3e-3, "threads": 1, "log_every": 10}
    raw.update(fields)
    return load_train_spec(raw)


def rectangles_coco(root: Path, count: int, *, side: int = 64, classes: int = 2,
                    per_image: int = 3, seed: int = 0) -> Path:
    """Write `count` RGB images of coloured rectangles (class = colour) + annotations.json."""
    rng = np.random.default_rng(seed)
    palette = np.array([[230, 40, 40], [40, 200, 40], [40, 80, 230], [230, 200, 40]], np.uint8)
    (root / "images").mkdir(parents=True, exist_ok=True)
    images: list[dict[str, object]] = []
    annotations: list[dict[str, object]] = []
    for i in range(count):
        canvas = rng.integers(0, NOISE, (side, side, 3)).astype(np.uint8)
        for _ in range(per_image):
            w, h = (int(v) for v in rng.integers(side // 8, side // 3, 2))
            x, y = int(rng.integers(0, side - w)), int(rng.integers(0, side - h))
            cls = int(rng.integers(0, min(classes, len(palette))))
            canvas[y:y + h, x:x + w] = palette[cls]
            annotations.append({"id": len(annotations) + 1, "image_id": i + 1,
                                "category_id": cls + 1, "bbox": [x, y, w, h],
                                "area": w * h, "iscrowd": 0})
        name = f"{i:05d}.png"
        Image.fromarray(canvas).save(root / "images" / name)
        images.append({"id": i + 1, "file_name": f"images/{name}", "width": side, "height": side})
    categories = [{"id": c + 1, "name": f"class{c}"} for c in range(classes)]
    path = root / "annotations.json"
    path.write_text(json.dumps({"images": images, "annotations": annotations,
                                "categories": categories}))
    return path
