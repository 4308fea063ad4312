"""One artifact format for every output (render shards, models, labels, evaluations).

Why: the market pays for an artifact by its id, so the id must commit to every byte that is
delivered, and a buyer must be able to say which file, and which item, differ. Re-rendering or
replaying checks only sampled items; hashing every delivered file is cheap (about 1% of a render)
and catches everything else that changed after the worker committed.

An artifact is a folder: the files it delivers and ``manifest.json``, canonical JSON (below) of::

    {"files":  [{"hash": hex, "path": str, "size": int}, ...],   sorted by path, every file
     "format": "neuro-artifact/1",
     "items":  [{"check": hex, "files": [path, ...], "index": int, "labels": hex, "leaf": hex}, ...],
     "items_root": hex, "kind": str, "meta": {...}, "root": hex}

Hashes (BLAKE3, 32 bytes; "derive(C, x)" is BLAKE3's derive-key mode with context string C):
- file hash: plain BLAKE3 of the file's bytes (what ``b3sum`` prints);
- labels: plain BLAKE3 of the item's canonical label bytes (the kind defines them: render items
  use `canonical_json` of the item's records in its label file); BLAKE3 of b"" when it has none;
- check: what re-computing the item must reproduce (render: the item id of the raw pixels and
  labels, `worker.render.item.item_hash`); empty when the kind has nothing to recompute;
- leaf = derive(LEAF_CONTEXT, msgpack([index, check, labels, [file hash, ...]])), bytes as
  msgpack bin, the item's own files in the order listed;
- items_root = `chain.merkle.merkle_root(leaves)` in item order: blake2b-256 with person
  ``neuro-leaf`` over each leaf, ``neuro-node`` over each pair, an odd node promoted unchanged;
- header = canonical_json({"count": number of items, "files": files, "format", "kind", "meta"});
- root = derive(ROOT_CONTEXT, items_root || derive(HEADER_CONTEXT, header)): the artifact id.

So a leaf's way to the root is a plain Merkle path plus one hash step with the header hash: a
fraud proof (`LeafProof`) is the leaf's fields, its Merkle path, ``items_root`` and the header
hash. Leaves do not name paths, so ``items_root`` does not depend on how files are laid out
(shards); the root does, through the file list.

Canonical JSON: sorted keys, separators ``,`` and ``:`` with no whitespace, ASCII only (other
characters as ``\\uXXXX``), integers in decimal, floats as Python's ``repr`` (shortest
round-trip), no NaN or infinities: exactly ``json.dumps(v, sort_keys=True, separators=(",",
":"), ensure_ascii=True, allow_nan=False)``.

API (what a task writing an artifact uses):
- `write_manifest(folder, kind, items, meta)`: after every file is written; hashes them all,
  seals the leaves and roots, writes ``manifest.json``; ``items`` are `ItemDraft`s;
- `read_manifest(folder)`: decode and check the manifest alone (``unsupported-format``,
  ``bad-manifest``, ``bad-path``);
- `verify_files(folder, item_labels=None, expected_root=None)`: every stage below, cheapest
  first; raises `ArtifactMismatch` naming the file and the item;
- `leaf_proof(manifest, position)` and `LeafProof.reaches(root)`: fraud proofs;
- `seal(kind, meta, files, items)`: the pure part of writing (tests forge with it).

Verification stages (`verify_files`): the manifest alone (format, shape, paths, canonical
bytes); the expected root; every leaf recomputed (``item-leaf``), ``items_root``
(``items-root``), the root (``bad-root``); the folder's listing (``file-missing``,
``extra-file``, ``not-a-file``); then, as one stage, sizes (``file-size``), every byte hashed
(``file-hash``) and every item's labels re-derived from the delivered label files
(``item-labels``, ``bad-labels``). Within a stage, problems are reported item-owned first, in
item order, so a changed label names its item, not only its file.
``task.json`` (the runner's local record of the run) is not part of an artifact.
"""

from __future__ import annotations

import json
import os
import re
import stat
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from itertools import pairwise
from pathlib import Path
from typing import Any

import orjson
from blake3 import blake3

from chain.commitments import LEAF_CONTEXT, ROOT_CONTEXT, fold_root, item_leaf  # noqa: F401 - re-exported
from chain.merkle import MerkleProof, merkle_proof, merkle_root, verify_proof
from worker.errors import VerificationFailed

FORMAT = "neuro-artifact/1"
MANIFEST_FILE = "manifest.json"
LOCAL_FILES = frozenset({MANIFEST_FILE, "task.json"})  # top-level names never in an artifact
HEADER_CONTEXT = "neuro 2026-12 artifact header v1"
HASH_SIZE = 32
MAX_MANIFEST_BYTES = 256 << 20  # ~750k items; checked before the JSON is parsed
MAX_PATH_CHARS = 255
PATH_PART = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")  # no "", ".", ".." or hidden names
PATH = re.compile(rf"(?:{PATH_PART.pattern}/)*{PATH_PART.pattern}")
MANIFEST_KEYS = ("files", "format", "items", "items_root", "kind", "meta", "root")
REPORTED_PROBLEMS = 3  # how many further problems a message lists after the first
# where orjson may differ from json.dumps: DEL, and small floats ("1e-7"/"0.00001" for "1e-07")
SLOW_PATH_MARKS = (b"\x7f", b"e-", b"0.0000")


@dataclass(frozen=True, slots=True)
class FileEntry:
    """A delivered file: its path (relative, POSIX, no ``.``/``..``), size and BLAKE3 hash."""

    path: str
    size: int
    hash: bytes


@dataclass(frozen=True, slots=True)
class ItemEntry:
    """One item as the manifest lists it; ``leaf`` is stored so a changed field names its item."""

    index: int  # the item's own index (render: item i of the job, re-rendered by a verifier)
    check: bytes  # the hash re-computation must reproduce; b"" when there is none
    labels: bytes  # BLAKE3 of the item's canonical label bytes
    files: tuple[str, ...]  # the item's own files (render: its image)
    leaf: bytes


@dataclass(frozen=True, slots=True)
class ItemDraft:
    """What a writer knows of an item before its files are hashed."""

    index: int
    files: tuple[str, ...]
    labels: bytes = b""  # canonical label bytes (hashed here)
    check: bytes = b""


@dataclass(frozen=True, slots=True)
class ArtifactManifest:
    """A decoded, self-consistent manifest (`seal` or `read_manifest` built it)."""

    format: str
    kind: str
    meta: dict[str, Any]  # kind-specific JSON values, committed through the header; never mutated
    files: tuple[FileEntry, ...]
    items: tuple[ItemEntry, ...]
    items_root: bytes
    root: bytes

    def header_hash(self) -> bytes:
        header = {"count": len(self.items), "files": [_file_json(f) for f in self.files],
                  "format": self.format, "kind": self.kind, "meta": self.meta}
        return blake3(canonical_json(header), derive_key_context=HEADER_CONTEXT).digest()

    def hashes_by_path(self) -> dict[str, bytes]:
        return {f.path: f.hash for f in self.files}

    def leaves(self) -> list[bytes]:
        """Every item's leaf recomputed from its fields (not the stored ``leaf``)."""
        by_path = self.hashes_by_path()
        return [item_leaf(i.index, i.check, i.labels, [by_path[p] for p in i.files])
                for i in self.items]

    def owners(self) -> dict[str, int]:
        """Path -> index of the item that owns the file."""
        return {path: item.index for item in self.items for path in item.files}

    def to_json(self) -> dict[str, Any]:
        return {
            "files": [_file_json(f) for f in self.files],
            "format": self.format,
            "items": [{"check": i.check.hex(), "files": list(i.files), "index": i.index,
                       "labels": i.labels.hex(), "leaf": i.leaf.hex()} for i in self.items],
            "items_root": self.items_root.hex(), "kind": self.kind, "meta": self.meta,
            "root": self.root.hex(),
        }

    def encode(self) -> bytes:
        return canonical_json(self.to_json())


@dataclass(frozen=True, slots=True)
class Problem:
    """One difference between a folder and its manifest."""

    reason: str
    path: str | None
    item: int | None
    detail: str

    def describe(self) -> str:
        where = f"item {self.item}: " if self.item is not None else ""
        return f"{where}{self.path + ': ' if self.path else ''}{self.detail}"


class ArtifactMismatch(VerificationFailed):
    """A delivered artifact that is not what its manifest commits to; names file and item."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = tuple(problems)
        first = self.problems[0]
        self.path, self.item = first.path, first.item
        more = [f"{p.reason} {p.describe()}" for p in self.problems[1:1 + REPORTED_PROBLEMS]]
        hidden = len(self.problems) - 1 - len(more)
        tail = f" (also: {'; '.join(more)}{f'; {hidden} more' if hidden else ''})" if more else ""
        super().__init__(first.describe() + tail, reason=first.reason)


def mismatch(reason: str, detail: str, path: str | None = None,
             item: int | None = None) -> ArtifactMismatch:
    return ArtifactMismatch([Problem(reason, path, item, detail)])


# --------------------------------------------------------------------------- hashes


def canonical_json(value: Any) -> bytes:
    """The one byte form of a JSON value that manifests, headers and labels are hashed in.

    Defined as ``json.dumps`` (module docstring); orjson writes the same bytes 10-20x faster
    except for non-ASCII text, DEL, floats under 1e-4 and integers over 64 bits, which the
    checks below send to ``json.dumps`` (a property test holds the two equal).
    """
    try:
        fast = orjson.dumps(value, option=orjson.OPT_SORT_KEYS)
        delete, exponent, small = SLOW_PATH_MARKS
        if fast.isascii() and delete not in fast and exponent not in fast and small not in fast:
            return fast
    except TypeError:
        pass
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True,
                      allow_nan=False).encode("ascii")


def content_hash(data: bytes) -> bytes:
    """Plain BLAKE3: the hash of a file's bytes and of an item's canonical label bytes."""
    return blake3(data).digest()


def file_hash(path: Path) -> bytes:
    hasher = blake3()
    hasher.update_mmap(path)
    return hasher.digest()


# --------------------------------------------------------------------------- writing


def seal(kind: str, meta: Mapping[str, Any], files: Sequence[FileEntry],
         items: Sequence[ItemEntry]) -> ArtifactManifest:
    """The manifest committing to ``files`` and ``items``: every leaf and root computed here."""
    ordered = tuple(sorted(files, key=lambda f: f.path))
    unsealed = ArtifactManifest(FORMAT, kind, dict(meta), ordered, tuple(items), b"", b"")
    leaves = unsealed.leaves()
    items_root = merkle_root(leaves)
    sealed = tuple(replace(item, leaf=leaf) for item, leaf in zip(items, leaves, strict=True))
    done = replace(unsealed, items=sealed, items_root=items_root)
    return replace(done, root=fold_root(items_root, done.header_hash()))


def write_manifest(folder: str | Path, kind: str, items: Sequence[ItemDraft],
                   meta: Mapping[str, Any]) -> ArtifactManifest:
    """Hash every file under ``folder``, seal ``items`` over them and write ``manifest.json``.

    Call it last: a file written afterwards is an ``extra-file`` to every verifier.
    """
    folder = Path(folder)
    present, odd = _listing(folder)
    for path in odd + sorted(present):
        try:
            _path(path)
        except ValueError:
            raise mismatch("bad-path", "not a plain file with a portable name: no reader could "
                           "verify it", path) from None
        if path in odd:
            raise mismatch("not-a-file", "an artifact holds regular files only", path)
    files = [FileEntry(path, size, file_hash(folder / path)) for path, size in sorted(present.items())]
    listed = {f.path for f in files}
    entries = []
    for draft in items:
        missing = [path for path in draft.files if path not in listed]
        if missing:
            raise mismatch("file-missing", "an item's file was not written", missing[0], draft.index)
        entries.append(ItemEntry(draft.index, draft.check, content_hash(draft.labels),
                                 tuple(draft.files), b""))
    manifest = seal(kind, meta, files, entries)
    (folder / MANIFEST_FILE).write_bytes(manifest.encode())
    return manifest


# --------------------------------------------------------------------------- reading


def read_manifest(folder: str | Path) -> ArtifactManifest:
    """``folder``'s manifest, decoded and checked alone (no file is read but the manifest)."""
    path = Path(folder) / MANIFEST_FILE
    try:
        size = path.stat().st_size
        if size > MAX_MANIFEST_BYTES:
            raise mismatch("bad-manifest", f"{size} bytes, over {MAX_MANIFEST_BYTES}", MANIFEST_FILE)
        raw = path.read_bytes()
        data = orjson.loads(raw)
    except FileNotFoundError:
        raise mismatch("file-missing", "no manifest: not an artifact", MANIFEST_FILE) from None
    except OSError as exc:
        raise mismatch("bad-manifest", f"cannot read: {exc.strerror}", MANIFEST_FILE) from None
    except orjson.JSONDecodeError as exc:
        raise mismatch("bad-manifest", f"not JSON ({exc})", MANIFEST_FILE) from None
    if isinstance(data, dict) and data.get("format") != FORMAT:
        # another format computes its ids another way: say so, not "hash mismatch"
        raise mismatch("unsupported-format",
                       f"format {data.get('format')!r}, this worker reads {FORMAT!r}", MANIFEST_FILE)
    manifest = _decode_manifest(data)
    if manifest.encode() != raw:
        # orjson reads integers over 64 bits as floats; json.loads is exact (and slower)
        manifest = _decode_manifest(json.loads(raw))
        if manifest.encode() != raw:
            raise mismatch("bad-manifest", "not in canonical form", MANIFEST_FILE)
    return manifest


def _decode_manifest(data: Any) -> ArtifactManifest:
    try:
        return _decode(data)
    except (KeyError, TypeError, ValueError) as exc:
        raise mismatch("bad-manifest", f"malformed ({exc})", MANIFEST_FILE) from None


def _decode(data: Any) -> ArtifactManifest:
    if not isinstance(data, dict) or tuple(sorted(data)) != MANIFEST_KEYS:
        raise ValueError(f"keys must be {', '.join(MANIFEST_KEYS)}")
    files = []
    for raw in _list(data["files"]):
        _keys(raw, ("hash", "path", "size"))
        files.append(FileEntry(_path(raw["path"]), _count(raw["size"]), _hex(raw["hash"])))
    paths = [f.path for f in files]
    if paths != sorted(set(paths)):
        raise ValueError("files must be sorted by path, each once")
    listed = set(paths)
    items = []
    for raw in _list(data["items"]):
        _keys(raw, ("check", "files", "index", "labels", "leaf"))
        check = b"" if raw["check"] == "" else _hex(raw["check"])
        item_files = tuple(_list(raw["files"]))
        if not all(isinstance(p, str) and p in listed for p in item_files):
            raise ValueError(f"item {raw['index']} names a file that is not listed")
        items.append(ItemEntry(_count(raw["index"]), check, _hex(raw["labels"]), item_files,
                               _hex(raw["leaf"])))
    if any(b.index <= a.index for a, b in pairwise(items)):
        raise ValueError("item indices must increase")
    if not isinstance(data["kind"], str) or not isinstance(data["meta"], dict):
        raise TypeError("kind is a string, meta an object")
    return ArtifactManifest(FORMAT, data["kind"], data["meta"], tuple(files), tuple(items),
                            _hex(data["items_root"]), _hex(data["root"]))


def _keys(value: Any, keys: tuple[str, ...]) -> None:
    if not isinstance(value, dict) or tuple(sorted(value)) != keys:
        raise ValueError(f"an entry must have exactly {', '.join(keys)}")


def _list(value: Any) -> list[Any]:
    if not isinstance(value, list):
        raise TypeError(f"expected a list, got {type(value).__name__}")
    return value


def _count(value: Any) -> int:
    if type(value) is not int or value < 0:
        raise ValueError(f"expected a non-negative integer, got {value!r}")
    return value


def _hex(value: Any) -> bytes:
    """32 bytes from hex; upper case or spaces fail later, as a non-canonical manifest."""
    digest = bytes.fromhex(value) if isinstance(value, str) else b""
    if len(digest) != HASH_SIZE:
        raise ValueError(f"expected 64 hex digits, got {str(value)[:80]!r}")
    return digest


def _path(value: Any) -> str:
    """A path that stays inside the folder on every system: plain parts joined by ``/``."""
    if (not isinstance(value, str) or len(value) > MAX_PATH_CHARS
            or not PATH.fullmatch(value) or value in LOCAL_FILES):
        raise ValueError(f"bad path {str(value)[:80]!r}")
    return value


def _file_json(entry: FileEntry) -> dict[str, Any]:
    return {"hash": entry.hash.hex(), "path": entry.path, "size": entry.size}


# --------------------------------------------------------------------------- verifying

ItemLabels = Callable[[ArtifactManifest], Sequence[tuple[str, bytes]]]
"""Per item, in manifest order: (the label file it came from, its canonical label bytes)."""


def verify_files(folder: str | Path, item_labels: ItemLabels | None = None,
                 expected_root: bytes | None = None) -> ArtifactManifest:
    """Check every delivered byte of ``folder`` against its manifest; return the manifest.

    ``item_labels`` re-derives each item's canonical label bytes from the delivered label files
    (the kind's business); without it the labels hashes are checked only through the files'.
    Raises `ArtifactMismatch` at the first stage with a problem (module docstring).
    """
    folder = Path(folder)
    manifest = read_manifest(folder)
    if expected_root is not None and manifest.root != expected_root:
        raise mismatch("wrong-root", f"root {manifest.root.hex()}, expected "
                       f"{expected_root.hex()}", MANIFEST_FILE)
    check_commitments(manifest)
    owners = manifest.owners()
    present, odd = _listing(folder)
    problems = [Problem("not-a-file", path, owners.get(path), "not a regular file") for path in odd]
    problems += [Problem("file-missing", f.path, owners.get(f.path), "missing")
                 for f in manifest.files if f.path not in present]
    listed = {f.path for f in manifest.files}
    problems += [Problem("extra-file", path, None, "not in the manifest")
                 for path in sorted(present) if path not in listed]
    _raise_first(problems)
    # sizes, bytes and labels are one stage: a shared label file that changed size should
    # still name the item whose labels changed
    problems = [Problem("file-size", f.path, owners.get(f.path),
                        f"{present[f.path]} bytes, the manifest says {f.size}")
                for f in manifest.files if present[f.path] != f.size]
    for entry in manifest.files:
        if present[entry.path] != entry.size:
            continue
        got = file_hash(folder / entry.path)
        if got != entry.hash:
            problems.append(Problem("file-hash", entry.path, owners.get(entry.path),
                                    f"blake3 {got.hex()[:16]}.., committed {entry.hash.hex()[:16]}.."))
    try:
        problems += _label_problems(manifest, item_labels) if item_labels else []
    except ArtifactMismatch as exc:
        problems += exc.problems
    _raise_first(problems)
    return manifest


def check_commitments(manifest: ArtifactManifest) -> None:
    """Leaves, items root and root recomputed from the manifest's own fields (no file read)."""
    for item, leaf in zip(manifest.items, manifest.leaves(), strict=True):
        if leaf != item.leaf:
            raise mismatch("item-leaf", f"leaf {item.leaf.hex()[:16]}.. is not the hash of its "
                           f"fields ({leaf.hex()[:16]}..)", MANIFEST_FILE, item.index)
    items_root = merkle_root([item.leaf for item in manifest.items])
    if items_root != manifest.items_root:
        raise mismatch("items-root", "items_root is not the Merkle root of the leaves",
                       MANIFEST_FILE)
    if fold_root(items_root, manifest.header_hash()) != manifest.root:
        raise mismatch("bad-root", "root is not items_root folded with the header",
                       MANIFEST_FILE)


def _label_problems(manifest: ArtifactManifest, item_labels: ItemLabels) -> list[Problem]:
    derived = item_labels(manifest)
    return [Problem("item-labels", path, item.index, "the delivered labels differ from its leaf")
            for item, (path, data) in zip(manifest.items, derived, strict=True)
            if content_hash(data) != item.labels]


def _raise_first(problems: list[Problem]) -> None:
    """Item-owned problems first, in item order: the item is what a buyer acts on."""
    if problems:
        problems.sort(key=lambda p: (p.item is None, p.item or 0, p.path or ""))
        raise ArtifactMismatch(problems)


def _listing(folder: Path) -> tuple[dict[str, int], list[str]]:
    """(regular files -> size, other entries), paths relative to ``folder``; links not followed."""
    files: dict[str, int] = {}
    odd: list[str] = []
    for parent, dirs, names in os.walk(folder, followlinks=False):
        base = Path(parent).relative_to(folder).as_posix()
        for name in names + [d for d in dirs if os.path.islink(os.path.join(parent, d))]:
            path = name if base == "." else f"{base}/{name}"
            if base == "." and name in LOCAL_FILES:
                continue
            info = os.lstat(os.path.join(parent, name))
            if stat.S_ISREG(info.st_mode):
                files[path] = info.st_size
            else:
                odd.append(path)
    return files, sorted(odd)


# --------------------------------------------------------------------------- proofs


@dataclass(frozen=True, slots=True)
class LeafProof:
    """Item ``index``'s leaf fields and its way to the root: what a fraud proof cites."""

    index: int
    check: bytes
    labels: bytes
    files: tuple[bytes, ...]  # the item's file hashes
    path: MerkleProof  # from the leaf to ``items_root``; ``path.index`` is the leaf's position
    items_root: bytes
    header_hash: bytes

    def leaf(self) -> bytes:
        return item_leaf(self.index, self.check, self.labels, self.files)

    def reaches(self, root: bytes) -> bool:
        """True when this leaf is committed under the artifact id ``root``."""
        return (verify_proof(self.items_root, self.leaf(), self.path)
                and fold_root(self.items_root, self.header_hash) == root)

    def to_json(self) -> dict[str, Any]:
        return {
            "index": self.index, "check": self.check.hex(), "labels": self.labels.hex(),
            "files": [h.hex() for h in self.files], "position": self.path.index,
            "count": self.path.count, "siblings": [s.hex() for s in self.path.siblings],
            "items_root": self.items_root.hex(), "header_hash": self.header_hash.hex(),
        }


def leaf_proof(manifest: ArtifactManifest, position: int) -> LeafProof:
    """The proof for the item at ``position`` (0-based in the manifest's item list)."""
    item = manifest.items[position]
    path = merkle_proof([i.leaf for i in manifest.items], position)
    by_path = manifest.hashes_by_path()
    return LeafProof(item.index, item.check, item.labels, tuple(by_path[p] for p in item.files),
                     path, manifest.items_root, manifest.header_hash())
