"""What training shows a person (issue 16, finding 12): progress with the epoch and the loss, a loss
curve beside the trained weights (named in the summary, covered by the artifact manifest), a loss
curve and a titled confusion matrix among the evaluation's PNGs, and a label run's summary with
something in its metrics."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from rich.console import Console

from cli.task import _summary_table, stage_line
from tests.support.training import TRAIN
from worker.artifact import verify_files
from worker.evaluate.plots import confusion_title
from worker.runner import run_task


def test_training_progress_evaluation_plots_and_label_summary(tmp_path: Path) -> None:
    events: list[dict[str, Any]] = []
    model = tmp_path / "cnn"
    trained = run_task("train", TRAIN, model, timeout_s=240, on_event=events.append)
    assert trained.summary["plots"] == {"loss_curve": "training_curve.png"}
    with Image.open(model / "training_curve.png") as curve:
        assert curve.format == "PNG" and curve.size[0] > 300
    assert "training_curve.png" in {f.path for f in verify_files(model).files}
    shown = Console(width=400, record=True, file=io.StringIO())
    shown.print(_summary_table(model, trained.summary))
    assert f"loss_curve={model / 'training_curve.png'}" in shown.export_text()
    training = [e for e in events if e.get("stage") == "train"]
    last = training[-1]
    assert last["done"] == last["total"] == 7 and last["loss"] > 0
    assert last["epoch"] == round(7 * 16 / 64, 2)  # 7 steps of 16 over 64 images
    assert stage_line("train", last) == f"train  epoch {last['epoch']:.2f}  loss {last['loss']:.4g}"

    evaluated = run_task("evaluate", {"task": "evaluate", "weights": str(model / "model.safetensors"),
                                      "data": TRAIN["validation"]}, tmp_path / "eval", timeout_s=240)
    for plot in ("training_curve.png", "confusion.png"):
        assert (evaluated.out / plot).stat().st_size > 1000, plot
    assert "accuracy" in evaluated.summary["metrics"]

    images = tmp_path / "images"
    images.mkdir()
    for k in range(3):
        Image.fromarray((np.arange(256).reshape(16, 16) * (k + 1) % 256).astype(np.uint8)).save(images / f"{k}.png")
    labelled = run_task("label", {"task": "label", "weights": str(model / "model.safetensors"),
                                  "images": str(images)}, tmp_path / "labels", timeout_s=240)
    metrics = labelled.summary["metrics"]
    assert sum(metrics["per_class"].values()) == 3 and 0 < metrics["mean_confidence"] <= 1


def test_the_confusion_matrix_is_titled_with_its_accuracy() -> None:
    assert confusion_title(np.array([[3, 1], [0, 4]])) == "confusion matrix: accuracy 87.5% of 8 images"
