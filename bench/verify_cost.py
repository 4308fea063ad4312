"""What a spot check costs a verifier, as a fraction of what the job cost the worker.

Render: the worker renders N items (PNGs, labels, item hashes, Merkle root, as the `render` task
does); the verifier reads the manifests, rebuilds the Merkle paths and re-renders 16 sampled
items (`worker.verify.verify_render_dir`). Goal: verifier / worker <= 0.05.

Train: the worker trains the zoo CNN with proof-of-learning checkpoints (every 20 steps); the
verifier replays 2 beacon-sampled segments from their checkpoints (`worker.verify.verify_train`).
Goal: verifier / worker <= 0.25.

Times are process CPU time, one torch thread: on a shared 2-core machine other jobs move wall
time by 10-80% but not the CPU time this process spends.

    .venv/bin/python bench/verify_cost.py [--quick]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from worker.device import select_device
from worker.tasks.envelope import RenderTask
from worker.tasks.render import run_render
from worker.train.data import ClassificationData
from worker.train.loop import train
from worker.train.spec import load_train_spec
from worker.verify import verify_render_dir, verify_train

RENDER_SAMPLES = 16
TRAIN_SAMPLES = 2
RENDER_GOAL = 0.05
TRAIN_GOAL = 0.25


def render_cost(kind: str, items: int, folder: Path) -> tuple[float, float]:
    """(worker seconds, verifier seconds) for one render job of ``items`` items."""
    spec = {"kind": kind, "count": items}
    if kind == "shelf":
        spec.update(width=256, height=256)
    task = RenderTask(task="render", spec=spec, seed=1)
    out = folder / f"render-{kind}"
    out.mkdir()
    began = time.process_time()
    run_render(task, out, lambda _event: None, "cpu")
    worker = time.process_time() - began
    began = time.process_time()
    verdict = verify_render_dir(out, b"a later block hash", RENDER_SAMPLES)
    verifier = time.process_time() - began
    assert verdict.ok, verdict.describe()
    return worker, verifier


def train_cost(steps: int, folder: Path) -> tuple[float, float]:
    """(worker seconds, verifier seconds) for a CNN run of ``steps`` steps on generated digits."""
    from worker.render.digits import DigitsSpec, render_digits

    images, labels = render_digits(DigitsSpec(count=4096), 1, 0, 4096)
    data = ClassificationData.from_arrays(images, labels)
    spec = load_train_spec({
        "model": {"name": "cnn", "width": 16, "depth": 3}, "steps": steps, "batch_size": 64,
        "lr": 2e-3, "threads": 1, "seed": 1,
    })
    device = select_device(threads=1, prefer_cuda=False)
    began = time.process_time()
    train(spec, data, device=device, pol_dir=folder / "pol")
    worker = time.process_time() - began
    began = time.process_time()
    verdict = verify_train(folder / "pol", data, b"a later block hash", TRAIN_SAMPLES)
    verifier = time.process_time() - began
    assert verdict.ok, verdict.describe()
    return worker, verifier


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller jobs, same ratios roughly")
    args = parser.parse_args()
    digits, shelves, steps = (1_000, 200, 200) if args.quick else (2_000, 400, 400)
    print(f"{'job':<34} {'worker s':>9} {'verifier s':>11} {'ratio':>7} {'goal':>6}")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        rows = [
            (f"render digits, {RENDER_SAMPLES} of {digits}", render_cost("digits", digits, folder),
             RENDER_GOAL),
            (f"render shelf 256px, {RENDER_SAMPLES} of {shelves}",
             render_cost("shelf", shelves, folder), RENDER_GOAL),
            (f"train cnn {steps} steps, {TRAIN_SAMPLES} segments of 20", train_cost(steps, folder),
             TRAIN_GOAL),
        ]
    for label, (worker, verifier), goal in rows:
        ratio = verifier / worker
        mark = "ok" if ratio <= goal else "MISS"
        print(f"{label:<34} {worker:>9.2f} {verifier:>11.3f} {ratio:>7.3f} {goal:>6.2f} {mark}")


if __name__ == "__main__":
    main()
