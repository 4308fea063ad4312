"""Task files are strict: no value is coerced, every error names its full path from the top of
the file, and a path that names the wrong kind of file says what was expected."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors.torch import save_file

from worker.errors import SpecError, WorkerError
from worker.label import image_files
from worker.runner import run_task
from worker.tasks import parse_task
from worker.tasks.envelope import RenderTask, TrainTask
from worker.train.weights import load_weights, read_meta

MODEL = {"name": "cnn", "image_size": 16, "width": 4, "depth": 1}


def render(**spec: Any) -> dict[str, Any]:
    return {"task": "render", "spec": {"kind": "digits", **spec}}


def train(train: dict[str, Any] | None = None, **data: Any) -> dict[str, Any]:
    return {"task": "train", "train": {"model": MODEL, "steps": 3, **(train or {})},
            "data": {"source": "digits", **data}}


@pytest.mark.parametrize(("task", "message"), [
    (render(count="20"), 'spec.count: must be an integer, got "20"'),
    (render(count=True), "spec.count: must be an integer, got true"),
    (render(count=20.0), "spec.count: must be an integer, got 20.0"),
    (render(colour=1), "spec.colour: unknown field"),
    ({"task": "render", "spec": {"kind": "shelf", "background": {"colour": [1, 2]}}},
     "spec.background.colour: unknown field"),
    ({"task": "render", "spec": {"kind": "shelf", "photometric": {"blur_pct": True}}},
     "spec.photometric.blur_pct: must be an integer, got true"),
    ({"task": "render", "spec": {"kind": "video"}},
     "spec.kind: must be 'shelf' or 'digits', got \"video\""),
    ({"task": "render", "spec": {"count": 3}}, "spec.kind: required field is missing"),
    ({**render(), "seed": "1"}, 'seed: must be an integer, got "1"'),
    ({**render(), "stop": True}, "stop: must be an integer, got true"),
    (train({"lr": True}), "train.lr: must be a number, got true"),
    (train({"model": {**MODEL, "width": "8"}}), 'train.model.width: must be an integer, got "8"'),
    (train({"model": {**MODEL, "colour": 1}}), "train.model.colour: unknown field"),
    (train({"model": {"name": "vit"}}), "train.model.name: must be 'cnn' or 'centernet'"),
    (train(spec={"count": "64"}), 'data.spec.count: must be an integer, got "64"'),
    (train(spec={"colour": 1}), "data.spec.colour: unknown field"),
    (train(seed=False), "data.seed: must be an integer, got false"),
    ({**train(), "validation": {"source": "mnist-real", "split": "all"}},
     "validation.split: must be 'tuning' or 'heldout'"),
    ({**train(), "data": {"source": "pictures"}}, "data.source: must be 'digits' or"),
    ({"task": "label", "weights": "m.safetensors", "images": "in", "min_score_pct": "30"},
     'min_score_pct: must be an integer, got "30"'),
    ({"task": "paint"}, "task: must be 'render' or 'train' or 'evaluate' or 'label'"),
])
def test_bad_task_files_name_the_full_path(task: dict[str, Any], message: str) -> None:
    with pytest.raises(SpecError) as info:
        parse_task(task)
    assert message in str(info.value), str(info.value)
    assert info.value.reason == "bad-spec" and "\n" not in str(info.value)


def test_good_task_files_keep_their_specs_as_written() -> None:
    parsed = parse_task(render(count=20, rotation_deg=[-5, 5]))
    assert isinstance(parsed, RenderTask) and parsed.spec == {"kind": "digits", "count": 20,
                                                             "rotation_deg": [-5, 5]}
    trained = parse_task({**train(spec={"count": 64}), "validation": {"source": "mnist-real"}})
    assert isinstance(trained, TrainTask) and trained.train["model"] == MODEL


def test_a_weights_path_says_what_was_expected(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.safetensors"
    garbage.write_bytes(b"\x80\x04not a tensor file at all")
    save_file({"w": torch.zeros(2)}, str(tmp_path / "foreign.safetensors"))
    cases = [
        (tmp_path, f"weights: {tmp_path} is a directory, expected a .safetensors weights file"),
        (tmp_path / "missing.safetensors", "does not exist, expected a .safetensors weights file"),
        (garbage, f"weights: {garbage} is not a safetensors file"),
        (tmp_path / "foreign.safetensors", "not a neuro-weights/1 file"),
    ]
    for path, message in cases:
        for read in (read_meta, load_weights):
            with pytest.raises(WorkerError) as info:
                read(path)
            assert message in str(info.value) and info.value.reason == "bad-weights"
            assert "os error" not in str(info.value)


def test_an_images_path_says_what_was_expected(tmp_path: Path) -> None:
    a_file, empty = tmp_path / "one.png", tmp_path / "empty"
    a_file.write_bytes(b"")
    empty.mkdir()
    for path, message in [(a_file, "is a file, expected a folder of"),
                          (tmp_path / "missing", "does not exist, expected a folder of"),
                          (empty, "no images in")]:
        with pytest.raises(WorkerError, match=message):
            image_files(path)


def test_an_evaluate_task_with_a_folder_for_weights_fails_in_one_line(tmp_path: Path) -> None:
    task = {"task": "evaluate", "weights": str(tmp_path),
            "data": {"source": "digits", "spec": {"count": 16, "size": 16}}}
    with pytest.raises(WorkerError) as info:
        run_task("evaluate", task, tmp_path / "out", timeout_s=120)
    assert info.value.reason == "bad-weights"
    assert f"weights: {tmp_path} is a directory, expected a .safetensors weights file" in str(
        info.value)
