"""Proof-of-learning verification: replay sampled segments and compare with the claimed weights.

Checks run cheapest first (as block validation does): the log matches the spec and the data;
the start checkpoint matches its recorded digest; the recorded batches are the ones the seed
schedules; only then the segment is re-trained from the start checkpoint and the result compared
with the end checkpoint by relative L2 distance of all float tensors.

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
from worker.train.loop import TrainData, Trainer
from worker.train.pol import PolLog, data_digest, read_checkpoint
from worker.train.spec import load_train_spec
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


def sample_segments(log: PolLog, beacon: bytes, count: int = DEFAULT_SAMPLED_SEGMENTS
                    ) -> list[tuple[int, int]]:
    """`count` distinct segments picked by a beacon the worker could not know (a later block hash)."""
    segments = log.segments()

    def rank(seg: tuple[int, int]) -> bytes:
        key = beacon + seg[0].to_bytes(8, "little")
        return hashlib.blake2b(key, digest_size=16, person=SAMPLE_PERSON).digest()

    return sorted(sorted(segments, key=rank)[:count])


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


def check_log_binding(log: PolLog, data: TrainData) -> None:
    spec = load_train_spec(log.header["spec"])
    if spec.spec_hash().hex() != log.header["spec_hash"]:
        raise VerificationFailed("log spec does not match its spec hash", reason="pol-spec-mismatch")
    if data_digest(data) != log.header["data_digest"]:
        raise VerificationFailed("training data differs from the data the log names",
                                 reason="pol-data-mismatch")


def replay_segment(log: PolLog, data: TrainData, start: int, end: int, *,
                   tolerance: float = DEFAULT_TOLERANCE, device: DeviceInfo | None = None,
                   check_binding: bool = True) -> SegmentCheck:
    """Re-train steps start..end-1 from checkpoint `start`; compare with checkpoint `end`.

    Raises `VerificationFailed` for a tampered log or checkpoint (a proof, not a judgement);
    returns the distance with `accepted` set by `tolerance` otherwise.
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
    trainer.run(start, end)
    distance = relative_distance(model_tensors(trainer.model), claimed)
    return SegmentCheck(start=start, end=end, distance=distance, accepted=distance <= tolerance)


def verify_pol(log: PolLog, data: TrainData, beacon: bytes, *,
               count: int = DEFAULT_SAMPLED_SEGMENTS, tolerance: float = DEFAULT_TOLERANCE,
               device: DeviceInfo | None = None) -> list[SegmentCheck]:
    """Replay `count` beacon-sampled segments; raise `VerificationFailed` on the first rejection."""
    check_log_binding(log, data)
    if log.records[-1].step != log.header["total_steps"] or log.records[0].step != 0:
        raise VerificationFailed("log does not cover the whole run", reason="pol-incomplete")
    checks = []
    for start, end in sample_segments(log, beacon, count):
        check = replay_segment(log, data, start, end, tolerance=tolerance, device=device,
                               check_binding=False)
        if not check.accepted:
            raise VerificationFailed(
                f"segment {start}..{end} replays {check.distance:.3g} away (tolerance {tolerance:g})",
                reason="pol-distance",
            )
        checks.append(check)
    return checks
