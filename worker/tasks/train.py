"""The `train` task: a zoo model on a data source, with its proof-of-learning log and weights.

Output directory:
- ``model.safetensors``: the last proof-of-learning checkpoint's weights, with metadata (spec,
  spec hash, claimed metrics, PoL log digest);
- ``pol/``: the proof-of-learning log and its checkpoints, which verifiers replay;
- ``metrics.json``: the claims (`worker.train.claims`: steps, final loss, validation accuracy)
  and the worker's report (train seconds, loss curve);
- ``training_curve.png``: the loss curve drawn (`worker.evaluate.plots.training_curve`), named in
  the summary's ``plots`` relative to this directory, which the runner renames when it is done;
- ``manifest.json``: the artifact manifest (`worker.artifact`, kind ``model``) over every file
  above; its root is the artifact id. One item, the model: its file is the weights, its labels
  the canonical JSON of the claims in the weights metadata.

A verifier (`worker.verify.verify_train_dir`) recomputes every claim from these files and the
spec, so nothing here is taken on trust but the report.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from chain.compute_units import training_units
from worker.errors import SpecError, WorkerError
from worker.tasks.data import load_data
from worker.tasks.envelope import TrainTask
from worker.tasks.progress import Emit, stage_progress

if TYPE_CHECKING:
    from worker.device import DeviceInfo
    from worker.train.loop import TrainData
    from worker.train.spec import TrainSpec

WEIGHTS_FILE = "model.safetensors"
POL_DIR = "pol"
METRICS_FILE = "metrics.json"
LOSS_PLOT_FILE = "training_curve.png"
ARTIFACT_KIND = "model"


def pick_device(kind: str, threads: int, precision: str) -> Any:
    """The train helper's device selection, refusing a CUDA request on a CPU-only machine."""
    from worker.device import DeviceError, select_device

    info = select_device(threads=threads, precision=precision, prefer_cuda=kind == "cuda")  # type: ignore[arg-type]
    if kind == "cuda" and info.kind != "cuda":
        raise DeviceError("--device cuda asked but no CUDA device is present")
    return info


def run_train(task: TrainTask, out: Path, emit: Emit, device: str) -> dict[str, Any]:
    from worker.train.spec import load_train_spec

    spec = load_train_spec(task.train)
    if task.validation is not None and spec.model.name != "cnn":
        raise SpecError("validation: only for classifiers; score a detector with an evaluate task",
                        reason="bad-spec")
    progress = stage_progress(emit, "load data")
    data = load_data(task.data, spec.model)
    validation = load_data(task.validation, spec.model) if task.validation is not None else None
    progress(1, 1)
    info = pick_device(device, spec.threads, spec.precision)
    return train_and_deliver(spec, data, validation, out, info, emit)


def train_and_deliver(spec: TrainSpec, data: TrainData, validation: TrainData | None, out: Path,
                      info: DeviceInfo, emit: Emit) -> dict[str, Any]:
    """Train ``spec`` on loaded data into ``out`` (weights, PoL log, metrics); the summary."""
    from worker.artifact import ItemDraft, canonical_json, write_manifest
    from worker.evaluate.plots import training_curve
    from worker.tasks.units import forward_flops_of
    from worker.train.claims import train_claims
    from worker.train.loop import Progress, train
    from worker.train.weights import meta_for, save_weights

    report = stage_progress(emit, "train")

    per_epoch = max(1, len(data))  # examples; an epoch is one pass over them

    def on_progress(event: Progress) -> None:
        report(event.step, event.total, loss=round(event.loss, 5), images_per_s=int(event.images_per_s),
               epoch=round(event.step * spec.batch_size / per_epoch, 2))

    result = train(spec, data, device=info, on_progress=on_progress, pol_dir=out / POL_DIR)
    scores = None
    if validation is not None:
        from worker.tasks.infer import evaluate_model

        scores = evaluate_model(result.model, validation, info)
    claims = train_claims(result.steps, result.final_loss, scores)
    assert result.pol is not None  # train() with a pol_dir always writes the log
    pol_digest = result.pol.digest()
    save_weights(out / WEIGHTS_FILE, result.model, meta_for(spec, claims, pol_digest))
    seconds = round(result.seconds, 3)
    curve = [{"step": step, "loss": loss} for step, loss in result.losses]
    document = {**claims, "train_seconds": seconds, "loss_curve": curve}
    (out / METRICS_FILE).write_text(json.dumps(document, indent=2) + "\n")
    training_curve(result.losses, out / LOSS_PLOT_FILE)  # before the manifest, which covers it
    manifest = write_manifest(out, ARTIFACT_KIND,
                              [ItemDraft(0, (WEIGHTS_FILE,), labels=canonical_json(claims))],
                              {"spec_hash": spec.spec_hash().hex(), "pol_log_digest": pol_digest.hex()})
    return {
        "artifact_root": manifest.root.hex(),
        "spec_hash": spec.spec_hash().hex(),
        "pol_log_digest": pol_digest.hex(),
        "items": len(data),
        "metrics": {**claims, "train_seconds": seconds},
        "plots": {"loss_curve": LOSS_PLOT_FILE},
        "device": info.kind,
        "compute_units": training_units(forward_flops_of(spec.model), spec.batch_size,
                                        result.steps),
        "unit": "flop",
    }


def model_item_labels(out: Path) -> Callable[[Any], list[tuple[str, bytes]]]:
    """The model item's labels as `worker.artifact.verify_files` re-derives them: the canonical
    claims of the delivered weights' metadata."""
    from worker.artifact import canonical_json
    from worker.train.weights import read_meta

    def labels(_manifest: Any) -> list[tuple[str, bytes]]:
        try:
            claims = canonical_json(read_meta(out / WEIGHTS_FILE).metrics)
        except WorkerError:  # unreadable weights: an `item-labels` problem after `file-hash`
            claims = b""
        return [(WEIGHTS_FILE, claims)]

    return labels
