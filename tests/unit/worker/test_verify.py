"""Spot checks: honest outputs pass; every tampered file, label or manifest field is caught and
named (file and item) through `verify_output`, the path `neuro task verify` takes."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from worker.artifact import (
    ArtifactMismatch,
    ItemDraft,
    content_hash,
    read_manifest,
    seal,
    write_manifest,
)
from worker.errors import VerificationFailed
from worker.render.dataset import reproduce_item
from worker.render.delivered import item_label_bytes, read_labels
from worker.render.item import item_hash
from worker.runner import run_task
from worker.verify import (
    RenderVerdict,
    check_fraud_proof,
    sample_indices,
    verify_output,
    verify_render_dir,
)

COUNT = 20
RENDER = {"task": "render", "seed": 5, "spec": {"kind": "digits", "count": COUNT, "size": 16}}
SHELF = {"task": "render", "seed": 2,
         "spec": {"kind": "shelf", "width": 64, "height": 48, "count": 4, "catalog": {"skus": 4}}}
TRAIN = {
    "task": "train",
    "train": {"model": {"name": "cnn", "image_size": 16, "width": 4, "depth": 1},
              "steps": 6, "batch_size": 16, "pol_interval": 2},
    "data": {"source": "digits", "seed": 2, "spec": {"kind": "digits", "count": 64, "size": 16}},
}
LABELS = "shard-0000/annotations.json"
CHANGED = ("file-size", "file-hash")  # a re-encoded file: its size or only its bytes differ


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("verify") / "digits"
    run_task("render", RENDER, out, timeout_s=120)
    return out


@pytest.fixture(scope="module")
def shelves(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("verify") / "shelf"
    run_task("render", SHELF, out, timeout_s=120)
    return out


@pytest.fixture
def digits(rendered: Path, tmp_path: Path) -> Path:
    shutil.copytree(rendered, tmp_path / "digits")
    return tmp_path / "digits"


@pytest.fixture
def shelf(shelves: Path, tmp_path: Path) -> Path:
    shutil.copytree(shelves, tmp_path / "shelf")
    return tmp_path / "shelf"


def image_path(index: int) -> str:
    return f"shard-0000/images/{index:08d}.png"


def rejected(out: Path, samples: int = COUNT) -> ArtifactMismatch:
    with pytest.raises(ArtifactMismatch) as info:
        verify_output(out, b"beacon", samples)
    return info.value


def edit_png(out: Path, index: int, change: object) -> None:
    path = out / image_path(index)
    with Image.open(path) as png:
        pixels = np.asarray(png).copy()
    change(pixels)  # type: ignore[operator]
    Image.fromarray(pixels).save(path)


def edit_labels(out: Path, change: object) -> None:
    data = json.loads((out / LABELS).read_text())
    change(data)  # type: ignore[operator]
    (out / LABELS).write_text(json.dumps(data))


def reseal(out: Path, change_check: dict[int, bytes] | None = None) -> None:
    """A dishonest worker: re-commits to whatever the folder now holds (and to other checks)."""
    old = read_manifest(out)
    labels = item_label_bytes(*read_labels(out, old))
    checks = {item.index: item.check for item in old.items} | (change_check or {})
    drafts = [ItemDraft(item.index, item.files, data, checks[item.index])
              for item, (_path, data) in zip(old.items, labels, strict=True)]
    (out / "manifest.json").unlink()
    write_manifest(out, old.kind, drafts, old.meta)


def first_labelled_item(out: Path) -> int:
    data = json.loads((out / LABELS).read_text())
    return min(a["image_id"] for a in data["annotations"]) - 1


def test_sampling_is_a_function_of_the_beacon() -> None:
    first = sample_indices(b"block-hash", 1000, 16)
    assert first == sample_indices(b"block-hash", 1000, 16)
    assert first != sample_indices(b"other-hash", 1000, 16)
    assert len(set(first)) == 16 and all(0 <= i < 1000 for i in first)
    assert sorted(sample_indices(b"x", 5, 99)) == [0, 1, 2, 3, 4]


def test_honest_renders_pass(rendered: Path, shelves: Path) -> None:
    verdict = verify_output(rendered, b"beacon", 6)
    assert isinstance(verdict, RenderVerdict) and verdict.ok and len(verdict.checked) == 6
    manifest = json.loads((rendered / "manifest.json").read_text())
    assert verdict.root.hex() == manifest["root"] == json.loads(
        (rendered / "task.json").read_text())["artifact_root"]
    assert verdict.files == COUNT + 2  # the PNGs, the label file, spec.json
    assert verify_output(shelves, b"beacon", 4).ok


def test_changed_png_pixel_names_file_and_item(digits: Path) -> None:
    edit_png(digits, 7, lambda p: p.__setitem__((3, 3), 255 - p[3, 3]))
    error = rejected(digits)  # Pillow re-encodes: the size changes too, or only the bytes
    assert error.reason in CHANGED and (error.path, error.item) == (image_path(7), 7)
    assert "item 7" in str(error) and image_path(7) in str(error)


def test_changed_digit_label_names_its_item(digits: Path) -> None:
    def shift(data: dict) -> None:
        data["labels"][11]["label"] = (data["labels"][11]["label"] + 1) % 10
    edit_labels(digits, shift)
    error = rejected(digits)
    assert (error.reason, error.path, error.item) == ("item-labels", LABELS, 11)
    assert [(p.reason in CHANGED, p.path, p.item) for p in error.problems[1:]] == [
        (True, LABELS, None)]


def test_swapped_images_name_both_items(digits: Path) -> None:
    one, two = digits / image_path(2), digits / image_path(5)
    first, second = one.read_bytes(), two.read_bytes()
    one.write_bytes(second)
    two.write_bytes(first)
    error = rejected(digits)
    assert error.reason in CHANGED and (error.path, error.item) == (image_path(2), 2)
    assert [(p.item, p.path) for p in error.problems] == [(2, image_path(2)), (5, image_path(5))]


def test_moved_bbox_names_its_shelf_item(shelf: Path) -> None:
    index = first_labelled_item(shelf)

    def move(data: dict) -> None:
        record = next(a for a in data["annotations"] if a["image_id"] == index + 1)
        record["bbox"][0] += 1
    edit_labels(shelf, move)
    error = rejected(shelf, samples=4)
    assert (error.reason, error.path, error.item) == ("item-labels", LABELS, index)


def test_a_quarter_blacked_out_shelf_image_names_its_item(shelf: Path) -> None:
    edit_png(shelf, 3, lambda p: p.__setitem__((slice(0, 24), slice(0, 32)), 0))
    error = rejected(shelf, samples=4)
    assert error.reason in CHANGED and (error.path, error.item) == (image_path(3), 3)


def test_extra_missing_and_truncated_files(digits: Path) -> None:
    (digits / "shard-0000" / "images" / "00000099.png").write_bytes(b"not an item")
    error = rejected(digits)
    assert (error.reason, error.path) == ("extra-file", "shard-0000/images/00000099.png")
    (digits / "shard-0000" / "images" / "00000099.png").unlink()
    data = (digits / image_path(9)).read_bytes()
    (digits / image_path(9)).write_bytes(data[:-10])
    error = rejected(digits)
    assert (error.reason, error.path, error.item) == ("file-size", image_path(9), 9)
    (digits / image_path(9)).unlink()
    error = rejected(digits)
    assert (error.reason, error.path, error.item) == ("file-missing", image_path(9), 9)
    (digits / "spec.json").unlink()
    assert {(p.reason, p.path) for p in rejected(digits).problems} >= {("file-missing", "spec.json")}


@pytest.mark.parametrize("index", [0, 7, 13, COUNT - 1])
def test_a_changed_manifest_item_hash_names_that_item_every_time(digits: Path, index: int) -> None:
    manifest = read_manifest(digits)
    forged = item_hash(b"not the item")
    items = tuple(replace(i, check=forged) if i.index == index else i for i in manifest.items)
    (digits / "manifest.json").write_bytes(replace(manifest, items=items).encode())
    for beacon in (b"a", b"b", b"c"):
        with pytest.raises(ArtifactMismatch) as info:
            verify_output(digits, beacon, 3)
        assert (info.value.reason, info.value.item) == ("item-leaf", index)

    # the worker re-commits (leaf, items root, root): only re-rendering can tell, at that item
    (digits / "manifest.json").write_bytes(
        seal(manifest.kind, manifest.meta, manifest.files, items).encode())
    for beacon in (b"a", b"b", b"c", b"d", b"e"):
        verdict = verify_render_dir(digits, beacon, samples=5)
        assert verdict.ok == (index not in verdict.checked)
        assert verdict.ok or (verdict.fraud is not None and verdict.fraud.index == index)
    verdict = verify_render_dir(digits, b"a", samples=COUNT)
    assert verdict.fraud is not None and verdict.fraud.index == index
    assert verdict.fraud.claimed_hash == forged


def test_fraud_proof_convicts_the_forger_not_the_honest_worker(rendered: Path,
                                                               digits: Path) -> None:
    reseal(digits, {13: item_hash(b"not the item")})
    verdict = verify_render_dir(digits, b"beacon", samples=COUNT)
    assert not verdict.ok and verdict.fraud is not None and verdict.fraud.index == 13
    spec = json.loads((rendered / "spec.json").read_text())

    def rerender(i: int) -> bytes:
        return reproduce_item(spec, 5, i)
    assert check_fraud_proof(verdict.root, verdict.fraud, rerender, item_hash)
    honest_root = read_manifest(rendered).root
    assert not check_fraud_proof(honest_root, verdict.fraud, rerender, item_hash)
    proof = verdict.fraud.to_json()
    assert proof["index"] == 13 and proof["leaf"]["position"] == 13


def test_a_worker_committing_to_shifted_labels_fails_at_any_sampled_item(digits: Path) -> None:
    """The issue's case: every label shifted by one, the manifest re-sealed over it."""
    def shift(data: dict) -> None:
        for record in data["labels"]:
            record["label"] = (record["label"] + 1) % 10
    edit_labels(digits, shift)
    reseal(digits)
    for beacon in (b"a", b"b"):
        with pytest.raises(ArtifactMismatch) as info:
            verify_output(digits, beacon, 1)
        checked = sample_indices(beacon, COUNT, 1)[0]
        assert (info.value.reason, info.value.item) == ("delivered-item", checked)


def test_a_worker_committing_to_a_blacked_out_image_fails_when_sampled(shelf: Path) -> None:
    edit_png(shelf, 1, lambda p: p.__setitem__((slice(0, 24), slice(0, 32)), 0))
    reseal(shelf)
    error = rejected(shelf, samples=4)
    assert (error.reason, error.path, error.item) == ("delivered-item", image_path(1), 1)


def test_render_meta_must_match_the_spec(digits: Path) -> None:
    manifest = read_manifest(digits)

    def resealed_with(**meta: object) -> None:
        sealed = seal(manifest.kind, {**manifest.meta, **meta}, manifest.files, manifest.items)
        (digits / "manifest.json").write_bytes(sealed.encode())

    resealed_with(spec_hash=content_hash(b"another spec").hex())
    assert (rejected(digits).reason, rejected(digits).path) == ("spec-mismatch", "spec.json")
    resealed_with(stop=COUNT - 1)
    assert rejected(digits).reason == "bad-manifest"
    resealed_with(seed=6)  # another seed renders other items: the first sampled one convicts
    verdict = verify_render_dir(digits, b"beacon", 1)
    assert verdict.fraud is not None and verdict.checked == (verdict.fraud.index,)


def test_output_of_an_old_format_is_refused_by_name(rendered: Path, tmp_path: Path) -> None:
    for old_format in ("neuro-render-dataset/2", "neuro-render-dataset/1"):
        older = tmp_path / old_format.replace("/", "-")
        shutil.copytree(rendered, older)
        manifest = json.loads((older / "manifest.json").read_text())
        (older / "manifest.json").write_text(json.dumps({**manifest, "format": old_format}))
        with pytest.raises(VerificationFailed) as info:
            verify_output(older, b"beacon", COUNT)
        assert info.value.reason == "unsupported-format" and old_format in str(info.value)


def test_training_replay_passes_and_a_forged_record_fails(tmp_path: Path) -> None:
    out = tmp_path / "cnn"
    run_task("train", TRAIN, out, timeout_s=240)
    verdict = verify_output(out, b"beacon", 2)
    assert verdict.ok and len(verdict.checked) == 3  # 2 sampled segments and the final one
    assert all(d <= 1e-3 for d in verdict.distances)
    log_path = out / "pol" / "pol.json"
    log = json.loads(log_path.read_text())
    for record in log["records"][1:]:  # claim other batches than the seed schedules
        record["batches"] = [list(reversed(b)) for b in record["batches"]]
    log_path.write_text(json.dumps(log))
    forged = verify_output(out, b"beacon", 2)
    # the artifact manifest catches the changed file; re-sealed forgeries: test_train_delivery.py
    assert not forged.ok and forged.reason in ("file-hash", "file-size")
