"""COCO instance annotations of a shelf item.

Masks go out as COCO compressed RLE: `worker.render.masks` reads the run lengths straight off the
id map and pycocotools compresses them, so no per-instance full-size mask is ever built.
"""

from __future__ import annotations

from typing import Any

from pycocotools import mask as mask_utils

from worker.render.catalog import Sku
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
