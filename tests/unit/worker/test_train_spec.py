"""Train specs: strict parsing, range caps, zoo names; FLOPs arithmetic agrees with the zoo."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from torch import nn

from worker.errors import SpecError
from worker.train.flops import BACKWARD_FACTOR, forward_flops, training_flops
from worker.train.spec import CenterNetSpec, CnnSpec, load_model_spec, load_train_spec
from worker.train.zoo import build_model, input_shape

GOOD: dict[str, Any] = {"model": {"name": "cnn"}, "steps": 10}


def with_(**changes: Any) -> dict[str, Any]:
    return {**GOOD, **changes}


@pytest.mark.parametrize("raw, where", [
    (with_(colour="red"), "colour: unknown field"),
    (with_(model={"name": "resnet50"}), "model"),
    (with_(model={"name": "resnet50"}), "model.name: must be 'cnn' or 'centernet', got \"resnet50\""),
    (with_(model={"width": 16}), "model.name: required field is missing"),
    (with_(model={"name": "cnn", "width": 10_000}), "model.width: must be <= 256"),
    (with_(model={"name": "cnn", "image_size": 4096}), "model.image_size"),
    (with_(model={"name": "cnn", "width": "16"}), "model.width: must be an integer, got \"16\""),
    (with_(model={"name": "cnn", "in_channels": True}), "model.in_channels: must be an integer"),
    (with_(steps=True), "steps: must be an integer, got true"),
    (with_(steps=10.0), "steps: must be an integer, got 10.0"),
    (with_(lr="0.1"), "lr: must be a number"),
    (with_(lr=False), "lr: must be a number, got false"),
    (with_(augment={"hflip": 1}), "augment.hflip: must be true or false, got 1"),
    (with_(augment={"shift": 1, "colour": 2}), "augment.colour: unknown field"),
    (with_(model={"name": "centernet", "image_size": 100}), "multiple of 32"),
    (with_(steps=10**9), "steps: must be <="),
    (with_(batch_size=0), "batch_size: must be >= 1"),
    (with_(lr=-1.0), "lr: must be > 0"),
    (with_(optimizer="lbfgs"), "optimizer"),
    (with_(epochs=2), "exactly one of steps or epochs"),
    (with_(augment={"shift": 99}), "augment.shift"),
])
def test_bad_specs_are_rejected_with_one_line(raw: dict[str, Any], where: str) -> None:
    with pytest.raises(SpecError) as caught:
        load_train_spec(raw)
    assert where in str(caught.value)
    assert "\n" not in str(caught.value)
    assert caught.value.reason == "bad-spec"


def test_spec_hash_is_canonical_and_sensitive() -> None:
    a = load_train_spec({"steps": 10, "model": {"name": "cnn"}})
    b = load_train_spec({"model": {"width": 16, "name": "cnn"}, "steps": 10})
    assert a.spec_hash() == b.spec_hash()
    assert a.spec_hash() != load_train_spec(with_(seed=1)).spec_hash()


def test_epochs_count_full_batches_only() -> None:
    spec = load_train_spec({"model": {"name": "cnn"}, "epochs": 3, "batch_size": 32})
    assert spec.total_steps(100) == 9
    with pytest.raises(SpecError):
        spec.total_steps(10)


def test_model_spec_from_metadata_rejects_unknown_names() -> None:
    assert isinstance(load_model_spec('{"name": "centernet"}'), CenterNetSpec)
    with pytest.raises(SpecError, match="unknown model"):
        load_model_spec('{"name": "vit"}')


def measured_flops(spec: CnnSpec | CenterNetSpec) -> int:
    """Count conv/linear FLOPs of a real forward pass with hooks (2 per multiply-add)."""
    model = build_model(spec).eval()
    total = 0

    def hook(module: nn.Module, inputs: Any, output: torch.Tensor) -> None:
        nonlocal total
        if isinstance(module, nn.Conv2d):
            k = module.kernel_size[0] * module.kernel_size[1]
            total += 2 * module.in_channels * module.out_channels * k * output.shape[2] * output.shape[3]
        else:
            total += 2 * module.in_features * module.out_features

    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            m.register_forward_hook(hook)
    with torch.no_grad():
        model(torch.zeros(1, *input_shape(spec)))
    return total


@pytest.mark.parametrize("spec", [
    CnnSpec(), CnnSpec(in_channels=3, image_size=64, width=12, depth=5, num_classes=7),
    CnnSpec(image_size=8, depth=6), CenterNetSpec(), CenterNetSpec(image_size=96, width=8, num_classes=5),
])
def test_analytic_flops_match_the_built_model(spec: CnnSpec | CenterNetSpec) -> None:
    assert forward_flops(spec) == measured_flops(spec)


def test_training_flops_are_three_forwards_per_image() -> None:
    spec = load_train_spec(with_(batch_size=8, steps=5))
    assert training_flops(spec, 100) == BACKWARD_FACTOR * forward_flops(spec.model) * 8 * 5
