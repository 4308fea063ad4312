"""Training throughput of the worker's loop vs a bare torch loop, and the cost of PoL verification.

Both loops train the same CNN (28x28 digits, width 16, depth 3) on the same in-memory data with
the same batch size, thread count and optimizer (AdamW), in this process,
in pairs of back-to-back runs (alternating which goes first); the headline ratio is the median over
the pairs of each pair's ratio, so drift of a shared machine hits both runs of a pair alike. Times are
process CPU time (`time.process_time`), setup included on both sides: with one torch thread all
the work is this process's, and other jobs on a shared 2-core machine move wall time by 10-80%
but not CPU time. The worker's
loop runs as a job runs: proof-of-learning checkpoints on (every 20 steps), progress events on.

Printed: median and best img/s of each and the median paired ratio (goal >= 0.95); the replay time of one PoL segment and of
the default verification (2 sampled segments) over the training time (goal <= 0.25); and the
honest vs dishonest replay-distance margin from a short calibration.

    .venv/bin/python bench/train.py [--quick]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from statistics import median

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from worker.device import select_device
from worker.render.digits import DigitsSpec, render_digits
from worker.train.calibrate import calibrate
from worker.train.data import ClassificationData
from worker.train.loop import make_optimizer, train
from worker.train.pol import read_log
from worker.train.replay import DEFAULT_SAMPLED_SEGMENTS, replay_segment, verify_pol
from worker.train.schedule import batch_indices, derive_seed
from worker.train.spec import TrainSpec, load_train_spec
from worker.train.state import model_tensors, weights_digest
from worker.train.zoo import build_model

THREADS = 1
BATCH = 64


def bench_spec(steps: int) -> TrainSpec:
    return load_train_spec({
        "model": {"name": "cnn", "image_size": 28, "num_classes": 10, "width": 16, "depth": 3},
        "optimizer": "adamw", "lr": 2e-3, "batch_size": BATCH, "steps": steps,
        "threads": THREADS, "log_every": 50, "seed": 1,
    })


def bare_loop(spec: TrainSpec, data: ClassificationData) -> tuple[float, bytes]:
    """The reference: the plainest fast torch loop over device-resident tensors;
    (img/s, digest of the final weights)."""
    steps = spec.steps or 0
    # the same initial weights and batches as the worker's run: the two do identical arithmetic,
    # so the difference is the loop's own overhead (and not, say, denormals on one trajectory)
    order = [batch_indices(spec.seed, step, len(data), BATCH) for step in range(steps)]
    began = time.process_time()
    torch.manual_seed(derive_seed(spec.seed, b"init", 0))
    model = build_model(spec.model)
    optimizer = make_optimizer(spec, model)
    images = torch.from_numpy(data.images)
    labels = torch.from_numpy(data.labels)
    model.train()
    for step in range(steps):
        idx = order[step]
        x = images[idx].float().div_(255.0)
        optimizer.zero_grad(set_to_none=True)
        loss = nn.functional.cross_entropy(model(x), labels[idx])
        loss.backward()
        optimizer.step()
    rate = steps * BATCH / (time.process_time() - began)
    return rate, weights_digest(model_tensors(model))


def worker_loop(spec: TrainSpec, data: ClassificationData, pol_dir: Path
                ) -> tuple[float, float, bytes]:
    """The worker's `train` with PoL recording and progress events;
    (img/s, CPU seconds, digest of the final weights)."""
    began = time.process_time()
    result = train(spec, data, pol_dir=pol_dir, on_progress=lambda event: None,
                   device=select_device(threads=THREADS, prefer_cuda=False))
    seconds = time.process_time() - began
    return (spec.steps or 0) * BATCH / seconds, seconds, weights_digest(model_tensors(result.model))


def pol_costs(data: ClassificationData, steps: int, directory: Path) -> None:
    """Verification cost against a run of `steps` steps (a check replays 2 x 20 steps: the
    share falls as runs get longer)."""
    _, seconds, _ = worker_loop(bench_spec(steps), data, directory)
    log = read_log(directory)
    start, end = log.segments()[len(log.segments()) // 2]
    began = time.process_time()
    check = replay_segment(log, data, start, end)
    one = time.process_time() - began
    began = time.process_time()
    verify_pol(log, data, beacon=b"bench", count=DEFAULT_SAMPLED_SEGMENTS)
    sampled = time.process_time() - began
    print(f"PoL verification, {steps}-step run ({len(log.segments())} segments of {end - start} steps)")
    print(f"  one segment replay      {one:7.3f} s  = {one / seconds:.3f} of training "
          f"(distance {check.distance:.2g})")
    print(f"  default check ({DEFAULT_SAMPLED_SEGMENTS} seg.)  {sampled:7.3f} s  = "
          f"{sampled / seconds:.3f} of training (goal <= 0.25)")


def main() -> None:
    parser = argparse.ArgumentParser(description="worker training loop vs bare torch loop")
    parser.add_argument("--quick", action="store_true", help="fewer repeats, shorter runs")
    args = parser.parse_args()
    steps, repeats, pol_steps = (60, 4, 200) if args.quick else (100, 10, 400)
    select_device(threads=THREADS, prefer_cuda=False)
    images, labels = render_digits(DigitsSpec(count=2048), seed=0, start=0, stop=2048)
    data = ClassificationData.from_arrays(images, labels)
    spec = bench_spec(steps)
    bare_loop(bench_spec(20), data)  # warm up kernels and allocator for both
    bares: list[float] = []
    ours: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(repeats):
            # a pair of runs back to back, alternating which goes first
            for which in ("bare", "ours") if i % 2 == 0 else ("ours", "bare"):
                if which == "bare":
                    rate, bare_weights = bare_loop(spec, data)
                    bares.append(rate)
                else:
                    rate, _, our_weights = worker_loop(spec, data, Path(tmp) / f"pol{i}")
                    ours.append(rate)
        # headline: the median over the pairs of each pair's ratio. A shared VM's speed drifts
        # by 10-20% over seconds; the two runs of a pair see the same drift, and the median
        # drops the pairs a burst split (as bench/render.py does with its chunks)
        ratio = median(o / b for o, b in zip(ours, bares, strict=True))
        print(f"training, {THREADS} thread, batch {BATCH}, {steps} steps, {repeats} pairs of runs, "
              f"28x28 CNN, AdamW, CPU time")
        print(f"  bare torch loop         {median(bares):9.0f} img/s   (best {max(bares):.0f})")
        print(f"  worker loop (PoL on)    {median(ours):9.0f} img/s   (best {max(ours):.0f})")
        print(f"  ratio, median of pairs  {ratio:9.3f}         (goal >= 0.95; of the bests "
              f"{max(ours) / max(bares):.3f})")
        same = "yes" if bare_weights == our_weights else "NO"
        print(f"  same final weights      {same} (identical arithmetic: the gap is loop overhead)")
        pol_costs(data, pol_steps, Path(tmp) / "long")
    cal = calibrate(quick=True)
    print("PoL replay distance, honest vs dishonest (CNN, 20-step segments after the first; "
          "python -m worker.train.calibrate: CNN and CenterNet)")
    print(f"  max honest {cal.max_honest:.2g}  min dishonest {cal.min_dishonest:.2g}  "
          f"margin {cal.margin:.1f}x")


if __name__ == "__main__":
    main()
