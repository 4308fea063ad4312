"""What a spot check costs a verifier, as a fraction of what the job cost the worker.

Render: the worker renders N items (PNGs, labels, the artifact manifest, as the `render` task
does); the verifier hashes every delivered file, re-derives every item's labels from the label
files, recomputes every leaf and the root, then re-renders 16 sampled items and compares each
with its leaf and with its decoded PNG and labels (`worker.verify.verify_render_dir`). Goal:
verifier / worker <= 0.05. The full-file check alone (`worker.render.delivered.
open_render_artifact`) is printed under the table: its share of the worker's time is what the
ratio tends to for large jobs, where 16 re-rendered items cost nothing.

Train: the worker trains the zoo CNN with proof-of-learning checkpoints (every 20 steps) and
delivers it as the `train` task does (weights, log, claims scored on the 100 real tuning digits,
artifact manifest); the verifier hashes every delivered file, checks that the weights are the
last checkpoint, recomputes the claims (one forward pass over the validation digits) and replays
the final segment and 1 beacon-sampled other (`worker.verify.verify_train`): 2 segments, the
replay budget the goal was set for. Both are handed the data already in memory (generating it is
the same work on either side). Replays are ~all of the verifier's time, so the ratio is about
(sampled + 1) * 20 / steps; the line under the table shows it with 2 sampled segments.
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
from worker.tasks.train import train_and_deliver
from worker.train.data import ClassificationData
from worker.train.spec import load_train_spec
from worker.verify import verify_render_dir, verify_train

RENDER_SAMPLES = 16
TRAIN_SAMPLES = 2  # beacon-sampled segments, besides the final one (`neuro task verify`'s default)
TRAIN_SAMPLES_NOTED = 1  # the cheaper budget, printed beside it
RENDER_GOAL = 0.05
TRAIN_GOAL = 0.25


FILE_CHECKS: list[str] = []  # one line per render job: what the full-file check cost
TRAIN_NOTES: list[str] = []  # the train verifier with more sampled segments


def render_cost(kind: str, items: int, folder: Path) -> tuple[float, float]:
    """(worker seconds, verifier seconds) for one render job of ``items`` items."""
    from worker.render.delivered import open_render_artifact

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
    began = time.process_time()
    open_render_artifact(out)
    files = time.process_time() - began
    FILE_CHECKS.append(
        f"  {kind}: full-file check {files:.3f} s = {files / worker:.4f} of the worker, "
        f"{verdict.files} files, {verdict.size / 1e6:.1f} MB, {verdict.size / 1e6 / files:.0f} MB/s")
    return worker, verifier


def train_cost(steps: int, folder: Path) -> tuple[float, float]:
    """(worker seconds, verifier seconds) for a CNN run of ``steps`` steps on generated digits."""
    from worker.realdata import load_split
    from worker.render.digits import DigitsSpec, render_digits

    images, labels = render_digits(DigitsSpec(count=4096), 1, 0, 4096)
    data = ClassificationData.from_arrays(images, labels)
    tuning = load_split().tuning
    validation = ClassificationData.from_arrays(tuning.images, tuning.labels)
    spec = load_train_spec({
        "model": {"name": "cnn", "width": 16, "depth": 3}, "steps": steps, "batch_size": 64,
        "lr": 2e-3, "threads": 1, "seed": 1,
    })
    device = select_device(threads=1, prefer_cuda=False)
    out = folder / "train"
    out.mkdir()
    began = time.process_time()
    train_and_deliver(spec, data, validation, out, device, lambda _event: None)
    worker = time.process_time() - began
    began = time.process_time()
    verdict = verify_train(out, spec, lambda: (data, validation), b"a later block hash",
                           TRAIN_SAMPLES)
    verifier = time.process_time() - began
    assert verdict.ok, verdict.describe()
    began = time.process_time()
    wider = verify_train(out, spec, lambda: (data, validation), b"a later block hash",
                         TRAIN_SAMPLES_NOTED)
    noted = time.process_time() - began
    assert wider.ok, wider.describe()
    TRAIN_NOTES.append(f"train verifier with final+{TRAIN_SAMPLES_NOTED} sampled segments: "
                       f"{noted:.3f} s = {noted / worker:.3f} of the worker")
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
            (f"train cnn {steps} steps, final+{TRAIN_SAMPLES} of 20", train_cost(steps, folder),
             TRAIN_GOAL),
        ]
    for label, (worker, verifier), goal in rows:
        ratio = verifier / worker
        mark = "ok" if ratio <= goal else "MISS"
        print(f"{label:<34} {worker:>9.2f} {verifier:>11.3f} {ratio:>7.3f} {goal:>6.2f} {mark}")
    print("\n".join(["render verifiers' full-file check (included above):", *FILE_CHECKS]))
    print("\n".join(TRAIN_NOTES))


if __name__ == "__main__":
    main()
