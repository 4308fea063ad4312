"""Render artifacts on disk: COCO that pycocotools reads, leaves that re-rendering reproduces."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from pycocotools.coco import COCO

from worker.artifact import ArtifactMismatch, leaf_proof, read_manifest
from worker.errors import SpecError, WorkerError
from worker.render.dataset import render_item, reproduce_item
from worker.render.delivered import open_render_artifact
from worker.render.digits import DigitsSpec
from worker.render.item import item_hash
from worker.render.shard import render_dataset, render_shard
from worker.render.shelf_spec import ShelfSpec

SHELF = ShelfSpec(width=96, height=72, count=12)
DIGITS = DigitsSpec(count=9)


@pytest.fixture(scope="module")
def shard(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("render") / "shard"
    render_shard(SHELF, 4, 3, 9, out)
    return out


def test_coco_file_loads_and_masks_round_trip(shard: Path) -> None:
    coco = COCO(str(shard / "annotations.json"))
    assert sorted(coco.getImgIds()) == [4, 5, 6, 7, 8, 9]
    assert len(coco.getCatIds()) == SHELF.catalog.skus
    checked = 0
    for index in range(3, 9):
        item = render_item(SHELF, 4, index)
        assert item.shelf is not None
        ann_ids = sorted(coco.getAnnIds(imgIds=[index + 1]))
        assert len(ann_ids) == len(item.shelf.instances)
        for k, ann in enumerate(coco.loadAnns(ann_ids), start=1):
            mask = item.shelf.idmap == k
            assert np.array_equal(coco.annToMask(ann).astype(bool), mask)
            assert ann["area"] == mask.sum() and ann["iscrowd"] == 0
            assert ann["category_id"] == item.shelf.instances[k - 1].category_id
            checked += 1
    assert checked > 0


def test_published_files_hold_the_committed_items(shard: Path) -> None:
    artifact = open_render_artifact(shard)
    assert [item.index for item in artifact.manifest.items] == list(range(3, 9))
    for position, item in enumerate(artifact.manifest.items):
        rendered = render_item(SHELF, 4, item.index)
        artifact.check_delivered(position, rendered)
        assert rendered.item_hash == item.check
        assert item.files == (f"images/{item.index:08d}.png",)
    with pytest.raises(ArtifactMismatch) as info:
        artifact.check_delivered(0, render_item(SHELF, 4, 4))  # item 4's pixels in item 3's slot
    assert (info.value.reason, info.value.item) == ("delivered-item", 3)


def test_leaf_proofs_commit_to_the_rendered_items(shard: Path) -> None:
    manifest = read_manifest(shard)
    for position, item in enumerate(manifest.items):
        proof = leaf_proof(manifest, position)
        assert proof.reaches(manifest.root) and proof.check == item_hash(
            reproduce_item(SHELF, 4, item.index))
    tampered = bytearray(reproduce_item(SHELF, 4, 5))
    tampered[-40] ^= 1  # one bit of one label
    assert item_hash(bytes(tampered)) != manifest.items[2].check


def test_a_tampered_png_names_its_item(shard: Path, tmp_path: Path) -> None:
    from PIL import Image

    copy = tmp_path / "copy"
    shutil.copytree(shard, copy)
    pixels = np.asarray(Image.open(shard / "images" / "00000004.png")).copy()
    pixels[10, 10, 0] ^= 1
    Image.fromarray(pixels).save(copy / "images" / "00000004.png")
    with pytest.raises(ArtifactMismatch) as info:
        open_render_artifact(copy)
    assert (info.value.path, info.value.item) == ("images/00000004.png", 4)


def test_items_root_does_not_depend_on_the_shard_count(tmp_path: Path) -> None:
    one = render_dataset(DIGITS, 1, tmp_path / "one", shards=1)
    three = render_dataset(DIGITS, 1, tmp_path / "three", shards=3)
    assert one.items_root == three.items_root and one.root != three.root  # paths differ
    assert [s["start"] for s in three.meta["shards"]] == [0, 3, 6]
    assert three.items[7].files == ("shard-0002/images/00000007.png",)
    artifact = open_render_artifact(tmp_path / "three")
    artifact.check_delivered(7, render_item(DIGITS, 1, 7))
    labels = json.loads((tmp_path / "one" / "shard-0000" / "annotations.json").read_text())
    assert [r["label"] for r in labels["labels"]] == [
        render_item(DIGITS, 1, i).label for i in range(9)
    ]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["one", "three"]  # no staging left


def test_existing_output_and_bad_ranges_are_refused(tmp_path: Path) -> None:
    (tmp_path / "taken").mkdir()
    with pytest.raises(WorkerError) as info:
        render_shard(SHELF, 1, 0, 2, tmp_path / "taken")
    assert info.value.reason == "artifact-exists"
    with pytest.raises(SpecError) as bad:
        render_shard(SHELF, 1, 5, 99, tmp_path / "new")
    assert bad.value.reason == "bad-shard-range"
    with pytest.raises(SpecError) as index:
        reproduce_item(SHELF, 1, SHELF.count)
    assert index.value.reason == "bad-item-index"
    assert not (tmp_path / "new").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["taken"]


def test_failed_render_leaves_no_artifact(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import worker.render.shard as shard_module

    def broken_png(path: Path, image: np.ndarray) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(shard_module, "_save_png", broken_png)
    with pytest.raises(OSError):
        render_shard(SHELF, 1, 0, 2, tmp_path / "out")
    assert list(tmp_path.iterdir()) == []


def test_training_data_is_read_only_from_an_intact_render(tmp_path: Path) -> None:
    """The `rendered` data source checks the whole artifact first: a model is never trained (nor
    its training replayed by a verifier) on labels other than those the artifact commits to."""
    from worker.tasks.data import load_rendered

    out = tmp_path / "digits"
    render_dataset(DIGITS, 3, out)
    assert len(load_rendered([(out, None)]).labels) == DIGITS.count
    labels_file = next(out.rglob("annotations.json"))
    doc = json.loads(labels_file.read_text())
    doc["labels"][0]["label"] = (doc["labels"][0]["label"] + 1) % 10
    labels_file.write_text(json.dumps(doc))
    with pytest.raises(ArtifactMismatch) as refused:
        load_rendered([(out, None)])
    assert refused.value.item == 0


def _shards(tmp_path: Path, spec: object, bounds: list[tuple[int, int]]) -> dict[str, Path]:
    """A generate job's delivered shards: root (hex) -> folder."""
    folders = {}
    for start, stop in bounds:
        out = tmp_path / f"shard-{start}"
        folders[render_shard(spec, 5, start, stop, out).root.hex()] = out
    return folders


def test_an_artifacts_source_reads_a_jobs_shards_by_root(tmp_path: Path) -> None:
    """A train job names its data by the roots of the shards it bought: digits concatenated in
    the order named, shelves merged into one COCO dataset with every image found."""
    from worker.tasks.data import artifact_folders, load_data
    from worker.tasks.envelope import ArtifactsSource

    digits = _shards(tmp_path / "d", DIGITS, [(0, 4), (4, 9)])
    source = ArtifactsSource(source="artifacts", roots=list(digits))
    with artifact_folders(digits):
        data = load_data(source)
    whole = tmp_path / "whole"
    render_dataset(DIGITS, 5, whole)
    expected = load_data_from(whole)
    assert np.array_equal(data.images, expected.images) and np.array_equal(data.labels, expected.labels)

    shelves = _shards(tmp_path / "s", SHELF, [(0, 5), (5, 12)])
    with artifact_folders(shelves):
        merged = load_data(ArtifactsSource(source="artifacts", roots=list(shelves)))
    assert len(merged) == SHELF.count
    assert all(merged.image_path(i).is_file() for i in range(len(merged)))
    assert len(set(merged.image_ids)) == SHELF.count


def load_data_from(folder: Path) -> object:
    from worker.tasks.data import load_rendered

    return load_rendered([(folder, None)])


def test_an_artifacts_source_refuses_a_folder_off_its_root_or_missing(tmp_path: Path) -> None:
    from worker.tasks.data import artifact_folders, load_data
    from worker.tasks.envelope import ArtifactsSource

    digits = _shards(tmp_path, DIGITS, [(0, 4), (4, 9)])
    first, second = list(digits)
    with pytest.raises(SpecError, match="not available here"):
        load_data(ArtifactsSource(source="artifacts", roots=[first]))
    # a complete, self-consistent artifact, but not the one the job names
    with artifact_folders({first: digits[second]}), pytest.raises(ArtifactMismatch):
        load_data(ArtifactsSource(source="artifacts", roots=[first]))


def test_an_artifacts_source_refuses_mixed_kinds(tmp_path: Path) -> None:
    from worker.tasks.data import artifact_folders, load_data
    from worker.tasks.envelope import ArtifactsSource

    folders = {**_shards(tmp_path / "d", DIGITS, [(0, 3)]), **_shards(tmp_path / "s", SHELF, [(0, 2)])}
    with artifact_folders(folders), pytest.raises(SpecError, match="mix kinds"):
        load_data(ArtifactsSource(source="artifacts", roots=list(folders)))
