"""Item bytes are consensus: identical across processes and backends, distinct across items."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from chain.hashing import hash256
from worker.render.dataset import render_item, reproduce_item
from worker.render.digit_glyphs import cos_q14, sin_q14
from worker.render.digits import DigitsSpec
from worker.render.item import item_hash
from worker.render.ops import NumpyCompositor, TorchCompositor
from worker.render.rng import ItemRng
from worker.render.shelf_spec import PhotometricSpec, ShelfSpec

ROOT = Path(__file__).resolve().parents[3]
# every photometric effect on, so the torch ops are all exercised
SHELF = ShelfSpec(
    width=96,
    height=80,
    count=20,
    photometric=PhotometricSpec(blur_pct=100, noise_pct=100, blur_radius=(1, 3)),
)
DIGITS = DigitsSpec(count=20, blur_pct=50, noise_pct=50, invert_pct=20, clutter_strokes=(0, 2))
DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])

CHILD = """
import sys
from worker.render.dataset import load_render_spec, reproduce_item
from worker.render.item import item_hash
spec = load_render_spec(sys.argv[1])
print(",".join(item_hash(reproduce_item(spec, 7, i)).hex() for i in range(4)))
"""


@pytest.mark.parametrize("spec", [SHELF, DIGITS], ids=["shelf", "digits"])
def test_same_item_same_bytes_in_another_process(
    spec: ShelfSpec | DigitsSpec, tmp_path: Path
) -> None:
    path = tmp_path / "spec.json"
    path.write_bytes(spec.canonical_json())
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    here = ",".join(item_hash(reproduce_item(spec, 7, i)).hex() for i in range(4))
    assert done.stdout.strip() == here


@pytest.mark.parametrize("spec", [SHELF, DIGITS], ids=["shelf", "digits"])
def test_other_index_seed_or_spec_gives_other_bytes(spec: ShelfSpec | DigitsSpec) -> None:
    hashes = {item_hash(reproduce_item(spec, 7, i)) for i in range(6)}
    hashes.add(item_hash(reproduce_item(spec, 8, 0)))
    hashes.add(item_hash(reproduce_item(spec.model_copy(update={"count": 21}), 7, 0)))
    assert len(hashes) == 8
    assert reproduce_item(spec, 7, 3) == reproduce_item(spec, 7, 3)


@pytest.mark.parametrize("device", DEVICES)
def test_torch_backend_renders_the_same_bytes(device: str) -> None:
    for index in range(6):
        reference = render_item(SHELF, 3, index)
        other = render_item(SHELF, 3, index, backend="torch", device=device)
        assert other.item_bytes == reference.item_bytes


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("radius", [1, 2, 5])
def test_torch_ops_match_numpy_ops(device: str, radius: int) -> None:
    rng = np.random.default_rng(radius)
    image = rng.integers(0, 256, (37, 29, 3), dtype=np.uint8)
    noise = rng.integers(-40, 41, image.shape).astype(np.int16)
    gain = rng.integers(0, 700, 29).astype(np.int32)
    numpy_ops, torch_ops = NumpyCompositor(), TorchCompositor(device)
    tensor, _ = torch_ops.canvas(image, np.zeros(image.shape[:2], dtype=np.uint16))
    assert np.array_equal(
        torch_ops.to_numpy(torch_ops.blur(tensor, radius)), numpy_ops.blur(image, radius)
    )
    assert np.array_equal(
        torch_ops.to_numpy(torch_ops.add_noise(tensor, noise)), numpy_ops.add_noise(image, noise)
    )
    assert np.array_equal(
        torch_ops.to_numpy(torch_ops.light(tensor, gain, -radius * 9)),
        numpy_ops.light(image, gain, -radius * 9),
    )


@pytest.mark.parametrize(
    ("radius", "shape", "fill"),
    [(1, (9, 11, 3), None), (2, (9, 11, 3), None), (7, (20, 5, 3), 255), (8, (3, 40, 3), 255),
     (8, (12, 13, 3), None)],
)
def test_blur_is_the_rounded_mean_of_the_edge_padded_window(
    radius: int, shape: tuple[int, int, int], fill: int | None
) -> None:
    """Against the definition, down to windows wider than the image and all-255 (largest) sums."""
    image = np.random.default_rng(radius).integers(0, 256, shape, dtype=np.uint8)
    if fill is not None:
        image[:] = fill
    r, side = radius, 2 * radius + 1
    padded = np.pad(image.astype(np.int64), ((r, r), (r, r), (0, 0)), mode="edge")
    expected = np.zeros(image.shape, dtype=np.int64)
    for dy in range(side):
        for dx in range(side):
            expected += padded[dy : dy + shape[0], dx : dx + shape[1]]
    area = side * side
    assert np.array_equal(NumpyCompositor().blur(image, radius), (expected + area // 2) // area)


def test_rng_stream_does_not_depend_on_how_it_is_read() -> None:
    digest = bytes(32)
    single = ItemRng.for_item(digest, 1, 2)
    mixed = [single.draw(0, 999) for _ in range(70)] + single.raw(5).tolist() + [single.draw(0, 9)]
    words = ItemRng.for_item(digest, 1, 2).raw(76).tolist()
    assert mixed[:70] == [w % 1000 for w in words[:70]]
    assert mixed[70:75] == words[70:75]
    assert mixed[75] == words[75] % 10


def test_integer_sine_table_is_exact_to_the_rounding() -> None:
    assert sin_q14(0) == 0 and sin_q14(90) == 1 << 14 and sin_q14(-90) == -(1 << 14)
    assert cos_q14(0) == 1 << 14 and sin_q14(30) == 8192 and sin_q14(390) == 8192
    assert sin_q14(45) == 11585  # round(2**14 / sqrt 2)


# What renderer_version 1 renders is consensus, and so is how an item's id is computed: these
# may only change together with a new renderer_version (the pixels and labels) or a new artifact
# format (the ids), since validators on every machine must reproduce them bit for bit.
PINNED = {
    "shelf": (
        "837ee0626d9826e96adc7ba1f01d2b2ba162e739646884b94431465b4d2adda6",
        # the item's bytes under blake2b-256 (format /1's id): its pixels and labels unchanged
        "4bf8ad113860d873cec17a3f73e7edd622f961b15adac549198d699d0d0bd3bb",
        "ff26a4e44a016591257950ca65bca5986cd2494ae7535803927c5727fa9b8b92",  # format /2: BLAKE3
    ),
    "digits": (
        "7ef0a9c9446ea36e719888e8549ae14de7057ee796385ee092fe58e58ed37c5f",
        "ddbbc64922c4b1f27dca72c5c9a41714dcbf23a49a69dba324fa89535e5fd1df",
        "3d15f812efef94518850b7c37fcd8806bac085c6c9ea08dc7ad9fa6f2414f92d",
    ),
    # digits renderer_version 2 (smoothed strokes, extra glyphs); version 1 above is unchanged
    "digits-v2": (
        "7b9d69a68845f47231ac1a73b727e22b42def97cfe61693cd2293c2686acef47",
        "d1c673e6c75347e9495f5773a55a2a3671a728971861749f47b41a99402d6e22",
        "ed68ec1d0aa22e2ba6b490cd08eb6ec64f5193d1352a2fa8d8b3347581203e84",
    ),
}


@pytest.mark.parametrize(
    ("name", "spec"),
    [("shelf", ShelfSpec()), ("digits", DigitsSpec(renderer_version=1)),
     ("digits-v2", DigitsSpec())],
    ids=["shelf", "digits", "digits-v2"],
)
def test_renderer_output_is_pinned(name: str, spec: ShelfSpec | DigitsSpec) -> None:
    spec_hash, item_bytes_hash, item_id = PINNED[name]
    item = reproduce_item(spec, 0, 0)
    assert spec.spec_hash().hex() == spec_hash
    assert hash256(item, person=b"neuro-item").hex() == item_bytes_hash
    assert item_hash(item).hex() == item_id
