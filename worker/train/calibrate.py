"""Calibrate the proof-of-learning tolerance: honest vs dishonest replay distances on this code.

Run ``python -m worker.train.calibrate`` (about 30 s on one core; ``--quick``: CNN only). It
trains the small CNN and the small CenterNet with AdamW and SGD and PoL checkpoints every 20
steps, then for sampled segments measures the relative L2 distance a verifier sees:
- honest: replayed with the logged thread count (bit-exact, 0) and with another thread count
  (float reductions split differently: the stand-in for another CPU);
- dishonest claims: the last step skipped, half the steps skipped, batches other than the seed
  schedules, labels moved to other images (data swapped), the honest result nudged by 1% noise.

Segments that start from the random initialisation are reported apart: there AdamW turns
rounding-level gradient differences into full +-lr steps (its first update is lr * sign(g)), so
a replay with another thread count can drift as far as a skipped step. Only replays with the
logged thread count separate those segments; later segments separate with either.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from worker.device import select_device
from worker.train.data import ClassificationData, DetectionData
from worker.train.loop import TrainData, Trainer, train
from worker.train.pol import PolLog, read_checkpoint
from worker.train.replay import DEFAULT_TOLERANCE, replay_segment
from worker.train.spec import DEFAULT_POL_INTERVAL, TrainSpec
from worker.train.state import model_tensors, relative_distance, split_checkpoint
from worker.train.toydata import TOY_CENTERNET, TOY_CNN, glyphs, rectangles_coco, toy_spec

PERTURBATION = 1e-2
HONEST = ("same-threads", "other-threads")
DISHONEST = ("skip-last-step", "skip-half", "other-batches", "swapped-labels", "perturbed-1%")
LEARNING_RATES = {("cnn", "adamw"): 3e-3, ("cnn", "sgd"): 0.05,
                  ("centernet", "adamw"): 3e-3, ("centernet", "sgd"): 0.02}


@dataclass(frozen=True, slots=True)
class Calibration:
    """Distances per kind, for segments after the first (`later`) and from initialisation."""

    later: dict[str, list[float]] = field(default_factory=dict)
    first: dict[str, list[float]] = field(default_factory=dict)

    @property
    def max_honest(self) -> float:
        return max(max(self.later[k]) for k in HONEST)

    @property
    def min_dishonest(self) -> float:
        return min(min(self.later[k]) for k in DISHONEST)

    @property
    def margin(self) -> float:
        """Smallest dishonest over largest honest distance, segments after the first."""
        return self.min_dishonest / self.max_honest if self.max_honest > 0 else math.inf

    @property
    def suggested_tolerance(self) -> float:
        """Geometric midpoint: the same factor of safety on both sides."""
        return math.sqrt(max(self.max_honest, 1e-12) * self.min_dishonest)


def _forged(log: PolLog, spec: TrainSpec, data: TrainData, start: int, stop: int
            ) -> dict[str, torch.Tensor]:
    """Weights a cheating worker would claim: trained from `start` to `stop` with its own choices."""
    trainer = Trainer(spec, data, select_device(threads=1, prefer_cuda=False), workers=0)
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


def swapped(data: TrainData) -> TrainData:
    """The same images with every image's labels moved to the next image."""
    if isinstance(data, ClassificationData):
        return ClassificationData(images=data.images, labels=np.roll(data.labels, 1))
    return dataclasses.replace(data, boxes=data.boxes[1:] + data.boxes[:1],
                               classes=data.classes[1:] + data.classes[:1])


def measure(log: PolLog, spec: TrainSpec, data: TrainData, segments: list[tuple[int, int]],
            into: Calibration) -> None:
    """Add the distances of every honest and dishonest kind over `segments` to `into`."""
    other_seed = spec.model_copy(update={"seed": spec.seed + 1})
    cpu = {n: select_device(threads=n, prefer_cuda=False) for n in (1, 2)}
    for start, end in segments:
        bucket = into.first if start == 0 else into.later
        honest, _ = split_checkpoint(read_checkpoint(log.checkpoint_path(end)))
        found = {
            "same-threads": replay_segment(log, data, start, end, device=cpu[1]).distance,
            "other-threads": replay_segment(log, data, start, end, device=cpu[2]).distance,
        }
        claims = {
            "skip-last-step": _forged(log, spec, data, start, end - 1),
            "skip-half": _forged(log, spec, data, start, start + (end - start) // 2),
            "other-batches": _forged(log, other_seed, data, start, end),
            "swapped-labels": _forged(log, spec, swapped(data), start, end),
            "perturbed-1%": _perturbed(honest, PERTURBATION, seed=start),
        }
        found.update({kind: relative_distance(honest, claim) for kind, claim in claims.items()})
        for kind, value in found.items():
            bucket.setdefault(kind, []).append(value)
    torch.set_num_threads(1)


def calibration_runs(workdir: Path, quick: bool) -> list[tuple[TrainSpec, TrainData]]:
    cnn_data = glyphs(1024, side=16, classes=4, seed=3)
    runs: list[tuple[TrainSpec, TrainData]] = []
    models: list[tuple[dict[str, object], TrainData, int]] = [(TOY_CNN, cnn_data, 32)]
    if not quick:
        rectangles_coco(workdir / "rects", 64, seed=1)
        models.append((TOY_CENTERNET, DetectionData.from_coco(workdir / "rects"), 8))
    for model, data, batch in models:
        for optimizer in ("adamw", "sgd"):
            lr = LEARNING_RATES[(str(model["name"]), optimizer)]
            runs.append((toy_spec(model, optimizer=optimizer, lr=lr, batch_size=batch,
                                  steps=5 * DEFAULT_POL_INTERVAL, seed=7,
                                  augment={"shift": 1}), data))
    return runs


def calibrate(*, quick: bool = False) -> Calibration:
    """Train each calibration run with PoL on and measure all of its segments."""
    result = Calibration()
    with tempfile.TemporaryDirectory() as tmp:
        for i, (spec, data) in enumerate(calibration_runs(Path(tmp), quick)):
            run = train(spec, data, pol_dir=Path(tmp) / f"pol{i}", workers=0,
                        device=select_device(threads=1, prefer_cuda=False))
            assert run.pol is not None
            measure(run.pol, spec, data, run.pol.segments(), result)
    return result


def _table(title: str, distances: dict[str, list[float]]) -> list[str]:
    lines = [title, f"  {'kind':<16} {'min':>10} {'max':>10}"]
    for kind in HONEST + DISHONEST:
        values = distances[kind]
        lines.append(f"  {kind:<16} {min(values):>10.3g} {max(values):>10.3g}")
    return lines


def report(cal: Calibration) -> str:
    lines = _table("segments after the first", cal.later)
    lines += _table("first segment (from the random initialisation)", cal.first)
    lines += [
        "segments after the first:",
        f"  max honest distance       {cal.max_honest:.3g}",
        f"  min dishonest distance    {cal.min_dishonest:.3g}",
        f"  margin (dishonest/honest) {cal.margin:.3g}x",
        f"  suggested tolerance       {cal.suggested_tolerance:.3g} (geometric midpoint)",
        (f"  DEFAULT_TOLERANCE         {DEFAULT_TOLERANCE:g}: "
         f"{cal.min_dishonest / DEFAULT_TOLERANCE:.3g}x under the nearest dishonest, "
         f"{DEFAULT_TOLERANCE / max(cal.max_honest, 1e-12):.3g}x over the farthest honest"),
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="the CNN only (~8 s)")
    args = parser.parse_args()
    print(f"checkpoints every {DEFAULT_POL_INTERVAL} steps, 5 segments per run, "
          f"{'cnn' if args.quick else 'cnn and centernet'} x (adamw, sgd)")
    print(report(calibrate(quick=args.quick)))


if __name__ == "__main__":
    main()
