"""What a worker daemon runs for an awarded shard, in a child process (`neurod.procpool`).

Only the built-in task types on the declarative specs the chain accepted: a render of items
[start, stop) of a generate job, or a training run of a train job, with the worker's own code
(`worker/`). Nothing from the network is executed. Each function takes plain values, writes the
artifact into ``out`` and returns its root, so a crash of the child never touches the daemon.

``fault`` is a test-only switch (refused outside a devnet, `neurod.market.settings`) that makes
a dishonest worker: "corrupt-item" renders the shard's first item from another seed, then seals
an artifact whose root commits to the wrong item, as a cheating worker would; "skip-training"
delivers a model whose proof-of-learning log claims batches it never trained on, re-signed and
re-sealed (`worker.train.forgery`), for a dispute committee to convict.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CALIBRATION_ITEMS = 6
CUDA_VISIBLE = "CUDA_VISIBLE_DEVICES"


def cuda_devices() -> list[str]:
    """This machine's CUDA GPUs as worker slots ("cuda:0", ...); none without CUDA (run in a child:
    it imports torch)."""
    from worker.device import cuda_count

    return [f"cuda:{index}" for index in range(cuda_count())]


def render_shard(spec_json: str, start: int, stop: int, out: str, fault: str | None = None) -> str:
    """Render a generate job's shard into ``out``; returns the artifact root (hex)."""
    from worker.render import shard as shard_module

    doc = json.loads(spec_json)
    if fault != "corrupt-item":
        return shard_module.render_shard(doc["spec"], doc.get("seed", 0), start, stop, out).root.hex()
    honest = shard_module.render_item

    def corrupt(spec: Any, seed: int, index: int, **kw: Any) -> Any:
        return honest(spec, seed + 1 if index == start else seed, index, **kw)

    shard_module.render_item = corrupt  # this child process only; it exits after the task
    try:
        return shard_module.render_shard(doc["spec"], doc.get("seed", 0), start, stop, out).root.hex()
    finally:
        shard_module.render_item = honest


def train(spec_json: str, out: str, inputs: dict[str, str] | None = None, fault: str | None = None,
          device: str = "cpu") -> str:
    """Run a train job's spec with the worker's task runner; returns the artifact root (hex).
    ``inputs`` maps the artifact roots the spec names to their local folders (`neurod.market.inputs`);
    ``device`` is the worker's slot: "cpu" or "cuda:N" (the task process then sees GPU N alone)."""
    from worker.artifact import read_manifest
    from worker.runner import run_task
    from worker.tasks.data import artifact_folders

    kind, _, index = device.partition(":")
    saved = os.environ.get(CUDA_VISIBLE)
    if kind == "cuda":
        os.environ[CUDA_VISIBLE] = index  # inherited by the task process (`worker.runner`)
    try:
        with artifact_folders(inputs or {}):
            run_task("train", json.loads(spec_json), Path(out), device=kind)
    finally:
        if saved is None:
            os.environ.pop(CUDA_VISIBLE, None)
        else:
            os.environ[CUDA_VISIBLE] = saved
    if fault == "skip-training":
        from worker.train.forgery import forge_log, reverse_batches

        forge_log(Path(out), reverse_batches)
    return read_manifest(out).root.hex()


def calibrate_render() -> float:
    """Render units per second of this machine: a few shelf items, timed (the quote units of a
    generate job are rendered pixels x effect passes, `chain.job_spec.render_items_units`)."""
    from chain.job_spec import render_items_units
    from worker.render.dataset import load_render_spec, render_item

    doc = {"kind": "shelf", "count": CALIBRATION_ITEMS}
    _, units = render_items_units(doc)
    spec = load_render_spec(doc)
    render_item(spec, 0, 0)  # warm: imports and caches
    start = time.perf_counter()
    for index in range(CALIBRATION_ITEMS):
        render_item(spec, 1, index)
    return units / max(time.perf_counter() - start, 1e-6)


def calibrate_train(device: str = "cpu") -> float:
    """Training units (FLOPs) per second on ``device`` (a worker slot: "cpu" or "cuda:N"): a few
    steps of the zoo CNN on random digits, after one untimed warm-up step."""
    import torch

    from chain.compute_units import cnn_forward_flops, training_units

    torch.set_num_threads(1)
    batch, size = 32, 28
    model = torch.nn.Sequential(
        torch.nn.Conv2d(1, 16, 3, padding=1), torch.nn.ReLU(), torch.nn.Conv2d(16, 16, 3, padding=1),
        torch.nn.ReLU(), torch.nn.Flatten(), torch.nn.Linear(16 * size * size, 10),
    ).to(device)
    optimiser = torch.optim.SGD(model.parameters(), lr=0.01)
    images = torch.randn(batch, 1, size, size, device=device)
    labels = torch.randint(0, 10, (batch,), device=device)

    def step() -> None:
        optimiser.zero_grad()
        torch.nn.functional.cross_entropy(model(images), labels).backward()
        optimiser.step()

    step()
    steps = 5
    start = time.perf_counter()
    for _ in range(steps):
        step()
    if device.startswith("cuda"):
        torch.cuda.synchronize(device)
    seconds = max(time.perf_counter() - start, 1e-6)
    return training_units(cnn_forward_flops(size, 1, 16, 2, 10), batch, steps) / seconds



@dataclass(frozen=True)
class Delivery:
    """A client's verdict on one delivered shard. ``proof`` (a `worker.artifact.LeafProof`) is set
    when an item is provably not what the job's spec renders: the client's fraud proof."""

    ok: bool
    reason: str = ""
    detail: str = ""
    index: int = -1  # the convicting item (job-wide index)
    proof: Any = None


def verify_delivery(out: str, spec_json: str, start: int, stop: int, beacon: bytes, samples: int) -> Delivery:
    """Check a delivered generate shard against the job: its artifact must render the job's own
    spec and seed over items [start, stop) (else its first item convicts it: the chain re-renders
    from the job's spec), and the items the beacon samples must re-render to their leaves
    (`worker.verify.verify_output`)."""
    from worker.artifact import leaf_proof, read_manifest
    from worker.errors import VerificationFailed
    from worker.render.dataset import load_render_spec
    from worker.verify import RenderVerdict, verify_output

    doc = json.loads(spec_json)
    try:
        manifest = read_manifest(out)
        meta = manifest.meta
        expected = {"spec_hash": load_render_spec(doc["spec"]).spec_hash().hex(), "seed": doc.get("seed", 0),
                    "start": start, "stop": stop}
        wrong = {k: meta.get(k) for k, v in expected.items() if meta.get(k) != v}
        if wrong:
            return Delivery(False, "wrong-job", f"the artifact is not this shard of the job: {wrong}", start,
                            leaf_proof(manifest, 0))
        verdict = verify_output(Path(out), beacon, samples)
    except VerificationFailed as exc:
        return Delivery(False, exc.reason, str(exc))
    assert isinstance(verdict, RenderVerdict)
    if verdict.fraud is not None:
        return Delivery(False, "fraud", verdict.describe(), verdict.fraud.index, verdict.fraud.leaf)
    return Delivery(True, "ok", verdict.describe())


def verify_train_delivery(out: str, spec_json: str, beacon: bytes, samples: int,
                          inputs: dict[str, str] | None = None) -> Delivery:
    """Check a delivered model against its train job: the weights bound to the job's spec, and
    proof-of-learning segments sampled by ``beacon`` replayed within the calibrated tolerance
    (`worker.verify.verify_output`), on the job's data (``inputs`` as for `train`). A model that
    fails goes to the dispute committee; inputs missing or damaged here raise
    `neurod.market.inputs.InputsUnavailable` (no verdict)."""
    from neurod.market.inputs import check_inputs
    from worker.errors import VerificationFailed
    from worker.tasks.data import artifact_folders
    from worker.verify import verify_output

    check_inputs(inputs or {})  # the job's data first: damage here is ours, not the worker's
    try:
        with artifact_folders(inputs or {}):
            verdict = verify_output(Path(out), beacon, samples, job=json.loads(spec_json))
    except VerificationFailed as exc:
        return Delivery(False, exc.reason, str(exc))
    if not verdict.ok:
        return Delivery(False, verdict.reason or "replay-failed", verdict.describe())
    return Delivery(True, "ok", verdict.describe())
