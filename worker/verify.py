"""Spot checks of a worker's claimed output: re-render sampled items, replay sampled PoL segments.

Why sampling: re-doing a whole job costs as much as the job. A beacon the worker cannot predict
when it commits (a later block hash) picks k of n items; a worker that faked a fraction f of the
items escapes with probability (1 - f)^k, and any one mismatch is a *fraud proof* that a validator
checks by re-rendering a single item: the item's artifact leaf (index, the hash the worker
committed to, its files' and labels' hashes), its Merkle path and the one hash step to the root.

Render check (`verify_render_dir`):
1. every delivered file against the artifact manifest (`worker.render.delivered`, format in
   `worker.artifact`): sizes, BLAKE3 hashes, each item's labels re-derived from the delivered
   label file, every leaf and the root recomputed; a difference names the file and the item;
2. per beacon-sampled item: re-render it (``reproduce_item``) and compare its item hash with the
   leaf's ``check``: a difference is fraud at that item, proven by the leaf and its path to the
   root (`RenderFraudProof`, judged by `check_fraud_proof` re-rendering that item alone); this
   comes before the cheaper step 3 because it yields a proof the chain can act on;
3. the item's delivered labels (through its leaf) and its decoded PNG must be the re-rendered
   item's (``delivered-item``): files that are not the rendered item are refused even when the
   worker committed to them (a whole-set label shift fails at the first sampled item).

Train check (`verify_train_dir`, cheapest first): every delivered file against the artifact
manifest; the log, the weights metadata and the claimed metrics against the job's spec
(`worker.train.binding`, `worker.train.claims`); the log's data and its coverage of every step;
the delivered weights as the last checkpoint; the validation claims by one forward pass; then
the final proof-of-learning segment and beacon-sampled others are replayed from their start
checkpoints (`worker.train.replay`), the final one recomputing the claimed final loss. A weight
distance over the tolerance, or a checkpoint that does not match its record, rejects the run at
that segment.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chain.hashing import hash256
from worker.artifact import LeafProof
from worker.errors import VerificationFailed, WorkerError

SAMPLE_PERSON = b"neuro-sample"
DEFAULT_SAMPLES = 16

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
    """Enough for any validator to convict: the item's leaf with its way to the artifact root,
    and the hash the item re-renders to. The validator re-renders ``leaf.index`` alone."""

    leaf: LeafProof
    expected_hash: bytes

    @property
    def index(self) -> int:
        return self.leaf.index

    @property
    def claimed_hash(self) -> bytes:
        return self.leaf.check

    def to_json(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "claimed_item_hash": self.claimed_hash.hex(),
            "rerendered_item_hash": self.expected_hash.hex(),
            "leaf": self.leaf.to_json(),
        }


@dataclass(frozen=True, slots=True)
class RenderVerdict:
    """``ok`` when every file matched and every sampled item re-rendered to its leaf."""

    root: bytes
    checked: tuple[int, ...]  # the sampled item indices, in sampling order
    files: int = 0
    size: int = 0  # bytes read and hashed
    fraud: RenderFraudProof | None = None

    @property
    def ok(self) -> bool:
        return self.fraud is None

    def describe(self) -> str:
        if self.fraud is None:
            return (f"{self.files} files ({self.size / 1e6:.1f} MB) match the manifest, "
                    f"{len(self.checked)} sampled items re-render to root {self.root.hex()}")
        return (f"item {self.fraud.index} re-renders to {self.fraud.expected_hash.hex()}, "
                f"the worker committed to {self.fraud.claimed_hash.hex()}")


def check_fraud_proof(
    root: bytes, fraud: RenderFraudProof, reproduce: Callable[[int], bytes], hash_item: ItemHasher
) -> bool:
    """A validator's adjudication: true when the worker provably committed to a wrong item."""
    if not fraud.leaf.reaches(root):
        return False
    return hash_item(reproduce(fraud.index)) != fraud.claimed_hash


def verify_render_dir(out: Path, beacon: bytes, samples: int = DEFAULT_SAMPLES) -> RenderVerdict:
    """Check every file of a render output, then re-render ``samples`` beacon-chosen items.

    Raises `worker.artifact.ArtifactMismatch` (a VerificationFailed naming file and item) when
    the delivered files are not what the manifest commits to; returns a verdict with a fraud
    proof when the manifest commits to an item that does not re-render.
    """
    from worker.artifact import leaf_proof
    from worker.render.dataset import render_item
    from worker.render.delivered import open_render_artifact

    artifact = open_render_artifact(out)
    manifest = artifact.manifest
    files, size = len(manifest.files), sum(f.size for f in manifest.files)
    checked: list[int] = []
    for position in sample_indices(beacon, len(manifest.items), samples):
        item = manifest.items[position]
        checked.append(item.index)
        rendered = render_item(artifact.spec, artifact.seed, item.index)
        if rendered.item_hash != item.check:
            fraud = RenderFraudProof(leaf_proof(manifest, position), rendered.item_hash)
            return RenderVerdict(manifest.root, tuple(checked), files, size, fraud)
        artifact.check_delivered(position, rendered)
    return RenderVerdict(manifest.root, tuple(checked), files, size)


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except OSError as exc:
        raise WorkerError(f"cannot read {path}: {exc.strerror}", reason="missing-output") from None
    except json.JSONDecodeError as exc:
        raise VerificationFailed(f"{path} is not JSON: {exc.msg}", reason="bad-manifest") from None


@dataclass(frozen=True, slots=True)
class TrainVerdict:
    """Replayed PoL segments ``(start, end)`` with their weight distances, and the claims the
    verifier recomputed.

    ``reason`` names the first rejection (empty when accepted): a changed file
    (`worker.artifact`), a log, weights or claims that do not belong together
    (`worker.train.binding`, `worker.train.claims`), or a segment that does not replay
    (``failed``; ``pol-distance`` or the reason for a tampered log or checkpoint).
    """

    checked: tuple[tuple[int, int], ...]
    distances: tuple[float, ...]
    failed: tuple[int, int] | None = None
    reason: str = ""
    detail: str = ""
    claims: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.reason

    def describe(self) -> str:
        shown = ", ".join(f"{a}..{b}: {d:.3g}" for (a, b), d in zip(self.checked, self.distances))
        if self.ok:
            claims = ", ".join(f"{k} {v}" for k, v in self.claims.items())
            return (f"{len(self.checked)} replayed segments within tolerance ({shown}), the final "
                    f"one included; the weights are its checkpoint; recomputed {claims}")
        return f"{self.detail} ({self.reason}){f'; replayed: {shown}' if shown else ''}"


def verify_train(out: Path, spec: Any, load_inputs: Callable[[], tuple[Any, Any]], beacon: bytes,
                 samples: int = 2, tolerance: float | None = None,
                 summary: dict[str, Any] | None = None) -> TrainVerdict:
    """Check a train output dir against the job's ``spec``, cheapest first.

    Every delivered file against the artifact manifest; the log, the weights metadata and the
    claims against the spec (no data yet); then ``load_inputs()`` gives the training and the
    validation data (or None), and the log's data and coverage, the weights as the last
    checkpoint, the validation claims (one forward pass), the replays of the final segment and
    ``samples`` beacon-sampled others, and the final loss claim. ``summary`` is the runner's
    record of the run (``task.json``), whose claims must agree too.
    """
    from worker.artifact import verify_files
    from worker.tasks.infer import evaluate_model
    from worker.tasks.train import METRICS_FILE, POL_DIR, WEIGHTS_FILE, model_item_labels
    from worker.train.binding import (
        check_log_coverage,
        check_log_data,
        check_log_spec,
        check_weights_final,
        check_weights_meta,
    )
    from worker.train.claims import check_claims, claims_of, train_claims
    from worker.train.pol import read_log
    from worker.train.replay import DEFAULT_TOLERANCE, SegmentRejected, replay_device, verify_pol
    from worker.train.weights import load_weights, read_meta

    limit = DEFAULT_TOLERANCE if tolerance is None else tolerance
    try:
        verify_files(out, model_item_labels(out))
        log = read_log(out / POL_DIR)
        meta = read_meta(out / WEIGHTS_FILE)
        check_log_spec(log, spec)
        check_weights_meta(meta, spec, log)
        claimed = {"weights metadata": meta.metrics,
                   METRICS_FILE: claims_of(_read_json(out / METRICS_FILE))}
        if summary is not None:
            claimed["task.json"] = claims_of(summary.get("metrics") or {})
        data, validation = load_inputs()
        check_log_data(log, data)
        check_log_coverage(log, spec, len(data))
        device = replay_device(log)
        model, _ = load_weights(out / WEIGHTS_FILE, device.torch_device)
        check_weights_final(model, log)
        scores = evaluate_model(model, validation, device) if validation is not None else None
        replay = verify_pol(log, data, beacon, count=samples, tolerance=limit, device=device,
                            spec=spec, check_binding=False)
        recomputed = train_claims(spec.total_steps(len(data)), replay.final_loss, scores)
        for where, found in claimed.items():
            check_claims(found, recomputed, where)
    except SegmentRejected as exc:
        distances = [c.distance for c in exc.passed]
        distances += [exc.distance] if exc.distance is not None else []
        checked = tuple((c.start, c.end) for c in exc.passed) + (exc.segment,)
        return TrainVerdict(checked, tuple(distances), exc.segment, exc.reason, str(exc))
    except VerificationFailed as exc:
        return TrainVerdict((), (), None, exc.reason, str(exc))
    return TrainVerdict(tuple((c.start, c.end) for c in replay.checks),
                        tuple(c.distance for c in replay.checks), claims=recomputed)


def verify_train_dir(out: Path, beacon: bytes, samples: int = 2, job: dict[str, Any] | None = None) -> TrainVerdict:
    """Spot-check a train output against its job: ``job`` is the train task spec the buyer
    posted (what `neuro task run train` reads); without it, the one the runner recorded in
    ``task.json`` beside the output (a folder fetched or exported from a store has none)."""
    from worker.tasks import parse_task
    from worker.tasks.data import load_data
    from worker.train.spec import load_train_spec

    summary = _read_json(out / "task.json") if (out / "task.json").is_file() else None
    if job is None:
        if summary is None:
            raise WorkerError(f"{out} is a model without task.json: give the job's train spec (--spec)",
                              reason="spec-needed")
        job = summary["spec"]
    task = parse_task(job)
    spec = load_train_spec(task.train)

    def load_inputs() -> tuple[Any, Any]:
        data = load_data(task.data, spec.model)
        if task.validation is None:
            return data, None
        return data, load_data(task.validation, spec.model)

    return verify_train(out, spec, load_inputs, beacon, samples, summary=summary)


def verify_output(
    out: Path, beacon: bytes, samples: int, *, expected_root: bytes | None = None,
    job: dict[str, Any] | None = None,
) -> RenderVerdict | TrainVerdict:
    """Verify an artifact folder by the kind its manifest delivers (a render or a model), as
    its buyer would: ``expected_root`` is the id the buyer paid for (a folder committing to
    another root is refused before anything else), ``job`` the train spec of a model's job."""
    from worker.artifact import mismatch, read_manifest
    from worker.render.dataset import SPEC_KINDS
    from worker.tasks.train import ARTIFACT_KIND

    manifest = read_manifest(out)
    if expected_root is not None and manifest.root != expected_root:
        raise mismatch("wrong-root", f"root {manifest.root.hex()}, expected {expected_root.hex()}", "manifest.json")
    if manifest.kind in SPEC_KINDS:
        return verify_render_dir(out, beacon, samples)
    if manifest.kind == ARTIFACT_KIND:
        return verify_train_dir(out, beacon, samples, job)
    raise WorkerError(f"{out} holds a {manifest.kind!r} artifact; only renders and models are verified",
                      reason="not-verifiable")
