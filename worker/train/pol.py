"""Proof-of-learning records: what a worker commits to while it trains.

At step 0, every `spec.pol_interval` steps and at the last step (`record_steps`) the worker
writes a checkpoint (weights, BatchNorm statistics and optimizer state, in safetensors) and
appends a record: the step, the digest of the weights, the digest of the whole state, and the
batch indices of the steps since the previous record. The log's header binds it to the spec,
the data and the thread count, and its digest goes into the weights metadata; the delivered
weights are the last checkpoint's (their digest is the last record's `weights_hash`). A verifier
later replays the final segment and beacon-sampled others (`worker.train.replay`) after checking
that the log, the weights and the claimed metrics belong together (`worker.train.binding`).
"""

from __future__ import annotations

import hashlib
import itertools
import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from worker.device import DeviceInfo
from worker.errors import VerificationFailed
from worker.train.data import ClassificationData, DetectionData
from worker.train.spec import TrainSpec
from worker.train.state import split_checkpoint, weights_digest

if TYPE_CHECKING:
    from worker.train.batches import ClassificationBatches, DetectionBatches

POL_VERSION = 1
LOG_NAME = "pol.json"
LOG_PERSON = b"neuro-pol-log"
DATA_PERSON = b"neuro-data"


class _TrainerView(Protocol):
    spec: TrainSpec
    batches: ClassificationBatches | DetectionBatches

    def state(self) -> dict[str, torch.Tensor]: ...


@dataclass(frozen=True, slots=True)
class PolRecord:
    """State after `step` completed steps; `batches` are the item indices of the steps since
    the previous record (one list per step)."""

    step: int
    weights_hash: str
    state_hash: str
    batches: list[list[int]]


@dataclass(frozen=True, slots=True)
class PolLog:
    header: dict[str, Any]
    records: list[PolRecord]
    directory: Path

    def to_json(self) -> str:
        # field by field, not `dataclasses.asdict`: that deep-copies every batch list first,
        # 16 ms of a 1.5 s benchmark run
        records = [
            {"step": r.step, "weights_hash": r.weights_hash, "state_hash": r.state_hash,
             "batches": r.batches}
            for r in self.records
        ]
        return json.dumps({"header": self.header, "records": records}, sort_keys=True,
                          separators=(",", ":"))

    def digest(self) -> bytes:
        return hashlib.blake2b(self.to_json().encode(), digest_size=32, person=LOG_PERSON).digest()

    def checkpoint_path(self, step: int) -> Path:
        return checkpoint_path(self.directory, step)

    def segments(self) -> list[tuple[int, int]]:
        """(start, end) step pairs between consecutive records."""
        steps = [r.step for r in self.records]
        return list(itertools.pairwise(steps))

    def record(self, step: int) -> PolRecord:
        for rec in self.records:
            if rec.step == step:
                return rec
        raise VerificationFailed(f"no proof-of-learning record at step {step}",
                                 reason="pol-missing-record")


def record_steps(total: int, interval: int) -> list[int]:
    """The steps a complete log has records at: 0, every `interval` steps, and `total`."""
    return sorted({*range(0, total, interval), total})


def final_segment_start(total: int, interval: int) -> int:
    """First step of the final segment (the record before `total`), which every verifier replays."""
    return record_steps(total, interval)[-2] if total > 0 else 0


def checkpoint_path(directory: Path, step: int) -> Path:
    return directory / f"ckpt-{step:08d}.safetensors"


def data_digest(data: ClassificationData | DetectionData) -> str:
    """Binds the log to the data: the arrays' bytes, or the COCO JSON plus every image file."""
    digest = hashlib.blake2b(digest_size=32, person=DATA_PERSON)
    if isinstance(data, ClassificationData):
        digest.update(repr(data.images.shape).encode())
        digest.update(data.images.tobytes())
        digest.update(data.labels.astype("<i8").tobytes())
    else:
        digest.update(json.dumps(data.coco, sort_keys=True).encode())
        for i in range(len(data)):
            digest.update(data.image_path(i).read_bytes())
    return digest.hexdigest()


def read_log(directory: Path) -> PolLog:
    try:
        body = json.loads((directory / LOG_NAME).read_text())
        records = [PolRecord(**r) for r in body["records"]]
        return PolLog(header=body["header"], records=records, directory=directory)
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise VerificationFailed(f"unreadable proof-of-learning log in {directory}: {err}",
                                 reason="pol-bad-log") from None


def read_checkpoint(path: Path) -> dict[str, torch.Tensor]:
    try:
        return load_file(str(path))
    except (OSError, SafetensorError) as err:
        raise VerificationFailed(f"unreadable checkpoint {path.name}: {err}",
                                 reason="pol-bad-checkpoint") from None


class PolRecorder:
    """Writes checkpoints and records during training (rank 0 only under DDP)."""

    def __init__(self, directory: Path, spec: TrainSpec, device: DeviceInfo,
                 data: ClassificationData | DetectionData, total_steps: int) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.directory, self.spec, self.total = directory, spec, total_steps
        self.interval = spec.pol_interval
        self.records: list[PolRecord] = []
        self.header: dict[str, Any] = {
            "version": POL_VERSION,
            "spec": spec.model_dump(mode="json"),
            "spec_hash": spec.spec_hash().hex(),
            "data_digest": data_digest(data),
            "dataset_size": len(data),
            "total_steps": total_steps,
            "interval": self.interval,
            "device": device.kind,
            "threads": device.threads,
            "precision": device.precision,
            "torch": torch.__version__,
            # kernels are chosen per vector ISA: replays are bit-exact only on the same one
            "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        }

    def maybe_record(self, completed: int, trainer: _TrainerView) -> None:
        if completed % self.interval and completed != self.total:
            return
        if self.records and self.records[-1].step == completed:
            return
        state = trainer.state()
        model_part, _ = split_checkpoint(state)
        weights_hash = weights_digest(model_part).hex()
        state_hash = weights_digest(state).hex()
        previous = self.records[-1].step if self.records else 0
        batches = [trainer.batches.indices(s).tolist() for s in range(previous, completed)]
        save_file(state, str(checkpoint_path(self.directory, completed)),
                  metadata={"step": str(completed), "weights_hash": weights_hash})
        self.records.append(PolRecord(completed, weights_hash, state_hash, batches))

    def finish(self) -> PolLog:
        log = PolLog(header=self.header, records=list(self.records), directory=self.directory)
        (self.directory / LOG_NAME).write_text(log.to_json())
        return log
