"""Label Data: run trained weights over a folder of unlabelled images and write pseudo-labels.

A detector writes a COCO file whose annotations carry a ``score`` (boxes under the threshold are
left out), ready for sampled human review or for training. A classifier writes, per image, the
predicted class and its probability (CSV) or all class probabilities too (JSON).
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from worker.errors import WorkerError
from worker.evaluate.predict import detect_files, predict_probabilities
from worker.train.data import IMAGE_SUFFIXES, read_image
from worker.train.spec import CenterNetSpec
from worker.train.weights import load_weights

DEFAULT_SCORE_THRESHOLD = 0.3
MAX_LABEL_IMAGES = 100_000


class LabelError(WorkerError):
    reason = "bad-label-input"


def image_files(folder: Path) -> list[Path]:
    """Images directly in `folder`, sorted by name (the order of ids in the output)."""
    expected = f"expected a folder of {'/'.join(sorted(IMAGE_SUFFIXES))} images"
    if not folder.exists():
        raise LabelError(f"images: {folder} does not exist, {expected}")
    if not folder.is_dir():
        raise LabelError(f"images: {folder} is a file, {expected}")
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise LabelError(f"images: no images in {folder}, {expected}")
    if len(files) > MAX_LABEL_IMAGES:
        raise LabelError(f"{len(files)} images in {folder}, the limit is {MAX_LABEL_IMAGES}")
    return files


def label_folder(weights: Path, folder: Path, out: Path, *, device: str = "cpu",
                 score_threshold: float = DEFAULT_SCORE_THRESHOLD) -> dict[str, Any]:
    """Write pseudo-labels for every image in `folder` to `out`; returns a short summary."""
    model, meta = load_weights(weights, device)
    files = image_files(folder)
    out.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(meta.model, CenterNetSpec):
        found = detect_files(model, meta.model, files, device=device, score_threshold=score_threshold)
        coco = pseudo_coco(files, image_sizes(files), found, meta.model.num_classes)
        out.write_text(json.dumps(coco))
        scores = [a["score"] for a in coco["annotations"]]
        return {"task": "detection", "images": len(files), "boxes": len(scores),
                "mean_score": round(float(np.mean(scores)), 4) if scores else 0.0}
    probs = classify_files(model, meta.model, files, device)
    write_class_labels(out, files, probs)
    return {"task": "classification", "images": len(files), **class_summary(probs)}


def class_summary(probs: np.ndarray) -> dict[str, Any]:
    """What a labelling run found: images per predicted class and the mean top probability."""
    counts = np.bincount(probs.argmax(axis=1), minlength=probs.shape[1])
    return {"mean_confidence": round(float(probs.max(axis=1).mean()), 4),
            "per_class": {str(c): int(n) for c, n in enumerate(counts) if n}}


def classify_files(model: Any, spec: Any, files: list[Path], device: str = "cpu") -> np.ndarray:
    """Class probabilities (N, classes) of image files through a classifier (a CnnSpec's model)."""
    images = np.stack([read_image(p, channels=spec.in_channels, size=spec.image_size) for p in files])
    if images.ndim == 3:
        images = images[:, None]
    else:
        images = images.transpose(0, 3, 1, 2)
    return predict_probabilities(model, np.ascontiguousarray(images), device)


def image_sizes(files: list[Path]) -> list[tuple[int, int]]:
    sizes = []
    for path in files:
        with Image.open(path) as im:
            sizes.append(im.size)
    return sizes


def pseudo_coco(files: list[Path], sizes: list[tuple[int, int]], found: list[Any],
                num_classes: int) -> dict[str, Any]:
    """COCO dict: category id = class index + 1; every annotation has its detector score."""
    images: list[dict[str, Any]] = []
    annotations: list[dict[str, Any]] = []
    for image_id, (path, (w, h), dets) in enumerate(zip(files, sizes, found), start=1):
        images.append({"id": image_id, "file_name": path.name, "width": w, "height": h})
        for det in dets:
            x, y, bw, bh = det.box
            annotations.append({
                "id": len(annotations) + 1, "image_id": image_id, "category_id": det.cls + 1,
                "bbox": [round(x, 2), round(y, 2), round(bw, 2), round(bh, 2)],
                "area": round(bw * bh, 2), "iscrowd": 0, "score": round(det.score, 5),
            })
    categories = [{"id": c + 1, "name": f"class{c}"} for c in range(num_classes)]
    return {"images": images, "annotations": annotations, "categories": categories}


def write_class_labels(out: Path, files: list[Path], probs: np.ndarray) -> None:
    """CSV (file_name,label,probability) for a .csv path, else JSON with every probability."""
    labels = probs.argmax(axis=1)
    if out.suffix.lower() == ".csv":
        with open(out, "w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["file_name", "label", "probability"])
            for path, label, row in zip(files, labels, probs):
                writer.writerow([path.name, int(label), f"{float(row[label]):.5f}"])
        return
    out.write_text(json.dumps({"predictions": class_records(files, probs)}, indent=1))


def class_records(files: list[Path], probs: np.ndarray) -> list[dict[str, Any]]:
    """Per image: its file name, predicted class, that class's probability and every class's."""
    return [{"file_name": p.name, "label": int(row.argmax()), "probability": round(float(row.max()), 5),
             "probabilities": [round(float(v), 5) for v in row]}
            for p, row in zip(files, probs)]
