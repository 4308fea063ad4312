"""Batches on the device for steps [start, end), in the order `schedule` fixes.

Two sources behind one `steps(start, end)` iterator:
- classification: the whole uint8 set is copied to the device once and each step indexes it
  there (no host round trip, no per-step DataLoader cost; 60k MNIST digits are 47 MB);
- detection: a DataLoader whose batch sampler yields the scheduled (item, flip, dx, dy) keys,
  with workers decoding PNGs and building CenterNet targets, pinned memory on CUDA.
Under DistributedDataParallel each rank takes every `world`-th item of the global batch.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from worker.errors import SpecError
from worker.train.centernet import encode_targets
from worker.train.data import ClassificationData, DetectionData, load_detection_image
from worker.train.schedule import (
    Augmentation,
    augment_images,
    augmentation,
    batch_indices,
    upload,
)
from worker.train.spec import CenterNetSpec, CnnSpec, TrainSpec

Batch = tuple[int, torch.Tensor, Any]
MIN_BOX_PIXELS = 1.0
MAX_LOADER_WORKERS = 8


@dataclass(frozen=True, slots=True)
class Shard:
    """This process's share of each global batch (rank r of `world` takes items r::world)."""

    rank: int = 0
    world: int = 1


SINGLE = Shard()


class ClassificationBatches:
    def __init__(self, spec: TrainSpec, data: ClassificationData, device: torch.device,
                 shard: Shard = SINGLE) -> None:
        model = spec.model
        assert isinstance(model, CnnSpec)
        expected = (model.in_channels, model.image_size, model.image_size)
        if tuple(data.images.shape[1:]) != expected:
            raise SpecError(f"data images are {tuple(data.images.shape[1:])}, model wants {expected}",
                            reason="data-shape-mismatch")
        if data.labels.size and int(data.labels.max()) >= model.num_classes:
            raise SpecError(f"label {int(data.labels.max())} >= num_classes {model.num_classes}",
                            reason="data-shape-mismatch")
        self.spec, self.shard, self.size = spec, shard, len(data)
        self.images = torch.from_numpy(data.images).to(device)
        self.labels = torch.from_numpy(data.labels).to(device)

    def indices(self, step: int) -> torch.Tensor:
        return batch_indices(self.spec.seed, step, self.size, self.spec.batch_size)

    def steps(self, start: int, end: int) -> Iterator[Batch]:
        device = self.images.device
        for step in range(start, end):
            idx = upload(self.indices(step)[self.shard.rank::self.shard.world], device)
            x = self.images[idx].float().div_(255.0)
            aug = augmentation(self.spec.augment, self.spec.seed, step, self.spec.batch_size)
            if aug is not None:
                x = augment_images(x, _shard_aug(aug, self.shard))
            yield step, x, self.labels[idx]


def _shard_aug(aug: Augmentation, shard: Shard) -> Augmentation:
    if shard.world == 1:
        return aug
    r, w = shard.rank, shard.world
    return Augmentation(flip=aug.flip[r::w], dx=aug.dx[r::w], dy=aug.dy[r::w])


class DetectionDataset(Dataset[dict[str, torch.Tensor]]):
    """Item key (index, flip, dx, dy) -> image uint8 (3, S, S) and its CenterNet targets."""

    def __init__(self, data: DetectionData, model: CenterNetSpec) -> None:
        self.data, self.model = data, model

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, key: tuple[int, bool, int, int]) -> dict[str, torch.Tensor]:
        i, flip, dx, dy = key
        size = self.model.image_size
        image, boxes = load_detection_image(self.data, i, size)
        image, boxes = flip_shift(image, boxes, flip, dx, dy)
        keep = (boxes[:, 2] >= MIN_BOX_PIXELS) & (boxes[:, 3] >= MIN_BOX_PIXELS)
        targets = encode_targets(
            boxes[keep], self.data.classes[i][keep], image_size=size,
            num_classes=self.model.num_classes, max_objects=self.model.max_objects,
        )
        item = {k: torch.from_numpy(v) for k, v in targets.items()}
        item["image"] = torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1)))
        return item


def flip_shift(image: np.ndarray, boxes: np.ndarray, flip: bool, dx: int, dy: int
               ) -> tuple[np.ndarray, np.ndarray]:
    """Mirror then translate an (H, W, C) image and its [x, y, w, h] boxes, clipping at edges."""
    h, w = image.shape[:2]
    boxes = boxes.copy()
    if flip:
        image = image[:, ::-1]
        boxes[:, 0] = w - boxes[:, 0] - boxes[:, 2]
    if dx or dy:
        moved = np.zeros_like(image)
        src = image[max(0, -dy):h - max(0, dy), max(0, -dx):w - max(0, dx)]
        moved[max(0, dy):max(0, dy) + src.shape[0], max(0, dx):max(0, dx) + src.shape[1]] = src
        image = moved
        x0 = np.clip(boxes[:, 0] + dx, 0, w)
        y0 = np.clip(boxes[:, 1] + dy, 0, h)
        x1 = np.clip(boxes[:, 0] + boxes[:, 2] + dx, 0, w)
        y1 = np.clip(boxes[:, 1] + boxes[:, 3] + dy, 0, h)
        boxes = np.stack([x0, y0, x1 - x0, y1 - y0], axis=1).astype(np.float32)
    return np.ascontiguousarray(image), boxes


class _ScheduleSampler:
    """Yields, per step, the keys of this rank's share of the scheduled global batch."""

    def __init__(self, spec: TrainSpec, size: int, start: int, end: int, shard: Shard) -> None:
        self.spec, self.size, self.start, self.end, self.shard = spec, size, start, end, shard

    def __len__(self) -> int:
        return self.end - self.start

    def __iter__(self) -> Iterator[list[tuple[int, bool, int, int]]]:
        bs = self.spec.batch_size
        for step in range(self.start, self.end):
            idx = batch_indices(self.spec.seed, step, self.size, bs).tolist()
            aug = augmentation(self.spec.augment, self.spec.seed, step, bs)
            keys = [(i, *(aug.item(j) if aug else (False, 0, 0))) for j, i in enumerate(idx)]
            yield keys[self.shard.rank::self.shard.world]


def loader_workers(threads: int, ranks: int = 1) -> int:
    """DataLoader processes per rank: the cores the training threads leave free, at most 8.

    Workers only decode images and build targets, so their number never changes the numbers.
    """
    spare = (os.cpu_count() or 1) // ranks - threads
    return max(0, min(MAX_LOADER_WORKERS, spare))


class DetectionBatches:
    def __init__(self, spec: TrainSpec, data: DetectionData, device: torch.device,
                 shard: Shard = SINGLE, workers: int | None = None) -> None:
        model = spec.model
        assert isinstance(model, CenterNetSpec)
        if data.num_classes > model.num_classes:
            raise SpecError(f"dataset has {data.num_classes} classes, model {model.num_classes}",
                            reason="data-shape-mismatch")
        self.spec, self.data, self.device, self.shard = spec, data, device, shard
        self.dataset = DetectionDataset(data, model)
        self.workers = loader_workers(spec.threads, shard.world) if workers is None else workers
        self.size = len(data)

    def indices(self, step: int) -> torch.Tensor:
        return batch_indices(self.spec.seed, step, self.size, self.spec.batch_size)

    def steps(self, start: int, end: int) -> Iterator[Batch]:
        loader = DataLoader(
            self.dataset, batch_sampler=_ScheduleSampler(self.spec, self.size, start, end, self.shard),
            num_workers=self.workers, pin_memory=self.device.type == "cuda",
            persistent_workers=False, prefetch_factor=4 if self.workers else None,
        )
        for step, batch in zip(range(start, end), loader):
            moved = {k: v.to(self.device, non_blocking=True) for k, v in batch.items()}
            x = moved.pop("image").float().div_(255.0)
            yield step, x, moved


def make_batches(spec: TrainSpec, data: ClassificationData | DetectionData, device: torch.device,
                 shard: Shard = SINGLE, workers: int | None = None
                 ) -> ClassificationBatches | DetectionBatches:
    """The batch source for a spec's model kind; data of the wrong kind is a spec error."""
    if shard.world > 1 and spec.batch_size % shard.world:
        raise SpecError(f"batch_size {spec.batch_size} does not split over {shard.world} GPUs",
                        reason="bad-batch-split")
    if isinstance(spec.model, CnnSpec) and isinstance(data, ClassificationData):
        return ClassificationBatches(spec, data, device, shard)
    if isinstance(spec.model, CenterNetSpec) and isinstance(data, DetectionData):
        return DetectionBatches(spec, data, device, shard, workers)
    raise SpecError(f"model {spec.model.name} cannot train on {type(data).__name__}",
                    reason="data-kind-mismatch")
