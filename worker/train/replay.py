"""Proof-of-learning verification: replay sampled segments and compare with the claimed weights.

Checks run cheapest first (as block validation does): the log matches the spec and the data and
covers the whole run (`worker.train.binding`); the start checkpoint matches its recorded digest;
the recorded batches are the ones the seed schedules; only then the segment is re-trained from
the start checkpoint and the result compared with the end checkpoint by relative L2 distance of
all float tensors.

Which segments: the final one always (it ties the last checkpoint, hence the delivered weights,
to training, and its replay recomputes the claimed final loss), plus `count` others picked by a
beacon the worker could not know. A worker who forged one of n segments other than the final
escapes with probability 1 - count/(n-1).

The threshold `DEFAULT_TOLERANCE` is calibrated on this code (`python -m worker.train.calibrate`:
20-step segments of the zoo's CNN and CenterNet, AdamW and SGD). An honest replay with the
logged thread count is bit-exact (distance 0), and that is what a verifier does by default
(`replay_device`). With another thread count (the stand-in for another CPU) segments after the
first drift by float rounding, at most 5.8e-4 measured; the nearest dishonest claim (the last
step of a segment skipped) lands at 5.0e-3 or more, swapped data or skipped halves at 3e-2 or
more. 1.7e-3 is the geometric midpoint (x2.9 either side). Two limits: drift grows with segment
length (~1e-2 after 80 steps), hence the 20-step default interval; and the first segment, from
the random initialisation, drifts up to 8e-2 under another thread count (AdamW's first updates
are lr * sign(g), which turns rounding into whole steps), so only a same-thread-count replay
judges it. Replays on another device kind (a CUDA run checked on a CPU) drift more: verify those on
the same kind of device the log names.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from worker.device import DeviceInfo, select_device
from worker.errors import VerificationFailed, WorkerError
from worker.train.binding import check_log_binding, check_log_coverage
from worker.train.loop import LossMeter, TrainData, Trainer
from worker.train.pol import PolLog, read_checkpoint
from worker.train.spec import TrainSpec, load_train_spec
from worker.train.state import model_tensors, relative_distance, split_checkpoint, weights_digest

DEFAULT_TOLERANCE = 1.7e-3
DEFAULT_SAMPLED_SEGMENTS = 2
SAMPLE_PERSON = b"neuro-pol-pick"


@dataclass(frozen=True, slots=True)
class SegmentCheck:
    start: int
    end: int
    distance: float
    accepted: bool


@dataclass(frozen=True, slots=True)
class PolReplay:
    """The replayed segments (sampled and final, by start step) and the final segment's mean
    training loss, which the verifier holds against the claimed ``final_loss``."""

    checks: tuple[SegmentCheck, ...]
    final_loss: float | None


class SegmentRejected(VerificationFailed):
    """A segment that does not replay to its end checkpoint, or whose inputs are forged.

    Carries the segment and the checks that passed before it, for a verdict to show.
    """

    def __init__(self, message: str, *, reason: str, segment: tuple[int, int],
                 passed: tuple[SegmentCheck, ...], distance: float | None = None) -> None:
        super().__init__(message, reason=reason)
        self.segment, self.passed, self.distance = segment, passed, distance


def sample_segments(log: PolLog, beacon: bytes, count: int = DEFAULT_SAMPLED_SEGMENTS
                    ) -> list[tuple[int, int]]:
    """`count` distinct segments other than the final one, picked by a beacon the worker could
    not know (a later block hash)."""
    segments = log.segments()[:-1]

    def rank(seg: tuple[int, int]) -> bytes:
        key = beacon + seg[0].to_bytes(8, "little")
        return hashlib.blake2b(key, digest_size=16, person=SAMPLE_PERSON).digest()

    return sorted(sorted(segments, key=rank)[:count])


def segments_to_replay(log: PolLog, beacon: bytes, count: int = DEFAULT_SAMPLED_SEGMENTS
                       ) -> list[tuple[int, int]]:
    """The beacon-sampled segments and the final one, by start step."""
    return sample_segments(log, beacon, count) + log.segments()[-1:]


def replay_device(log: PolLog) -> DeviceInfo:
    """The device kind, precision and thread count the log was trained with.

    A CUDA run (bf16/fp16, non-deterministic kernels) replayed on a CPU in float32 drifts far
    beyond the CPU-calibrated tolerance, so a verifier without a GPU declines instead of judging.
    """
    header = log.header
    device = select_device(threads=int(header["threads"]), precision=header["precision"],
                           prefer_cuda=header["device"] == "cuda")
    if device.kind != header["device"]:
        raise WorkerError(f"this log was trained on {header['device']}; replay needs the same kind",
                          reason="pol-device-unavailable")
    return device


def replay_segment(log: PolLog, data: TrainData, start: int, end: int, *,
                   tolerance: float = DEFAULT_TOLERANCE, device: DeviceInfo | None = None,
                   check_binding: bool = True, meter: LossMeter | None = None) -> SegmentCheck:
    """Re-train steps start..end-1 from checkpoint `start`; compare with checkpoint `end`.

    Raises `VerificationFailed` for a tampered log or checkpoint (a proof, not a judgement);
    returns the distance with `accepted` set by `tolerance` otherwise. `meter` sees each
    replayed step's loss.
    """
    if check_binding:
        check_log_binding(log, data)
    spec = load_train_spec(log.header["spec"])
    first, last = log.record(start), log.record(end)
    begin_state = read_checkpoint(log.checkpoint_path(start))
    if weights_digest(begin_state).hex() != first.state_hash:
        raise VerificationFailed(f"checkpoint {start} does not match its record",
                                 reason="pol-checkpoint-hash")
    claimed_state = read_checkpoint(log.checkpoint_path(end))
    claimed, _ = split_checkpoint(claimed_state)
    if weights_digest(claimed).hex() != last.weights_hash:
        raise VerificationFailed(f"checkpoint {end} does not match its record",
                                 reason="pol-checkpoint-hash")
    device = device or replay_device(log)
    trainer = Trainer(spec, data, device)
    scheduled = [trainer.batches.indices(s).tolist() for s in range(start, end)]
    if scheduled != last.batches:
        raise VerificationFailed(f"recorded batches of steps {start}..{end} are not the seed's",
                                 reason="pol-batch-order")
    trainer.load_state(begin_state)
    trainer.run(start, end, on_step=meter)
    distance = relative_distance(model_tensors(trainer.model), claimed)
    return SegmentCheck(start=start, end=end, distance=distance, accepted=distance <= tolerance)


def verify_pol(log: PolLog, data: TrainData, beacon: bytes, *,
               count: int = DEFAULT_SAMPLED_SEGMENTS, tolerance: float = DEFAULT_TOLERANCE,
               device: DeviceInfo | None = None, spec: TrainSpec | None = None,
               check_binding: bool = True) -> PolReplay:
    """Check the log's binding and coverage, then replay the final segment and `count`
    beacon-sampled others; raise `VerificationFailed` on the first rejection (`SegmentRejected`
    for a segment). ``spec`` is the job's spec, which the log must name; ``check_binding=False``
    when the caller has run the `worker.train.binding` checks already."""
    if check_binding:
        check_log_coverage(log, check_log_binding(log, data, spec), len(data))
    final_start, _ = log.segments()[-1]
    meter = LossMeter(after=final_start)
    checks: list[SegmentCheck] = []
    for start, end in segments_to_replay(log, beacon, count):
        try:
            check = replay_segment(log, data, start, end, tolerance=tolerance, device=device,
                                   check_binding=False,
                                   meter=meter if start == final_start else None)
        except VerificationFailed as err:
            raise SegmentRejected(f"segment {start}..{end}: {err}", reason=err.reason,
                                  segment=(start, end), passed=tuple(checks)) from None
        if not check.accepted:
            raise SegmentRejected(
                f"segment {start}..{end} replays {check.distance:.3g} away (tolerance {tolerance:g})",
                reason="pol-distance", segment=(start, end), passed=tuple(checks),
                distance=check.distance)
        checks.append(check)
    return PolReplay(checks=tuple(checks), final_loss=meter.mean())
