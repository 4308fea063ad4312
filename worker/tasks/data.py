"""Turn a task's data source into the train package's in-memory datasets.

Real MNIST digits are white on black in [0, 255], and so are generated digits; both are fed to
the CNN as (N, 1, 28, 28) uint8, so a model trained on one is evaluated on the other unchanged.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from worker.errors import SpecError
from worker.tasks.envelope import (
    ArtifactsSource,
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
        return load_rendered([(Path(source.path), None)])
    if isinstance(source, ArtifactsSource):
        return load_rendered([(artifact_folder(root), bytes.fromhex(root)) for root in source.roots])
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


# root (hex) -> the folder holding that artifact, supplied by whoever runs the task (a daemon
# exports the roots a job names from its artifact store: `neurod.market.inputs`); kept in the
# environment, so the task runner's child process (`worker.runner`) reads the same map
ARTIFACT_FOLDERS_ENV = "NEURO_ARTIFACT_FOLDERS"


@contextmanager
def artifact_folders(folders: Mapping[str, str | Path]) -> Iterator[None]:
    """Make the artifacts in ``folders`` (root hex -> folder) readable by ``"artifacts"`` sources
    for the duration of the block, here and in the task processes started meanwhile."""
    saved = os.environ.get(ARTIFACT_FOLDERS_ENV)
    merged = {**_folders(), **{root: str(Path(folder).resolve()) for root, folder in folders.items()}}
    os.environ[ARTIFACT_FOLDERS_ENV] = json.dumps(merged)
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop(ARTIFACT_FOLDERS_ENV, None)
        else:
            os.environ[ARTIFACT_FOLDERS_ENV] = saved


def _folders() -> dict[str, str]:
    try:
        folders = json.loads(os.environ.get(ARTIFACT_FOLDERS_ENV, "{}"))
    except ValueError:
        raise SpecError(f"{ARTIFACT_FOLDERS_ENV} is not a JSON object of root -> folder", reason="bad-data") from None
    return folders if isinstance(folders, dict) else {}


def artifact_folder(root: str) -> Path:
    folder = _folders().get(root)
    if not isinstance(folder, str):
        raise SpecError(f"artifact {root} is not available here: fetch it first (a daemon fetches the roots a job "
                        "names from its peers)", reason="missing-artifact")
    return Path(folder)


def load_rendered(artifacts: Sequence[tuple[Path, bytes | None]]) -> Any:
    """Render artifacts (a render task's output dir, or the shards of a generate job) as one
    dataset: digits as arrays, shelves as one merged COCO dataset. Each folder is checked
    against its manifest, and against its root where one is named, before it is read: a model
    is never trained (nor its training replayed) on data other than the artifacts the job names."""
    from worker.render.delivered import open_render_artifact
    from worker.train.data import ClassificationData, DetectionData, read_image

    kinds, shards = set(), []
    for path, root in artifacts:
        manifest_path = path / "manifest.json"
        if not manifest_path.is_file():
            raise SpecError(f"{path} is not a render output (no manifest.json)", reason="bad-data")
        open_render_artifact(path, root)
        manifest = json.loads(manifest_path.read_text())
        kinds.add(manifest["kind"])
        shards += [((path / s["path"]).resolve(), json.loads((path / s["path"] / "annotations.json").read_text()))
                   for s in manifest["meta"]["shards"]]
    if len(kinds) != 1:
        raise SpecError(f"the artifacts mix kinds of data: {sorted(kinds)}", reason="bad-data")
    if kinds == {"digits"}:
        records = [(folder, r) for folder, labels in shards for r in labels["labels"]]
        images = np.stack([read_image(folder / r["file_name"], channels=1) for folder, r in records])
        labels = np.array([r["label"] for _folder, r in records], dtype=np.int64)
        return ClassificationData.from_arrays(images, labels)
    # images numbered afresh in order (two jobs' shards may both hold an item 0); file names
    # absolute, so each shard's images are found under its own folder
    merged: dict[str, Any] = {"images": [], "annotations": [], "categories": shards[0][1]["categories"]}
    for folder, coco in shards:
        renumber = {}
        for image in coco["images"]:
            renumber[image["id"]] = len(merged["images"]) + 1
            merged["images"].append({**image, "id": renumber[image["id"]],
                                     "file_name": str(folder / image["file_name"])})
        if coco["categories"] != merged["categories"]:
            raise SpecError(f"{folder}: its categories differ from the other artifacts'", reason="bad-data")
        merged["annotations"] += [{**a, "id": len(merged["annotations"]) + n + 1, "image_id": renumber[a["image_id"]]}
                                  for n, a in enumerate(coco["annotations"])]
    return DetectionData.from_coco_dict(merged, shards[0][0])


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
