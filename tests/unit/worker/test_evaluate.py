"""Evaluation: COCOeval mAP on hand-made ground truth, confusion matrices, reports with plots."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from worker.evaluate.metrics import (
    EvaluationError,
    classification_metrics,
    coco_map,
    confusion_matrix,
)
from worker.evaluate.run import evaluate_classifier, evaluate_detector
from worker.train.data import ClassificationData, DataError, DetectionData
from worker.train.loop import train
from worker.train.toydata import TOY_CENTERNET, glyphs, rectangles_coco, toy_spec
from worker.train.weights import meta_for, save_weights

GROUND_TRUTH: dict[str, Any] = {
    "images": [{"id": 1, "width": 100, "height": 100}, {"id": 2, "width": 100, "height": 100}],
    "categories": [{"id": 1, "name": "can"}, {"id": 2, "name": "box"}],
    "annotations": [
        {"id": 1, "image_id": 1, "category_id": 1, "bbox": [10, 10, 30, 30]},
        {"id": 2, "image_id": 1, "category_id": 2, "bbox": [50, 50, 40, 20]},
        {"id": 3, "image_id": 2, "category_id": 1, "bbox": [5, 60, 20, 30]},
    ],
}


def predictions(shift: float = 0.0) -> list[dict[str, Any]]:
    return [{"image_id": a["image_id"], "category_id": a["category_id"], "score": 0.9,
             "bbox": [a["bbox"][0] + shift, a["bbox"][1], a["bbox"][2], a["bbox"][3]]}
            for a in GROUND_TRUTH["annotations"]]


def test_perfect_predictions_score_one_and_shifted_ones_less() -> None:
    perfect = coco_map(GROUND_TRUTH, predictions())
    assert perfect.map50 == pytest.approx(1.0) and perfect.map50_95 == pytest.approx(1.0)
    shifted = coco_map(GROUND_TRUTH, predictions(shift=6.0))
    assert shifted.map50 == pytest.approx(1.0)  # IoU 0.6-0.8: still hits at 0.5
    assert shifted.map50_95 < 0.7
    far = coco_map(GROUND_TRUTH, predictions(shift=25.0))
    assert far.map50 < 0.5
    assert coco_map(GROUND_TRUTH, []).map50 == 0.0


def test_wrong_class_predictions_do_not_count() -> None:
    swapped = [dict(p, category_id=3 - p["category_id"]) for p in predictions()]
    assert coco_map(GROUND_TRUTH, swapped).map50 == 0.0


def test_confusion_matrix_on_a_known_case() -> None:
    labels = np.array([0, 0, 1, 1, 1, 2])
    guesses = np.array([0, 1, 1, 1, 2, 2])
    assert confusion_matrix(labels, guesses, 3).tolist() == [[1, 1, 0], [0, 2, 1], [0, 0, 1]]
    metrics = classification_metrics(labels, guesses, 3)
    assert metrics.accuracy == pytest.approx(4 / 6) and metrics.count == 6
    with pytest.raises(EvaluationError):
        confusion_matrix(labels, guesses, 2)


def test_classifier_report_from_arrays_folder_and_csv(tmp_path: Path) -> None:
    data = glyphs(300, seed=9)
    spec = toy_spec(steps=60, lr=5e-3)
    result = train(spec, data)
    weights = tmp_path / "model.safetensors"
    save_weights(weights, result.model, meta_for(spec))
    held = glyphs(120, seed=10)
    report = evaluate_classifier(weights, held, tmp_path / "arrays", losses=result.losses)
    assert report["accuracy"] > 0.5 and np.sum(report["confusion"]) == 120
    written = json.loads((tmp_path / "arrays" / "metrics.json").read_text())
    assert written["accuracy"] == report["accuracy"]
    for name in ("confusion.png", "training_curve.png"):
        assert Image.open(tmp_path / "arrays" / name).size[0] > 100
    folder = tmp_path / "folder"
    for i, (image, label) in enumerate(zip(held.images[:, 0], held.labels)):
        (folder / f"kind{label}").mkdir(parents=True, exist_ok=True)
        Image.fromarray(image).save(folder / f"kind{label}" / f"{i}.png")
    by_folder = evaluate_classifier(weights, folder, tmp_path / "f")
    assert by_folder["accuracy"] == report["accuracy"]
    assert by_folder["class_names"] == [f"kind{c}" for c in sorted(set(held.labels.tolist()))]
    rows = ["label," + ",".join(f"p{i}" for i in range(256))]
    rows += [f"{l}," + ",".join(map(str, im.reshape(-1))) for im, l in zip(held.images, held.labels)]
    (tmp_path / "held.csv").write_text("\n".join(rows))
    assert evaluate_classifier(weights, tmp_path / "held.csv", tmp_path / "c")["accuracy"] == report["accuracy"]


def test_bad_csv_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "bad.csv").write_text("3,1,2,3\n")  # 3 pixels: not a square image
    with pytest.raises(DataError, match="square"):
        ClassificationData.from_csv(tmp_path / "bad.csv")


def test_detector_report_on_a_coco_validation_set(tmp_path: Path) -> None:
    train_dir, val_dir = tmp_path / "train", tmp_path / "val"
    rectangles_coco(train_dir, 64, seed=1)
    rectangles_coco(val_dir, 8, side=128, seed=2)  # twice the model input: boxes scale back
    spec = toy_spec(TOY_CENTERNET, steps=40, batch_size=8, lr=5e-3, augment={"hflip": True})
    result = train(spec, DetectionData.from_coco(train_dir), workers=0)
    weights = tmp_path / "det.safetensors"
    save_weights(weights, result.model, meta_for(spec))
    report = evaluate_detector(weights, val_dir, tmp_path / "report")
    # targets, loss, decoding, rescaling and category mapping all have to be right for this
    assert report["map50"] > 0.6
    assert 0.0 < report["map50_95"] <= report["map50"]
    assert report["images"] == 8 and report["detections"] > 0
    assert Image.open(tmp_path / "report" / "detections.png").size[0] > 100
    with pytest.raises(EvaluationError, match="not a classifier"):
        evaluate_classifier(weights, glyphs(10), tmp_path / "x")
