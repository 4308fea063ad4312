"""Label Data as a market job: the spec a client posts, a worker's run of one shard, and the
labels a checker reads back.

The job spec (canonical JSON on chain; `chain.job_spec` prices it from ``model`` and ``images``)::

    {"task": "label", "images": N, "model": {zoo spec}, "images_root": HEX, "weights_root": HEX,
     "min_score_pct": 30}

- ``images_root`` names an "images" artifact (`pack_images`): item i is image i, its one file
  ``images/<name>``, in name order; it must hold exactly ``images`` items (the count the chain
  priced and shards by).
- ``weights_root`` names a "model" artifact holding ``model.safetensors``: a train job's output,
  or weights the client owns packed by `pack_weights`. The weights' zoo spec must be ``model``:
  the chain prices the forward passes of the declared spec, so a worker refuses weights that
  are another (larger) model.

Shard k labels images [start, stop) (`chain.job_spec.JobTerms.shard_range`) and delivers a
"labels" artifact: ``labels.json`` (COCO boxes with scores for a detector, image ids being the
job-wide index + 1 so shards merge without clashes; per-image class probabilities for a
classifier) and one item per image (index = the job-wide image index, labels = the canonical JSON
of that image's record, no file of its own). A Merkle leaf therefore names one image's labels,
and a checker (`neurod.market.label_check`) reads an item's labels back with `delivered_records`.

``fault = "random-labels"`` (test only, devnet) labels with seeded random classes and boxes,
sealed into a consistent artifact: only the agreement check can tell.
"""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field

from worker.artifact import (
    ArtifactManifest,
    ItemDraft,
    canonical_json,
    verify_files,
    write_manifest,
)
from worker.errors import SpecError, WorkerError
from worker.spec import TaskSpec, checked_as

IMAGES_KIND = "images"
MODEL_KIND = "model"  # `worker.tasks.train.ARTIFACT_KIND`
LABELS_KIND = "labels"
LABELS_FILE = "labels.json"
WEIGHTS_FILE = "model.safetensors"  # `worker.tasks.train.WEIGHTS_FILE`
IMAGES_DIR = "images"
ROOT_HEX = r"^[0-9a-f]{64}$"
MAX_JOB_IMAGES = 100_000  # `worker.label.MAX_LABEL_IMAGES`
RANDOM_FAULT = "random-labels"


class LabelJobError(WorkerError):
    reason = "bad-label-job"


def _model_spec(value: Any) -> Any:
    from worker.train.spec import load_model_spec

    return load_model_spec(value)


class LabelJob(TaskSpec):
    """A label job's spec as posted on chain (module docstring)."""

    task: Literal["label"]
    images: int = Field(ge=1, le=MAX_JOB_IMAGES, description="how many images images_root holds")
    model: Annotated[dict[str, Any], checked_as(_model_spec)] = Field(description="the weights' zoo spec")
    images_root: str = Field(pattern=ROOT_HEX)
    weights_root: str = Field(pattern=ROOT_HEX)
    min_score_pct: int = Field(30, ge=0, le=100, description="detections under this score are left out")

    @property
    def roots(self) -> list[str]:
        return [self.images_root, self.weights_root]


def parse_label_job(doc: Any) -> LabelJob:
    """The validated spec; a `SpecError` naming the field otherwise."""
    from pydantic import ValidationError

    from worker.spec import describe_errors

    try:
        return LabelJob.model_validate(doc)
    except ValidationError as error:
        raise SpecError(describe_errors(error)) from None


def is_label_job(doc: Any) -> bool:
    """Whether a label spec is a market job (inputs named by roots), not a local task (paths)."""
    return isinstance(doc, dict) and doc.get("task") == "label" and "images_root" in doc


# --------------------------------------------------------------------------- the client's inputs


def pack_images(folder: Path, out: Path) -> ArtifactManifest:
    """An "images" artifact in ``out`` of the images directly in ``folder`` (name order)."""
    from worker.label import image_files

    files = image_files(folder)
    (out / IMAGES_DIR).mkdir(parents=True)
    drafts = []
    for index, path in enumerate(files):
        shutil.copyfile(path, out / IMAGES_DIR / path.name)
        drafts.append(ItemDraft(index, (f"{IMAGES_DIR}/{path.name}",)))
    return write_manifest(out, IMAGES_KIND, drafts, {"count": len(files)})


def pack_weights(weights: Path, out: Path) -> ArtifactManifest:
    """A "model" artifact in ``out`` of a weights file, laid out as a train job's output (one
    item, the weights, labelled by their metadata's claims), so either can be labelled with."""
    from worker.train.weights import read_meta

    meta = read_meta(weights)
    out.mkdir(parents=True)
    shutil.copyfile(weights, out / WEIGHTS_FILE)
    return write_manifest(out, MODEL_KIND, [ItemDraft(0, (WEIGHTS_FILE,), labels=canonical_json(meta.metrics))],
                          {"model": meta.model.model_dump(mode="json")})


def model_spec_of(weights: Path) -> dict[str, Any]:
    """The zoo spec of a weights file, as a label job declares it."""
    from worker.train.weights import read_meta

    return dict(read_meta(weights).model.model_dump(mode="json"))


def open_images(folder: Path, root: str, count: int) -> list[Path]:
    """The images of the artifact in ``folder``, checked against ``root``, in item order."""
    manifest = _open(folder, root, IMAGES_KIND)
    if len(manifest.items) != count:
        raise LabelJobError(f"the images artifact holds {len(manifest.items)} images, the job says {count}")
    if [item.index for item in manifest.items] != list(range(count)) or any(len(i.files) != 1 for i in manifest.items):
        raise LabelJobError("the images artifact must list items 0..N-1, one image file each")
    return [folder / item.files[0] for item in manifest.items]


def open_weights(folder: Path, root: str, declared: dict[str, Any]) -> Path:
    """The weights file of the model artifact in ``folder``, checked against ``root`` and against
    the zoo spec the job declared (and was priced by)."""
    from worker.train.spec import load_model_spec
    from worker.train.weights import read_meta

    _open(folder, root, MODEL_KIND)
    weights = folder / WEIGHTS_FILE
    if not weights.is_file():
        raise LabelJobError(f"the model artifact {root[:16]} holds no {WEIGHTS_FILE}")
    held = read_meta(weights).model
    if held != load_model_spec(declared):
        raise LabelJobError(f"the weights are a {held.model_dump(mode='json')}, the job declared {declared}")
    return weights


def _open(folder: Path, root: str, kind: str) -> ArtifactManifest:
    manifest = verify_files(folder, expected_root=bytes.fromhex(root))
    if manifest.kind != kind:
        raise LabelJobError(f"artifact {root[:16]} is a {manifest.kind!r} artifact, not {kind!r}")
    return manifest


# --------------------------------------------------------------------------- labelling


def predict_records(weights: Path, files: list[Path], indices: list[int], min_score_pct: int,
                    device: str = "cpu") -> tuple[str, list[Any], int]:
    """(task, one record per image, classes) of the weights over ``files`` (images ``indices``
    of the job): a classifier's record is its prediction, a detector's its image and boxes."""
    from worker.evaluate.predict import detect_files
    from worker.label import class_records, classify_files, image_sizes, pseudo_coco
    from worker.train.spec import CenterNetSpec
    from worker.train.weights import load_weights

    model, meta = load_weights(weights, device)
    spec = meta.model
    if isinstance(spec, CenterNetSpec):
        found = detect_files(model, spec, files, device=device, score_threshold=min_score_pct / 100)
        coco = pseudo_coco(files, image_sizes(files), found, spec.num_classes)
        return "detection", _per_image(coco, indices), spec.num_classes
    probs = classify_files(model, spec, files, device)
    return "classification", [{"index": i, **r} for i, r in zip(indices, class_records(files, probs))], spec.num_classes


def _per_image(coco: dict[str, Any], indices: list[int]) -> list[dict[str, Any]]:
    boxes: dict[int, list[dict[str, Any]]] = {}
    for ann in coco["annotations"]:
        boxes.setdefault(ann["image_id"], []).append(
            {"bbox": ann["bbox"], "category_id": ann["category_id"], "score": ann["score"]})
    return [{"image": {**image, "id": index + 1}, "boxes": boxes.get(image["id"], [])}
            for image, index in zip(coco["images"], indices)]


def random_records(task: str, records: list[Any], classes: int, seed: int) -> list[Any]:
    """The "random-labels" fault: each record's prediction replaced by a seeded random one."""
    rng = random.Random(seed)
    if task == "classification":
        out = []
        for record in records:
            label = rng.randrange(classes)
            out.append({**record, "label": label, "probability": record["probabilities"][label]})
        return out
    faked = []
    for record in records:
        width, height = record["image"]["width"], record["image"]["height"]
        boxes = []
        for _ in range(rng.randrange(1, 4)):
            w, h = rng.uniform(4, width / 2), rng.uniform(4, height / 2)
            box = [round(rng.uniform(0, width - w), 2), round(rng.uniform(0, height - h), 2), round(w, 2), round(h, 2)]
            boxes.append({"bbox": box, "category_id": rng.randrange(classes) + 1, "score": round(rng.uniform(0.5, 1), 5)})
        faked.append({**record, "boxes": boxes})
    return faked


def labels_document(task: str, records: list[Any], classes: int) -> dict[str, Any]:
    """``labels.json``: COCO with scored boxes (detector) or per-image predictions (classifier)."""
    if task == "classification":
        return {"task": task, "predictions": records}
    annotations: list[dict[str, Any]] = []
    for record in records:
        for box in record["boxes"]:
            _x, _y, w, h = box["bbox"]
            annotations.append({"id": len(annotations) + 1, "image_id": record["image"]["id"], "bbox": box["bbox"],
                                "category_id": box["category_id"], "score": box["score"], "area": round(w * h, 2),
                                "iscrowd": 0, **({"review": box["review"]} if "review" in box else {})})
    return {"task": task, "images": [r["image"] for r in records], "annotations": annotations,
            "categories": [{"id": c + 1, "name": f"class{c}"} for c in range(classes)]}


def task_of(document: dict[str, Any]) -> str:
    """"classification" or "detection": a job's ``labels.json`` says; a local label task's
    (`worker.label`, no "task" key) is told by its shape."""
    return str(document.get("task") or ("classification" if "predictions" in document else "detection"))


def records_of(document: dict[str, Any]) -> list[dict[str, Any]]:
    """The per-image records of a ``labels.json``, in image order (`labels_document` inverted)."""
    if task_of(document) == "classification":
        return list(document["predictions"])
    boxes: dict[int, list[dict[str, Any]]] = {}
    for ann in document["annotations"]:
        box = {"bbox": ann["bbox"], "category_id": ann["category_id"], "score": ann["score"]}
        boxes.setdefault(ann["image_id"], []).append({**box, **({"review": ann["review"]} if "review" in ann else {})})
    return [{"image": image, "boxes": boxes.get(image["id"], [])} for image in document["images"]]


def write_labels(out: Path, task: str, records: list[Any], classes: int, meta: dict[str, Any]) -> ArtifactManifest:
    """Write ``labels.json`` and seal the "labels" artifact over it: one item per image."""
    (out / LABELS_FILE).write_text(json.dumps(labels_document(task, records, classes)))
    drafts = [ItemDraft(_index(task, r), (), labels=canonical_json(r)) for r in records]
    return write_manifest(out, LABELS_KIND, drafts, {**meta, "task": task, "classes": classes})


def _index(task: str, record: dict[str, Any]) -> int:
    return int(record["index"] if task == "classification" else record["image"]["id"] - 1)


def label_shard(job: LabelJob, start: int, stop: int, images_dir: Path, weights_dir: Path, out: Path,
                device: str = "cpu", fault: str | None = None) -> ArtifactManifest:
    """Label images [start, stop) of ``job`` into the "labels" artifact ``out``."""
    files = open_images(images_dir, job.images_root, job.images)[start:stop]
    weights = open_weights(weights_dir, job.weights_root, job.model)
    task, records, classes = predict_records(weights, files, list(range(start, stop)), job.min_score_pct, device)
    if fault == RANDOM_FAULT:
        records = random_records(task, records, classes, seed=start)
    out.mkdir(parents=True, exist_ok=True)
    meta = {"images_root": job.images_root, "weights_root": job.weights_root, "start": start, "stop": stop,
            "min_score_pct": job.min_score_pct}
    return write_labels(out, task, records, classes, meta)


def delivered_records(folder: Path, root: bytes | None = None) -> tuple[ArtifactManifest, dict[int, Any]]:
    """A delivered "labels" artifact, every byte and every item's labels checked against its
    manifest (and ``root``): its manifest and job-wide image index -> record."""
    records: dict[int, Any] = {}

    def item_labels(manifest: ArtifactManifest) -> list[tuple[str, bytes]]:
        try:
            document = json.loads((folder / LABELS_FILE).read_text())
            task = task_of(document)
            found = {_index(task, r): r for r in records_of(document)}
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise LabelJobError(f"{LABELS_FILE} cannot be read: {exc}") from None
        records.update(found)
        return [(LABELS_FILE, canonical_json(found[item.index]) if item.index in found else b"")
                for item in manifest.items]

    manifest = verify_files(folder, item_labels, expected_root=root)
    if manifest.kind != LABELS_KIND:
        raise LabelJobError(f"a {manifest.kind!r} artifact, not {LABELS_KIND!r}")
    return manifest, records
