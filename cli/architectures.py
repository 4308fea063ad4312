"""A train job over a set of architectures, and the buyer's choice among the delivered models.

A train spec may list ``"architectures"``: zoo model specs (`worker.train.spec.ModelSpec`) in
place of ``train.model``. The client posts one market job per architecture, each the same spec
with that model, and keeps the model that scores best on its own real validation set, scored
here, on the client's machine: the real set never leaves it.

Why one job per architecture rather than one job of several shards: a job's shards split its
compute units evenly (the job record on chain holds one unit count), while architectures differ
in cost by orders of magnitude; separate jobs price each exactly, are bid on by the workers whose
speed suits each, and train at once on different machines.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cli.output import CliError

MAX_ARCHITECTURES = 8
MODEL_FILE = "model.safetensors"


def architecture_jobs(doc: dict[str, Any]) -> list[dict[str, Any]]:
    """The train specs to post for ``doc``: itself, or one per listed architecture."""
    architectures = doc.get("architectures")
    if architectures is None:
        return [doc]
    if not isinstance(architectures, list) or not 1 <= len(architectures) <= MAX_ARCHITECTURES \
            or not all(isinstance(a, dict) for a in architectures):
        raise CliError(f"architectures: a list of 1 to {MAX_ARCHITECTURES} zoo model specs", "bad-spec")
    train = doc.get("train")
    if not isinstance(train, dict) or "model" in train:
        raise CliError("a spec listing architectures gives no train.model: each architecture is one", "bad-spec")
    rest = {k: v for k, v in doc.items() if k != "architectures"}
    return [{**rest, "train": {**train, "model": model}} for model in architectures]


def describe(model: dict[str, Any]) -> str:
    """A model spec in a few characters: ``cnn w16 d3``."""
    parts = [str(model.get("name", "?"))]
    parts += [f"{short}{model[key]}" for key, short in (("width", "w"), ("depth", "d"), ("image_size", "s"))
              if key in model]
    return " ".join(parts)


def real_source(real: str) -> dict[str, Any]:
    """The evaluate task's data source for the buyer's real set: "mnist" (the bundled real digits'
    tuning split), a folder of class subfolders, a CSV of label,pixels rows, or a COCO JSON."""
    if real == "mnist":
        return {"source": "mnist-real", "split": "tuning"}
    path = Path(real)
    if path.is_dir():
        return {"source": "folder", "path": str(path.resolve())}
    if path.suffix == ".csv":
        return {"source": "csv", "path": str(path.resolve())}
    if path.suffix == ".json":
        return {"source": "coco", "path": str(path.resolve())}
    raise CliError(f"--real {real}: 'mnist', a folder of class folders, a .csv or a COCO .json", "bad-real-set")


@dataclass(frozen=True)
class Scored:
    job: str
    model: str  # `describe` of its architecture
    output: str  # the delivered model's folder
    metric: str  # accuracy (classifier) or map50_95 (detector)
    score: float


def measure(weights: Path, real: str, what: str) -> dict[str, Any]:
    """The metrics of the model in ``weights`` on the real set, by the worker's evaluate task (in
    a child process, as `neuro task run evaluate` does); ``what`` names the model in an error."""
    from worker.errors import WorkerError
    from worker.runner import run_task

    spec = {"task": "evaluate", "weights": str(weights), "data": real_source(real)}
    with tempfile.TemporaryDirectory(prefix="neuro-score-") as scratch:
        try:
            summary = run_task("evaluate", spec, Path(scratch) / "out").summary
        except WorkerError as exc:
            raise CliError(f"{what}: scoring its model on {real}: {exc}", "score-failed") from None
    metrics: dict[str, Any] = summary.get("metrics", summary)
    return metrics


def score_model(job: str, model: dict[str, Any], output: str, real: str) -> Scored:
    """Score one delivered model on the real set (`measure`)."""
    metrics = measure(Path(output) / MODEL_FILE, real, f"job {job[:16]}")
    metric = "accuracy" if "accuracy" in metrics else "map50_95"
    return Scored(job, describe(model), output, metric, float(metrics.get(metric, 0.0)))


def best(scored: list[Scored]) -> Scored:
    """The highest score; the earliest listed architecture on a tie (deterministic)."""
    return max(scored, key=lambda s: s.score)
