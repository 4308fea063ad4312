"""The `evaluate` and `label` tasks: a weights file run over data, by the train package's code.

Evaluate writes ``metrics.json`` and plots (accuracy and confusion for a classifier, COCO mAP for
a detector); label writes ``labels.json`` (class probabilities, or COCO boxes with scores).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from worker.tasks.data import load_data
from worker.tasks.envelope import (
    ArtifactsSource,
    EvaluateTask,
    FileSource,
    LabelTask,
    RenderedSource,
)
from worker.tasks.progress import Emit, stage_progress
from worker.tasks.train import pick_device
from worker.tasks.units import forward_flops_of

GROUND_TRUTH_FILE = "ground_truth.json"
LABELS_FILE = "labels.json"


def evaluate_model(model: Any, data: Any, device: Any) -> dict[str, Any]:
    """Accuracy of an in-memory classifier on ClassificationData (the train task's validation)."""
    import numpy as np

    from worker.evaluate.predict import predict_probabilities

    probabilities = predict_probabilities(model, data.images, device.torch_device)
    correct = np.argmax(probabilities, axis=1) == data.labels
    return {"validation_accuracy": round(float(np.mean(correct)), 5), "validation_items": len(data)}


def run_evaluate(task: EvaluateTask, out: Path, emit: Emit, device: str) -> dict[str, Any]:
    from chain.compute_units import inference_units
    from worker.evaluate.run import evaluate_classifier, evaluate_detector, training_losses
    from worker.train.data import DetectionData
    from worker.train.weights import read_meta

    weights = Path(task.weights)
    model = read_meta(weights).model
    torch_device = pick_device(device, 1, "fp32").torch_device
    report = stage_progress(emit, "evaluate")
    report(0, 1)
    data = load_data(task.data, model)
    if isinstance(data, DetectionData):
        if isinstance(task.data, (RenderedSource, ArtifactsSource)):
            truth = _ground_truth_file(data, out)
        else:
            assert isinstance(task.data, FileSource)  # only these sources hold detection data
            truth = Path(task.data.path)
        metrics = evaluate_detector(weights, truth, out, device=torch_device, losses=training_losses(weights))
    else:
        metrics = evaluate_classifier(weights, data, out, device=torch_device, losses=training_losses(weights))
    report(1, 1)
    scores = {k: v for k, v in metrics.items() if isinstance(v, (int, float)) and k != "count"}
    return {
        "model": model.name,
        "items": len(data),
        "metrics": scores,
        "compute_units": inference_units(forward_flops_of(model), len(data)),
        "unit": "flop",
    }


def _ground_truth_file(data: Any, out: Path) -> Path:
    """One COCO file for a multi-shard render output, with absolute image paths."""
    coco = dict(data.coco)
    coco["images"] = [{**im, "file_name": str(data.image_path(i).resolve())}
                      for i, im in enumerate(coco["images"])]
    path = out / GROUND_TRUTH_FILE
    path.write_text(json.dumps(coco))
    return path


def run_label(task: LabelTask, out: Path, emit: Emit, device: str) -> dict[str, Any]:
    from chain.compute_units import inference_units
    from worker.label import label_folder
    from worker.train.weights import read_meta

    weights = Path(task.weights)
    model = read_meta(weights).model
    torch_device = str(pick_device(device, 1, "fp32").torch_device)
    report = stage_progress(emit, "label")
    report(0, 1)
    summary = label_folder(weights, Path(task.images), out / LABELS_FILE, device=torch_device,
                           score_threshold=task.min_score_pct / 100)
    report(1, 1)
    return {
        "model": model.name,
        "items": summary["images"],
        "metrics": {k: v for k, v in summary.items() if k not in ("task", "images")},
        "compute_units": inference_units(forward_flops_of(model), summary["images"]),
        "unit": "flop",
    }
