"""The declarative Train spec: a model from the built-in zoo plus hyperparameters, nothing else.

Workers never run code sent by the network, so everything a buyer can ask for is a field here,
each with a range cap: a spec that asks for a 10^9-step run or a 4096-pixel input is rejected
before any compute is spent (`SpecError`, reason ``bad-spec``). No torch here: the daemon and
the chain's compute-unit estimator read specs without training.

Unlike the render specs, three fields are floats (lr, momentum, weight_decay): they are
hyperparameters no consensus rule computes with, and Python writes a float as its shortest
round-trip decimal, the same bytes on every IEEE-754 machine, so the spec hash stays stable.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, ValidationError, model_validator

from worker.errors import SpecError
from worker.spec import EXACT_INT, TaskSpec, describe_errors, load_spec, tagged

MAX_STEPS = 1_000_000
MAX_EPOCHS = 1_000
MAX_BATCH = 1_024
# Steps between proof-of-learning checkpoints. Replays with another thread count (or CPU) drift
# chaotically with segment length (measured on the CNN: ~1e-7 after 10 steps, up to ~1e-4 after
# 20, ~1e-2 after 80), and the replay tolerance is calibrated for 20 (worker.train.calibrate).
DEFAULT_POL_INTERVAL = 20
MAX_POL_INTERVAL = 10_000


class CnnSpec(TaskSpec):
    """Small classifier: `depth` conv-bn-relu-pool blocks, channels doubling from `width`."""

    name: Literal["cnn"] = "cnn"
    in_channels: Annotated[Literal[1, 3], EXACT_INT] = 1
    image_size: int = Field(28, ge=8, le=128)
    num_classes: int = Field(10, ge=2, le=1_000)
    width: int = Field(16, ge=4, le=256)
    depth: int = Field(3, ge=1, le=6)


class CenterNetSpec(TaskSpec):
    """Anchor-free detector: stride-4 heatmap per class plus box size and centre offset heads."""

    name: Literal["centernet"] = "centernet"
    image_size: int = Field(256, ge=64, le=512)
    num_classes: int = Field(1, ge=1, le=80)
    width: int = Field(16, ge=8, le=128)
    head_width: int = Field(32, ge=8, le=256)
    max_objects: int = Field(64, ge=1, le=512)

    @model_validator(mode="after")
    def _multiple_of_32(self) -> CenterNetSpec:
        # the backbone goes down to stride 32 and back up to 4: sizes must divide evenly
        if self.image_size % 32:
            raise ValueError(f"image_size must be a multiple of 32, got {self.image_size}")
        return self


MODELS: dict[str, type[CnnSpec | CenterNetSpec]] = {"cnn": CnnSpec, "centernet": CenterNetSpec}
ModelSpec = Annotated[CnnSpec | CenterNetSpec, tagged("name", MODELS)]


class AugmentSpec(TaskSpec):
    """Augmentations drawn from (seed, step), so a verifier replays exactly the same batches."""

    hflip: bool = False
    shift: int = Field(0, ge=0, le=16)


class TrainSpec(TaskSpec):
    """One training job. Exactly one of `steps` or `epochs` sets the length."""

    model: ModelSpec
    optimizer: Literal["sgd", "adamw"] = "adamw"
    lr: float = Field(1e-3, gt=0.0, le=10.0)
    momentum: float = Field(0.9, ge=0.0, lt=1.0)
    weight_decay: float = Field(0.0, ge=0.0, le=1.0)
    schedule: Literal["constant", "cosine"] = "constant"
    warmup_steps: int = Field(0, ge=0, le=MAX_STEPS)
    batch_size: int = Field(32, ge=1, le=MAX_BATCH)
    steps: int | None = Field(None, ge=1, le=MAX_STEPS)
    epochs: int | None = Field(None, ge=1, le=MAX_EPOCHS)
    seed: int = Field(0, ge=0, lt=2**63)
    augment: AugmentSpec = Field(default_factory=AugmentSpec)
    precision: Literal["auto", "fp32", "bf16", "fp16"] = "auto"
    threads: int = Field(1, ge=1, le=64)
    pol_interval: int = Field(DEFAULT_POL_INTERVAL, ge=1, le=MAX_POL_INTERVAL)
    log_every: int = Field(10, ge=1, le=MAX_STEPS)

    @model_validator(mode="after")
    def _one_length(self) -> TrainSpec:
        if (self.steps is None) == (self.epochs is None):
            raise ValueError("give exactly one of steps or epochs")
        return self

    def total_steps(self, dataset_size: int) -> int:
        """Steps of the whole run; an epoch drops the last partial batch (fixed batch shapes)."""
        if self.steps is not None:
            return self.steps
        assert self.epochs is not None
        return self.epochs * steps_per_epoch(dataset_size, self.batch_size)


def steps_per_epoch(dataset_size: int, batch_size: int) -> int:
    """Full batches per epoch; a dataset smaller than one batch cannot train."""
    if dataset_size < batch_size:
        raise SpecError(
            f"dataset of {dataset_size} items is smaller than batch_size {batch_size}",
            reason="dataset-too-small",
        )
    return dataset_size // batch_size


def load_train_spec(source: Mapping[str, Any] | str | Path | TrainSpec) -> TrainSpec:
    """Parse and validate a spec (a dict, a JSON file path or a spec); errors are `SpecError`."""
    return load_spec(source, TrainSpec)


def load_model_spec(raw: dict[str, Any] | str) -> CnnSpec | CenterNetSpec:
    """A model spec alone (from weights metadata); same errors as `load_train_spec`."""
    try:
        data = json.loads(raw) if isinstance(raw, str) else raw
    except json.JSONDecodeError as err:
        raise SpecError(f"bad model spec: not JSON ({err})") from None
    if not isinstance(data, dict):
        raise SpecError("bad model spec: not an object")
    name = data.get("name")
    if name not in MODELS:
        raise SpecError(f"bad model spec: unknown model name {name!r}", reason="unknown-model")
    try:
        return MODELS[name].model_validate(data)
    except ValidationError as err:
        raise SpecError(f"bad model spec: {describe_errors(err)}") from None
