"""The canonical bytes of a dataset item: what a Merkle leaf commits to and a fraud proof replays.

An item is its raw pixels plus its labels, never an encoded PNG (two PNG encoders may emit
different bytes for the same pixels). For shelf items the labels are the instance-id map (it fixes
every mask exactly) and one ``[category, x, y, w, h, area]`` record per instance, in id order.
Encoding is msgpack of a positional list, which has exactly one byte form for these values.
"""

from __future__ import annotations

from dataclasses import dataclass

import msgpack
import numpy as np

from chain.hashing import hash256
from worker.render.masks import Instance

ITEM_TAG = "neuro-render-item"
ITEM_PERSON = b"neuro-item"


@dataclass(frozen=True, slots=True)
class ItemKey:
    """Where an item comes from: the spec hash, its renderer version, the job seed and the index."""

    spec_digest: bytes
    renderer_version: int
    seed: int
    index: int

    def header(self, kind: str) -> list[object]:
        return [ITEM_TAG, self.renderer_version, kind, self.spec_digest, self.seed, self.index]


def shelf_item_bytes(
    key: ItemKey, image: np.ndarray, idmap: np.ndarray, instances: tuple[Instance, ...]
) -> bytes:
    height, width = idmap.shape
    records = [[inst.category_id, *inst.bbox, inst.area] for inst in instances]
    body = [height, width, _pixels(image, 3), idmap.astype("<u2", copy=False).tobytes(), records]
    return _pack(key.header("shelf") + body)


def digit_item_bytes(key: ItemKey, image: np.ndarray, label: int) -> bytes:
    height, width = image.shape
    return _pack(key.header("digits") + [height, width, _pixels(image, 1), int(label)])


def item_hash(item: bytes) -> bytes:
    """The 32-byte id of an item; the Merkle tree's leaves are these ids."""
    return hash256(item, person=ITEM_PERSON)


def _pixels(image: np.ndarray, channels: int) -> bytes:
    if image.dtype != np.uint8 or image.size != np.prod(image.shape[:2]) * channels:
        raise ValueError(
            f"item pixels must be uint8 with {channels} channel(s), got {image.dtype} {image.shape}"
        )
    return np.ascontiguousarray(image).tobytes()


def _pack(fields: list[object]) -> bytes:
    packed: bytes = msgpack.packb(fields, use_bin_type=True)
    return packed
