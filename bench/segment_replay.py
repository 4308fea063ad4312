"""Does one proof-of-learning segment replay bit-identically, and what does one replay cost?

The worker trains a tiny CNN (28x28 rendered digits, width 8, depth 2, batch 32, AdamW, cosine,
60 steps, checkpoints every 20) on the deterministic CPU path with 1 thread; then the first
segment (from the random initialisation) and the second are replayed with the verifier's code
(`worker.train.determinism.replay_state`, the path of `replay.replay_segment`) in this process and
in fresh processes, with 1, 2 and 4 threads, and with the kernels restricted to AVX2 and to the
baseline ISA (the stand-ins for other x86 machines). Each replayed end state is compared with the
recorded checkpoint bit for bit (raw tensor bytes and the log's canonical digests), and by the
largest absolute difference and the relative L2 distance the verifier judges
(`replay.DEFAULT_TOLERANCE`); the nearest cheat (the last step skipped) is measured beside it.

Cost: each replay's time is printed with its ratio to the same segment's own training time,
measured in the same run (the reference); times are process CPU seconds of the replaying process
(a shared 2-core machine moves wall time by 10-80%; CPU time of several threads adds up, so the
ratio of a 2- or 4-thread replay is its total CPU, not its latency). Last, the bound a challenge
would carry: one 20-step segment of the example job `worker/examples/cnn_train.json` (width 16,
depth 3, batch 64): its analytic FLOPs (`worker.train.flops`, what the chain prices) and the CPU
seconds of replaying it with 1 thread, against the whole job.

    .venv/bin/python bench/segment_replay.py [--quick]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from chain.compute_units import training_units
from worker.device import select_device
from worker.train.determinism import (
    DEFAULT_SPEC,
    DeterminismReport,
    default_replayers,
    digits_data,
    measure,
    replay_state,
    train_logged,
)
from worker.train.flops import forward_flops
from worker.train.spec import CnnSpec, load_train_spec

EXAMPLE = Path(__file__).resolve().parent.parent / "worker" / "examples" / "cnn_train.json"


def print_report(report: DeterminismReport) -> None:
    spec, model = report.spec, report.spec.model
    assert isinstance(model, CnnSpec)
    print(f"log: cnn {model.image_size}px width {model.width} depth {model.depth}, "
          f"batch {spec.batch_size}, {spec.total_steps(report.dataset_size)} steps, segments of "
          f"{spec.pol_interval}; trained with {report.threads} thread on {report.cpu_capability}, "
          f"torch {report.torch_version}")
    print(f"  {'replayed in':<52} {'seg':>6} {'bits':>5} {'max|diff|':>10} {'rel L2':>9} "
          f"{'verdict':>7} {'CPU s':>7} {'x train':>8}")
    for r in report.replays:
        reference = report.segment_cpu_seconds[r.start]
        where = f"{r.replayer.name} ({r.cpu_capability})"
        print(f"  {where:<52} {f'{r.start}-{r.end}':>6} "
              f"{'same' if r.identical else 'DIFF':>5} {r.max_abs_diff:>10.3g} "
              f"{r.distance:>9.3g} {'accept' if r.accepted(report.tolerance) else 'REJECT':>7} "
              f"{r.cpu_seconds:>7.3f} {r.cpu_seconds / max(reference, 1e-9):>8.2f}")
    for start in sorted(report.segment_cpu_seconds):
        print(f"  reference: segment {start}- trained in {report.segment_cpu_seconds[start]:.3f} "
              f"CPU s ({report.segment_seconds[start]:.3f} s wall)")
    for start, distance in sorted(report.skipped_step.items()):
        print(f"  nearest cheat, segment {start}- without its last step: rel L2 {distance:.3g} "
              f"= {distance / report.tolerance:.1f}x the tolerance {report.tolerance:g}")
    groups = {
        "same thread count and ISA (this or a fresh process)": [
            r for r in report.replays if r.replayer.threads == report.threads
            and r.cpu_capability == report.cpu_capability],
        "other thread count": [r for r in report.replays if r.replayer.threads != report.threads],
        "other ISA (another machine's kernels)": [
            r for r in report.replays if r.cpu_capability != report.cpu_capability],
    }
    for label, rows in groups.items():
        if rows:
            same = all(r.identical for r in rows)
            worst = max(r.max_abs_diff for r in rows)
            print(f"  {label:<52} bit-identical: {'yes' if same else 'NO'}  "
                  f"(max |diff| {worst:.3g}, max rel L2 {max(r.distance for r in rows):.3g})")


def example_segment(digits: int = 1280) -> None:
    """FLOPs and 1-thread CPU seconds of one segment of the example job."""
    raw = json.loads(EXAMPLE.read_text())
    job = load_train_spec(raw["train"])
    assert isinstance(job.model, CnnSpec)
    job_items = int(raw["data"]["spec"]["count"])
    total = job.total_steps(job_items)
    segments = -(-total // job.pol_interval)
    # the same model, batch and thread count over fewer rendered digits: a step costs the same
    short = load_train_spec({**raw["train"], "epochs": None, "steps": 2 * job.pol_interval,
                             "log_every": 1})
    data = digits_data(digits)
    with tempfile.TemporaryDirectory() as tmp:
        log, _, _, cpu = train_logged(short, data, Path(tmp) / "pol")
        start, end = log.segments()[1]
        device = select_device(threads=short.threads, prefer_cuda=False)
        began = time.process_time()
        replay_state(log, data, start, end, device)
        replay = time.process_time() - began  # setup (model, batches, checkpoint) included
    flops = training_units(forward_flops(job.model), job.batch_size, job.pol_interval)
    print(f"example job {EXAMPLE.name}: cnn width {job.model.width} depth {job.model.depth}, "
          f"batch {job.batch_size}, {total} steps over {job_items} digits = {segments} segments of "
          f"{job.pol_interval}, {job.threads} thread")
    print(f"  one segment: {flops / 1e9:.2f} GFLOP; replayed in {replay:.3f} CPU s (setup and "
          f"checkpoint load included; its training took {cpu[start]:.3f} s: "
          f"x{replay / max(cpu[start], 1e-9):.2f}), {flops / 1e9 / replay:.1f} GFLOP/s")
    print(f"  the whole job: {flops * total / job.pol_interval / 1e9:.0f} GFLOP, about "
          f"{cpu[start] * total / job.pol_interval:.1f} CPU s; a one-segment challenge costs "
          f"{job.pol_interval / total:.3f} of it")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="only 1 and 2 threads in this and a fresh process, no ISA stand-ins")
    args = parser.parse_args()
    replayers = default_replayers(DEFAULT_SPEC["threads"])
    if args.quick:
        replayers = [r for r in replayers if r.isa is None and r.threads <= 2]
    wall = time.perf_counter()
    print_report(measure(replayers=replayers))
    example_segment()
    print(f"({time.perf_counter() - wall:.0f} s wall in all)")


if __name__ == "__main__":
    main()
