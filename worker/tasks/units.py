"""Compute units of a parsed task: the spec's plain values fed to `chain.compute_units`.

The arithmetic lives in `chain` (validators price jobs without the worker's models); this module
only reads the numbers off the worker's spec models.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from chain.compute_units import inference_units, training_units
from worker.tasks import UnitsEstimate
from worker.tasks.envelope import EvaluateTask, LabelTask, RenderTask, TrainTask


def forward_flops_of(model: Any) -> int:
    """Forward FLOPs of one image through a zoo model spec (CnnSpec or CenterNetSpec)."""
    from worker.train.flops import forward_flops

    return forward_flops(model)


def units_of(task: RenderTask | TrainTask | EvaluateTask | LabelTask) -> UnitsEstimate:
    if isinstance(task, RenderTask):
        from worker.render.dataset import load_render_spec
        from worker.tasks.render import item_range, render_units_of

        spec = load_render_spec(task.spec)
        start, stop = item_range(task, spec.count)
        units = render_units_of(spec, stop - start)
        return UnitsEstimate("render", units, "pixel", f"{stop - start} {spec.kind} items")
    if isinstance(task, TrainTask):
        from worker.tasks.data import dataset_size
        from worker.train.spec import load_train_spec

        train = load_train_spec(task.train)
        steps = train.steps if train.steps is not None else train.total_steps(dataset_size(task.data))
        units = training_units(forward_flops_of(train.model), train.batch_size, steps)
        return UnitsEstimate("train", units, "flop", f"{steps} steps of {train.batch_size}")
    from worker.train.weights import read_meta

    model = read_meta(Path(task.weights)).model
    if isinstance(task, EvaluateTask):
        from worker.tasks.data import dataset_size

        images = dataset_size(task.data)
    else:
        from worker.label import image_files

        images = len(image_files(Path(task.images)))
    units = inference_units(forward_flops_of(model), images)
    return UnitsEstimate(task.task, units, "flop", f"{images} images through {model.name}")
