"""Does one proof-of-learning segment replay bit-identically? Measure it.

The choice between the two ways of settling a training dispute rests on this: if one segment
(checkpoint k -> checkpoint k+1) re-trained by anybody gives the very bytes the worker committed
to, a fraud proof is one segment re-run by validators at a bounded cost, as a render challenge
re-renders one item; if not, somebody has to judge a distance against a tolerance.

`measure()` trains a small CNN on rendered digits once, with PoL checkpoints (the worker's own
`train`, on the deterministic CPU path of `worker.device.select_device`: deterministic
algorithms on, thread count fixed and logged), then replays chosen segments with the verifier's
code path (`Trainer` from the start checkpoint, as `replay.replay_segment` does) under several
configurations:
- in this process, with the logged thread count and with others;
- in a fresh Python process (`python -m worker.train.determinism replay-child ...`) with the
  logged thread count and with others;
- in fresh processes whose kernels are restricted to a narrower vector ISA (AVX2, or the
  baseline without explicit vector kernels) through ``ATEN_CPU_CAPABILITY`` (ATen's dispatch),
  ``ONEDNN_MAX_CPU_ISA`` (oneDNN convolutions) and ``MKL_ENABLE_INSTRUCTIONS`` (MKL GEMMs): the
  stand-in for another machine, since that is what differs between x86 CPUs running one build.

Each replayed end state (weights, BatchNorm buffers, optimizer moments) is written as the worker
writes a checkpoint and compared with the recorded checkpoint: the raw bytes of its tensors
(`tensor_bytes_hash`; the file's own bytes are no test, safetensors orders the metadata keys
differently from one write to the next), the canonical digests of the log (`state.weights_digest`), the largest absolute difference of any
element, and the relative L2 distance the verifier judges (`replay.DEFAULT_TOLERANCE`). The
nearest cheat (the segment's last step skipped) is measured beside it.

    .venv/bin/python -m worker.train.determinism [--steps 60] [--threads 1]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import save_file

from worker.device import DeviceInfo, select_device
from worker.errors import VerificationFailed
from worker.train.binding import check_log_binding
from worker.train.data import ClassificationData
from worker.train.loop import Progress, Trainer, train
from worker.train.pol import PolLog, read_checkpoint, read_log
from worker.train.replay import DEFAULT_TOLERANCE
from worker.train.spec import TrainSpec, load_train_spec
from worker.train.state import (
    model_tensors,
    relative_distance,
    split_checkpoint,
    weights_digest,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
CHILD_COMMAND = "replay-child"
DATA_FILE = "data.npz"

# the stand-ins for other x86 machines running the same torch build: narrower kernels throughout
ISA_ENV: dict[str, dict[str, str]] = {
    "avx2": {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2",
             "MKL_ENABLE_INSTRUCTIONS": "AVX2"},
    "baseline": {"ATEN_CPU_CAPABILITY": "default", "ONEDNN_MAX_CPU_ISA": "SSE41",
                 "MKL_ENABLE_INSTRUCTIONS": "SSE4_2"},
}

# a tiny CNN on 28x28 rendered digits: 3 segments of 20 steps, a few seconds of one core
DEFAULT_SPEC: dict[str, Any] = {
    "model": {"name": "cnn", "image_size": 28, "num_classes": 10, "width": 8, "depth": 2},
    "optimizer": "adamw", "lr": 3e-3, "schedule": "cosine", "batch_size": 32, "steps": 60,
    "augment": {"shift": 2}, "seed": 5, "threads": 1, "pol_interval": 20, "log_every": 1,
}
DEFAULT_DIGITS = 1024


@dataclass(frozen=True, slots=True)
class Replayer:
    """Where a segment is replayed: this process or a fresh one, its thread count, and the
    kernel ISA it is restricted to (a key of `ISA_ENV`; ``None``: the machine's best)."""

    threads: int
    fresh_process: bool
    isa: str | None = None

    @property
    def name(self) -> str:
        where = "fresh process" if self.fresh_process else "same process"
        return f"{where}, {self.threads} thread{'s' if self.threads > 1 else ''}" + (
            f", {self.isa} kernels" if self.isa else "")


def default_replayers(logged_threads: int) -> list[Replayer]:
    """(a) this process, (b) a fresh process, (c) fresh processes with other thread counts,
    (d) fresh processes on narrower kernels (another machine's), all with the logged count but
    (c)."""
    others = [t for t in (1, 2, 4) if t != logged_threads][:2]
    return [
        Replayer(logged_threads, fresh_process=False),
        *[Replayer(t, fresh_process=False) for t in others[:1]],
        Replayer(logged_threads, fresh_process=True),
        *[Replayer(t, fresh_process=True) for t in others],
        *[Replayer(logged_threads, fresh_process=True, isa=isa) for isa in ISA_ENV],
    ]


@dataclass(frozen=True, slots=True)
class SegmentReplay:
    """One replay of segment start..end compared with the recorded end checkpoint."""

    replayer: Replayer
    start: int
    end: int
    cpu_capability: str  # what torch in the replaying process dispatched to
    bytes_identical: bool  # the replayed file's tensor table and raw data == the recorded file's
    state_identical: bool  # canonical digest of weights + buffers + optimizer state == record's
    weights_identical: bool  # canonical digest of weights + buffers == record's weights_hash
    max_abs_diff: float  # largest |replayed - recorded| over every float element of the state
    weights_max_abs_diff: float  # the same over the weights and buffers only
    distance: float  # relative L2 of the weights, what `replay.replay_segment` judges
    seconds: float  # wall time of the replayed steps (`Trainer.run`), in the replaying process
    cpu_seconds: float  # process CPU time of the same

    @property
    def identical(self) -> bool:
        return self.bytes_identical and self.state_identical and self.weights_identical

    def accepted(self, tolerance: float = DEFAULT_TOLERANCE) -> bool:
        return self.distance <= tolerance


@dataclass(frozen=True, slots=True)
class DeterminismReport:
    spec: TrainSpec
    dataset_size: int
    threads: int  # the thread count the log records
    cpu_capability: str  # the ISA the log records
    torch_version: str
    train_seconds: float  # the whole run, wall
    segment_seconds: dict[int, float]  # per segment start: its share of the run, wall
    segment_cpu_seconds: dict[int, float]  # the same in process CPU time
    replays: tuple[SegmentReplay, ...]
    skipped_step: dict[int, float] = field(default_factory=dict)  # start -> distance of the cheat
    tolerance: float = DEFAULT_TOLERANCE

    def replays_by(self, replayer: Replayer) -> list[SegmentReplay]:
        return [r for r in self.replays if r.replayer == replayer]

    def identical(self, replayer: Replayer) -> bool:
        return all(r.identical for r in self.replays_by(replayer))

    def describe(self) -> str:
        lines = [
            (f"log: {self.spec.model.name} width {self.spec.model.width}, batch "
            f"{self.spec.batch_size}, {self.spec.total_steps(self.dataset_size)} steps, "
            f"segments of {self.spec.pol_interval}; trained with {self.threads} thread(s) on "
            f"{self.cpu_capability}, torch {self.torch_version}"),
            (f"  {'replay':<52} {'seg':>7} {'bytes':>5} {'state':>5} {'max|d|':>9} "
            f"{'rel L2':>9} {'verdict':>7} {'replay s':>8} {'x train':>7}"),
        ]
        for r in self.replays:
            ratio = r.seconds / max(self.segment_seconds[r.start], 1e-9)
            lines.append(
                f"  {r.replayer.name + ' (' + r.cpu_capability + ')':<52} "
                f"{f'{r.start}-{r.end}':>7} {_yes(r.bytes_identical):>5} "
                f"{_yes(r.state_identical):>5} {r.max_abs_diff:>9.3g} {r.distance:>9.3g} "
                f"{'accept' if r.accepted(self.tolerance) else 'REJECT':>7} "
                f"{r.seconds:>8.3f} {ratio:>7.2f}")
        for start, distance in sorted(self.skipped_step.items()):
            lines.append(f"  nearest cheat, last step of segment {start}- skipped: rel L2 "
                         f"{distance:.3g} (tolerance {self.tolerance:g})")
        return "\n".join(lines)


def _yes(flag: bool) -> str:
    return "yes" if flag else "NO"


def digits_data(count: int = DEFAULT_DIGITS, seed: int = 1) -> ClassificationData:
    """`count` rendered 28x28 digits (the `digits` source's renderer)."""
    from worker.render.digits import DigitsSpec, render_digits

    images, labels = render_digits(DigitsSpec(count=count), seed, 0, count)
    return ClassificationData.from_arrays(images, labels)


def train_logged(spec: TrainSpec, data: ClassificationData, pol_dir: Path
                 ) -> tuple[PolLog, float, dict[int, float], dict[int, float]]:
    """Train with PoL on the deterministic CPU path; (log, seconds of the run's steps, and per
    segment start its steps' wall and CPU seconds).

    Segment times come from the progress events (one every ``log_every`` steps, which read the
    loss back): the rate between the events inside a segment, times its length. The first event
    comes after step 1, so the first segment's time leaves out model building and the step-0
    checkpoint, as a replay's time does. With ``log_every`` > 1 a segment may hold fewer than
    two events; it then gets the run's mean rate.
    """
    marks: list[tuple[int, float, float]] = []

    def on_progress(event: Progress) -> None:
        marks.append((event.step, time.perf_counter(), time.process_time()))

    device = select_device(threads=spec.threads, precision=spec.precision, prefer_cuda=False)
    cpu_began = time.process_time()
    result = train(spec, data, device=device, pol_dir=pol_dir, workers=0,
                   on_progress=on_progress)
    assert result.pol is not None
    mean_wall = result.seconds / max(result.steps, 1)
    mean_cpu = (time.process_time() - cpu_began) / max(result.steps, 1)
    wall: dict[int, float] = {}
    cpu: dict[int, float] = {}
    for start, end in result.pol.segments():
        inside = [m for m in marks if start <= m[0] <= end]
        if len(inside) >= 2 and inside[-1][0] > inside[0][0]:
            first, last = inside[0], inside[-1]
            share = (end - start) / (last[0] - first[0])
            wall[start] = (last[1] - first[1]) * share
            cpu[start] = (last[2] - first[2]) * share
        else:
            wall[start], cpu[start] = mean_wall * (end - start), mean_cpu * (end - start)
    return result.pol, result.seconds, wall, cpu


def replay_state(log: PolLog, data: ClassificationData, start: int, end: int,
                 device: DeviceInfo) -> tuple[dict[str, torch.Tensor], float, float]:
    """Re-train steps start..end-1 from checkpoint `start` exactly as `replay.replay_segment`
    does (same checks, same `Trainer`); (full end state, wall seconds, CPU seconds of the steps)."""
    spec = check_log_binding(log, data)
    begin_state = read_checkpoint(log.checkpoint_path(start))
    if weights_digest(begin_state).hex() != log.record(start).state_hash:
        raise VerificationFailed(f"checkpoint {start} does not match its record",
                                 reason="pol-checkpoint-hash")
    trainer = Trainer(spec, data, device, workers=0)
    scheduled = [trainer.batches.indices(s).tolist() for s in range(start, end)]
    if scheduled != log.record(end).batches:
        raise VerificationFailed(f"recorded batches of steps {start}..{end} are not the seed's",
                                 reason="pol-batch-order")
    trainer.load_state(begin_state)
    wall, cpu = time.perf_counter(), time.process_time()
    trainer.run(start, end)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return trainer.state(), wall, cpu


def save_like_recorder(state: dict[str, torch.Tensor], path: Path, step: int) -> None:
    """Write `state` as `pol.PolRecorder` writes a checkpoint (same metadata), so equal states
    give equal files."""
    model_part, _ = split_checkpoint(state)
    save_file(state, str(path), metadata={"step": str(step),
                                          "weights_hash": weights_digest(model_part).hex()})


def _max_abs(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    worst = 0.0
    for name in sorted(b):
        x, y = a[name], b[name]
        if x.is_floating_point():
            worst = max(worst, float((x.double() - y.double()).abs().max()) if x.numel() else 0.0)
        elif not torch.equal(x, y):
            worst = float("inf")
    return worst


def compare(log: PolLog, replayed_file: Path, start: int, end: int, replayer: Replayer,
            cpu_capability: str, seconds: float, cpu_seconds: float) -> SegmentReplay:
    """Hold a replayed end checkpoint file against the recorded one."""
    recorded_file = log.checkpoint_path(end)
    got, want = read_checkpoint(replayed_file), read_checkpoint(recorded_file)
    got_model, _ = split_checkpoint(got)
    want_model, _ = split_checkpoint(want)
    record = log.record(end)
    return SegmentReplay(
        replayer=replayer, start=start, end=end, cpu_capability=cpu_capability,
        bytes_identical=tensor_bytes_hash(replayed_file) == tensor_bytes_hash(recorded_file),
        state_identical=weights_digest(got).hex() == record.state_hash,
        weights_identical=weights_digest(got_model).hex() == record.weights_hash,
        max_abs_diff=_max_abs(got, want), weights_max_abs_diff=_max_abs(got_model, want_model),
        distance=relative_distance(got_model, want_model),
        seconds=seconds, cpu_seconds=cpu_seconds,
    )


def tensor_bytes_hash(path: Path) -> str:
    """sha256 over a safetensors file's tensor table (names, dtypes, shapes, offsets, sorted)
    and its raw data section: the file's bytes less the metadata, whose key order safetensors
    does not fix (a Rust hash map: two writes of the same checkpoint may order it differently)."""
    raw = path.read_bytes()
    size = int.from_bytes(raw[:8], "little")
    header = json.loads(raw[8:8 + size])
    header.pop("__metadata__", None)
    digest = hashlib.sha256(json.dumps(header, sort_keys=True).encode())
    digest.update(raw[8 + size:])
    return digest.hexdigest()


def save_data(data: ClassificationData, path: Path) -> None:
    np.savez(path, images=data.images, labels=data.labels)


def load_data(path: Path) -> ClassificationData:
    with np.load(path) as arrays:
        return ClassificationData.from_arrays(arrays["images"], arrays["labels"])


def replay_in_process(log: PolLog, data: ClassificationData, segments: list[tuple[int, int]],
                      replayer: Replayer, out: Path) -> list[SegmentReplay]:
    device = select_device(threads=replayer.threads, prefer_cuda=False)
    results = []
    for start, end in segments:
        state, wall, cpu = replay_state(log, data, start, end, device)
        path = out / f"replay-{start}-{end}.safetensors"
        save_like_recorder(state, path, end)
        results.append(compare(log, path, start, end, replayer,
                               torch.backends.cpu.get_cpu_capability(), wall, cpu))
    return results


def replay_in_subprocess(log: PolLog, data_file: Path, segments: list[tuple[int, int]],
                         replayer: Replayer, out: Path, timeout: float = 300) -> list[SegmentReplay]:
    """Replay in a fresh interpreter (`_child`), with the replayer's ISA environment."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA", "MKL_ENABLE_INSTRUCTIONS")}
    env.update(ISA_ENV.get(replayer.isa or "", {}))
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    out.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "worker.train.determinism", CHILD_COMMAND,
               "--pol", str(log.directory), "--data", str(data_file), "--out", str(out),
               "--threads", str(replayer.threads),
               "--segments", ",".join(f"{s}:{e}" for s, e in segments)]
    done = subprocess.run(command, cwd=REPO_ROOT, env=env, capture_output=True, text=True,
                          timeout=timeout, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"replay process failed ({done.returncode}): {done.stderr[-2000:]}")
    body = json.loads(done.stdout.strip().splitlines()[-1])
    return [compare(log, out / f"replay-{s}-{e}.safetensors", s, e, replayer,
                    body["cpu_capability"], *body["seconds"][f"{s}:{e}"])
            for s, e in segments]


def skipped_step_distance(log: PolLog, data: ClassificationData, start: int, end: int) -> float:
    """Relative L2 of the nearest cheat: the segment trained without its last step, on the
    logged thread count (as `calibrate` forges it)."""
    spec = check_log_binding(log, data)
    trainer = Trainer(spec, data, select_device(threads=int(log.header["threads"]),
                                                prefer_cuda=False), workers=0)
    trainer.load_state(read_checkpoint(log.checkpoint_path(start)))
    trainer.run(start, end - 1)
    claimed, _ = split_checkpoint(read_checkpoint(log.checkpoint_path(end)))
    return relative_distance(model_tensors(trainer.model), claimed)


def measure(spec: TrainSpec | dict[str, Any] | None = None, data: ClassificationData | None = None,
            *, replayers: list[Replayer] | None = None,
            segments: list[tuple[int, int]] | None = None,
            workdir: Path | None = None) -> DeterminismReport:
    """Train `spec` on `data` once with PoL, then replay `segments` (default: the first, from
    the random initialisation, and the second) under each of `replayers` (default:
    `default_replayers`) and compare bit for bit with the recorded checkpoints."""
    spec = load_train_spec(spec if spec is not None else DEFAULT_SPEC)
    data = data if data is not None else digits_data()
    with tempfile.TemporaryDirectory() as tmp:
        root = workdir or Path(tmp)
        log, seconds, seg_wall, seg_cpu = train_logged(spec, data, root / "pol")
        segments = segments or log.segments()[:2]
        data_file = root / DATA_FILE
        save_data(data, data_file)
        replays: list[SegmentReplay] = []
        for i, replayer in enumerate(replayers or default_replayers(spec.threads)):
            out = root / f"replay{i}"
            out.mkdir(parents=True, exist_ok=True)
            if replayer.fresh_process:
                replays += replay_in_subprocess(log, data_file, segments, replayer, out)
            else:
                if replayer.isa:
                    raise ValueError("an ISA restriction needs a fresh process")
                replays += replay_in_process(log, data, segments, replayer, out)
        cheats = {s: skipped_step_distance(log, data, s, e) for s, e in segments if e - s > 1}
        torch.set_num_threads(spec.threads)
        return DeterminismReport(
            spec=spec, dataset_size=len(data), threads=int(log.header["threads"]),
            cpu_capability=str(log.header["cpu_capability"]), torch_version=torch.__version__,
            train_seconds=seconds, segment_seconds=seg_wall, segment_cpu_seconds=seg_cpu,
            replays=tuple(replays), skipped_step=cheats)


def _child(argv: list[str]) -> None:
    """The fresh process's side: replay the segments, write each end state as the recorder
    does, print one JSON line (the ISA torch dispatched to, seconds per segment)."""
    parser = argparse.ArgumentParser(prog=f"determinism {CHILD_COMMAND}")
    parser.add_argument("--pol", type=Path, required=True)
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--threads", type=int, required=True)
    parser.add_argument("--segments", required=True, help="start:end,start:end")
    args = parser.parse_args(argv)
    log, data = read_log(args.pol), load_data(args.data)
    device = select_device(threads=args.threads, prefer_cuda=False)
    seconds: dict[str, tuple[float, float]] = {}
    for pair in args.segments.split(","):
        start, end = (int(v) for v in pair.split(":"))
        state, wall, cpu = replay_state(log, data, start, end, device)
        save_like_recorder(state, args.out / f"replay-{start}-{end}.safetensors", end)
        seconds[pair] = (wall, cpu)
    print(json.dumps({"cpu_capability": torch.backends.cpu.get_cpu_capability(),
                      "threads": torch.get_num_threads(), "seconds": seconds}))


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == [CHILD_COMMAND]:
        _child(argv[1:])
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=DEFAULT_SPEC["steps"])
    parser.add_argument("--threads", type=int, default=DEFAULT_SPEC["threads"],
                        help="the thread count the worker trains (and logs) with")
    args = parser.parse_args(argv)
    report = measure({**DEFAULT_SPEC, "steps": args.steps, "threads": args.threads})
    print(report.describe())


if __name__ == "__main__":
    main()

