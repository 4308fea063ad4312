"""`neuro job submit label` publishes a label job's inputs to the data dir's artifact store and names
them by root; `neuro label review` records a person's verdicts and time with the labels."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from chain.job_spec import job_terms
from chain.market_types import Service
from cli.config import Where
from cli.label import apply_fix, label_job_doc, preview, reviewed
from cli.main import app
from cli.output import CliError
from neurod.artifact_store import store_of
from neurod.market.label_check import label_shard
from tests.support.labelling import LabelInputs, classifier_inputs
from worker.artifact import read_manifest
from worker.label_job import LABELS_FILE, delivered_records, parse_label_job


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> LabelInputs:
    return classifier_inputs(tmp_path_factory.mktemp("cnn"), images=12)


def canonical(doc: dict[str, object]) -> bytes:
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def test_images_and_weights_are_published_and_named_by_root(inputs: LabelInputs, tmp_path: Path) -> None:
    where = Where("devnet", tmp_path / "node")
    weights = inputs.weights / "model.safetensors"
    doc = label_job_doc(None, str(inputs.images.parent / "unlabelled"), str(weights), where)
    assert (doc["images_root"], doc["weights_root"], doc["images"]) == (inputs.images_root, inputs.weights_root, 12)
    store = store_of(tmp_path / "node")
    assert store.has(bytes.fromhex(doc["images_root"])) and store.info(bytes.fromhex(doc["weights_root"])).pinned
    parse_label_job(doc)  # the worker runs it
    assert job_terms(Service.LABEL, canonical(doc), 4096).items == 12  # the chain prices it
    # the same inputs named by root, or a local label task's spec, make the same job
    assert label_job_doc(None, doc["images_root"], doc["weights_root"], where) == doc
    local = tmp_path / "label.json"
    local.write_text(json.dumps({"task": "label", "weights": str(weights),  # paths from the spec's folder
                                 "images": str((inputs.images.parent / "unlabelled").relative_to(tmp_path.parent))}))
    local = local.rename(tmp_path.parent / "label.json")
    assert label_job_doc(str(local), None, None, where) == doc
    market = tmp_path / "job.json"
    market.write_text(json.dumps(doc))
    assert label_job_doc(str(market), None, None, where) == doc  # posted as it is


def test_missing_or_wrong_inputs_are_one_line_errors(inputs: LabelInputs, tmp_path: Path) -> None:
    where = Where("devnet", tmp_path / "node")
    with pytest.raises(CliError, match="needs its images and its model"):
        label_job_doc(None, str(inputs.images), None, where)
    with pytest.raises(CliError, match="does not exist"):
        label_job_doc(None, str(tmp_path / "nope"), str(inputs.weights), where)
    with pytest.raises(CliError, match="not images"):
        label_job_doc(None, str(inputs.weights), str(inputs.weights), where)


def test_fixes_and_review_marks() -> None:
    record = {"index": 3, "file_name": "a.png", "label": 1, "probability": 0.6, "probabilities": [0.1, 0.6, 0.3]}
    assert apply_fix("classification", record, "2", 3) == {**record, "label": 2, "probability": 0.3}
    assert apply_fix("classification", record, "7", 3) is None
    boxes = {"image": {"id": 1}, "boxes": [{"bbox": [0, 0, 4, 4], "category_id": 1, "score": 0.9},
                                           {"bbox": [5, 5, 4, 4], "category_id": 1, "score": 0.8}]}
    fixed = apply_fix("detection", boxes, "-0 c1=1", 2)
    assert fixed is not None and fixed["boxes"] == [{"bbox": [5, 5, 4, 4], "category_id": 2, "score": 0.8}]
    assert apply_fix("detection", boxes, "c5=1", 2) is None
    assert reviewed(record, "fixed", 4.26)["review"] == {"by": "person", "verdict": "fixed", "seconds": 4.3}


def test_review_records_a_persons_verdicts_and_reseals(inputs: LabelInputs, tmp_path: Path) -> None:
    out = tmp_path / "shard"
    label_shard(json.dumps(inputs.job), 0, 12, str(out), inputs.folders)
    before = read_manifest(out).root
    images = inputs.images / "images"
    result = CliRunner().invoke(app, ["label", "review", str(out), "--images", str(images), "--count", "3",
                                      "--seed", "1"], input="a\n3\ns\n")
    assert result.exit_code == 0, result.output
    manifest, records = delivered_records(out)  # re-sealed: every label checks against the new manifest
    assert manifest.root != before
    marks = [r["review"] for r in records.values() if "review" in r]
    assert sorted(m["verdict"] for m in marks) == ["accepted", "fixed"]
    assert all(m["by"] == "person" and m["seconds"] >= 0 for m in marks)
    assert [r["label"] for r in records.values() if r.get("review", {}).get("verdict") == "fixed"] == [3]
    assert json.loads((out / LABELS_FILE).read_text())["task"] == "classification"


def test_preview_draws_two_pixels_per_cell(inputs: LabelInputs) -> None:
    image = min((inputs.images / "images").iterdir())
    text = preview(image, [[2, 2, 8, 8]], columns=8)
    assert text.plain.count("▀") == 8 * 4 and text.plain.count("\n") == 4


def test_submit_label_without_inputs_says_what_it_needs(tmp_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(app, ["job", "submit", "label", "--network", "devnet", "--datadir", str(tmp_path)])
    assert result.exit_code != 0 and "--images DIR --model" in result.output and "Traceback" not in result.output
    result = runner.invoke(app, ["job", "submit", "train", "--network", "devnet", "--datadir", str(tmp_path)])
    assert result.exit_code != 0 and "give the train spec" in result.output
