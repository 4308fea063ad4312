"""COCO instance annotations from an id map, and back.

Masks go out as COCO compressed RLE. The run lengths are read straight off the id map in
column-major order (COCO's order) for all instances at once, then pycocotools compresses them;
no per-instance full-size mask is ever built.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from pycocotools import mask as mask_utils

from worker.render.catalog import Sku
from worker.render.shelf import Instance


def categories(catalog: tuple[Sku, ...]) -> list[dict[str, Any]]:
    """One COCO category per SKU; the supercategory is the package shape."""
    return [{"id": sku.category_id, "name": f"sku-{sku.category_id:04d}", "supercategory": sku.shape}
            for sku in catalog]


def rle_counts(idmap: np.ndarray, instances: int) -> list[list[int]]:
    """Uncompressed COCO RLE counts of ``idmap == k`` for k = 1..instances, in one pass."""
    flat = idmap.T.ravel()  # column-major, as COCO counts run down the columns
    total = flat.size
    cuts = np.flatnonzero(flat[1:] != flat[:-1]) + 1
    starts = np.concatenate(([0], cuts))
    ends = np.concatenate((cuts, [total]))
    values = flat[starts]
    order = np.argsort(values, kind="stable")
    bounds = np.searchsorted(values[order], np.arange(1, instances + 2))
    result: list[list[int]] = []
    for k in range(instances):
        runs = order[bounds[k] : bounds[k + 1]]
        run_starts, run_ends = starts[runs], ends[runs]
        gaps = run_starts - np.concatenate(([0], run_ends[:-1]))
        counts = np.empty(2 * len(runs) + 1, dtype=np.int64)
        counts[0:-1:2] = gaps
        counts[1::2] = run_ends - run_starts
        counts[-1] = total - (int(run_ends[-1]) if len(runs) else 0)
        result.append(counts.tolist())
    return result


def annotations(image_id: int, first_id: int, idmap: np.ndarray,
                instances: tuple[Instance, ...]) -> list[dict[str, Any]]:
    """COCO annotation records of one image; ids ``first_id, first_id+1, ...`` in instance order."""
    height, width = idmap.shape
    if not instances:
        return []
    uncompressed = [{"size": [height, width], "counts": c} for c in rle_counts(idmap, len(instances))]
    compressed = mask_utils.frPyObjects(uncompressed, height, width)
    records = []
    for offset, (instance, rle) in enumerate(zip(instances, compressed, strict=True)):
        records.append({
            "id": first_id + offset,
            "image_id": image_id,
            "category_id": instance.category_id,
            "bbox": list(instance.bbox),
            "area": instance.area,
            "iscrowd": 0,
            "segmentation": {"size": [height, width], "counts": rle["counts"].decode("ascii")},
        })
    return records


def idmap_from_annotations(records: list[dict[str, Any]], height: int,
                           width: int) -> tuple[np.ndarray, tuple[Instance, ...]]:
    """Rebuild the id map and instance list of an image from its COCO records (sorted by id)."""
    idmap = np.zeros((height, width), dtype=np.uint16)
    instances = []
    for k, record in enumerate(sorted(records, key=lambda r: r["id"]), start=1):
        rle = {"size": record["segmentation"]["size"],
               "counts": record["segmentation"]["counts"].encode("ascii")}
        idmap[mask_utils.decode(rle).astype(bool)] = k
        x, y, w, h = (int(v) for v in record["bbox"])
        instances.append(Instance(int(record["category_id"]), (x, y, w, h), int(record["area"])))
    return idmap, tuple(instances)
