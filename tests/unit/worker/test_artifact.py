"""The artifact format: the documented hashes, every delivered byte checked, file and item named."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import replace
from pathlib import Path

import msgpack
import pytest
from blake3 import blake3
from hypothesis import given, settings
from hypothesis import strategies as st

from chain.merkle import merkle_root
from worker.artifact import (
    FORMAT,
    ArtifactManifest,
    ArtifactMismatch,
    ItemDraft,
    ItemLabels,
    canonical_json,
    content_hash,
    leaf_proof,
    read_manifest,
    seal,
    verify_files,
    write_manifest,
)

KIND = "model"  # any kind: the format knows none of them
META = {"epochs": 2, "metrics": {"accuracy": 0.5}, "name": "cnn"}


def make_artifact(folder: Path, items: int = 5) -> ArtifactManifest:
    """A generic artifact: one file per item, a shared label file and a non-item file."""
    (folder / "items").mkdir(parents=True)
    drafts = []
    for index in range(items):
        (folder / "items" / f"{index}.bin").write_bytes(bytes([index]) * (100 + index))
        drafts.append(ItemDraft(index, (f"items/{index}.bin",), f"label {index}".encode(),
                                content_hash(f"check {index}".encode())))
    (folder / "labels.json").write_text(json.dumps([f"label {i}" for i in range(items)]))
    (folder / "weights.bin").write_bytes(os.urandom(4096))
    return write_manifest(folder, KIND, drafts, META)


def labels_from(folder: Path) -> ItemLabels:
    def derive(manifest: ArtifactManifest) -> list[tuple[str, bytes]]:
        names = json.loads((folder / "labels.json").read_text())
        return [("labels.json", names[item.index].encode()) for item in manifest.items]
    return derive


@pytest.fixture
def artifact(tmp_path: Path) -> Path:
    make_artifact(tmp_path / "a")
    return tmp_path / "a"


def rejected(folder: Path, **kwargs: object) -> ArtifactMismatch:
    with pytest.raises(ArtifactMismatch) as info:
        verify_files(folder, **kwargs)  # type: ignore[arg-type]
    return info.value


def rewrite_manifest(folder: Path, manifest: ArtifactManifest) -> None:
    (folder / "manifest.json").write_bytes(manifest.encode())


def test_the_root_is_the_documented_hash_chain(artifact: Path) -> None:
    """Recomputed from worker/artifact.py's docstring alone, as another implementation would."""
    data = json.loads((artifact / "manifest.json").read_bytes())
    assert data["format"] == FORMAT == "neuro-artifact/1"
    for entry in data["files"]:
        assert entry["hash"] == blake3((artifact / entry["path"]).read_bytes()).hexdigest()
    leaves = []
    for item in data["items"]:
        hashes = [bytes.fromhex(next(f["hash"] for f in data["files"] if f["path"] == p))
                  for p in item["files"]]
        preimage = msgpack.packb([item["index"], bytes.fromhex(item["check"]),
                                  bytes.fromhex(item["labels"]), hashes], use_bin_type=True)
        by_hand = (b"\x94" + bytes([item["index"]])  # array of 4; a positive fixint index
                   + b"\xc4\x20" + bytes.fromhex(item["check"])
                   + b"\xc4\x20" + bytes.fromhex(item["labels"])
                   + bytes([0x90 + len(hashes)]) + b"".join(b"\xc4\x20" + h for h in hashes))
        assert preimage == by_hand
        leaf = blake3(preimage, derive_key_context="neuro 2026-12 artifact leaf v1").digest()
        assert leaf.hex() == item["leaf"]
        assert item["labels"] == blake3(f"label {item['index']}".encode()).hexdigest()
        leaves.append(leaf)
    items_root = merkle_root(leaves)
    header = {"count": len(leaves), "files": data["files"], "format": data["format"],
              "kind": data["kind"], "meta": data["meta"]}
    header_bytes = json.dumps(header, sort_keys=True, separators=(",", ":")).encode()
    header_hash = blake3(header_bytes, derive_key_context="neuro 2026-12 artifact header v1")
    root = blake3(items_root + header_hash.digest(),
                  derive_key_context="neuro 2026-12 artifact root v1").hexdigest()
    assert (data["items_root"], data["root"]) == (items_root.hex(), root)
    assert sorted(e["path"] for e in data["files"]) == [
        "items/0.bin", "items/1.bin", "items/2.bin", "items/3.bin", "items/4.bin",
        "labels.json", "weights.bin"]


def test_an_honest_artifact_verifies_and_reads_back(artifact: Path) -> None:
    written = read_manifest(artifact)
    assert verify_files(artifact, labels_from(artifact)) == written
    assert verify_files(artifact, expected_root=written.root) == written
    (artifact / "task.json").write_text("{}")  # the runner's local record is not delivered
    assert verify_files(artifact).root == written.root


def test_leaf_proofs_reach_the_root_and_nothing_else(artifact: Path) -> None:
    manifest = read_manifest(artifact)
    for position in range(len(manifest.items)):
        proof = leaf_proof(manifest, position)
        assert proof.reaches(manifest.root) and proof.index == position
        assert not proof.reaches(bytes(32))
        assert not replace(proof, check=content_hash(b"other")).reaches(manifest.root)
        assert not replace(proof, header_hash=bytes(32)).reaches(manifest.root)
    swapped = replace(leaf_proof(manifest, 1), path=leaf_proof(manifest, 2).path)
    assert not swapped.reaches(manifest.root)


@pytest.mark.parametrize(
    ("damage", "reason", "path", "item"),
    [
        (lambda a: _flip(a / "items" / "3.bin", 50), "file-hash", "items/3.bin", 3),
        (lambda a: _flip(a / "weights.bin", 7), "file-hash", "weights.bin", None),
        (lambda a: (a / "items" / "2.bin").write_bytes(b"\x02" * 10), "file-size", "items/2.bin", 2),
        (lambda a: (a / "items" / "4.bin").unlink(), "file-missing", "items/4.bin", 4),
        (lambda a: (a / "items" / "5.bin").write_bytes(b"x"), "extra-file", "items/5.bin", None),
        (lambda a: (a / ".hidden").write_bytes(b""), "extra-file", ".hidden", None),
        (lambda a: os.symlink("/etc/hostname", a / "link"), "not-a-file", "link", None),
    ],
)
def test_each_damage_names_its_reason_file_and_item(
    artifact: Path, damage: object, reason: str, path: str, item: int | None
) -> None:
    damage(artifact)  # type: ignore[operator]
    error = rejected(artifact)
    assert (error.reason, error.path, error.item) == (reason, path, item)
    assert path in str(error) and (item is None or f"item {item}" in str(error))


def test_swapped_files_name_both_items_lowest_first(artifact: Path) -> None:
    one, two = artifact / "items" / "1.bin", artifact / "items" / "3.bin"
    first, second = one.read_bytes(), two.read_bytes()
    one.write_bytes(second[: len(first)])
    two.write_bytes(first + b"\x01" * (len(second) - len(first)))
    error = rejected(artifact)
    assert (error.reason, error.item) == ("file-hash", 1)
    assert [(p.item, p.path) for p in error.problems] == [(1, "items/1.bin"), (3, "items/3.bin")]
    assert "items/3.bin" in str(error)


def test_a_changed_label_names_its_item_before_its_file(artifact: Path) -> None:
    names = json.loads((artifact / "labels.json").read_text())
    names[3] = "label 7"
    (artifact / "labels.json").write_text(json.dumps(names))
    error = rejected(artifact, item_labels=labels_from(artifact))
    assert (error.reason, error.path, error.item) == ("item-labels", "labels.json", 3)
    assert [p.reason for p in error.problems] == ["item-labels", "file-hash"]


def test_a_changed_manifest_field_names_the_right_item(artifact: Path) -> None:
    manifest = read_manifest(artifact)
    for position in range(len(manifest.items)):
        items = list(manifest.items)
        items[position] = replace(items[position], check=content_hash(b"forged"))
        rewrite_manifest(artifact, replace(manifest, items=tuple(items)))
        error = rejected(artifact)
        assert (error.reason, error.item) == ("item-leaf", position)
        items[position] = replace(manifest.items[position], leaf=bytes(32))
        rewrite_manifest(artifact, replace(manifest, items=tuple(items)))
        assert (rejected(artifact).reason, rejected(artifact).item) == ("item-leaf", position)
    rewrite_manifest(artifact, replace(manifest, items_root=bytes(32)))
    assert rejected(artifact).reason == "items-root"
    rewrite_manifest(artifact, replace(manifest, root=bytes(32)))
    assert rejected(artifact).reason == "bad-root"
    rewrite_manifest(artifact, replace(manifest, meta={**manifest.meta, "epochs": 3}))
    assert rejected(artifact).reason == "bad-root"  # meta is committed through the header
    rewrite_manifest(artifact, manifest)
    assert rejected(artifact, expected_root=bytes(32)).reason == "wrong-root"


def test_a_resealed_manifest_still_fails_on_the_files(artifact: Path) -> None:
    """A worker re-committing to other bytes than it delivers: the file hashes say which."""
    manifest = read_manifest(artifact)
    files = [replace(f, hash=content_hash(b"other")) if f.path == "items/2.bin" else f
             for f in manifest.files]
    rewrite_manifest(artifact, seal(manifest.kind, manifest.meta, files, manifest.items))
    error = rejected(artifact)
    assert (error.reason, error.path, error.item) == ("file-hash", "items/2.bin", 2)


@pytest.mark.parametrize(
    ("edit", "reason"),
    [
        (lambda m: {**m, "format": "neuro-render-dataset/2"}, "unsupported-format"),
        (lambda m: {k: v for k, v in m.items() if k != "format"}, "unsupported-format"),
        (lambda m: {**m, "extra": 1}, "bad-manifest"),
        (lambda m: {**m, "files": [{**m["files"][0], "path": "../escape"}] + m["files"][1:]},
         "bad-manifest"),
        (lambda m: {**m, "files": [{**m["files"][0], "path": "/abs"}] + m["files"][1:]},
         "bad-manifest"),
        (lambda m: {**m, "files": [{**m["files"][0], "size": True}] + m["files"][1:]},
         "bad-manifest"),
        (lambda m: {**m, "files": m["files"][::-1]}, "bad-manifest"),
        (lambda m: {**m, "items": m["items"][::-1]}, "bad-manifest"),
    ],
)
def test_malformed_and_old_manifests_are_refused_by_name(
    artifact: Path, edit: object, reason: str
) -> None:
    data = json.loads((artifact / "manifest.json").read_bytes())
    changed = edit(data)  # type: ignore[operator]
    (artifact / "manifest.json").write_bytes(
        json.dumps(changed, sort_keys=True, separators=(",", ":")).encode())
    error = rejected(artifact)
    assert error.reason == reason and error.path == "manifest.json"
    if reason == "unsupported-format":
        assert repr(changed.get("format")) in str(error) and FORMAT in str(error)


def test_a_manifest_must_be_canonical_and_present(artifact: Path) -> None:
    data = json.loads((artifact / "manifest.json").read_bytes())
    (artifact / "manifest.json").write_text(json.dumps(data, sort_keys=True, indent=1))
    assert rejected(artifact).reason == "bad-manifest"
    (artifact / "manifest.json").unlink()
    assert rejected(artifact).reason == "file-missing"


def test_write_refuses_what_no_reader_could_verify(tmp_path: Path) -> None:
    with pytest.raises(ArtifactMismatch) as info:
        write_manifest(tmp_path, KIND, [ItemDraft(0, ("nothing.bin",))], {})
    assert (info.value.reason, info.value.path, info.value.item) == ("file-missing",
                                                                     "nothing.bin", 0)
    (tmp_path / ".DS_Store").write_bytes(b"")
    with pytest.raises(ArtifactMismatch) as hidden:
        write_manifest(tmp_path, KIND, [], {})
    assert (hidden.value.reason, hidden.value.path) == ("bad-path", ".DS_Store")


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text()
    | st.floats(allow_nan=False, allow_infinity=False),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None)
@given(value=json_values)
def test_canonical_json_is_json_dumps_whatever_the_fast_path(value: object) -> None:
    expected = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    assert canonical_json(value) == expected.encode()


names = st.from_regex(r"[a-z0-9_][a-z0-9_.-]{0,7}", fullmatch=True)


@settings(max_examples=25, deadline=None)
@given(
    files=st.dictionaries(st.lists(names, min_size=1, max_size=3).map("/".join),
                          st.binary(max_size=64), min_size=1, max_size=6),
    labels=st.lists(st.binary(max_size=16), max_size=6),
    meta=st.dictionaries(names, st.integers() | st.text(max_size=5) | st.floats(allow_nan=False,
                                                                              allow_infinity=False)),
)
def test_written_manifests_read_back_and_verify(
    files: dict[str, bytes], labels: list[bytes], meta: dict[str, object]
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        paths = sorted(files)
        written_paths = []
        for path in paths:  # a path that is another's folder cannot also be a file
            if any(other.startswith(path + "/") for other in paths) or path in ("task.json",):
                continue
            target = folder / path
            if any(parent.is_file() for parent in target.parents):
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(files[path])
            written_paths.append(path)
        drafts = [ItemDraft(k, (written_paths[k % len(written_paths)],), label)
                  for k, label in enumerate(labels)]
        written = write_manifest(folder, "labels", drafts, meta)
        assert read_manifest(folder) == written == verify_files(folder)
        assert {f.path for f in written.files} == set(written_paths)
        shutil.rmtree(folder / written_paths[0].split("/")[0], ignore_errors=True)
        if (folder / written_paths[0]).exists():
            (folder / written_paths[0]).unlink()
        with pytest.raises(ArtifactMismatch):
            verify_files(folder)


def _flip(path: Path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x10
    path.write_bytes(bytes(data))
