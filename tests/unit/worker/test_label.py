"""Label Data: pseudo-labels from trained weights over a folder of unlabelled images."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from PIL import Image

from worker.evaluate.metrics import coco_map
from worker.label import LabelError, label_folder
from worker.train.data import DetectionData
from worker.train.loop import train
from worker.train.toydata import TOY_CENTERNET, glyphs, rectangles_coco, toy_spec
from worker.train.weights import meta_for, save_weights


def test_classifier_labels_as_csv_and_json(tmp_path: Path) -> None:
    data = glyphs(300, seed=1)
    spec = toy_spec(steps=60, lr=5e-3)
    weights = tmp_path / "cnn.safetensors"
    save_weights(weights, train(spec, data).model, meta_for(spec))
    unlabelled = glyphs(40, seed=2)
    folder = tmp_path / "in"
    folder.mkdir()
    for i, image in enumerate(unlabelled.images[:, 0]):
        Image.fromarray(image).save(folder / f"{i:03d}.png")
    summary = label_folder(weights, folder, tmp_path / "labels.csv")
    assert (summary["task"], summary["images"]) == ("classification", 40)
    with open(tmp_path / "labels.csv") as handle:
        rows = list(csv.DictReader(handle))
    counts: dict[str, int] = {}
    for row in rows:
        counts[row["label"]] = counts.get(row["label"], 0) + 1
    assert summary["per_class"] == counts
    assert 0.0 < summary["mean_confidence"] <= 1.0
    assert [r["file_name"] for r in rows] == [f"{i:03d}.png" for i in range(40)]
    correct = sum(int(r["label"]) == int(l) for r, l in zip(rows, unlabelled.labels))
    assert correct / 40 > 0.5
    label_folder(weights, folder, tmp_path / "labels.json")
    records = json.loads((tmp_path / "labels.json").read_text())["predictions"]
    assert [r["label"] for r in records] == [int(r["label"]) for r in rows]
    assert all(sum(r["probabilities"]) == pytest.approx(1.0, abs=1e-3) for r in records)


def test_detector_writes_scored_coco_pseudo_labels(tmp_path: Path) -> None:
    rectangles_coco(tmp_path / "train", 16, seed=3)
    spec = toy_spec(TOY_CENTERNET, steps=4, batch_size=8)
    weights = tmp_path / "det.safetensors"
    save_weights(weights, train(spec, DetectionData.from_coco(tmp_path / "train")).model,
                 meta_for(spec))
    folder = tmp_path / "train" / "images"
    summary = label_folder(weights, folder, tmp_path / "pseudo.json", score_threshold=0.05)
    coco = json.loads((tmp_path / "pseudo.json").read_text())
    assert summary["images"] == len(coco["images"]) == 16
    assert summary["boxes"] == len(coco["annotations"])
    assert all(a["score"] >= 0.05 and len(a["bbox"]) == 4 for a in coco["annotations"])
    assert {c["id"] for c in coco["categories"]} == {1, 2}
    as_results = [dict(a) for a in coco["annotations"]]
    assert 0.0 <= coco_map(coco, as_results).map50 <= 1.0  # the file is valid COCO
    strict = label_folder(weights, folder, tmp_path / "strict.json", score_threshold=0.99)
    assert strict["boxes"] <= summary["boxes"]


def test_an_empty_or_missing_folder_is_a_clear_error(tmp_path: Path) -> None:
    spec = toy_spec(steps=1)
    weights = tmp_path / "w.safetensors"
    save_weights(weights, train(spec, glyphs(64)).model, meta_for(spec))
    with pytest.raises(LabelError, match="no images"):
        label_folder(weights, tmp_path, tmp_path / "out.csv")
    with pytest.raises(LabelError, match="does not exist, expected a folder of"):
        label_folder(weights, tmp_path / "nope", tmp_path / "out.csv")
