"""safetensors weights: exact round trip with metadata; corrupt and mismatched files rejected."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from worker.errors import WorkerError
from worker.train.spec import CnnSpec
from worker.train.state import model_tensors
from worker.train.toydata import toy_spec
from worker.train.weights import WeightsMeta, load_weights, meta_for, read_meta, save_weights
from worker.train.zoo import build_model


@pytest.fixture
def saved(tmp_path: Path) -> tuple[Path, torch.nn.Module]:
    spec = toy_spec()
    torch.manual_seed(0)
    model = build_model(spec.model)
    model.features[0][1].running_mean.add_(0.5)  # buffers travel too, not just parameters
    path = tmp_path / "model.safetensors"
    save_weights(path, model, meta_for(spec, {"accuracy": 0.75}, bytes(range(32))))
    return path, model


def test_round_trip_keeps_every_tensor_and_the_metadata(saved: tuple[Path, torch.nn.Module]) -> None:
    path, model = saved
    loaded, meta = load_weights(path)
    before, after = model_tensors(model), model_tensors(loaded)
    assert sorted(before) == sorted(after)
    assert all(torch.equal(before[k], after[k]) for k in before)
    spec = toy_spec()
    assert meta.model == spec.model
    assert meta.spec_hash == spec.spec_hash().hex()
    assert meta.metrics == {"accuracy": 0.75}
    assert meta.pol_log_hash == bytes(range(32)).hex()
    assert meta.train_spec == spec.model_dump(mode="json")
    assert read_meta(path) == meta
    raw = path.read_bytes()  # safetensors: u64 header length, JSON header, raw tensor bytes
    header = json.loads(raw[8:8 + int.from_bytes(raw[:8], "little")])
    assert header["__metadata__"]["format"] == "neuro-weights/1"


def test_truncated_or_garbage_file_is_a_clear_error(saved: tuple[Path, torch.nn.Module],
                                                    tmp_path: Path) -> None:
    path, _ = saved
    truncated = tmp_path / "truncated.safetensors"
    truncated.write_bytes(path.read_bytes()[:200])
    garbage = tmp_path / "garbage.safetensors"
    garbage.write_bytes(b"\x80\x04not a tensor file at all")
    for bad in (truncated, garbage, tmp_path / "missing.safetensors"):
        with pytest.raises(WorkerError) as caught:
            load_weights(bad)
        assert caught.value.reason == "bad-weights"


def test_tensors_that_do_not_fit_the_architecture_are_rejected(tmp_path: Path) -> None:
    meta = WeightsMeta(model=CnnSpec(image_size=16, num_classes=4, width=8, depth=2))
    good = model_tensors(build_model(meta.model))
    wrong_shape = dict(good, **{"classifier.weight": torch.zeros(5, 16)})
    missing = {k: v for k, v in good.items() if k != "classifier.bias"}
    extra = dict(good, backdoor=torch.zeros(1))
    for i, tensors in enumerate((wrong_shape, missing, extra)):
        path = tmp_path / f"bad{i}.safetensors"
        save_file(tensors, str(path), metadata=meta.to_strings())
        with pytest.raises(WorkerError) as caught:
            load_weights(path)
        assert caught.value.reason == "weights-mismatch"


def test_a_file_without_our_metadata_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "foreign.safetensors"
    save_file({"w": torch.zeros(2)}, str(path), metadata={"format": "pt"})
    with pytest.raises(WorkerError, match="not a neuro-weights/1 file"):
        load_weights(path)
    meta = WeightsMeta(model=CnnSpec()).to_strings()
    meta["model"] = '{"name": "transformer"}'
    save_file({"w": torch.zeros(2)}, str(path), metadata=meta)
    with pytest.raises(WorkerError, match="bad weights metadata"):
        load_weights(path)
