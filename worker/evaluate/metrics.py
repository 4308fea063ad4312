"""Metrics: detection mAP by pycocotools' COCOeval, classification accuracy and confusion matrix.

mAP is computed by the reference implementation rather than by hand: buyers compare our numbers
with published ones, and COCOeval's interpolation (101 recall points), area ranges and
max-detections rules are the definition everyone uses.
"""

from __future__ import annotations

import contextlib
import copy
import io
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from worker.errors import WorkerError


class EvaluationError(WorkerError):
    reason = "bad-evaluation-input"


@dataclass(frozen=True, slots=True)
class DetectionMetrics:
    map50: float
    map50_95: float
    images: int
    detections: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class ClassificationMetrics:
    accuracy: float
    confusion: list[list[int]]
    count: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def normalized_ground_truth(coco: dict[str, Any]) -> dict[str, Any]:
    """A copy COCOeval accepts: `area` and `iscrowd` filled in where a hand-made file omits them."""
    gt = copy.deepcopy(coco)
    gt.setdefault("info", {})
    gt.setdefault("annotations", [])
    for i, ann in enumerate(gt["annotations"]):
        ann.setdefault("id", i + 1)
        ann.setdefault("iscrowd", 0)
        ann.setdefault("area", float(ann["bbox"][2] * ann["bbox"][3]))
    return gt


def coco_map(ground_truth: dict[str, Any], detections: list[dict[str, Any]]) -> DetectionMetrics:
    """mAP@0.5 and mAP@[.5:.95] of `detections` (COCO results: image_id, category_id, bbox, score).

    No detections at all scores 0 (COCOeval cannot load an empty result list).
    """
    try:
        gt = COCO()
        gt.dataset = normalized_ground_truth(ground_truth)
        with contextlib.redirect_stdout(io.StringIO()):
            gt.createIndex()
            if not detections:
                return DetectionMetrics(0.0, 0.0, len(gt.getImgIds()), 0)
            results = gt.loadRes(copy.deepcopy(detections))
            evaluator = COCOeval(gt, results, iouType="bbox")
            evaluator.evaluate()
            evaluator.accumulate()
            evaluator.summarize()
    except (KeyError, IndexError, TypeError, ValueError, AssertionError) as err:
        raise EvaluationError(f"COCO evaluation failed: {type(err).__name__}: {err}") from None
    stats = evaluator.stats
    return DetectionMetrics(
        map50=max(0.0, float(stats[1])), map50_95=max(0.0, float(stats[0])),
        images=len(gt.getImgIds()), detections=len(detections),
    )


def confusion_matrix(labels: np.ndarray, predictions: np.ndarray, num_classes: int) -> np.ndarray:
    """(num_classes, num_classes) counts; row = true class, column = predicted class."""
    labels = np.asarray(labels, np.int64)
    predictions = np.asarray(predictions, np.int64)
    if labels.shape != predictions.shape:
        raise EvaluationError(f"{labels.size} labels but {predictions.size} predictions")
    if labels.size and (min(labels.min(), predictions.min()) < 0
                        or max(labels.max(), predictions.max()) >= num_classes):
        raise EvaluationError(f"a class index is outside 0..{num_classes - 1}")
    flat = np.bincount(labels * num_classes + predictions, minlength=num_classes * num_classes)
    return flat.reshape(num_classes, num_classes)


def classification_metrics(labels: np.ndarray, predictions: np.ndarray, num_classes: int
                           ) -> ClassificationMetrics:
    matrix = confusion_matrix(labels, predictions, num_classes)
    count = int(matrix.sum())
    accuracy = float(np.trace(matrix) / count) if count else 0.0
    return ClassificationMetrics(accuracy=accuracy, confusion=matrix.tolist(), count=count)
