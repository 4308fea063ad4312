"""Calibrating the label check's threshold (`neurod.market.label_check.AGREEMENT_THRESHOLD`).

For each of ``--seeds`` trained models (a toy CNN on glyphs and a toy CenterNet on rectangles,
each trained afresh with its seed, over its own unlabelled images), a labeler labels the whole
shard with the real worker code (`neurod.market.label_check.label_shard`), and the checker's
own CPU run over 32 beacon-sampled images (`reference_records`, as the client and the committee
do) is compared with it (`agreement`), for four beacons per model. Rows:

- honest: the labeler on CPU, a full-shard run (batches unlike the checker's);
- perturbed: weights scaled by 1 + 1e-3 x N(0, 1) per element, a stand-in for another device's
  rounding (TF32 convolutions on a CUDA labeler keep 10 mantissa bits, ~1e-3 relative);
- cuda: the labeler on a CUDA device (only with ``--cuda`` on a machine that has one);
- half-random: the classifier with every other image's class drawn at random;
- random-labels: the devnet fault ``random-labels`` (random classes; random boxes).

It prints mean and min agreement per row and each row's ratio to the threshold (the margin).

    python bench/label_agreement.py [--seeds 4] [--cuda]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from neurod.market.label_check import (
    AGREEMENT_THRESHOLD,
    SAMPLES,
    agreement,
    label_shard,
    reference_records,
)
from tests.support.labelling import LabelInputs, classifier_inputs, detector_inputs
from worker.label_job import delivered_records, parse_label_job, predict_records, random_records
from worker.verify import sample_indices

BEACONS = 4


def perturbed(weights: Path, out: Path, seed: int) -> Path:
    """The weights with each element scaled by 1 + 1e-3 x N(0, 1), same metadata."""
    import torch

    from worker.train.weights import load_weights, save_weights

    model, meta = load_weights(weights)
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for tensor in model.parameters():
            tensor.mul_(1 + 1e-3 * torch.randn(tensor.shape, generator=generator))
    save_weights(out, model, meta)
    return out


def rates(inputs: LabelInputs, delivered: dict[int, object], seed: int) -> list[float]:
    job = parse_label_job(inputs.job)
    found = []
    for b in range(BEACONS):
        beacon = f"beacon-{seed}-{b}".encode()
        indices = sorted(sample_indices(beacon, job.images, min(SAMPLES, job.images)))
        task, reference = reference_records(job, inputs.images, inputs.weights, indices)
        found.append(agreement(task, delivered, reference, job.min_score_pct / 100).rate)
    return found


def measure(kind: str, seed: int, root: Path, cuda: bool) -> dict[str, list[float]]:
    inputs = (classifier_inputs(root, images=64, seed=100 + seed, model_seed=seed) if kind == "classifier"
              else detector_inputs(root, images=32, seed=200 + seed, min_score_pct=10, steps=60, model_seed=seed))
    spec, n, job = json.dumps(inputs.job), inputs.job["images"], parse_label_job(inputs.job)
    label_shard(spec, 0, n, str(root / "honest"), inputs.folders)
    _, honest = delivered_records(root / "honest")
    label_shard(spec, 0, n, str(root / "random"), inputs.folders, fault="random-labels")
    _, faked = delivered_records(root / "random")
    images = sorted((inputs.images / "images").iterdir())
    _, moved, _ = predict_records(perturbed(inputs.weights / "model.safetensors", root / "p.safetensors", seed),
                                  images, list(range(n)), job.min_score_pct)
    rows = {"honest": rates(inputs, honest, seed), "perturbed": rates(inputs, dict(enumerate(moved)), seed),
            "random-labels": rates(inputs, faked, seed)}
    if kind == "classifier":
        task = "classification"
        mixed = dict(honest)
        randomised = random_records(task, [honest[i] for i in range(0, n, 2)], 4, seed)
        mixed.update({i: r for i, r in zip(range(0, n, 2), randomised)})
        rows["half-random"] = rates(inputs, mixed, seed)
    if cuda:
        label_shard(spec, 0, n, str(root / "cuda"), inputs.folders, device="cuda:0")
        rows["cuda"] = rates(inputs, delivered_records(root / "cuda")[1], seed)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=4)
    parser.add_argument("--cuda", action="store_true", help="also label on cuda:0 (a GPU machine)")
    args = parser.parse_args()
    started = time.perf_counter()
    print(f"threshold {AGREEMENT_THRESHOLD}, {SAMPLES} samples, {args.seeds} models x {BEACONS} beacons per kind")
    print(f"{'kind':<11} {'row':<14} {'mean':>6} {'min':>6} {'mean/threshold':>15}")
    for kind in ("classifier", "detector"):
        merged: dict[str, list[float]] = {}
        for seed in range(args.seeds):
            with tempfile.TemporaryDirectory(prefix="label-agreement-") as scratch:
                for row, found in measure(kind, seed, Path(scratch), args.cuda).items():
                    merged.setdefault(row, []).extend(found)
        for row, found in merged.items():
            mean = statistics.fmean(found)
            print(f"{kind:<11} {row:<14} {mean:6.3f} {min(found):6.3f} {mean / AGREEMENT_THRESHOLD:15.2f}")
    print(f"({time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()
