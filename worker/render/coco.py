"""COCO instance annotations of a shelf item, and back.

Masks go out as COCO compressed RLE: `worker.render.masks` reads the run lengths straight off the
id map and pycocotools compresses them, so no per-instance full-size mask is ever built.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from pycocotools import mask as mask_utils

from worker.render.catalog import Sku
from worker.render.masks import Instance
from worker.render.shelf import ShelfItem


def categories(catalog: tuple[Sku, ...]) -> list[dict[str, Any]]:
    """One COCO category per SKU; the supercategory is the package shape."""
    return [
        {"id": sku.category_id, "name": f"sku-{sku.category_id:04d}", "supercategory": sku.shape}
        for sku in catalog
    ]


def image_annotations(image_id: int, first_id: int, item: ShelfItem) -> list[dict[str, Any]]:
    """COCO annotation records of one image; ids ``first_id, first_id+1, ...`` in instance order."""
    height, width = item.idmap.shape
    if not item.instances:
        return []
    uncompressed = [{"size": [height, width], "counts": c} for c in item.rle_counts]
    compressed = mask_utils.frPyObjects(uncompressed, height, width)
    records = []
    for offset, (instance, rle) in enumerate(zip(item.instances, compressed, strict=True)):
        records.append(
            {
                "id": first_id + offset,
                "image_id": image_id,
                "category_id": instance.category_id,
                "bbox": list(instance.bbox),
                "area": instance.area,
                "iscrowd": 0,
                "segmentation": {"size": [height, width], "counts": rle["counts"].decode("ascii")},
            }
        )
    return records


def idmap_from_annotations(
    records: list[dict[str, Any]], height: int, width: int
) -> tuple[np.ndarray, tuple[Instance, ...]]:
    """Rebuild the id map and instance list of an image from its COCO records (sorted by id)."""
    idmap = np.zeros((height, width), dtype=np.uint16)
    instances = []
    for k, record in enumerate(sorted(records, key=lambda r: r["id"]), start=1):
        rle = {
            "size": record["segmentation"]["size"],
            "counts": record["segmentation"]["counts"].encode("ascii"),
        }
        idmap[mask_utils.decode(rle).astype(bool)] = k
        x, y, w, h = (int(v) for v in record["bbox"])
        instances.append(Instance(int(record["category_id"]), (x, y, w, h), int(record["area"])))
    return idmap, tuple(instances)
