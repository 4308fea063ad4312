"""The artifact store of a data dir: artifacts kept by content, verified on the way in.

An artifact (`worker/artifact.py`) is a folder of delivered files and a manifest whose root is
the artifact's id. The store keeps each file once, by its BLAKE3 hash, however many artifacts
deliver it (two shards of one spec share `spec.json`; a model retrained on the same data shares
its dataset files), and each manifest under its root::

    <datadir>/artifacts/
        blobs/<first 2 hex>/<file hash hex>   file contents, read-only, 0600
        manifests/<root hex>/manifest.json     the manifest, exactly as delivered
        state/<root hex>.json                  pinned, size, when added and last used
        incoming/                              partial writes (removed at the next open)
        partial/<root hex>/                    an unfinished network fetch: its manifest, and per
                                               file <hash>.part and <hash>.pieces (kept across
                                               restarts so a fetch resumes; p2p/artifact_fetch.py)
        .lock                                  held while the store changes (fcntl)

Import (`put`) checks the whole folder first (`verify_files`: every file's size and hash, every
leaf, the root), then copies each file not yet stored while hashing the copy itself, so what is
stored is what was checked even if the source changes meanwhile; every blob and manifest lands
by an atomic rename after an fsync. A crash leaves at most unreferenced blobs and partial
files, swept at the next open. Export writes the files and the manifest back out and checks
the result against the root.

Eviction: the store has a byte budget (blobs counted once). When an import takes it over the
budget, unpinned artifacts are dropped least recently used first (`last_used` moves on import,
export, verify and when a peer fetches it) until it fits; pinned artifacts are never evicted,
and neither is the one being imported. Blobs no manifest references any more are deleted.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from blake3 import blake3

from chain.files import fsync_dir, write_atomic
from worker.artifact import (
    MANIFEST_FILE,
    ArtifactManifest,
    check_commitments,
    file_hash,
    read_manifest,
    verify_files,
)
from worker.errors import VerificationFailed

STORE_DIR = "artifacts"
DEFAULT_BUDGET_BYTES = 20 << 30
COPY_CHUNK = 1 << 20


class ArtifactStoreError(Exception):
    """A store operation that cannot be done; ``reason`` is kebab-case, as everywhere."""

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class StoredArtifact:
    root: bytes
    kind: str
    size: int  # bytes of its files (shared blobs counted in full here)
    files: int
    items: int
    pinned: bool
    added: float
    last_used: float

    def to_json(self) -> dict[str, object]:
        return {
            "root": self.root.hex(), "kind": self.kind, "size": self.size, "files": self.files,
            "items": self.items, "pinned": self.pinned, "added": self.added, "last_used": self.last_used,
        }


def parse_root(text: str) -> bytes:
    """A root given by a user: 64 hex digits."""
    try:
        root = bytes.fromhex(text.strip().lower().removeprefix("0x"))
    except ValueError:
        root = b""
    if len(root) != 32:
        raise ArtifactStoreError(f"{text!r} is not an artifact root (64 hex digits)", "bad-root")
    return root


class ArtifactStore:
    def __init__(self, path: Path, budget_bytes: int = DEFAULT_BUDGET_BYTES) -> None:
        self.path = path
        self.budget_bytes = budget_bytes
        for sub in ("blobs", "manifests", "state", "incoming"):
            (path / sub).mkdir(parents=True, exist_ok=True, mode=0o700)
        with self._locked():
            self._sweep_incoming()

    # ---- paths ---------------------------------------------------------------------------

    def blob_path(self, file_hash: bytes) -> Path:
        hexed = file_hash.hex()
        return self.path / "blobs" / hexed[:2] / hexed

    def _manifest_dir(self, root: bytes) -> Path:
        return self.path / "manifests" / root.hex()

    def _state_path(self, root: bytes) -> Path:
        return self.path / "state" / f"{root.hex()}.json"

    @contextmanager
    def _locked(self) -> Iterator[None]:
        """One writer at a time across processes (the daemon and the CLI share a store)."""
        fd = os.open(self.path / ".lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    # ---- reads ---------------------------------------------------------------------------

    def has(self, root: bytes) -> bool:
        return (self._manifest_dir(root) / MANIFEST_FILE).is_file()

    def manifest(self, root: bytes) -> ArtifactManifest:
        if not self.has(root):
            raise ArtifactStoreError(f"no artifact {root.hex()} in {self.path}", "unknown-artifact")
        manifest = read_manifest(self._manifest_dir(root))
        if manifest.root != root:
            raise ArtifactStoreError(f"the manifest stored as {root.hex()} is {manifest.root.hex()}", "store-damaged")
        return manifest

    def info(self, root: bytes) -> StoredArtifact:
        manifest = self.manifest(root)
        state = self._read_state(root)
        return StoredArtifact(
            root, manifest.kind, sum(f.size for f in manifest.files), len(manifest.files), len(manifest.items),
            bool(state.get("pinned", False)), float(state.get("added", 0.0)), float(state.get("last_used", 0.0)),
        )

    def list(self) -> list[StoredArtifact]:
        return [self.info(root) for root in self._roots()]

    def _roots(self) -> list[bytes]:
        roots = []
        for entry in sorted((self.path / "manifests").iterdir()):
            try:
                root = bytes.fromhex(entry.name)
            except ValueError:
                continue
            if len(root) == 32 and self.has(root):
                roots.append(root)
        return roots

    def usage(self) -> int:
        """Bytes of all blobs: what the budget counts."""
        return sum(p.stat().st_size for p in (self.path / "blobs").glob("*/*"))

    def verify(self, root: bytes) -> ArtifactManifest:
        """Re-hash every stored file of ``root``; `VerificationFailed` names the first bad one."""
        manifest = self.manifest(root)
        for entry in manifest.files:
            blob = self.blob_path(entry.hash)
            try:
                size, digest = blob.stat().st_size, file_hash(blob)
            except FileNotFoundError:
                raise VerificationFailed(f"{entry.path}: stored copy missing", reason="file-missing") from None
            if size != entry.size or digest != entry.hash:
                raise VerificationFailed(f"{entry.path}: stored copy damaged", reason="file-hash")
        self._touch(root)
        return manifest

    # ---- writes --------------------------------------------------------------------------

    def put(self, folder: Path, *, pin: bool = False) -> StoredArtifact:
        """Import the artifact in ``folder`` (verified whole first); an artifact already stored
        is not copied again (its use time moves, and ``pin`` pins it)."""
        manifest = verify_files(folder)
        with self._locked():
            if not self.has(manifest.root):
                self._copy_in(folder, manifest)
            state = self._read_state(manifest.root)
            now = time.time()
            state.setdefault("added", now)
            state["last_used"] = now
            state["pinned"] = bool(state.get("pinned")) or pin
            self._write_state(manifest.root, state)
            self._evict(keep=manifest.root)
        return self.info(manifest.root)

    def _copy_in(self, folder: Path, manifest: ArtifactManifest) -> None:
        for entry in manifest.files:
            blob = self.blob_path(entry.hash)
            if blob.is_file():
                continue
            blob.parent.mkdir(exist_ok=True, mode=0o700)
            staged = self.path / "incoming" / f"{entry.hash.hex()}.{os.getpid()}"
            size, digest = _copy_hashing(folder / entry.path, staged)
            if (size, digest) != (entry.size, entry.hash):
                staged.unlink(missing_ok=True)
                raise VerificationFailed(f"{entry.path}: changed while it was imported", reason="file-hash")
            os.chmod(staged, 0o400)
            os.replace(staged, blob)
            fsync_dir(blob.parent)
        target = self._manifest_dir(manifest.root)
        write_atomic(target / MANIFEST_FILE, manifest.encode())

    def export(self, root: bytes, out: Path) -> ArtifactManifest:
        """Write the artifact's files and manifest into ``out`` (new or empty), then check them."""
        manifest = self.manifest(root)
        if out.exists() and any(out.iterdir()):
            raise ArtifactStoreError(f"{out} is not empty", "out-not-empty")
        for entry in manifest.files:
            target = out / entry.path
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(self.blob_path(entry.hash), target)
        (out / MANIFEST_FILE).write_bytes(manifest.encode())
        checked = verify_files(out, expected_root=root)
        self._touch(root)
        return checked

    def pin(self, root: bytes, pinned: bool = True) -> StoredArtifact:
        self.manifest(root)
        with self._locked():
            state = self._read_state(root)
            state["pinned"] = pinned
            self._write_state(root, state)
        return self.info(root)

    def remove(self, root: bytes) -> None:
        self.manifest(root)
        with self._locked():
            self._drop(root)
            self._collect_garbage()

    # ---- fetching over the network (p2p/artifact_fetch.py through neurod/artifact_backend.py)

    def partial_dir(self, root: bytes) -> Path:
        folder = self.path / "partial" / root.hex()
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        return folder

    def drop_partial(self, root: bytes) -> None:
        shutil.rmtree(self.path / "partial" / root.hex(), ignore_errors=True)

    def has_blob(self, file_hash: bytes) -> bool:
        return self.blob_path(file_hash).is_file()

    def adopt_blob(self, expected: bytes, size: int, path: Path) -> bool:
        """Move the finished file at ``path`` in as the blob ``expected`` if it hashes to it
        (False, file left in place, when it does not): the whole-file check of a fetch."""
        if path.stat().st_size != size or file_hash(path) != expected:
            return False
        blob = self.blob_path(expected)
        with self._locked():
            if blob.is_file():
                path.unlink()
                return True
            blob.parent.mkdir(exist_ok=True, mode=0o700)
            os.chmod(path, 0o400)
            os.replace(path, blob)
            fsync_dir(blob.parent)
        return True

    def put_fetched(self, root: bytes) -> StoredArtifact:
        """Store the manifest of a finished fetch (its partial folder holds it) once every file
        it lists is a blob (each was hashed whole by `adopt_blob`); drop the partial folder."""
        folder = self.path / "partial" / root.hex()
        manifest = read_manifest(folder)
        check_commitments(manifest)
        if manifest.root != root:
            raise ArtifactStoreError(f"the fetched manifest is {manifest.root.hex()}, not {root.hex()}", "wrong-root")
        for entry in manifest.files:
            blob = self.blob_path(entry.hash)
            if not blob.is_file() or blob.stat().st_size != entry.size:
                raise ArtifactStoreError(f"{entry.path}: not stored", "file-missing")
        with self._locked():
            write_atomic(self._manifest_dir(root) / MANIFEST_FILE, manifest.encode())
            state = self._read_state(root)
            now = time.time()
            state.setdefault("added", now)
            state["last_used"] = now
            state.setdefault("pinned", False)
            self._write_state(root, state)
            self.drop_partial(root)
            self._evict(keep=root)
        return self.info(root)

    def touch(self, root: bytes) -> None:
        """Mark ``root`` used now (a peer fetched it): eviction drops the least recently used."""
        self._touch(root)

    def _touch(self, root: bytes) -> None:
        with self._locked():
            state = self._read_state(root)
            state["last_used"] = time.time()
            self._write_state(root, state)

    # ---- eviction ------------------------------------------------------------------------

    def _evict(self, keep: bytes) -> list[bytes]:
        """Drop unpinned artifacts, least recently used first, until the blobs fit the budget.

        Every manifest is read once: each blob's holders are counted up front, and a blob is
        deleted when its last holder goes (not by a store-wide sweep after every victim)."""
        self._collect_garbage()
        usage = self.usage()
        dropped: list[bytes] = []
        if usage <= self.budget_bytes:
            return dropped
        files = {root: {entry.hash for entry in self.manifest(root).files} for root in self._roots()}
        holders = Counter(file for held in files.values() for file in held)
        fetching = self._fetching()
        candidates = sorted(
            (a for a in self.list() if not a.pinned and a.root != keep), key=lambda a: a.last_used
        )
        for victim in candidates:
            self._drop(victim.root)
            dropped.append(victim.root)
            for file in files[victim.root]:
                holders[file] -= 1
                blob = self.blob_path(file)
                if holders[file] == 0 and file.hex() not in fetching and blob.exists():
                    usage -= blob.stat().st_size
                    blob.unlink()
            if usage <= self.budget_bytes:
                break
        return dropped

    def _drop(self, root: bytes) -> None:
        self._state_path(root).unlink(missing_ok=True)
        shutil.rmtree(self._manifest_dir(root), ignore_errors=True)

    def _collect_garbage(self) -> None:
        """Delete blobs no stored manifest lists (dropped artifacts, an import cut short)."""
        wanted = {entry.hash.hex() for root in self._roots() for entry in self.manifest(root).files}
        wanted |= self._fetching()
        for blob in (self.path / "blobs").glob("*/*"):
            if blob.name not in wanted:
                blob.unlink(missing_ok=True)

    def _fetching(self) -> set[str]:
        """Blobs that unfinished fetches have stored already (their manifest is not yet)."""
        wanted: set[str] = set()
        for folder in (self.path / "partial").glob("*"):
            try:
                wanted |= {entry.hash.hex() for entry in read_manifest(folder).files}
            except VerificationFailed:
                continue
        return wanted

    def _sweep_incoming(self) -> None:
        for partial in (self.path / "incoming").iterdir():
            partial.unlink(missing_ok=True)

    # ---- state files ---------------------------------------------------------------------

    def _read_state(self, root: bytes) -> dict[str, object]:
        try:
            state = json.loads(self._state_path(root).read_text())
        except (OSError, ValueError):
            return {}
        return state if isinstance(state, dict) else {}

    def _write_state(self, root: bytes, state: dict[str, object]) -> None:
        write_atomic(self._state_path(root), json.dumps(state, sort_keys=True).encode())


def _copy_hashing(source: Path, target: Path) -> tuple[int, bytes]:
    """Copy ``source`` to ``target`` (fsynced), hashing the bytes as they are written."""
    hasher, size = blake3(), 0
    with source.open("rb") as src, open(target, "wb") as dst:
        while chunk := src.read(COPY_CHUNK):
            hasher.update(chunk)
            dst.write(chunk)
            size += len(chunk)
        dst.flush()
        os.fsync(dst.fileno())
    return size, hasher.digest()


def store_of(datadir: Path, budget_bytes: int = DEFAULT_BUDGET_BYTES) -> ArtifactStore:
    return ArtifactStore(datadir / STORE_DIR, budget_bytes)
