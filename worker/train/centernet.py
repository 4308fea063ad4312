"""CenterNet training targets, loss and decoding ("Objects as Points", Zhou et al. 2019).

An object is its centre: a Gaussian peak on its class heatmap at stride 4, plus the box size and
the sub-cell offset regressed at that one cell. Decoding keeps heatmap local maxima (a 3x3 max-pool
stands in for NMS) and takes the top k. Targets are built in numpy so DataLoader workers can make
them off the training process.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from worker.train.flops import CENTERNET_STRIDE

SIZE_LOSS_WEIGHT = 0.1
OFFSET_LOSS_WEIGHT = 1.0
GAUSSIAN_MIN_OVERLAP = 0.7


def gaussian_radius(height: float, width: float, min_overlap: float = GAUSSIAN_MIN_OVERLAP) -> float:
    """Radius within which a corner-shifted box still overlaps the true one by `min_overlap`.

    The three quadratic cases of CornerNet/CenterNet's reference code, kept as published so
    heatmaps match the papers' training behaviour.
    """
    b1 = height + width
    c1 = width * height * (1 - min_overlap) / (1 + min_overlap)
    r1 = (b1 + math.sqrt(b1**2 - 4 * c1)) / 2
    b2 = 2 * (height + width)
    c2 = (1 - min_overlap) * width * height
    r2 = (b2 + math.sqrt(b2**2 - 16 * c2)) / 2
    a3 = 4 * min_overlap
    b3 = -2 * min_overlap * (height + width)
    c3 = (min_overlap - 1) * width * height
    r3 = (b3 + math.sqrt(b3**2 - 4 * a3 * c3)) / 2
    return min(r1, r2, r3)


def draw_gaussian(heatmap: np.ndarray, cx: int, cy: int, radius: int) -> None:
    """Max-merge a Gaussian peak of value 1 at (cx, cy) into a (H, W) map, clipped at edges."""
    sigma = (2 * radius + 1) / 6
    ys, xs = np.ogrid[-radius:radius + 1, -radius:radius + 1]
    peak = np.exp(-(xs * xs + ys * ys) / (2 * sigma * sigma)).astype(np.float32)
    h, w = heatmap.shape
    left, right = min(cx, radius), min(w - cx, radius + 1)
    top, bottom = min(cy, radius), min(h - cy, radius + 1)
    window = heatmap[cy - top:cy + bottom, cx - left:cx + right]
    patch = peak[radius - top:radius + bottom, radius - left:radius + right]
    np.maximum(window, patch, out=window)


def encode_targets(
    boxes: np.ndarray, classes: np.ndarray, *, image_size: int, num_classes: int, max_objects: int,
) -> dict[str, np.ndarray]:
    """Targets of one image from COCO boxes (K, 4) [x, y, w, h] in pixels and 0-based classes.

    Boxes past `max_objects` are dropped (the spec caps them); degenerate boxes are skipped.
    """
    out = image_size // CENTERNET_STRIDE
    heatmap = np.zeros((num_classes, out, out), np.float32)
    size = np.zeros((max_objects, 2), np.float32)
    offset = np.zeros((max_objects, 2), np.float32)
    index = np.zeros((max_objects,), np.int64)
    mask = np.zeros((max_objects,), np.float32)
    slot = 0
    for (x, y, w, h), cls in zip(boxes[:max_objects], classes[:max_objects]):
        w_out, h_out = w / CENTERNET_STRIDE, h / CENTERNET_STRIDE
        if w_out <= 0 or h_out <= 0:
            continue
        cx = min(max((x + w / 2) / CENTERNET_STRIDE, 0.0), out - 1e-3)
        cy = min(max((y + h / 2) / CENTERNET_STRIDE, 0.0), out - 1e-3)
        ix, iy = int(cx), int(cy)
        radius = max(0, int(gaussian_radius(math.ceil(h_out), math.ceil(w_out))))
        draw_gaussian(heatmap[int(cls)], ix, iy, radius)
        size[slot] = (w_out, h_out)
        offset[slot] = (cx - ix, cy - iy)
        index[slot] = iy * out + ix
        mask[slot] = 1.0
        slot += 1
    return {"heatmap": heatmap, "size": size, "offset": offset, "index": index, "mask": mask}


def focal_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """CornerNet's penalty-reduced focal loss, normalised by the number of object centres."""
    pred = torch.sigmoid(logits.float()).clamp(1e-4, 1 - 1e-4)
    positive = target.eq(1).float()
    negative_weight = torch.pow(1 - target, 4) * (1 - positive)
    pos_loss = (torch.log(pred) * torch.pow(1 - pred, 2) * positive).sum()
    neg_loss = (torch.log(1 - pred) * torch.pow(pred, 2) * negative_weight).sum()
    return -(pos_loss + neg_loss) / positive.sum().clamp(min=1.0)


def _gather(feature: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """(N, C, H, W) at flat cell indices (N, K) -> (N, K, C)."""
    n, c = feature.shape[:2]
    flat = feature.reshape(n, c, -1)
    return flat.gather(2, index[:, None, :].expand(n, c, index.shape[1])).permute(0, 2, 1)


def centernet_loss(outputs: dict[str, torch.Tensor], targets: dict[str, torch.Tensor]) -> torch.Tensor:
    """Heatmap focal loss + 0.1 x L1 on sizes + L1 on offsets, at object centres only."""
    heat = focal_loss(outputs["heatmap"], targets["heatmap"])
    mask = targets["mask"][:, :, None]
    count = mask.sum().clamp(min=1.0) * 2
    size = (torch.abs(_gather(outputs["size"].float(), targets["index"]) - targets["size"]) * mask)
    offset = (torch.abs(_gather(outputs["offset"].float(), targets["index"]) - targets["offset"])
              * mask)
    return heat + SIZE_LOSS_WEIGHT * size.sum() / count + OFFSET_LOSS_WEIGHT * offset.sum() / count


@dataclass(frozen=True, slots=True)
class Detections:
    """Top-k detections per image: boxes (N, K, 4) [x, y, w, h] in input pixels, scores, classes."""

    boxes: torch.Tensor
    scores: torch.Tensor
    classes: torch.Tensor


@torch.no_grad()
def decode(outputs: dict[str, torch.Tensor], top_k: int = 100) -> Detections:
    """Local heatmap maxima (3x3 max-pool NMS), best `top_k` over all classes and cells."""
    heat = torch.sigmoid(outputs["heatmap"].float())
    n, c, h, w = heat.shape
    peaks = heat * (nn.functional.max_pool2d(heat, 3, stride=1, padding=1) == heat)
    k = min(top_k, c * h * w)
    scores, flat = peaks.reshape(n, -1).topk(k)
    classes = flat // (h * w)
    cells = flat % (h * w)
    size = _gather(outputs["size"].float(), cells)
    offset = _gather(outputs["offset"].float(), cells)
    cx = (cells % w).float() + offset[..., 0]
    cy = (cells // w).float() + offset[..., 1]
    bw, bh = size[..., 0].clamp(min=0), size[..., 1].clamp(min=0)
    boxes = torch.stack([cx - bw / 2, cy - bh / 2, bw, bh], dim=-1) * CENTERNET_STRIDE
    return Detections(boxes=boxes, scores=scores, classes=classes)
