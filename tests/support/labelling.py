"""Label jobs' inputs, built for real: a small trained classifier or detector packed as a model
artifact, unlabelled images packed as an images artifact, and the job spec naming both."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image

from worker.label_job import model_spec_of, pack_images, pack_weights
from worker.train.data import DetectionData
from worker.train.loop import train
from worker.train.toydata import TOY_CENTERNET, glyphs, rectangles_coco, toy_spec
from worker.train.weights import meta_for, save_weights


@dataclass(frozen=True)
class LabelInputs:
    images: Path  # the images artifact folder
    weights: Path  # the model artifact folder
    images_root: str
    weights_root: str
    job: dict[str, Any]  # the label job's spec

    @property
    def folders(self) -> dict[str, str]:
        """root -> folder, as `neurod.market.inputs.local_inputs` hands them to a child."""
        return {self.images_root: str(self.images), self.weights_root: str(self.weights)}


def _pack(root: Path, weights: Path, pictures: Path, min_score_pct: int) -> LabelInputs:
    images = pack_images(pictures, root / "images-artifact")
    model = pack_weights(weights, root / "model-artifact")
    job = {"task": "label", "images": len(images.items), "model": model_spec_of(weights),
           "images_root": images.root.hex(), "weights_root": model.root.hex(), "min_score_pct": min_score_pct}
    return LabelInputs(root / "images-artifact", root / "model-artifact", images.root.hex(), model.root.hex(), job)


def classifier_inputs(root: Path, images: int = 40, seed: int = 2, steps: int = 60, model_seed: int = 0) -> LabelInputs:
    """A 4-class toy CNN trained briefly on glyphs, and ``images`` unlabelled glyphs."""
    spec = toy_spec(steps=steps, lr=5e-3, seed=model_seed)
    weights = root / "cnn.safetensors"
    save_weights(weights, train(spec, glyphs(300, seed=1)).model, meta_for(spec))
    pictures = root / "unlabelled"
    pictures.mkdir(parents=True)
    for i, image in enumerate(glyphs(images, seed=seed).images[:, 0]):
        Image.fromarray(image).save(pictures / f"{i:04d}.png")
    return _pack(root, weights, pictures, 30)


def detector_inputs(root: Path, images: int = 16, seed: int = 3, min_score_pct: int = 5,
                    steps: int = 4, model_seed: int = 0) -> LabelInputs:
    """The toy CenterNet trained ``steps`` steps on rectangles, and ``images`` rectangle images (a
    low score cut-off keeps boxes in the output of so short a training)."""
    rectangles_coco(root / "train", 16, seed=seed)
    spec = toy_spec(TOY_CENTERNET, steps=steps, batch_size=8, seed=model_seed)
    weights = root / "det.safetensors"
    save_weights(weights, train(spec, DetectionData.from_coco(root / "train")).model, meta_for(spec))
    rectangles_coco(root / "unlabelled", images, seed=seed + 1)
    return _pack(root, weights, root / "unlabelled" / "images", min_score_pct)
