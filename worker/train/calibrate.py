"""Calibrate the proof-of-learning tolerance: honest vs dishonest replay distances on this code.

Run ``python -m worker.train.calibrate`` (about 10 s on one core). It trains a small CNN with
PoL checkpoints, then for each sampled segment measures the relative L2 distance a verifier sees:
- honest, replayed with the same thread count (bit-exact: 0) and with another thread count
  (float reductions split differently);
- dishonest claims: the last step skipped, half the steps skipped, other batches than the seed
  schedules, shuffled labels (data swapped), and the honest result nudged by 1% noise.
It prints the largest honest and the smallest dishonest distance, their ratio (the margin) and
where `replay.DEFAULT_TOLERANCE` sits between them.
"""

from __future__ import annotations

import argparse
import math
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from worker.device import select_device
from worker.train.data import ClassificationData
from worker.train.loop import TrainData, Trainer, train
from worker.train.pol import PolLog, read_checkpoint
from worker.train.replay import DEFAULT_TOLERANCE, replay_segment
from worker.train.spec import DEFAULT_POL_INTERVAL, TrainSpec, load_train_spec
from worker.train.state import model_tensors, relative_distance, split_checkpoint
from worker.train.toydata import glyphs

PERTURBATION = 1e-2
HONEST = ("same-threads", "other-threads")
DISHONEST = ("skip-last-step", "skip-half", "other-batches", "swapped-labels", "perturbed-1%")


@dataclass(frozen=True, slots=True)
class Calibration:
    distances: dict[str, list[float]]

    @property
    def max_honest(self) -> float:
        return max(max(self.distances[k]) for k in HONEST)

    @property
    def min_dishonest(self) -> float:
        return min(min(self.distances[k]) for k in DISHONEST)

    @property
    def margin(self) -> float:
        """Smallest dishonest over largest honest distance (inf when honest replays are exact)."""
        return self.min_dishonest / self.max_honest if self.max_honest > 0 else math.inf

    @property
    def suggested_tolerance(self) -> float:
        """Geometric midpoint: the same factor of safety on both sides."""
        return math.sqrt(max(self.max_honest, 1e-12) * self.min_dishonest)


def calibration_spec(steps: int, pol_interval: int, optimizer: str) -> TrainSpec:
    return load_train_spec({
        "model": {"name": "cnn", "image_size": 16, "num_classes": 4, "width": 8, "depth": 2},
        "optimizer": optimizer, "lr": 3e-3 if optimizer == "adamw" else 0.05,
        "batch_size": 32, "steps": steps, "pol_interval": pol_interval, "threads": 1,
        "augment": {"shift": 1}, "seed": 7, "log_every": steps,
    })


def _forged(log: PolLog, spec: TrainSpec, data: TrainData, start: int, stop: int) -> dict[str, torch.Tensor]:
    """Weights a cheating worker would claim: trained from `start` to `stop` with its own choices."""
    trainer = Trainer(spec, data, select_device(threads=1, prefer_cuda=False))
    trainer.load_state(read_checkpoint(log.checkpoint_path(start)))
    trainer.run(start, stop)
    return model_tensors(trainer.model)


def _perturbed(tensors: dict[str, torch.Tensor], scale: float, seed: int) -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    out = {}
    for name, t in tensors.items():
        if t.is_floating_point() and t.numel():
            noise = torch.randn(t.shape, generator=gen, dtype=t.dtype)
            t = t + noise * (scale * t.norm() / noise.norm().clamp(min=1e-12))
        out[name] = t
    return out


def measure(log: PolLog, spec: TrainSpec, data: ClassificationData, segments: list[tuple[int, int]]
            ) -> dict[str, list[float]]:
    """Distances of every honest and dishonest kind over `segments`."""
    distances: dict[str, list[float]] = {k: [] for k in HONEST + DISHONEST}
    other_seed = spec.model_copy(update={"seed": spec.seed + 1})
    rng = np.random.default_rng(1)
    swapped = ClassificationData(images=data.images, labels=rng.permutation(data.labels))
    for start, end in segments:
        same = replay_segment(log, data, start, end, device=select_device(threads=1, prefer_cuda=False))
        other = replay_segment(log, data, start, end, device=select_device(threads=2, prefer_cuda=False))
        distances["same-threads"].append(same.distance)
        distances["other-threads"].append(other.distance)
        honest, _ = split_checkpoint(read_checkpoint(log.checkpoint_path(end)))
        forged = {
            "skip-last-step": _forged(log, spec, data, start, end - 1),
            "skip-half": _forged(log, spec, data, start, start + (end - start) // 2),
            "other-batches": _forged(log, other_seed, data, start, end),
            "swapped-labels": _forged(log, spec, swapped, start, end),
            "perturbed-1%": _perturbed(honest, PERTURBATION, seed=start),
        }
        for kind, claim in forged.items():
            distances[kind].append(relative_distance(honest, claim))
    torch.set_num_threads(1)
    return distances


def calibrate(*, steps: int = 200, pol_interval: int = DEFAULT_POL_INTERVAL, sampled: int = 10,
              optimizers: tuple[str, ...] = ("adamw", "sgd")) -> Calibration:
    """Train `steps` steps with a checkpoint every `pol_interval`; replay `sampled` segments per
    optimizer, spread from the chaotic start (where drift is largest) to the end."""
    data = glyphs(1024, side=16, classes=4, seed=3)
    merged: dict[str, list[float]] = {k: [] for k in HONEST + DISHONEST}
    for optimizer in optimizers:
        spec = calibration_spec(steps, pol_interval, optimizer)
        with tempfile.TemporaryDirectory() as tmp:
            result = train(spec, data, pol_dir=Path(tmp), device=select_device(threads=1, prefer_cuda=False))
            assert result.pol is not None
            all_segments = result.pol.segments()
            picked = [all_segments[i] for i in np.linspace(0, len(all_segments) - 1, sampled).astype(int)]
            for kind, values in measure(result.pol, spec, data, picked).items():
                merged[kind].extend(values)
    return Calibration(merged)


def report(cal: Calibration) -> str:
    lines = [f"{'kind':<16} {'min':>10} {'max':>10}"]
    for kind in HONEST + DISHONEST:
        values = cal.distances[kind]
        lines.append(f"{kind:<16} {min(values):>10.3g} {max(values):>10.3g}")
    lines += [
        f"max honest distance      {cal.max_honest:.3g}",
        f"min dishonest distance   {cal.min_dishonest:.3g}",
        f"margin (dishonest/honest) {cal.margin:.3g}x",
        f"suggested tolerance      {cal.suggested_tolerance:.3g} (geometric midpoint)",
        (f"DEFAULT_TOLERANCE        {DEFAULT_TOLERANCE:g}: "
         f"{cal.min_dishonest / DEFAULT_TOLERANCE:.3g}x under the nearest dishonest, "
         f"{DEFAULT_TOLERANCE / max(cal.max_honest, 1e-12):.3g}x over the farthest honest"),
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--pol-interval", type=int, default=DEFAULT_POL_INTERVAL)
    parser.add_argument("--sampled", type=int, default=10)
    args = parser.parse_args()
    cal = calibrate(steps=args.steps, pol_interval=args.pol_interval, sampled=args.sampled)
    print(f"{args.steps} steps, a checkpoint every {args.pol_interval}, "
          f"{args.sampled} segments replayed per optimizer (adamw, sgd)")
    print(report(cal))


if __name__ == "__main__":
    main()
