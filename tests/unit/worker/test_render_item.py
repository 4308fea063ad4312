"""Item bytes built in pieces: the very bytes and hash that packing the whole list gives."""

from __future__ import annotations

import msgpack
import numpy as np
import pytest

from worker.render.item import (
    ITEM_TAG,
    ItemKey,
    digit_item_bytes,
    digit_item_parts,
    item_hash,
    parts_hash,
    shelf_item_bytes,
    shelf_item_parts,
)
from worker.render.masks import Instance

KEY = ItemKey(bytes(range(32)), 1, 7, 3)


def header(kind: str) -> list[object]:
    return [ITEM_TAG, 1, kind, KEY.spec_digest, 7, 3]


@pytest.mark.parametrize("size", [0, 255, 256, 65535, 65536])  # each side of bin 8/16/32
def test_digit_parts_pack_as_msgpack_does(size: int) -> None:
    image = (np.arange(size) % 251).astype(np.uint8).reshape(1, size)
    expected = msgpack.packb(header("digits") + [1, size, image.tobytes(), 4], use_bin_type=True)
    parts = digit_item_parts(KEY, image, 4)
    assert digit_item_bytes(KEY, image, 4) == b"".join(parts) == expected
    assert parts_hash(parts) == item_hash(expected)


def test_shelf_parts_pack_as_msgpack_does_for_strided_arrays() -> None:
    rng = np.random.default_rng(5)
    image = rng.integers(0, 256, (40, 60, 3), dtype=np.uint8)[::2, ::3]  # not contiguous
    idmap = rng.integers(0, 3, (20, 20), dtype=np.uint16).T
    instances = (Instance(4, (0, 1, 5, 6), 17), Instance(9, (2, 0, 3, 3), 5))
    records = [[4, 0, 1, 5, 6, 17], [9, 2, 0, 3, 3, 5]]
    body = [20, 20, image.tobytes(), idmap.astype("<u2").tobytes(), records]
    expected = msgpack.packb(header("shelf") + body, use_bin_type=True)
    parts = shelf_item_parts(KEY, image, idmap, instances)
    assert shelf_item_bytes(KEY, image, idmap, instances) == b"".join(parts) == expected
    assert parts_hash(parts) == item_hash(expected)
