"""Training and evaluation data: classification arrays, image folders, CSVs and COCO datasets.

Classification data is small (digits, thumbnails), so it stays in memory as uint8 and the loop
copies it to the device once. Detection data is read from disk (PNG + COCO JSON as the renderer
writes it) image by image in DataLoader workers, which also build the CenterNet targets.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, UnidentifiedImageError

from worker.errors import WorkerError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp")
COCO_NAMES = ("annotations.json", "coco.json", "labels.json")
MAX_CSV_ROWS = 1_000_000


class DataError(WorkerError):
    reason = "bad-data"


@dataclass(frozen=True, slots=True)
class ClassificationData:
    """uint8 images (N, C, H, W) and int64 labels (N,)."""

    images: np.ndarray
    labels: np.ndarray

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    @classmethod
    def from_arrays(cls, images: np.ndarray, labels: np.ndarray) -> ClassificationData:
        """Accepts (N, H, W) gray, (N, C, H, W) or (N, H, W, C) with C in {1, 3}."""
        images = np.asarray(images)
        labels = np.asarray(labels).astype(np.int64).reshape(-1)
        if images.dtype != np.uint8:
            raise DataError(f"images must be uint8, got {images.dtype}")
        if images.ndim == 3:
            images = images[:, None]
        elif images.ndim == 4 and images.shape[1] not in (1, 3) and images.shape[3] in (1, 3):
            images = images.transpose(0, 3, 1, 2)
        if images.ndim != 4 or images.shape[1] not in (1, 3):
            raise DataError(f"images must be (N,H,W) or (N,C,H,W) with C 1 or 3, got {images.shape}")
        if images.shape[0] != labels.shape[0]:
            raise DataError(f"{images.shape[0]} images but {labels.shape[0]} labels")
        if labels.size and labels.min() < 0:
            raise DataError("labels must be non-negative")
        return cls(images=np.ascontiguousarray(images), labels=labels)

    @classmethod
    def from_folder(cls, root: Path, *, channels: int = 1, size: int | None = None
                    ) -> tuple[ClassificationData, list[str]]:
        """Class-per-subfolder images; classes are the sorted subfolder names (returned too)."""
        expected = "expected a folder with one subfolder of images per class"
        if not root.is_dir():
            raise DataError(f"{root} {'is a file' if root.exists() else 'does not exist'}, {expected}")
        class_names = sorted(p.name for p in root.iterdir() if p.is_dir())
        if not class_names:
            raise DataError(f"{root} has no class subfolders, {expected}")
        images, labels = [], []
        for label, name in enumerate(class_names):
            for path in sorted((root / name).iterdir()):
                if path.suffix.lower() in IMAGE_SUFFIXES:
                    images.append(read_image(path, channels=channels, size=size))
                    labels.append(label)
        if not images:
            raise DataError(f"no images under {root}")
        shapes = {im.shape for im in images}
        if len(shapes) > 1:
            raise DataError(f"images under {root} differ in size {sorted(shapes)}: give a size")
        return cls.from_arrays(np.stack(images), np.array(labels)), class_names

    @classmethod
    def from_csv(cls, path: Path, *, side: int | None = None) -> ClassificationData:
        """Rows of `label,pixel,...` (a header row is skipped); square gray images."""
        expected = "expected a CSV file of label,pixel,... rows"
        if not path.is_file():
            raise DataError(f"{path} {'is a directory' if path.is_dir() else 'does not exist'}, {expected}")
        try:
            with open(path, newline="") as handle:
                rows = [row for row in csv.reader(handle) if row]
        except OSError as err:
            raise DataError(f"cannot read {path} ({err.strerror}), {expected}") from None
        except UnicodeDecodeError:
            raise DataError(f"{path} is not text, {expected}") from None
        if rows and not rows[0][0].strip().lstrip("-").isdigit():
            rows = rows[1:]
        if not rows or len(rows) > MAX_CSV_ROWS:
            raise DataError(f"{path}: expected 1..{MAX_CSV_ROWS} data rows, got {len(rows)}")
        try:
            table = np.array(rows, dtype=np.int64)
        except ValueError:
            raise DataError(f"{path}: rows must be integers of equal length") from None
        pixels = table.shape[1] - 1
        side = side or round(pixels**0.5)
        if side * side != pixels or table[:, 1:].min() < 0 or table[:, 1:].max() > 255:
            raise DataError(f"{path}: {pixels} pixel columns of 0..255 do not make a square image")
        images = table[:, 1:].astype(np.uint8).reshape(-1, side, side)
        return cls.from_arrays(images, table[:, 0])


def read_image(path: Path, *, channels: int, size: int | None = None) -> np.ndarray:
    """uint8 (H, W) for 1 channel or (H, W, 3); resized to size x size when asked."""
    try:
        with Image.open(path) as opened:
            im = opened.convert("L" if channels == 1 else "RGB")
            if size is not None and im.size != (size, size):
                im = im.resize((size, size), Image.Resampling.BILINEAR)
            return np.asarray(im, dtype=np.uint8).copy()
    except (OSError, UnidentifiedImageError):
        raise DataError(f"cannot read image {path}") from None


@dataclass(frozen=True, slots=True)
class DetectionData:
    """A COCO dataset: image files with boxes [x, y, w, h] in pixels and 0-based class indices.

    `category_ids[c]` is the COCO category id of class c, so predictions map back to the file.
    """

    root: Path
    files: tuple[str, ...]
    image_ids: tuple[int, ...]
    sizes: tuple[tuple[int, int], ...]
    boxes: tuple[np.ndarray, ...]
    classes: tuple[np.ndarray, ...]
    category_ids: tuple[int, ...]
    coco: dict[str, Any]

    def __len__(self) -> int:
        return len(self.files)

    @property
    def num_classes(self) -> int:
        return len(self.category_ids)

    @classmethod
    def from_coco(cls, path: Path) -> DetectionData:
        """`path` is a COCO JSON file, or a dataset folder holding one (see `COCO_NAMES`)."""
        json_path = find_coco_json(path)
        try:
            coco = json.loads(json_path.read_text())
            return cls.from_coco_dict(coco, json_path.parent)
        except (OSError, ValueError, KeyError, TypeError) as err:
            raise DataError(f"{json_path}: not a valid COCO file ({err})") from None

    @classmethod
    def from_coco_dict(cls, coco: dict[str, Any], root: Path) -> DetectionData:
        category_ids = tuple(sorted(int(c["id"]) for c in coco["categories"]))
        class_of = {cid: i for i, cid in enumerate(category_ids)}
        images = sorted(coco["images"], key=lambda im: int(im["id"]))
        per_image: dict[int, list[dict[str, Any]]] = {int(im["id"]): [] for im in images}
        for ann in coco.get("annotations", []):
            per_image[int(ann["image_id"])].append(ann)
        boxes, classes = [], []
        for im in images:
            anns = per_image[int(im["id"])]
            boxes.append(np.array([a["bbox"] for a in anns], np.float32).reshape(-1, 4))
            classes.append(np.array([class_of[int(a["category_id"])] for a in anns], np.int64))
        return cls(
            root=root, files=tuple(str(im["file_name"]) for im in images),
            image_ids=tuple(int(im["id"]) for im in images),
            sizes=tuple((int(im["width"]), int(im["height"])) for im in images),
            boxes=tuple(boxes), classes=tuple(classes), category_ids=category_ids, coco=coco,
        )

    def image_path(self, i: int) -> Path:
        direct = self.root / self.files[i]
        return direct if direct.exists() else self.root / "images" / self.files[i]


def find_coco_json(path: Path) -> Path:
    if path.is_file():
        return path
    if not path.is_dir():
        raise DataError(f"{path} does not exist, expected a COCO JSON file or a folder holding one")
    for name in COCO_NAMES:
        if (path / name).is_file():
            return path / name
    candidates = sorted(path.glob("*.json"))
    for candidate in candidates:
        try:
            if "images" in json.loads(candidate.read_text()):
                return candidate
        except (OSError, ValueError):
            continue
    raise DataError(f"no COCO JSON in {path}, expected a file with an 'images' list")


def load_detection_image(data: DetectionData, i: int, size: int) -> tuple[np.ndarray, np.ndarray]:
    """RGB uint8 (size, size, 3) of image i and its boxes scaled to that size."""
    image = read_image(data.image_path(i), channels=3)
    h, w = image.shape[:2]
    boxes = data.boxes[i].copy()
    if (w, h) != (size, size):
        image = np.asarray(Image.fromarray(image).resize((size, size), Image.Resampling.BILINEAR))
        boxes *= np.array([size / w, size / h, size / w, size / h], np.float32)
    return image, boxes
