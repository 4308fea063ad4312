"""The `train` task: a zoo model on a data source, with its proof-of-learning log and weights.

Output directory:
- ``model.safetensors``: weights with metadata (spec, spec hash, metrics, PoL log digest);
- ``pol/``: the proof-of-learning log and its checkpoints, which verifiers replay;
- ``metrics.json``: loss curve and, with a ``validation`` source, its evaluation.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from chain.compute_units import training_units
from worker.errors import SpecError
from worker.tasks.data import load_data
from worker.tasks.envelope import TrainTask
from worker.tasks.progress import Emit, stage_progress

WEIGHTS_FILE = "model.safetensors"
POL_DIR = "pol"
METRICS_FILE = "metrics.json"


def pick_device(kind: str, threads: int, precision: str) -> Any:
    """The train helper's device selection, refusing a CUDA request on a CPU-only machine."""
    from worker.device import DeviceError, select_device

    info = select_device(threads=threads, precision=precision, prefer_cuda=kind == "cuda")  # type: ignore[arg-type]
    if kind == "cuda" and info.kind != "cuda":
        raise DeviceError("--device cuda asked but no CUDA device is present")
    return info


def run_train(task: TrainTask, out: Path, emit: Emit, device: str) -> dict[str, Any]:
    from worker.tasks.units import forward_flops_of
    from worker.train.loop import Progress, train
    from worker.train.spec import load_train_spec
    from worker.train.weights import meta_for, save_weights

    spec = load_train_spec(task.train)
    if task.validation is not None and spec.model.name != "cnn":
        raise SpecError("validation: only for classifiers; score a detector with an evaluate task",
                        reason="bad-spec")
    progress = stage_progress(emit, "load data")
    data = load_data(task.data, spec.model)
    progress(1, 1)
    info = pick_device(device, spec.threads, spec.precision)
    total = spec.total_steps(len(data))
    report = stage_progress(emit, "train")

    def on_progress(event: Progress) -> None:
        report(event.step, event.total, loss=round(event.loss, 5), images_per_s=int(event.images_per_s))

    result = train(spec, data, device=info, on_progress=on_progress, pol_dir=out / POL_DIR)
    metrics: dict[str, Any] = {
        "steps": result.steps,
        "train_seconds": round(result.seconds, 3),
        "final_loss": round(result.losses[-1][1], 5) if result.losses else None,
    }
    if task.validation is not None:
        from worker.tasks.infer import evaluate_model

        metrics.update(evaluate_model(result.model, load_data(task.validation, spec.model), info))
    pol_digest = result.pol.digest() if result.pol is not None else None
    save_weights(out / WEIGHTS_FILE, result.model, meta_for(spec, metrics, pol_digest))
    curve = [{"step": step, "loss": loss} for step, loss in result.losses]
    (out / METRICS_FILE).write_text(json.dumps({**metrics, "loss_curve": curve}, indent=2) + "\n")
    return {
        "spec_hash": spec.spec_hash().hex(),
        "pol_log_digest": pol_digest.hex() if pol_digest else "",
        "items": len(data),
        "metrics": metrics,
        "device": info.kind,
        "compute_units": training_units(forward_flops_of(spec.model), spec.batch_size, total),
        "unit": "flop",
    }
