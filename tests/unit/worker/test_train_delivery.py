"""A trained model is bound to its proof: every change to the weights, the claimed metrics or the
log fails `neuro task verify` with a named reason, whether or not the worker re-seals the
artifact manifest afterwards (a dishonest worker would)."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
from typer.testing import CliRunner

from cli.task import task_app
from tests.support.training import (
    TRAIN,
    forge_log,
    reseal,
    reverse_batches,
    rewrite_weights,
)
from worker.runner import run_task
from worker.train.pol import LOG_NAME, read_log
from worker.verify import TrainVerdict, verify_output

BEACON = b"a later block hash"
CHANGED_FILE = {"file-hash", "file-size"}  # the generic check, before the manifest is re-sealed


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("delivery") / "cnn"
    run_task("train", TRAIN, out, timeout_s=240)
    return out


@pytest.fixture
def copy(trained: Path, tmp_path: Path) -> Path:
    target = tmp_path / "cnn"
    shutil.copytree(trained, target)
    return target


def verify(out: Path) -> TrainVerdict:
    verdict = verify_output(out, BEACON, 2)
    assert isinstance(verdict, TrainVerdict)
    return verdict


def nudge(amount: float) -> Callable[[dict[str, torch.Tensor]], None]:
    def change(tensors: dict[str, torch.Tensor]) -> None:
        name = max(tensors)  # a BatchNorm weight: the acceptance script's sorted(t)[-1]
        tensors[name] = tensors[name].clone()
        tensors[name].view(-1)[0] += amount

    return change


def set_claim(key: str, value: Any) -> Callable[[dict[str, str]], None]:
    def change(metadata: dict[str, str]) -> None:
        metrics = json.loads(metadata["metrics"])
        metrics[key] = value
        metadata["metrics"] = json.dumps(metrics, sort_keys=True)

    return change


def test_an_untouched_run_passes_with_the_final_segment_and_claims_recomputed(
        trained: Path) -> None:
    verdict = verify(trained)
    assert verdict.ok, verdict.describe()
    final = read_log(trained / "pol").segments()[-1]
    assert final in verdict.checked and len(verdict.checked) == 3
    assert all(distance == 0.0 for distance in verdict.distances)
    summary = json.loads((trained / "task.json").read_text())
    assert verdict.claims == {k: v for k, v in summary["metrics"].items() if k != "train_seconds"}
    assert set(verdict.claims) == {"steps", "final_loss", "validation_accuracy",
                                   "validation_items"}


@pytest.mark.parametrize("amount", [1e-3, 5.0])
def test_a_changed_weight_fails(copy: Path, amount: float) -> None:
    rewrite_weights(copy, tensors=nudge(amount))
    assert verify(copy).reason in CHANGED_FILE
    reseal(copy)
    assert verify(copy).reason == "weights-not-final-checkpoint"


@pytest.mark.parametrize(("key", "value", "reason"), [
    ("validation_accuracy", 0.99, "metrics-mismatch"),
    ("validation_items", 4000, "metrics-mismatch"),
    ("final_loss", 0.001, "metrics-mismatch"),
    ("steps", 70, "metrics-mismatch"),
    ("accuracy", 0.99, "metrics-unverifiable"),
])
def test_edited_metrics_metadata_fails(copy: Path, key: str, value: Any, reason: str) -> None:
    rewrite_weights(copy, meta=set_claim(key, value))
    assert verify(copy).reason in CHANGED_FILE
    reseal(copy)
    verdict = verify(copy)
    assert verdict.reason == reason and key in verdict.detail


def test_edited_metrics_file_fails(copy: Path) -> None:
    path = copy / "metrics.json"
    document = json.loads(path.read_text())
    path.write_text(json.dumps({**document, "validation_accuracy": 0.99}))
    assert verify(copy).reason in CHANGED_FILE
    reseal(copy)
    verdict = verify(copy)
    assert verdict.reason == "metrics-mismatch" and "metrics.json" in verdict.detail


def drop_last_record(body: dict[str, Any]) -> None:
    body["records"] = body["records"][:-1]


def test_a_dropped_last_record_fails(copy: Path) -> None:
    (copy / "pol" / "ckpt-00000007.safetensors").unlink()
    path = copy / "pol" / LOG_NAME
    body = json.loads(path.read_text())
    drop_last_record(body)
    path.write_text(json.dumps(body))
    reseal(copy)
    assert verify(copy).reason == "weights-log-mismatch"  # the weights name the whole log
    forge_log(copy, lambda body: None)
    verdict = verify(copy)
    assert verdict.reason == "pol-incomplete" and "7" in verdict.detail


def test_a_log_that_stops_early_for_a_shorter_spec_fails(copy: Path) -> None:
    """Claiming the weights of step 6 as the whole run: the spec says 7 steps."""
    (copy / "pol" / "ckpt-00000007.safetensors").unlink()

    def stop_at_6(body: dict[str, Any]) -> None:
        drop_last_record(body)
        body["header"]["total_steps"] = 6

    forge_log(copy, stop_at_6)
    assert verify(copy).reason == "pol-incomplete"


def test_a_dropped_middle_record_fails(copy: Path) -> None:
    forge_log(copy, lambda body: body["records"].pop(2))
    assert verify(copy).reason == "pol-incomplete"


def test_forged_batches_fail_the_replay(copy: Path) -> None:
    forge_log(copy, reverse_batches)
    verdict = verify(copy)
    assert verdict.reason == "pol-batch-order" and verdict.failed is not None


def test_weights_of_another_spec_fail(copy: Path) -> None:
    rewrite_weights(copy, meta=lambda metadata: metadata.update(spec_hash="00" * 32))
    reseal(copy)
    assert verify(copy).reason == "weights-spec-mismatch"


def test_the_cli_rejects_a_weight_changed_as_the_acceptance_script_does(copy: Path) -> None:
    rewrite_weights(copy, tensors=nudge(1e-3))
    result = CliRunner().invoke(task_app, ["verify", str(copy), "--samples", "2"])
    assert result.exit_code != 0 and "file-hash" in result.output + result.stderr
