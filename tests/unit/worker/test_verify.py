"""Spot checks: honest outputs pass, a tampered item or PoL record is caught and named."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from chain.merkle import merkle_root
from worker.errors import VerificationFailed
from worker.render.dataset import reproduce_item
from worker.render.item import item_hash
from worker.runner import run_task
from worker.verify import (
    check_fraud_proof,
    sample_indices,
    verify_output,
    verify_render_dir,
)

COUNT = 20
RENDER = {"task": "render", "seed": 5, "spec": {"kind": "digits", "count": COUNT, "size": 16}}
TRAIN = {
    "task": "train",
    "train": {"model": {"name": "cnn", "image_size": 16, "width": 4, "depth": 1},
              "steps": 6, "batch_size": 16, "pol_interval": 2},
    "data": {"source": "digits", "seed": 2, "spec": {"kind": "digits", "count": 64, "size": 16}},
}


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("verify") / "digits"
    run_task("render", RENDER, out, timeout_s=120)
    return out


def _tamper(source: Path, target: Path, index: int, *, fix_roots: bool) -> None:
    """A dishonest worker: commits to a wrong hash for ``index`` (and, if asked, to its roots)."""
    shutil.copytree(source, target)
    manifest = json.loads((target / "manifest.json").read_text())
    all_hashes: list[bytes] = []
    for shard in manifest["shards"]:
        path = target / shard["path"] / "manifest.json"
        shard_manifest = json.loads(path.read_text())
        hashes = shard_manifest["item_hashes"]
        if shard["start"] <= index < shard["stop"]:
            hashes[index - shard["start"]] = item_hash(b"not the item").hex()
            if fix_roots:
                shard_manifest["root"] = merkle_root([bytes.fromhex(h) for h in hashes]).hex()
            path.write_text(json.dumps(shard_manifest))
        all_hashes += [bytes.fromhex(h) for h in hashes]
    if fix_roots:
        manifest["root"] = merkle_root(all_hashes).hex()
    (target / "manifest.json").write_text(json.dumps(manifest))


def test_sampling_is_a_function_of_the_beacon() -> None:
    first = sample_indices(b"block-hash", 1000, 16)
    assert first == sample_indices(b"block-hash", 1000, 16)
    assert first != sample_indices(b"other-hash", 1000, 16)
    assert len(set(first)) == 16 and all(0 <= i < 1000 for i in first)
    assert sorted(sample_indices(b"x", 5, 99)) == [0, 1, 2, 3, 4]


def test_honest_render_passes(rendered: Path) -> None:
    verdict = verify_render_dir(rendered, b"beacon", samples=6)
    assert verdict.ok and len(verdict.checked) == 6
    manifest = json.loads((rendered / "manifest.json").read_text())
    assert verdict.root.hex() == manifest["root"]


def test_tampered_item_is_caught_with_its_index(rendered: Path, tmp_path: Path) -> None:
    _tamper(rendered, tmp_path / "bad", 13, fix_roots=True)
    verdict = verify_render_dir(tmp_path / "bad", b"beacon", samples=COUNT)
    assert not verdict.ok and verdict.fraud is not None
    assert verdict.fraud.index == 13
    assert verdict.fraud.claimed_hash == item_hash(b"not the item")
    spec = json.loads((rendered / "spec.json").read_text())
    assert check_fraud_proof(verdict.root, verdict.fraud, lambda i: reproduce_item(spec, 5, i), item_hash)
    # a validator does not convict an honest worker on the same proof
    honest_root = bytes.fromhex(json.loads((rendered / "manifest.json").read_text())["root"])
    assert not check_fraud_proof(honest_root, verdict.fraud, lambda i: reproduce_item(spec, 5, i),
                                 item_hash)


def test_claims_that_do_not_reach_the_root_are_rejected(rendered: Path, tmp_path: Path) -> None:
    _tamper(rendered, tmp_path / "broken", 4, fix_roots=False)
    with pytest.raises(VerificationFailed) as info:
        verify_render_dir(tmp_path / "broken", b"beacon", samples=COUNT)
    assert info.value.reason == "bad-merkle-proof"


def test_output_of_another_format_is_refused_by_name(rendered: Path, tmp_path: Path) -> None:
    older = tmp_path / "older"
    shutil.copytree(rendered, older)
    manifest = json.loads((older / "manifest.json").read_text())
    (older / "manifest.json").write_text(json.dumps({**manifest, "format": "neuro-render-dataset/1"}))
    with pytest.raises(VerificationFailed) as info:
        verify_render_dir(older, b"beacon", samples=COUNT)
    assert info.value.reason == "unsupported-format" and "neuro-render-dataset/1" in str(info.value)


def test_training_replay_passes_and_a_forged_record_fails(tmp_path: Path) -> None:
    out = tmp_path / "cnn"
    run_task("train", TRAIN, out, timeout_s=240)
    verdict = verify_output(out, b"beacon", 2)
    assert verdict.ok and len(verdict.checked) == 2
    assert all(d <= 1e-3 for d in verdict.distances)
    log_path = out / "pol" / "pol.json"
    log = json.loads(log_path.read_text())
    for record in log["records"][1:]:  # claim other batches than the seed schedules
        record["batches"] = [list(reversed(b)) for b in record["batches"]]
    log_path.write_text(json.dumps(log))
    forged = verify_output(out, b"beacon", 2)
    assert not forged.ok and forged.reason == "pol-batch-order"
