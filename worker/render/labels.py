"""A shard's label file, and each item's canonical label bytes (what its artifact leaf commits to).

Why per item: a label file holds the labels of a whole shard, so its file hash alone says only
that *some* label changed. Each item's leaf also commits to the canonical JSON
(`worker.artifact.canonical_json`) of that item's own records, so a verifier re-deriving them from
the delivered file names the item whose label moved. The records, as they appear in the file:
- digits: ``{"file_name": "images/NNNNNNNN.png", "index": i, "label": L}``, one per item in
  ``labels``; the item's label bytes are that object;
- shelf: the COCO ``images`` entry ``{"file_name", "height", "id": i + 1, "width"}`` and the
  ``annotations`` whose ``image_id`` is ``i + 1``, in file order (the writer lists them by
  ``id``); the item's label bytes are ``{"annotations": [...], "image": {...}}``.
The file's other parts (``info``, ``categories``) are committed by its file hash.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from worker.artifact import canonical_json, mismatch
from worker.errors import WorkerError
from worker.render.coco import categories, image_annotations
from worker.render.dataset import RenderedItem, RenderSpec
from worker.render.shelf import ShelfItem, shelf_plan
from worker.render.shelf_spec import MAX_INSTANCES, ShelfSpec

LABEL_FILE = "annotations.json"


def image_name(index: int) -> str:
    return f"images/{index:08d}.png"


def image_entry(spec: ShelfSpec, index: int) -> dict[str, Any]:
    return {"id": index + 1, "file_name": image_name(index), "width": spec.width,
            "height": spec.height}


def digit_record(index: int, label: int) -> dict[str, Any]:
    return {"index": index, "file_name": image_name(index), "label": label}


def shelf_records(index: int, shelf: ShelfItem) -> list[dict[str, Any]]:
    # annotation ids are derived from the item index, so shards never collide when merged
    return image_annotations(index + 1, index * MAX_INSTANCES + 1, shelf)


def digit_label_bytes(record: dict[str, Any]) -> bytes:
    return canonical_json(record)


def shelf_label_bytes(image: dict[str, Any], records: Sequence[dict[str, Any]]) -> bytes:
    return canonical_json({"annotations": list(records), "image": image})


def rendered_labels(spec: RenderSpec, item: RenderedItem) -> tuple[list[dict[str, Any]], bytes]:
    """A rendered item's records for its label file, and its canonical label bytes.

    The writer commits to these bytes; a verifier re-rendering a sampled item compares them
    with the leaf, so a label file holding other labels than the rendered ones is caught.
    """
    if isinstance(spec, ShelfSpec) and item.shelf is not None:
        records = shelf_records(item.index, item.shelf)
        return records, shelf_label_bytes(image_entry(spec, item.index), records)
    if item.label is None:
        raise WorkerError(f"item {item.index} has no label", reason="task-failed")
    record = digit_record(item.index, item.label)
    return [record], digit_label_bytes(record)


def label_file(spec: Any, seed: int, start: int, stop: int,
               records: list[dict[str, Any]]) -> dict[str, Any]:
    """The shard's ``annotations.json``: COCO instances (shelf) or ``{"labels": ...}`` (digits)."""
    info = {"description": f"neuro {spec.kind} dataset", "spec_hash": spec.spec_hash().hex(),
            "seed": seed, "renderer_version": spec.renderer_version}
    if not isinstance(spec, ShelfSpec):
        return {"info": info, "labels": records}
    return {"info": info, "images": [image_entry(spec, i) for i in range(start, stop)],
            "annotations": records, "categories": categories(shelf_plan(spec).catalog)}


@dataclass(frozen=True, slots=True)
class ShardLabels:
    """The delivered labels of items ``start..stop-1``, grouped by item."""

    path: str  # the label file, relative to the artifact
    kind: str
    images: dict[int, dict[str, Any]]  # shelf: index -> COCO image entry
    records: dict[int, list[dict[str, Any]]]  # index -> its records (digits: one)

    def label_bytes(self, index: int) -> bytes:
        records = self.records.get(index, [])
        if self.kind == "digits":
            return canonical_json(records[0] if records else None)
        return shelf_label_bytes(self.images.get(index, {}), records)

    def digit_label(self, index: int) -> int:
        records = self.records.get(index)
        label = records[0].get("label") if records else None
        if type(label) is not int:
            raise mismatch("item-labels", f"no integer label ({label!r})", self.path, index)
        return label


def read_shard_labels(path: str, data: Any, kind: str, start: int, stop: int) -> ShardLabels:
    """Group a parsed label file by item; a record outside ``[start, stop)`` is ``bad-labels``."""
    try:
        if kind == "digits":
            labels = _once(_group(data["labels"], "index", 0, start, stop))
            return ShardLabels(path, kind, {}, labels)
        images = _once(_group(data["images"], "id", 1, start, stop))
        records = _group(data["annotations"], "image_id", 1, start, stop)
        return ShardLabels(path, kind, {i: e[0] for i, e in images.items()}, records)
    except (KeyError, TypeError, ValueError) as exc:
        raise mismatch("bad-labels", f"not a {kind} label file ({exc})", path) from None


def _group(records: Any, key: str, offset: int, start: int,
           stop: int) -> dict[int, list[dict[str, Any]]]:
    if not isinstance(records, list):
        raise TypeError(f"expected a list of records, got {type(records).__name__}")
    grouped: dict[int, list[dict[str, Any]]] = {i: [] for i in range(start, stop)}
    try:
        for record in records:
            grouped[record[key] - offset].append(record)
    except (KeyError, TypeError, IndexError):
        raise ValueError(f"record {str(record)[:60]}..: {key} outside this shard") from None
    # a key that only equals an index (True, 1.0) changes the item's canonical bytes: caught there
    return {index: group for index, group in grouped.items() if group}


def _once(grouped: dict[int, list[dict[str, Any]]]) -> dict[int, list[dict[str, Any]]]:
    """An item has one image entry (shelf) or one label record (digits), never two."""
    for index, entries in grouped.items():
        if len(entries) > 1:
            raise ValueError(f"item {index} has {len(entries)} entries")
    return grouped
