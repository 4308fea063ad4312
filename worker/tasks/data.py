"""Turn a task's data source into the train package's in-memory datasets.

Real MNIST digits are white on black in [0, 255], and so are generated digits; both are fed to
the CNN as (N, 1, 28, 28) uint8, so a model trained on one is evaluated on the other unchanged.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from worker.errors import SpecError
from worker.tasks.envelope import (
    DataSource,
    DigitsSource,
    FileSource,
    RealMnistSource,
    RenderedSource,
)


def load_data(source: DataSource, model: Any = None) -> Any:
    """ClassificationData or DetectionData for ``source``; ``model`` (a zoo spec) sizes images."""
    from worker.train.data import ClassificationData, DetectionData

    if isinstance(source, DigitsSource):
        images, labels = render_digit_source(source)
        return ClassificationData.from_arrays(images, labels)
    if isinstance(source, RealMnistSource):
        from worker.realdata import load_split

        split = load_split()
        chosen = split.tuning if source.split == "tuning" else split.heldout
        return ClassificationData.from_arrays(chosen.images, chosen.labels)
    if isinstance(source, RenderedSource):
        return load_rendered(Path(source.path))
    assert isinstance(source, FileSource)
    path = Path(source.path)
    if source.source == "coco":
        return DetectionData.from_coco(path)
    if source.source == "csv":
        return ClassificationData.from_csv(path)
    channels = getattr(model, "in_channels", 1)
    size = source.size or getattr(model, "image_size", None)
    data, _names = ClassificationData.from_folder(path, channels=channels, size=size)
    return data


def render_digit_source(source: DigitsSource) -> tuple[np.ndarray, np.ndarray]:
    """All items of a digits spec, rendered here (generation is cheaper than shipping files)."""
    from worker.render.digits import MAX_RENDER_BATCH, DigitsSpec, render_digits
    from worker.spec import load_spec

    spec = load_spec(source.spec, DigitsSpec)
    parts = [render_digits(spec, source.seed, low, min(low + MAX_RENDER_BATCH, spec.count))
             for low in range(0, spec.count, MAX_RENDER_BATCH)]
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


def load_rendered(path: Path) -> Any:
    """A render task's output dir: digits as arrays, shelves as one merged COCO dataset."""
    from worker.render.delivered import open_render_artifact
    from worker.train.data import ClassificationData, DetectionData, read_image

    manifest_path = path / "manifest.json"
    if not manifest_path.is_file():
        raise SpecError(f"{path} is not a render output (no manifest.json)", reason="bad-data")
    # every file and label against the manifest first: a model is never trained (nor its
    # training replayed) on data other than the artifact the job names
    open_render_artifact(path)
    manifest = json.loads(manifest_path.read_text())
    shards = [(path / s["path"], json.loads((path / s["path"] / "annotations.json").read_text()))
              for s in manifest["meta"]["shards"]]
    if manifest["kind"] == "digits":
        records = [(folder, r) for folder, labels in shards for r in labels["labels"]]
        images = np.stack([read_image(folder / r["file_name"], channels=1) for folder, r in records])
        labels = np.array([r["label"] for _folder, r in records], dtype=np.int64)
        return ClassificationData.from_arrays(images, labels)
    merged: dict[str, Any] = {"images": [], "annotations": [], "categories": shards[0][1]["categories"]}
    for folder, coco in shards:
        prefix = folder.name + "/"
        merged["images"] += [{**im, "file_name": prefix + im["file_name"]} for im in coco["images"]]
        merged["annotations"] += coco["annotations"]
    return DetectionData.from_coco_dict(merged, path)


def dataset_size(source: DataSource) -> int:
    """Items in a source without loading pixels where the spec alone says it (for units)."""
    if isinstance(source, DigitsSource):
        from worker.render.digits import DigitsSpec
        from worker.spec import load_spec

        return load_spec(source.spec, DigitsSpec).count
    if isinstance(source, RealMnistSource):
        from worker.realdata import DEFAULT_TUNING_SIZE, MNIST_COUNT

        return DEFAULT_TUNING_SIZE if source.split == "tuning" else MNIST_COUNT - DEFAULT_TUNING_SIZE
    return len(load_data(source))
