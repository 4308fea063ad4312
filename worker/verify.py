"""Spot checks of a worker's claimed output: re-render sampled items, replay sampled PoL segments.

Why sampling: re-doing a whole job costs as much as the job. A beacon the worker cannot predict
when it commits (a later block hash) picks k of n items; a worker that faked a fraction f of the
items escapes with probability (1 - f)^k, and any one mismatch is a *fraud proof* that a validator
checks by re-rendering a single item: the index, the hash the worker committed to and the Merkle
path from that hash to the worker's root.

Render check, per sampled index i:
1. the worker's claimed item hash with its Merkle path must lead to the committed root
   (else the worker's own proof is broken: ``bad-merkle-proof``);
2. the verifier re-renders item i (``reproduce_item``) and hashes it as a leaf;
3. a different hash is fraud at i.

Train check: sampled proof-of-learning segments are replayed from their start checkpoint; a
weight distance over the tolerance is fraud at that segment.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from chain.hashing import hash256
from chain.merkle import MerkleProof, leaf_hash, node_hash
from worker.errors import VerificationFailed, WorkerError

SAMPLE_PERSON = b"neuro-sample"
DEFAULT_SAMPLES = 16

ItemClaim = tuple[bytes, MerkleProof]  # (leaf hash the worker committed to, its Merkle path)


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


def root_from_leaf(leaf: bytes, proof: MerkleProof) -> bytes | None:
    """The root that ``leaf`` at ``proof.index`` leads to, or None for a malformed path.

    Same walk as `chain.merkle.verify_proof`, but from a leaf *hash*: a fraud proof carries the
    committed hash, not the (possibly large) item bytes.
    """
    if not 0 <= proof.index < proof.count:
        return None
    node = leaf
    position, width = proof.index, proof.count
    remaining = list(proof.siblings)
    while width > 1:
        if position ^ 1 < width:
            if not remaining:
                return None
            other = remaining.pop(0)
            node = node_hash(other, node) if position & 1 else node_hash(node, other)
        position //= 2
        width = (width + 1) // 2
    return None if remaining else node


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
            "claimed_leaf_hash": self.claimed_hash.hex(),
            "rerendered_leaf_hash": self.expected_hash.hex(),
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


def verify_render(
    root: bytes,
    count: int,
    beacon: bytes,
    samples: int,
    claim: Callable[[int], ItemClaim],
    reproduce: Callable[[int], bytes],
) -> RenderVerdict:
    """Check ``samples`` beacon-chosen items of a ``count``-item output committed under ``root``.

    ``claim(i)`` returns what the worker published for item i; ``reproduce(i)`` re-renders it.
    A claim whose path does not reach ``root`` raises VerificationFailed (``bad-merkle-proof``):
    the worker's own publication is inconsistent, no re-render needed to reject it.
    """
    checked: list[int] = []
    for index in sample_indices(beacon, count, samples):
        claimed, proof = claim(index)
        if proof.index != index or proof.count != count or root_from_leaf(claimed, proof) != root:
            raise VerificationFailed(
                f"item {index}: the worker's Merkle path does not reach its root",
                reason="bad-merkle-proof",
            )
        expected = leaf_hash(reproduce(index))
        checked.append(index)
        if expected != claimed:
            fraud = RenderFraudProof(index, claimed, expected, proof)
            return RenderVerdict(root=root, checked=tuple(checked), fraud=fraud)
    return RenderVerdict(root=root, checked=tuple(checked))


def check_fraud_proof(root: bytes, fraud: RenderFraudProof, reproduce: Callable[[int], bytes]) -> bool:
    """A validator's adjudication: true when the worker provably committed to a wrong item."""
    if root_from_leaf(fraud.claimed_hash, fraud.proof) != root:
        return False
    return leaf_hash(reproduce(fraud.proof.index)) != fraud.claimed_hash


@dataclass(frozen=True, slots=True)
class TrainVerdict:
    """Replayed segments with their weight distances; ``failed`` is the first over tolerance."""

    checked: tuple[int, ...]
    distances: tuple[float, ...]
    failed: int | None = None

    @property
    def ok(self) -> bool:
        return self.failed is None


def verify_segments(
    segments: int,
    beacon: bytes,
    samples: int,
    replay: Callable[[int], float],
    tolerance: float,
    skip: Sequence[int] = (),
) -> TrainVerdict:
    """Replay ``samples`` beacon-chosen PoL segments; ``replay(s)`` returns segment s's distance."""
    checked: list[int] = []
    distances: list[float] = []
    candidates = [s for s in range(segments) if s not in set(skip)]
    for position in sample_indices(beacon, len(candidates), samples):
        segment = candidates[position]
        distance = replay(segment)
        checked.append(segment)
        distances.append(distance)
        if not distance <= tolerance:  # NaN is a failure too
            return TrainVerdict(tuple(checked), tuple(distances), failed=segment)
    return TrainVerdict(tuple(checked), tuple(distances))
