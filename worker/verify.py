"""Spot checks of a worker's claimed output: re-render sampled items, replay sampled PoL segments.

Why sampling: re-doing a whole job costs as much as the job. A beacon the worker cannot predict
when it commits (a later block hash) picks k of n items; a worker that faked a fraction f of the
items escapes with probability (1 - f)^k, and any one mismatch is a *fraud proof* that a validator
checks by re-rendering a single item: the index, the hash the worker committed to and the Merkle
path from that hash to the worker's root.

Render check, per sampled index i (the root is over item hashes, `worker.render.dataset`):
1. the worker's claimed item hash with its Merkle path must lead to the committed root
   (else the worker's own publication is broken: ``bad-merkle-proof``);
2. the verifier re-renders item i (``reproduce_item``) and takes its item hash;
3. a different hash is fraud at i.

Train check: sampled proof-of-learning segments are replayed from their start checkpoint by the
train package (`worker.train.replay`); a weight distance over the tolerance, or a checkpoint
that does not match its record, rejects the run at that segment.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chain.hashing import hash256
from chain.merkle import MerkleProof, verify_proof
from worker.errors import VerificationFailed, WorkerError

SAMPLE_PERSON = b"neuro-sample"
DEFAULT_SAMPLES = 16

ItemClaim = tuple[bytes, MerkleProof]  # (item hash the worker committed to, its Merkle path)
ItemHasher = Callable[[bytes], bytes]


def sample_indices(beacon: bytes, count: int, samples: int) -> list[int]:
    """``samples`` distinct indices in [0, count), a pure function of the beacon bytes.

    Index j is blake2b(beacon || j) mod count, skipping repeats; with 256-bit draws the modulo
    bias is nil. Every verifier holding the same beacon checks the same items.
    """
    if count <= 0:
        raise WorkerError("nothing to sample from an empty output", reason="empty-output")
    wanted = min(samples, count)
    chosen: list[int] = []
    seen: set[int] = set()
    counter = 0
    while len(chosen) < wanted:
        draw = hash256(beacon + counter.to_bytes(8, "big"), person=SAMPLE_PERSON)
        counter += 1
        index = int.from_bytes(draw, "big") % count
        if index not in seen:
            seen.add(index)
            chosen.append(index)
    return chosen


@dataclass(frozen=True, slots=True)
class RenderFraudProof:
    """Enough for any validator to convict: re-render ``index`` and compare with the claim."""

    index: int
    claimed_hash: bytes
    expected_hash: bytes
    proof: MerkleProof

    def to_json(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "claimed_item_hash": self.claimed_hash.hex(),
            "rerendered_item_hash": self.expected_hash.hex(),
            "merkle_count": self.proof.count,
            "merkle_siblings": [s.hex() for s in self.proof.siblings],
        }


@dataclass(frozen=True, slots=True)
class RenderVerdict:
    """``ok`` when every sampled item matched; else ``fraud`` names the first mismatch."""

    root: bytes
    checked: tuple[int, ...]
    fraud: RenderFraudProof | None = None

    @property
    def ok(self) -> bool:
        return self.fraud is None

    def describe(self) -> str:
        if self.fraud is None:
            return f"{len(self.checked)} sampled items match root {self.root.hex()}"
        return (f"item {self.fraud.index} re-renders to {self.fraud.expected_hash.hex()}, "
                f"the worker committed to {self.fraud.claimed_hash.hex()}")


def verify_render(
    root: bytes,
    start: int,
    count: int,
    beacon: bytes,
    samples: int,
    claim: Callable[[int], ItemClaim],
    reproduce: Callable[[int], bytes],
    hash_item: ItemHasher,
) -> RenderVerdict:
    """Check ``samples`` beacon-chosen items of items ``start..start+count-1`` under ``root``.

    ``claim(i)`` returns what the worker published for item i (its Merkle position is
    ``i - start``); ``reproduce(i)`` re-renders it and ``hash_item`` is the renderer's item hash.
    A claim whose path does not reach ``root`` raises VerificationFailed (``bad-merkle-proof``):
    the worker's own publication is inconsistent, no re-render needed to reject it.
    """
    checked: list[int] = []
    for position in sample_indices(beacon, count, samples):
        index = start + position
        claimed, proof = claim(index)
        if (proof.index, proof.count) != (position, count) or not verify_proof(root, claimed, proof):
            raise VerificationFailed(
                f"item {index}: the worker's Merkle path does not reach its root",
                reason="bad-merkle-proof",
            )
        expected = hash_item(reproduce(index))
        checked.append(index)
        if expected != claimed:
            fraud = RenderFraudProof(index, claimed, expected, proof)
            return RenderVerdict(root=root, checked=tuple(checked), fraud=fraud)
    return RenderVerdict(root=root, checked=tuple(checked))


def check_fraud_proof(
    root: bytes, fraud: RenderFraudProof, reproduce: Callable[[int], bytes], hash_item: ItemHasher
) -> bool:
    """A validator's adjudication: true when the worker provably committed to a wrong item."""
    if not verify_proof(root, fraud.claimed_hash, fraud.proof):
        return False
    return hash_item(reproduce(fraud.index)) != fraud.claimed_hash


def verify_render_dir(out: Path, beacon: bytes, samples: int = DEFAULT_SAMPLES) -> RenderVerdict:
    """Spot-check a render task's output dir: its manifest's claims against fresh re-renders.

    The claims are the item hashes in the shard manifests; the root must be the one over them
    (a worker publishes both), then sampled items are re-rendered from ``spec.json``.
    """
    from worker.render.dataset import item_proof, load_render_spec, reproduce_item
    from worker.render.item import item_hash
    from worker.render.shard import DATASET_FORMAT

    manifest = _read_json(out / "manifest.json")
    if isinstance(manifest, dict) and manifest.get("format") != DATASET_FORMAT:
        # item ids of another format are computed another way: say so, not "hash mismatch"
        raise VerificationFailed(
            f"{out}: render output format {manifest.get('format')!r}, this worker checks {DATASET_FORMAT!r}",
            reason="unsupported-format",
        )
    try:
        spec = load_render_spec(out / "spec.json")
        hashes = [bytes.fromhex(h) for s in manifest["shards"]
                  for h in _read_json(out / s["path"] / "manifest.json")["item_hashes"]]
        root, seed = bytes.fromhex(manifest["root"]), int(manifest["seed"])
        start = int(manifest.get("start", 0))
    except (KeyError, TypeError, ValueError) as exc:
        raise VerificationFailed(f"{out}: malformed render manifest ({exc})", reason="bad-manifest")
    return verify_render(
        root, start, len(hashes), beacon, samples,
        claim=lambda i: (hashes[i - start], item_proof(hashes, i - start)),
        reproduce=lambda i: reproduce_item(spec, seed, i),
        hash_item=item_hash,
    )


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except OSError as exc:
        raise WorkerError(f"cannot read {path}: {exc.strerror}", reason="missing-output") from None
    except json.JSONDecodeError as exc:
        raise VerificationFailed(f"{path} is not JSON: {exc.msg}", reason="bad-manifest") from None


@dataclass(frozen=True, slots=True)
class TrainVerdict:
    """Replayed PoL segments ``(start, end)`` and their weight distances.

    ``failed`` is the first segment rejected, with ``reason`` (``pol-distance`` when the replay
    lands too far away, or the train package's reason for a tampered log or checkpoint).
    """

    checked: tuple[tuple[int, int], ...]
    distances: tuple[float, ...]
    failed: tuple[int, int] | None = None
    reason: str = ""

    @property
    def ok(self) -> bool:
        return self.failed is None

    def describe(self) -> str:
        shown = ", ".join(f"{a}..{b}: {d:.3g}" for (a, b), d in zip(self.checked, self.distances))
        if self.failed is None:
            return f"{len(self.checked)} replayed segments within tolerance ({shown})"
        start, end = self.failed
        return f"segment {start}..{end} rejected ({self.reason}); replayed: {shown or 'none'}"


def verify_train(log_dir: Path, data: Any, beacon: bytes, samples: int = 2,
                 tolerance: float | None = None) -> TrainVerdict:
    """Replay ``samples`` beacon-chosen segments of the PoL log in ``log_dir`` on ``data``."""
    from worker.train.pol import read_log
    from worker.train.replay import (
        DEFAULT_TOLERANCE,
        check_log_binding,
        replay_segment,
        sample_segments,
    )

    limit = DEFAULT_TOLERANCE if tolerance is None else tolerance
    log = read_log(log_dir)
    check_log_binding(log, data)
    checked: list[tuple[int, int]] = []
    distances: list[float] = []
    for start, end in sample_segments(log, beacon, samples):
        checked.append((start, end))
        try:
            check = replay_segment(log, data, start, end, tolerance=limit, check_binding=False)
        except VerificationFailed as exc:
            return TrainVerdict(tuple(checked), tuple(distances), (start, end), exc.reason)
        distances.append(check.distance)
        if not check.accepted:
            return TrainVerdict(tuple(checked), tuple(distances), (start, end), "pol-distance")
    return TrainVerdict(tuple(checked), tuple(distances))


def verify_train_dir(out: Path, beacon: bytes, samples: int = 2) -> TrainVerdict:
    """Spot-check a train task's output: reload its data source and replay sampled segments."""
    from worker.tasks import parse_task
    from worker.tasks.data import load_data
    from worker.train.spec import load_train_spec

    task = parse_task(_read_json(out / "task.json")["spec"])
    data = load_data(task.data, load_train_spec(task.train).model)
    return verify_train(out / "pol", data, beacon, samples)


def verify_output(out: Path, beacon: bytes, samples: int) -> RenderVerdict | TrainVerdict:
    """Verify a task output dir by the task it records (render or train)."""
    task = _read_json(out / "task.json").get("task")
    if task == "render":
        return verify_render_dir(out, beacon, samples)
    if task == "train":
        return verify_train_dir(out, beacon, samples)
    raise WorkerError(f"{out} holds a {task!r} output; only render and train outputs are verified",
                      reason="not-verifiable")
