"""Paths in a spec file are relative to the spec file, not to the current directory
(issue 16, finding 11)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from worker.runner import load_spec_file

EXAMPLES = Path(__file__).resolve().parents[3] / "worker" / "examples"


def test_paths_resolve_against_the_spec_files_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    specs = tmp_path / "specs"
    specs.mkdir()
    spec = specs / "label.json"
    spec.write_text(json.dumps({
        "task": "evaluate", "weights": "model.safetensors", "images": "/abs/images",
        "data": {"source": "folder", "path": "../data"}, "validation": {"source": "digits"},
    }))
    monkeypatch.chdir(tmp_path)
    doc = load_spec_file(Path("specs/label.json"))
    assert doc["weights"] == str(specs / "model.safetensors")
    assert doc["images"] == "/abs/images"
    assert doc["data"] == {"source": "folder", "path": str(tmp_path / "data")}
    assert doc["validation"] == {"source": "digits"}


def test_the_label_example_reads_the_same_files_from_any_directory(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    at_root = load_spec_file(EXAMPLES / "label.json")
    monkeypatch.chdir(tmp_path)
    elsewhere = load_spec_file(Path(os.path.relpath(EXAMPLES / "label.json", tmp_path)))
    assert at_root == elsewhere
    assert at_root["weights"] == str(EXAMPLES.parents[1] / "runs" / "cnn" / "model.safetensors")
