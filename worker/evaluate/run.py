"""Evaluate safetensors weights on held-out data; write metrics.json and PNG plots in `out_dir`.

Detection: a COCO validation set (JSON + images) scored with COCOeval. Classification: arrays,
a class-per-subfolder image folder, or a CSV of ``label,pixel...`` rows; accuracy and confusion
matrix. With the training losses given, the training curve is plotted too.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from worker.evaluate import plots
from worker.evaluate.metrics import EvaluationError, classification_metrics, coco_map
from worker.evaluate.predict import detect_files, predict_probabilities, to_coco_results
from worker.train.data import ClassificationData, DetectionData, read_image
from worker.train.spec import CenterNetSpec, CnnSpec
from worker.train.weights import load_weights

METRICS_NAME = "metrics.json"
SHEET_IMAGES = 8
SHEET_SCORE = 0.3  # boxes drawn on the contact sheet: confident ones only, or it is unreadable


def training_losses(weights: Path) -> list[tuple[int, float]] | None:
    """The loss curve a train task wrote beside the weights (its `metrics.json`), if it is there."""
    try:
        curve = json.loads((weights.parent / METRICS_NAME).read_text())["loss_curve"]
        return [(int(point["step"]), float(point["loss"])) for point in curve]
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _write(out_dir: Path, metrics: dict[str, Any], losses: Sequence[tuple[int, float]] | None
           ) -> dict[str, Any]:
    out_dir.mkdir(parents=True, exist_ok=True)
    if losses:
        metrics["plots"]["training_curve"] = str(plots.training_curve(losses, out_dir / "training_curve.png"))
    (out_dir / METRICS_NAME).write_text(json.dumps(metrics, indent=2, sort_keys=True))
    return metrics


def evaluate_detector(weights: Path, coco_path: Path, out_dir: Path, *,
                      device: torch.device | str = "cpu",
                      losses: Sequence[tuple[int, float]] | None = None) -> dict[str, Any]:
    """mAP@0.5 and mAP@[.5:.95] of the weights on a COCO validation set."""
    model, meta = load_weights(weights, device)
    if not isinstance(meta.model, CenterNetSpec):
        raise EvaluationError(f"{weights.name} is a {meta.model.name}, not a detector",
                              reason="wrong-model-kind")
    data = DetectionData.from_coco(coco_path)
    paths = [data.image_path(i) for i in range(len(data))]
    found = detect_files(model, meta.model, paths, device=device)
    scores = coco_map(data.coco, to_coco_results(found, data.image_ids, data.category_ids))
    shown = range(min(SHEET_IMAGES, len(data)))
    sheet = plots.contact_sheet(
        [read_image(paths[i], channels=3) for i in shown],
        [[d.box for d in found[i] if d.score >= SHEET_SCORE] for i in shown],
        out_dir / "detections.png",
        classes=[[d.cls for d in found[i] if d.score >= SHEET_SCORE] for i in shown],
        labels=[[f"{d.cls}:{d.score:.2f}" for d in found[i] if d.score >= SHEET_SCORE] for i in shown],
    )
    metrics = {"task": "detection", "weights_spec_hash": meta.spec_hash, **scores.to_dict(),
               "plots": {"detections": str(sheet)}}
    return _write(out_dir, metrics, losses)


def load_classification(source: ClassificationData | Path, spec: CnnSpec
                        ) -> tuple[ClassificationData, list[str] | None]:
    """Arrays as given; a folder of class subfolders; or a CSV file."""
    if isinstance(source, ClassificationData):
        return source, None
    if source.is_dir():
        return ClassificationData.from_folder(source, channels=spec.in_channels, size=spec.image_size)
    return ClassificationData.from_csv(source), None


def evaluate_classifier(weights: Path, source: ClassificationData | Path, out_dir: Path, *,
                        device: torch.device | str = "cpu",
                        losses: Sequence[tuple[int, float]] | None = None) -> dict[str, Any]:
    """Accuracy and confusion matrix of the weights on labelled images."""
    model, meta = load_weights(weights, device)
    if not isinstance(meta.model, CnnSpec):
        raise EvaluationError(f"{weights.name} is a {meta.model.name}, not a classifier",
                              reason="wrong-model-kind")
    data, names = load_classification(source, meta.model)
    expected = (meta.model.in_channels, meta.model.image_size, meta.model.image_size)
    if tuple(data.images.shape[1:]) != expected:
        raise EvaluationError(f"images are {tuple(data.images.shape[1:])}, the model wants {expected}",
                              reason="data-shape-mismatch")
    predicted = np.argmax(predict_probabilities(model, data.images, device), axis=1)
    scores = classification_metrics(data.labels, predicted, meta.model.num_classes)
    confusion = plots.confusion_plot(scores.confusion, out_dir / "confusion.png", names)
    metrics = {"task": "classification", "weights_spec_hash": meta.spec_hash, **scores.to_dict(),
               "class_names": names, "plots": {"confusion": str(confusion)}}
    return _write(out_dir, metrics, losses)
