"""Render throughput: labeled 256x256 shelf images per second on one core, PNG and COCO included.

Reference, measured in the same run on the same scenes:
  minimal   paste the same sprites with plain numpy boolean indexing, PNG-encode; no id map,
            no lighting/blur/noise, no labels (the brief's "plain numpy compositor")
  same-px   the minimal reference plus the same lighting/blur/noise, so it writes the very
            PNGs the renderer writes; the ratio to it is the cost of labels, hashes and manifest
The renderer's figure includes planning the scene from the RNG, the id map, masks as COCO RLE,
item hashing, the Merkle root and all files. Also reports digits/s (28x28, in memory).

    .venv/bin/python bench/render.py [--quick]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from worker.render.digits import DigitsSpec, render_digits  # noqa: E402
from worker.render.ops import NumpyCompositor  # noqa: E402
from worker.render.rng import ItemRng  # noqa: E402
from worker.render.png import encode_png, write_png  # noqa: E402
from worker.render.shard import render_shard  # noqa: E402
from worker.render.shelf import photometric, plan_scene, shelf_plan  # noqa: E402
from worker.render.shelf_scene import Paste  # noqa: E402
from worker.render.shelf_spec import ShelfSpec  # noqa: E402

SEED = 11


class Recorder(NumpyCompositor):
    """The numpy backend, noting each photometric call so the reference can replay it."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []

    def light(self, image: np.ndarray, gain_q8: np.ndarray, offset: int) -> np.ndarray:
        self.calls.append(("light", (gain_q8, offset)))
        return super().light(image, gain_q8, offset)

    def blur(self, image: np.ndarray, radius: int) -> np.ndarray:
        self.calls.append(("blur", radius))
        return super().blur(image, radius)

    def add_noise(self, image: np.ndarray, noise: np.ndarray) -> np.ndarray:
        self.calls.append(("noise", noise))
        return super().add_noise(image, noise)


def scenes(spec: ShelfSpec, count: int) -> list[tuple[np.ndarray, list[Paste], list[tuple[str, Any]]]]:
    """The renderer's own scenes (untimed): background, pastes, photometric calls."""
    plan = shelf_plan(spec)
    result = []
    for index in range(count):
        rng = ItemRng.for_item(plan.digest, SEED, index)
        background, pastes = plan_scene(plan, rng)
        recorder = Recorder()
        photometric(recorder, rng, background.copy(), spec)
        result.append((background, pastes, recorder.calls))
    return result


def reference(work: list[tuple[np.ndarray, list[Paste], list[tuple[str, Any]]]], out: Path,
              effects: bool) -> float:
    """Plain numpy paste (+ optional replayed effects) and PNG files; returns seconds."""
    ops = NumpyCompositor()
    out.mkdir()
    began = time.perf_counter()
    for number, (background, pastes, calls) in enumerate(work):
        image = background.copy()
        height, width = image.shape[:2]
        for p in pastes:
            y0, x0 = max(p.top, 0), max(p.left, 0)
            y1, x1 = min(p.top + p.mask.shape[0], height), min(p.left + p.mask.shape[1], width)
            if y0 < y1 and x0 < x1:
                m = p.mask[y0 - p.top : y1 - p.top, x0 - p.left : x1 - p.left]
                image[y0:y1, x0:x1][m] = p.rgb[y0 - p.top : y1 - p.top, x0 - p.left : x1 - p.left][m]
        for name, argument in calls if effects else []:
            if name == "light":
                image = ops.light(image, *argument)
            elif name == "blur":
                image = ops.blur(image, argument)
            else:
                image = ops.add_noise(image, argument)
        write_png(out / f"{number:08d}.png", image)
    return time.perf_counter() - began


def renderer(spec: ShelfSpec, count: int, out: Path) -> float:
    began = time.perf_counter()
    render_shard(spec, SEED, 0, count, out)
    return time.perf_counter() - began


def same_pixels(ours: Path, theirs: Path, count: int) -> bool:
    return all(
        np.array_equal(np.asarray(Image.open(ours / "images" / f"{i:08d}.png")),
                       np.asarray(Image.open(theirs / f"{i:08d}.png")))
        for i in range(0, count, max(1, count // 10))
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer images and one round")
    args = parser.parse_args()
    count, rounds = (100, 1) if args.quick else (300, 3)
    spec = ShelfSpec(width=256, height=256, count=count)
    render_shard(spec, SEED, 0, min(20, count), Path(tempfile.mkdtemp()) / "warm")  # fill caches
    work = scenes(spec, count)
    ours, minimal, same = [], [], []
    root = Path(tempfile.mkdtemp(prefix="bench-render-"))
    try:
        for r in range(rounds):  # interleaved rounds: machine drift hits all three alike
            ours.append(renderer(spec, count, root / f"ours-{r}"))
            minimal.append(reference(work, root / f"minimal-{r}", effects=False))
            same.append(reference(work, root / f"same-{r}", effects=True))
        identical = same_pixels(root / "ours-0", root / "same-0", count)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    rate, rate_min, rate_same = (count / min(t) for t in (ours, minimal, same))
    mean_png = _mean_png_kib(spec)
    print(f"shelf 256x256, {count} images x {rounds} rounds, 1 process (best round)")
    print(f"  renderer (labels+COCO+hash+PNG): {rate:7.1f} img/s/core   (goal >= 300)")
    print(f"  reference minimal (paste+PNG):   {rate_min:7.1f} img/s/core   ratio {rate / rate_min:.2f}"
          "   (goal >= 0.9)")
    print(f"  reference same pixels (+effects):{rate_same:7.1f} img/s/core   ratio "
          f"{rate / rate_same:.2f}   identical PNG pixels: {identical}")
    print(f"  mean PNG size: {mean_png:.1f} KiB")
    digits = DigitsSpec(count=100_000)
    render_digits(digits, 0, 0, 50)
    began = time.perf_counter()
    render_digits(digits, 0, 0, 2000)
    digit_rate = 2000 / (time.perf_counter() - began)
    print(f"digits 28x28 in memory: {digit_rate:7.0f} digits/s/core")


def _mean_png_kib(spec: ShelfSpec) -> float:
    from worker.render.shelf import render_shelf

    sizes = [len(encode_png(render_shelf(spec, SEED, index).image)) for index in range(10)]
    return sum(sizes) / len(sizes) / 1024


if __name__ == "__main__":
    main()
