"""The artifact store: verified imports, files kept once, atomic writes, LRU eviction, pins."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from neurod.artifact_store import ArtifactStore, ArtifactStoreError, parse_root
from worker.artifact import ItemDraft, verify_files, write_manifest
from worker.errors import VerificationFailed


def make_artifact(folder: Path, name: str, sizes: list[int], shared: bytes = b"shared spec") -> bytes:
    """An artifact of ``len(sizes)`` items, one file each (its bytes seeded by ``name``), plus a
    ``spec.json`` that every artifact made here delivers alike; returns its root."""
    folder.mkdir(parents=True)
    (folder / "items").mkdir()
    drafts = []
    for index, size in enumerate(sizes):
        path = f"items/{index:04d}.bin"
        (folder / path).write_bytes((name.encode() + bytes([index])) * (size // (len(name) + 1) + 1))
        drafts.append(ItemDraft(index, (path,), labels=f'{{"label": {index}}}'.encode()))
    (folder / "spec.json").write_bytes(shared)
    return write_manifest(folder, "test", drafts, {"name": name}).root


def blobs(store: ArtifactStore) -> int:
    return len(list((store.path / "blobs").glob("*/*")))


def test_import_verifies_stores_and_exports_the_same_files(tmp_path: Path) -> None:
    root = make_artifact(tmp_path / "a", "a", [100, 200, 300])
    store = ArtifactStore(tmp_path / "store")
    stored = store.put(tmp_path / "a")
    assert stored.root == root and (stored.items, stored.files, stored.kind) == (3, 4, "test")
    assert [a.root for a in store.list()] == [root]
    out = tmp_path / "out"
    store.export(root, out)
    for path in ("spec.json", "items/0000.bin", "items/0002.bin", "manifest.json"):
        assert (out / path).read_bytes() == (tmp_path / "a" / path).read_bytes()
    assert verify_files(out, expected_root=root).root == root
    assert store.verify(root).root == root


def test_files_delivered_by_several_artifacts_are_stored_once(tmp_path: Path) -> None:
    store = ArtifactStore(tmp_path / "store")
    a = make_artifact(tmp_path / "a", "a", [10, 20])
    store.put(tmp_path / "a")
    assert blobs(store) == 3
    store.put(tmp_path / "a")  # the same artifact again: nothing copied
    assert blobs(store) == 3
    b = make_artifact(tmp_path / "b", "b", [10])
    store.put(tmp_path / "b")
    assert blobs(store) == 4  # b's item; spec.json is shared
    store.remove(a)
    assert blobs(store) == 2  # a's items went; the shared spec.json stays while b delivers it
    assert [x.root for x in store.list()] == [b] and store.verify(b).root == b


def test_a_tampered_folder_is_refused_and_nothing_is_stored(tmp_path: Path) -> None:
    make_artifact(tmp_path / "a", "a", [100, 100])
    target = tmp_path / "a" / "items" / "0001.bin"
    data = bytearray(target.read_bytes())
    data[5] ^= 1
    target.write_bytes(bytes(data))
    store = ArtifactStore(tmp_path / "store")
    with pytest.raises(VerificationFailed) as refused:
        store.put(tmp_path / "a")
    assert refused.value.reason == "file-hash" and "items/0001.bin" in str(refused.value)
    assert store.list() == [] and blobs(store) == 0


def test_a_damaged_stored_file_fails_verify_naming_it(tmp_path: Path) -> None:
    root = make_artifact(tmp_path / "a", "a", [100, 100])
    store = ArtifactStore(tmp_path / "store")
    store.put(tmp_path / "a")
    manifest = store.manifest(root)
    entry = next(f for f in manifest.files if f.path == "items/0001.bin")
    blob = store.blob_path(entry.hash)
    os.chmod(blob, 0o600)
    blob.write_bytes(blob.read_bytes()[:-1] + b"X")
    with pytest.raises(VerificationFailed, match="items/0001.bin"):
        store.verify(root)
    with pytest.raises(VerificationFailed):  # nor is it exported as if it were whole
        store.export(root, tmp_path / "out")


def test_eviction_drops_the_least_recently_used_unpinned_artifacts(tmp_path: Path) -> None:
    roots = [make_artifact(tmp_path / name, name, [4000]) for name in ("a", "b", "c", "d")]
    store = ArtifactStore(tmp_path / "store", budget_bytes=3 * 4100)
    store.put(tmp_path / "a", pin=True)
    store.put(tmp_path / "b")
    store.put(tmp_path / "c")
    store.export(roots[1], tmp_path / "out-b")  # b is used again: c is now the oldest unpinned
    store.put(tmp_path / "d")
    kept = {a.root for a in store.list()}
    assert kept == {roots[0], roots[1], roots[3]}
    assert store.usage() <= store.budget_bytes


def test_pinned_artifacts_are_never_evicted_even_over_budget(tmp_path: Path) -> None:
    a, b, c = (make_artifact(tmp_path / name, name, [4000]) for name in ("a", "b", "c"))
    store = ArtifactStore(tmp_path / "store", budget_bytes=100)
    store.put(tmp_path / "a", pin=True)
    store.put(tmp_path / "b")  # over budget, but it is the one being imported
    assert {x.root for x in store.list()} == {a, b}
    store.put(tmp_path / "c")  # b is the only unpinned one left to drop
    assert {x.root for x in store.list()} == {a, c}
    store.pin(c)
    store.pin(a, pinned=False)
    assert not store.info(a).pinned and store.info(c).pinned


def test_leftovers_of_an_interrupted_import_are_swept(tmp_path: Path) -> None:
    make_artifact(tmp_path / "a", "a", [100])
    store = ArtifactStore(tmp_path / "store")
    (store.path / "incoming" / "deadbeef.123").write_bytes(b"half a file")
    orphan = store.blob_path(bytes(32))
    orphan.parent.mkdir(exist_ok=True)
    orphan.write_bytes(b"a blob no manifest lists")
    store = ArtifactStore(tmp_path / "store")  # reopened after the crash
    assert list((store.path / "incoming").iterdir()) == []
    store.put(tmp_path / "a")
    assert not orphan.exists()


def test_unknown_roots_and_bad_root_text_are_named_errors(tmp_path: Path) -> None:
    store = ArtifactStore(tmp_path / "store")
    with pytest.raises(ArtifactStoreError) as unknown:
        store.info(bytes(32))
    assert unknown.value.reason == "unknown-artifact"
    with pytest.raises(ArtifactStoreError) as bad:
        parse_root("xyz")
    assert bad.value.reason == "bad-root"
    make_artifact(tmp_path / "a", "a", [10])
    root = store.put(tmp_path / "a").root
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_bytes(b"x")
    with pytest.raises(ArtifactStoreError, match="not empty"):
        store.export(root, tmp_path / "full")
