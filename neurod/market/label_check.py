"""Checking a label job's shard: the client re-labels beacon-sampled images with the job's own
model and pays only a labeler that agrees with it.

Why this check: labels have no cheap fraud proof (the chain cannot run a model), but the job
names the model, so an honest labeler's output is what anyone running those weights gets. The
client (and, in a dispute, each drawn committee member) runs the weights on CPU over ``SAMPLES``
images chosen by the block after the commit (`worker.verify.sample_indices`: the labeler could
not know them when it committed), and compares item by item:

- a classifier's item agrees when the delivered class is the reference class;
- a detector's boxes are matched greedily, highest IoU first, one to one, same class and
  IoU >= ``MIN_IOU`` (0.5, COCO's loose match); the item scores matched / (matched + missed +
  extra), 1 when both sides are empty. Reference boxes within ``SCORE_BAND`` of the job's score
  cut-off may go either way (a box at 0.2999 on one device is 0.3001 on another), so the
  reference runs ``SCORE_BAND`` under the cut-off and its boxes under cut-off + band count
  neither as missed nor, when matched, against anyone.

The agreement rate is the mean over the sampled items. Under ``AGREEMENT_THRESHOLD`` the client
disputes the shard (a claim-less `Challenge`), and the chain treats it exactly as a disputed
training result (`chain.market_rules.apply_challenge`): the beacon draws a committee of staked
members who each run this same check with the dispute's beacon (`neurod.market.committee`) and
vote; a majority for fraud slashes the labeler's stake (part to the challenger) and reopens the
shard for another worker; a majority for honest pays the labeler and hands it the client's bond.
One mechanism for both: nothing here is new on chain but the service it admits.

``SAMPLES = 32``: a labeler that fakes a fraction f of its items is caught when its sampled
agreement falls under the threshold. With random classes over C classes its expected agreement
is 1 - f(1 - 1/C); at 32 samples and the threshold 0.8 (7 or more disagreements fail), faking
half of a 10-class shard (expected 0.55) passes with probability P[Bin(32, 0.45) <= 6] = 2e-3,
half of a 4-class one (0.625) 2e-2, and faking everything of a 4-class one 4e-11. A labeler that
fakes a little (20% of 4 classes: 0.85) mostly passes: sampling bounds what fraud can gain, it
does not find every wrong label. 32 forward passes cost milliseconds for the zoo CNN and well
under a second for the zoo CenterNet on CPU, whatever the shard's size: the check stays a small
fraction of the job, and each committee member pays it once per dispute.

Calibration, measured (`bench/label_agreement.py --seeds 4`, this 2-core CPU box, 17 s): 4 models
of each kind trained afresh (a 4-class toy CNN on 64 glyph images; a 2-class toy CenterNet, 60
steps, on 32 rectangle images, ~2.8 boxes per image at the 0.1 cut-off), each checked with 4
beacons of 32 samples; mean (min) agreement:

    honest, CPU full-shard run vs the check's CPU run    classifier 1.000 (1.000)  detector 1.000 (1.000)
    weights x (1 + 1e-3 N(0,1)), a cross-device proxy    classifier 0.996 (0.969)  detector 1.000 (1.000)
    every other image's class random                     classifier 0.635 (0.531)
    the "random-labels" fault                            classifier 0.217 (0.094)  detector 0.002 (0.000)

CPU against CPU is bit-identical in every run (same weights, same code; the labeler's and the
checker's batches differ, and eval-mode inference is per image). Across devices (a CUDA labeler,
a CPU checker) logits differ by rounding: TF32 convolutions (cuDNN's default on Ampere and
later) keep 10 mantissa bits, ~1e-3 relative, which the perturbed row stands in for; a
classifier's argmax then flips on near-ties only, and detector scores and boxes move far less
than the score band and the IoU match absorb. A real CUDA row was not measured (no GPU was lent
to this session): `--cuda` adds it on a GPU machine. The threshold 0.8 sits under honest (an
honest labeler at 0.98 per image fails 32 samples with probability P[Bin(32, 0.02) >= 7] = 3e-6)
and over every faking row (a two-class random labeler expects 0.5). Its margin also lets a
person's corrections through: a labeler whose reviewers fix up to ~10% of the model's labels
still passes. Reviewed items count like any other (exempting them would let a cheater mark
every item reviewed).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SAMPLES = 32  # images re-labelled per shard by the client, and by each committee member
AGREEMENT_THRESHOLD = 0.8
MIN_IOU = 0.5
SCORE_BAND = 0.02
MIN_SIDE = 1.0  # px: boxes are compared as at least this wide and high
CALIBRATION_IMAGES = 64


# --------------------------------------------------------------------------- agreement (pure)


def iou(a: list[float], b: list[float]) -> float:
    """Intersection over union of two [x, y, w, h] boxes, each side taken as at least
    ``MIN_SIDE`` pixels: a degenerate box (an untrained detector's, 0 px wide once rounded to
    0.01 px) still matches its own twin instead of having no area to overlap."""
    aw, ah, bw, bh = (max(v, MIN_SIDE) for v in (a[2], a[3], b[2], b[3]))
    ix = max(0.0, min(a[0] + aw, b[0] + bw) - max(a[0], b[0]))
    iy = max(0.0, min(a[1] + ah, b[1] + bh) - max(a[1], b[1]))
    inter = ix * iy
    return inter / (aw * ah + bw * bh - inter)


def boxes_agreement(delivered: list[dict[str, Any]], reference: list[dict[str, Any]], min_score: float) -> float:
    """One image's detector agreement: matched / (matched + missed + extra), 1 when both are
    empty. Reference boxes scoring under ``min_score + SCORE_BAND`` are optional: unmatched they
    are not missed, matched they are not counted (the delivered box they take is not extra)."""
    pairs = sorted(((iou(d["bbox"], r["bbox"]), i, j) for i, d in enumerate(delivered)
                    for j, r in enumerate(reference) if d["category_id"] == r["category_id"]), reverse=True)
    used_d: set[int] = set()
    used_r: set[int] = set()
    for overlap, i, j in pairs:
        if overlap < MIN_IOU:
            break
        if i not in used_d and j not in used_r:
            used_d.add(i)
            used_r.add(j)
    optional = {j for j, r in enumerate(reference) if r["score"] < min_score + SCORE_BAND}
    matched = len(used_r - optional)
    missed = len(set(range(len(reference))) - used_r - optional)
    extra = len(delivered) - len(used_d)
    total = matched + missed + extra
    return 1.0 if total == 0 else matched / total


def item_agreement(task: str, delivered: Any, reference: Any, min_score: float) -> float:
    """Agreement of one delivered record with the reference record; a missing record is 0."""
    if delivered is None:
        return 0.0
    try:
        if task == "classification":
            return 1.0 if delivered["label"] == reference["label"] else 0.0
        return boxes_agreement(list(delivered["boxes"]), list(reference["boxes"]), min_score)
    except (KeyError, TypeError, IndexError):  # a malformed record agrees with nothing
        return 0.0


@dataclass(frozen=True, slots=True)
class Agreement:
    """The sampled comparison: the mean rate and the item that agreed least."""

    rate: float
    items: int
    worst: int  # job-wide image index
    worst_rate: float

    @property
    def ok(self) -> bool:
        return self.rate >= AGREEMENT_THRESHOLD

    def describe(self) -> str:
        return (f"agreement {self.rate:.3f} over {self.items} sampled images (threshold {AGREEMENT_THRESHOLD}; "
                f"least: image {self.worst} at {self.worst_rate:.2f})")


def agreement(task: str, delivered: dict[int, Any], reference: dict[int, Any], min_score: float) -> Agreement:
    """The agreement of ``delivered`` over the images ``reference`` holds (index -> record)."""
    rates = {index: item_agreement(task, delivered.get(index), ref, min_score) for index, ref in reference.items()}
    worst = min(rates, key=lambda k: (rates[k], k))
    return Agreement(sum(rates.values()) / len(rates), len(rates), worst, rates[worst])


# --------------------------------------------------------------------------- in a child process


def label_shard(spec_json: str, start: int, stop: int, out: str, inputs: dict[str, str], fault: str | None = None,
                device: str = "cpu") -> str:
    """A worker's run of images [start, stop) of a label job; returns the artifact root (hex).
    ``inputs`` maps the job's roots to their exported folders (`neurod.market.inputs`)."""
    from worker.label_job import label_shard as run
    from worker.label_job import parse_label_job

    job = parse_label_job(json.loads(spec_json))
    manifest = run(job, start, stop, Path(inputs[job.images_root]), Path(inputs[job.weights_root]), Path(out),
                   device=device, fault=fault)
    return manifest.root.hex()


def reference_records(job: Any, images_dir: Path, weights_dir: Path, indices: list[int]) -> tuple[str, dict[int, Any]]:
    """The checker's own labels of images ``indices``: CPU, the cut-off lowered by the band."""
    from worker.label_job import open_images, open_weights, predict_records

    files = open_images(images_dir, job.images_root, job.images)
    weights = open_weights(weights_dir, job.weights_root, job.model)
    min_pct = max(0, job.min_score_pct - round(SCORE_BAND * 100))
    task, records, _ = predict_records(weights, [files[i] for i in indices], indices, min_pct, "cpu")
    return task, dict(zip(indices, records))


def verify_label_delivery(out: str, spec_json: str, start: int, stop: int, beacon: bytes, samples: int,
                          inputs: dict[str, str]) -> Any:
    """Check a delivered label shard (a `neurod.market.tasks.Delivery`): every file against the
    manifest, the artifact bound to this job and shard, and the beacon-sampled images' labels
    against the checker's own run. Inputs missing or damaged here raise `InputsUnavailable`."""
    from neurod.market.inputs import InputsUnavailable
    from neurod.market.tasks import Delivery
    from worker.errors import WorkerError
    from worker.label_job import delivered_records, parse_label_job
    from worker.verify import sample_indices

    job = parse_label_job(json.loads(spec_json))
    try:
        manifest, delivered = delivered_records(Path(out))
    except WorkerError as exc:
        return Delivery(False, getattr(exc, "reason", "bad-labels"), str(exc), start)
    expected = {"images_root": job.images_root, "weights_root": job.weights_root, "start": start, "stop": stop,
                "min_score_pct": job.min_score_pct}
    wrong = {k: manifest.meta.get(k) for k, v in expected.items() if manifest.meta.get(k) != v}
    if wrong or [item.index for item in manifest.items] != list(range(start, stop)):
        return Delivery(False, "wrong-job", f"the artifact is not this shard of the job: {wrong or 'items'}", start)
    indices = sorted(start + p for p in sample_indices(beacon, stop - start, min(samples, stop - start)))
    try:
        task, reference = reference_records(job, Path(inputs[job.images_root]), Path(inputs[job.weights_root]),
                                            indices)
    except (WorkerError, KeyError) as exc:
        raise InputsUnavailable(f"the job's images or model: {exc}") from None
    if manifest.meta.get("task") != task:
        return Delivery(False, "wrong-task", f"delivered {manifest.meta.get('task')} labels, the model does {task}",
                        start)
    found = agreement(task, delivered, reference, job.min_score_pct / 100)
    if not found.ok:
        return Delivery(False, "low-agreement", found.describe(), found.worst)
    return Delivery(True, "ok", found.describe())


def calibrate_label() -> float:
    """Label units (forward FLOPs) per second of this machine's CPU: the zoo CNN at its defaults
    over a batch of random images, after one untimed warm-up pass."""
    import numpy as np
    import torch

    from chain.compute_units import inference_units
    from worker.evaluate.predict import predict_probabilities
    from worker.tasks.units import forward_flops_of
    from worker.train.spec import CnnSpec
    from worker.train.zoo import build_model

    torch.set_num_threads(1)
    spec = CnnSpec.model_validate({})
    model = build_model(spec)
    images = np.random.default_rng(0).integers(0, 256, (CALIBRATION_IMAGES, 1, spec.image_size, spec.image_size),
                                               dtype=np.uint8)
    predict_probabilities(model, images[:2])
    started = time.perf_counter()
    predict_probabilities(model, images)
    seconds = max(time.perf_counter() - started, 1e-6)
    return inference_units(forward_flops_of(spec), CALIBRATION_IMAGES) / seconds
