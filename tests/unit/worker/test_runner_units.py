"""The chain's compute-unit arithmetic agrees with the train package's analytic FLOPs."""

from __future__ import annotations

import pytest

from worker.tasks import estimate_units
from worker.tasks.units import forward_flops_of
from worker.train.flops import forward_flops
from worker.train.spec import CenterNetSpec, CnnSpec


@pytest.mark.parametrize(
    "model",
    [CnnSpec(), CnnSpec(image_size=64, in_channels=3, width=32, depth=6, num_classes=100),
     CenterNetSpec(), CenterNetSpec(image_size=512, width=32, head_width=64, num_classes=20)],
)
def test_chain_units_match_the_zoo_formula(model: CnnSpec | CenterNetSpec) -> None:
    assert forward_flops_of(model) == forward_flops(model)


def test_train_units_scale_with_steps() -> None:
    spec = {
        "task": "train",
        "train": {"model": {"name": "cnn"}, "steps": 10, "batch_size": 8},
        "data": {"source": "mnist-real", "split": "tuning"},
    }
    ten = estimate_units(spec)
    spec["train"] = {**spec["train"], "steps": 20}
    assert estimate_units(spec).units == 2 * ten.units
    assert ten.units == 3 * forward_flops(CnnSpec()) * 8 * 10 and ten.unit == "flop"
