"""`neuro market buy --evaluate` and bought generators, on a real artifact store: a bought model
is scored on the buyer's own real set by the worker's evaluate task; a generator artifact packs a
spec and gives it back; what is not a model or a generator is refused with its reason."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cli.config import Where
from cli.listings import evaluate_bought, import_generator, print_evaluation, read_generator
from cli.output import CliError
from neurod.artifact_store import store_of
from tests.support.artifacts import random_artifact
from tests.support.toy_models import real_folder, toy_model


def test_a_bought_model_is_scored_on_the_buyers_real_set(tmp_path: Path) -> None:
    root = toy_model(tmp_path / "model")
    where = Where("devnet", tmp_path / "node")
    store_of(where.datadir).put(tmp_path / "model")
    real_folder(tmp_path / "real", 80, seed=10)
    measured = evaluate_bought(where, root, str(tmp_path / "real"))
    assert 0.5 < measured["accuracy"] <= 1.0  # a trained toy classifier, far above chance (0.25)


def test_evaluate_refuses_what_is_not_a_stored_model(tmp_path: Path) -> None:
    where = Where("devnet", tmp_path / "node")
    root = random_artifact(tmp_path / "data", [100])
    with pytest.raises(CliError) as missing:
        evaluate_bought(where, root.hex(), "mnist")
    assert missing.value.reason == "model-missing"
    store_of(where.datadir).put(tmp_path / "data")
    with pytest.raises(CliError) as not_model:
        evaluate_bought(where, root.hex(), "mnist")
    assert not_model.value.reason == "not-a-model"


def test_a_generator_packs_a_spec_and_gives_it_back(tmp_path: Path) -> None:
    where = Where("devnet", tmp_path / "node")
    doc = {"task": "render", "seed": 7, "spec": {"kind": "shelf", "count": 8}}
    (tmp_path / "spec.json").write_text(json.dumps(doc))
    root = import_generator(where, tmp_path / "spec.json")
    assert read_generator(where.datadir, root) == doc
    with pytest.raises(CliError) as refused:
        import_generator(where, tmp_path / "missing.json")
    assert refused.value.reason == "bad-spec-file"
    other = random_artifact(tmp_path / "data", [10])
    with pytest.raises(CliError) as missing:
        read_generator(where.datadir, other.hex())
    assert missing.value.reason == "generator-missing"
    store_of(where.datadir).put(tmp_path / "data")
    with pytest.raises(CliError) as wrong:
        read_generator(where.datadir, other.hex())
    assert wrong.value.reason == "not-a-generator"


def test_the_claim_is_printed_next_to_the_measurement(capsys: pytest.CaptureFixture[str]) -> None:
    print_evaluation({"accuracy": "0.97", "f1": "0.9"}, {"accuracy": 0.81234, "count": 80}, "my-digits")
    out = capsys.readouterr().out
    assert "my-digits" in out
    row = next(line for line in out.splitlines() if "accuracy" in line)
    assert "0.97" in row and "0.8123" in row
    assert any("f1" in line and "0.9" in line for line in out.splitlines())
    assert "count" not in out
