"""A small trained classifier as a model artifact, and a real set it can be measured on (the
listings tests: a model sold, bought and re-evaluated by its buyer)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from worker.artifact import ItemDraft, write_manifest
from worker.train.loop import train
from worker.train.toydata import glyphs, toy_spec
from worker.train.weights import meta_for, save_weights


def real_folder(folder: Path, count: int, seed: int) -> None:
    """A buyer's real set: ``count`` toy glyphs as PNGs in one folder per class."""
    held = glyphs(count, seed=seed)
    for i, (image, label) in enumerate(zip(held.images[:, 0], held.labels, strict=True)):
        (folder / f"kind{label}").mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.asarray(image)).save(folder / f"kind{label}" / f"{i}.png")


def toy_model(folder: Path) -> str:
    """A toy glyph classifier trained here (a few seconds), as a model artifact in ``folder``; its root."""
    spec = toy_spec(steps=60, lr=5e-3)
    folder.mkdir()
    save_weights(folder / "model.safetensors", train(spec, glyphs(300, seed=9)).model, meta_for(spec))
    return write_manifest(folder, "model", [ItemDraft(0, ("model.safetensors",))], {}).root.hex()
