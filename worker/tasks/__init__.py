"""The fixed registry of built-in tasks: the only code a task spec can select.

``TASK_NAMES`` is importable without numpy or torch (the runner's parent process only checks a
name); the task modules load inside the child that runs them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from worker.errors import SpecError

TASK_NAMES = ("render", "train", "evaluate", "label")


@dataclass(frozen=True, slots=True)
class UnitsEstimate:
    task: str
    units: int
    unit: str
    detail: str


def check_kind(kind: str, spec: dict[str, Any]) -> str:
    """The task a spec names, which must be the kind the user asked to run."""
    named = spec.get("task")
    if named not in TASK_NAMES:
        raise SpecError(f"spec field 'task' must be one of {', '.join(TASK_NAMES)}, got {named!r}")
    if named != kind:
        raise SpecError(f"this is a {named} spec, not a {kind} spec", reason="wrong-task-kind")
    return str(named)


def parse_task(spec: dict[str, Any]) -> Any:
    """The validated envelope (RenderTask, TrainTask, EvaluateTask or LabelTask)."""
    from pydantic import TypeAdapter, ValidationError

    from worker.spec import describe_errors
    from worker.tasks.envelope import TaskEnvelope

    try:
        return TypeAdapter(TaskEnvelope).validate_python(spec)
    except ValidationError as error:
        raise SpecError(describe_errors(error)) from None


def run_builtin(
    task: str, spec: dict[str, Any], out: Path, emit: Callable[[dict[str, Any]], None], device: str
) -> dict[str, Any]:
    """Run a registered task in this (child) process; returns its summary."""
    envelope = parse_task(spec)
    if envelope.task != task:
        raise SpecError(f"this is a {envelope.task} spec, not a {task} spec", reason="wrong-task-kind")
    if task == "render":
        from worker.tasks.render import run_render

        return run_render(envelope, out, emit, device)
    if task == "train":
        from worker.tasks.train import run_train

        return run_train(envelope, out, emit, device)
    from worker.tasks.infer import run_evaluate, run_label

    return (run_evaluate if task == "evaluate" else run_label)(envelope, out, emit, device)


def estimate_units(spec: dict[str, Any]) -> UnitsEstimate:
    """The compute units a spec costs (chain.compute_units over the spec's plain values)."""
    from worker.tasks.units import units_of

    return units_of(parse_task(spec))
