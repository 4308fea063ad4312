"""Inference with a zoo model: class probabilities, and detections in original image pixels.

Shared by evaluation (predictions scored against ground truth) and labeling (predictions written
as pseudo-labels), so both see exactly the same boxes for the same weights.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import nn

from worker.train.centernet import decode
from worker.train.data import read_image
from worker.train.spec import CenterNetSpec

PREDICT_BATCH = 64
EVAL_SCORE_FLOOR = 0.001  # COCOeval ranks by score: keep low-score boxes when measuring mAP
EVAL_TOP_K = 100  # COCOeval's largest maxDets


@dataclass(frozen=True, slots=True)
class Detection:
    """One box [x, y, w, h] in the original image's pixels, its score and 0-based class."""

    box: tuple[float, float, float, float]
    score: float
    cls: int


@torch.no_grad()
def predict_probabilities(model: nn.Module, images: np.ndarray, device: torch.device | str = "cpu"
                          ) -> np.ndarray:
    """Softmax probabilities (N, classes) of uint8 images (N, C, H, W)."""
    model.eval().to(device)
    out = []
    for start in range(0, len(images), PREDICT_BATCH):
        x = torch.from_numpy(images[start:start + PREDICT_BATCH]).to(device).float().div_(255.0)
        out.append(torch.softmax(model(x).float(), dim=1).cpu())
    if not out:
        return np.zeros((0, 0), np.float32)
    return torch.cat(out).numpy()


def _chunks(items: Sequence[Path], size: int) -> Iterator[Sequence[Path]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


@torch.no_grad()
def detect_files(model: nn.Module, spec: CenterNetSpec, paths: Sequence[Path], *,
                 device: torch.device | str = "cpu", score_threshold: float = EVAL_SCORE_FLOOR,
                 top_k: int = EVAL_TOP_K) -> list[list[Detection]]:
    """Detections per image file; images are resized to the model's input and boxes scaled back."""
    model.eval().to(device)
    side = spec.image_size
    results: list[list[Detection]] = []
    for chunk in _chunks(paths, PREDICT_BATCH // 4 or 1):
        batch, scales = [], []
        for path in chunk:
            image = read_image(path, channels=3)
            h, w = image.shape[:2]
            if (w, h) != (side, side):
                image = np.asarray(Image.fromarray(image).resize((side, side), Image.Resampling.BILINEAR))
            batch.append(image.transpose(2, 0, 1))
            scales.append((w / side, h / side))
        x = torch.from_numpy(np.stack(batch)).to(device).float().div_(255.0)
        found = decode(model(x), top_k=top_k)
        for i, (sx, sy) in enumerate(scales):
            keep = found.scores[i] >= score_threshold
            boxes = (found.boxes[i][keep].cpu() * torch.tensor([sx, sy, sx, sy])).tolist()
            scores = found.scores[i][keep].cpu().tolist()
            classes = found.classes[i][keep].cpu().tolist()
            results.append([Detection((b[0], b[1], b[2], b[3]), s, c)
                            for b, s, c in zip(boxes, scores, classes, strict=True)])
    return results


def to_coco_results(detections: Sequence[Sequence[Detection]], image_ids: Sequence[int],
                    category_ids: Sequence[int]) -> list[dict[str, object]]:
    """COCO result records; class c maps to `category_ids[c]` (classes past the list are dropped)."""
    out: list[dict[str, object]] = []
    for image_id, found in zip(image_ids, detections):
        for det in found:
            if det.cls < len(category_ids):
                out.append({"image_id": int(image_id), "category_id": int(category_ids[det.cls]),
                            "bbox": [round(v, 2) for v in det.box], "score": round(det.score, 5)})
    return out
