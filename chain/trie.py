"""The authenticated state: a hexary Merkle trie over account ids, updated incrementally.

Shape is a function of the key set alone (so a root can be recomputed from scratch and compared):
a subtree holding one key is a leaf; a subtree holding two or more is a branch of 16 child hashes
at the subtree's nibble path. Hashes: leaf = blake2b(key || value_hash, person=st-leaf); branch =
blake2b(16 x 32-byte child hashes, zero for empty, person=st-node); the empty trie's root is zeros.

Storage: only branches are stored, by nibble path, not by hash, so an update rewrites only the
branches on the changed keys' paths (cost ~ changed keys x log16(accounts)) and leaves no garbage;
undoing a block is the same update with the old values. A leaf lives inside its parent branch:
the child slot holds the leaf's hash and a bitmap marks it as a leaf, followed by the leaves'
keys. So changing an account rewrites its parent branch and nothing for the leaf itself: no leaf
row to read or write (half the rows a block would otherwise write). A trie of a single key is a
leaf record at the root path.

    branch = "B" || 16 x child hash || leaf bitmap (2 bytes, bit n = child n is a leaf)
                 || the leaf children's keys, in nibble order
    root leaf = "L" || key || leaf hash
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable, Mapping
from hashlib import blake2b
from typing import TypeVar

from chain.hashing import HASH_SIZE, ZERO_HASH

KEY_SIZE = 20  # account ids
LEAF_PERSON = b"neuro-st-leaf"
BRANCH_PERSON = b"neuro-st-node"
_LEAF_TAG = b"L"
_BRANCH_TAG = b"B"
_NIBBLES = [bytes([nibble]) for nibble in range(16)]  # path suffixes, built once
_CHILD_SLICES = [slice(1 + HASH_SIZE * i, 1 + HASH_SIZE * (i + 1)) for i in range(16)]
_BITMAP_AT = 1 + 16 * HASH_SIZE
_KEYS_AT = _BITMAP_AT + 2
_BISECT_FROM = 32  # longer item lists are split by binary search, shorter ones by a scan

NodeReader = Callable[[bytes], "bytes | None"]
"""Reads the stored node at a nibble path (bytes of values 0-15), or None."""

Leaf = tuple[bytes, bytes]  # (key, leaf hash)
Summary = Leaf | bytes | None  # what a subtree is to its parent: a leaf, a branch's hash, empty
_STORED = b"stored"  # an existing subtree that is a branch stored at its path


def leaf_hash(key: bytes, value_hash: bytes) -> bytes:
    return blake2b(key + value_hash, digest_size=HASH_SIZE, person=LEAF_PERSON).digest()


def _branch_hash(children: list[bytes]) -> bytes:
    return blake2b(b"".join(children), digest_size=HASH_SIZE, person=BRANCH_PERSON).digest()


def _decode_keys(node: bytes) -> list[bytes | None]:
    """Per child of a stored branch, its key when it is a leaf."""
    bitmap = int.from_bytes(node[_BITMAP_AT:_KEYS_AT], "big")
    keys: list[bytes | None] = [None] * 16
    offset = _KEYS_AT
    while bitmap:
        nibble = (bitmap & -bitmap).bit_length() - 1
        keys[nibble] = node[offset : offset + KEY_SIZE]
        offset += KEY_SIZE
        bitmap &= bitmap - 1
    return keys


def _encode_branch(children: list[bytes], keys: list[bytes | None]) -> bytes:
    bitmap = 0
    for nibble, key in enumerate(keys):
        if key is not None:
            bitmap |= 1 << nibble
    leaf_keys = b"".join([key for key in keys if key is not None])
    return _BRANCH_TAG + b"".join(children) + bitmap.to_bytes(2, "big") + leaf_keys


def _hash_of(summary: Summary) -> bytes:
    if summary is None:
        return ZERO_HASH
    if isinstance(summary, tuple):
        return summary[1]
    return summary


class _Update:
    """One batch update; collects node writes (None = delete) keyed by path."""

    def __init__(self, read: NodeReader) -> None:
        self.read = read
        self.writes: dict[bytes, bytes | None] = {}

    def get(self, path: bytes) -> bytes | None:
        if path in self.writes:
            return self.writes[path]
        return self.read(path)

    def put(self, path: bytes, node: bytes) -> None:
        self.writes[path] = node

    def delete(self, path: bytes) -> None:
        """Remove a node; one written earlier in this batch only is dropped, not deleted."""
        if self.read(path) is None:
            self.writes.pop(path, None)
        else:
            self.writes[path] = None

    def root(self, items: list[tuple[bytes, bytes | None]]) -> Summary:
        node = self.get(b"")
        existing: Leaf | bytes | None = None
        if node is not None:
            existing = (node[1 : 1 + KEY_SIZE], node[1 + KEY_SIZE :]) if node[:1] == _LEAF_TAG else _STORED
        summary = self.update(b"", existing, items)
        if isinstance(summary, tuple):
            self.put(b"", _LEAF_TAG + summary[0] + summary[1])
        elif summary is None and node is not None:
            self.delete(b"")
        return summary

    def update(self, path: bytes, existing: Leaf | bytes | None, items: list[tuple[bytes, bytes | None]]) -> Summary:
        """The new summary of the subtree at ``path`` (now ``existing``) after ``items``."""
        if existing is not _STORED:
            leaves: dict[bytes, bytes] = {}
            if isinstance(existing, tuple):
                leaves[existing[0]] = existing[1]
            for key, value_hash in items:
                if value_hash is None:
                    leaves.pop(key, None)
                else:
                    leaves[key] = leaf_hash(key, value_hash)
            return self.build(path, sorted(leaves.items()))
        node = self.get(path)
        assert node is not None and node[:1] == _BRANCH_TAG, f"trie node missing at {path.hex()}"
        # Edited in place: in the common case (each touched account stays a leaf in its slot)
        # only child hashes change, and the branch is neither decoded nor re-encoded.
        branch = bytearray(node)
        bitmap = int.from_bytes(node[_BITMAP_AT:_KEYS_AT], "big")
        keys: list[bytes | None] | None = None  # decoded when a leaf child moves or goes
        for nibble, group in _group(items, len(path)):
            at = 1 + HASH_SIZE * nibble
            is_leaf = keys[nibble] is not None if keys is not None else bitmap >> nibble & 1
            key, value_hash = group[0]
            if is_leaf and len(group) == 1 and value_hash is not None:
                if keys is not None:
                    stays = keys[nibble] == key
                else:
                    offset = _KEYS_AT + KEY_SIZE * (bitmap & ((1 << nibble) - 1)).bit_count()
                    stays = node[offset : offset + KEY_SIZE] == key
                if stays:
                    branch[at : at + HASH_SIZE] = leaf_hash(key, value_hash)
                    continue
            child = bytes(branch[at : at + HASH_SIZE])
            current: Leaf | bytes | None = None
            if is_leaf:
                keys = keys if keys is not None else _decode_keys(node)
                current = (keys[nibble], child)  # type: ignore[assignment]
            elif child != ZERO_HASH:
                current = _STORED
            summary = self.update(path + _NIBBLES[nibble], current, group)
            branch[at : at + HASH_SIZE] = _hash_of(summary)
            if current is _STORED and isinstance(summary, bytes):
                continue  # still a branch below: this branch's shape is unchanged
            keys = keys if keys is not None else _decode_keys(node)
            keys[nibble] = summary[0] if isinstance(summary, tuple) else None
        if keys is None:
            self.put(path, bytes(branch))
            return blake2b(memoryview(branch)[1:_BITMAP_AT], digest_size=HASH_SIZE, person=BRANCH_PERSON).digest()
        return self.finish_branch(path, [bytes(branch[part]) for part in _CHILD_SLICES], keys)

    def finish_branch(self, path: bytes, children: list[bytes], keys: list[bytes | None]) -> Summary:
        """Store the branch at ``path`` unless it holds one leaf or nothing any more."""
        empty = children.count(ZERO_HASH)
        if empty == 16:
            self.delete(path)
            return None
        if empty == 15:
            only = next(i for i, child in enumerate(children) if child != ZERO_HASH)
            key = keys[only]
            if key is not None:  # a lone leaf moves up: a one-key subtree is always a leaf
                self.delete(path)
                return key, children[only]
        self.put(path, _encode_branch(children, keys))
        return _branch_hash(children)

    def build(self, path: bytes, leaves: list[Leaf]) -> Summary:
        """A fresh subtree of ``leaves`` (sorted; nothing is stored at or under ``path``)."""
        if not leaves:
            return None
        if len(leaves) == 1:
            return leaves[0]
        children = [ZERO_HASH] * 16
        keys: list[bytes | None] = [None] * 16
        for nibble, group in _group(leaves, len(path)):
            summary = self.build(path + _NIBBLES[nibble], group)
            children[nibble] = _hash_of(summary)
            keys[nibble] = summary[0] if isinstance(summary, tuple) else None
        self.put(path, _encode_branch(children, keys))
        return _branch_hash(children)


_Item = TypeVar("_Item", tuple[bytes, bytes], tuple[bytes, "bytes | None"])


def _group(items: list[_Item], depth: int) -> list[tuple[int, list[_Item]]]:
    """Split items sorted by key into runs by their key's nibble at ``depth`` (runs stay sorted)."""
    if len(items) >= _BISECT_FROM:
        # The keys share their first ``depth`` nibbles: binary search finds where each run ends.
        first = items[0][0]
        groups = []
        start = 0
        for nibble in range(16):
            end = len(items) if nibble == 15 else bisect_left(items, _bound(first, depth, nibble + 1), start, key=_key)
            if end > start:
                groups.append((nibble, items[start:end]))
            start = end
        return groups
    runs: dict[int, list[_Item]] = {}
    index = depth >> 1
    shift = 0 if depth & 1 else 4
    for item in items:
        nibble = (item[0][index] >> shift) & 0x0F
        run = runs.get(nibble)
        if run is None:
            runs[nibble] = [item]
        else:
            run.append(item)
    return list(runs.items())


def _key(item: tuple[bytes, bytes | None]) -> bytes:
    return item[0]


def _bound(sample: bytes, depth: int, nibble: int) -> bytes:
    """The smallest key that shares ``sample``'s first ``depth`` nibbles, then has ``nibble``."""
    index = depth >> 1
    if depth & 1:
        return sample[:index] + bytes([(sample[index] & 0xF0) | nibble])
    return sample[:index] + bytes([nibble << 4])


def update_trie(
    read: NodeReader, changes: Mapping[bytes, bytes | None]
) -> tuple[bytes, dict[bytes, bytes | None]]:
    """Apply ``changes`` (key -> value hash, None to delete) to the trie behind ``read``.

    Returns the new root and the node writes (path -> node bytes, None to delete) to persist.
    Pure: it only reads through ``read``. Keys are `KEY_SIZE` bytes.
    """
    if not changes:
        return root_of(read), {}
    if any(len(key) != KEY_SIZE for key in changes):
        raise ValueError(f"trie keys are {KEY_SIZE} bytes")
    update = _Update(read)
    summary = update.root(sorted(changes.items()))
    return _hash_of(summary), update.writes


def root_of(read: NodeReader) -> bytes:
    """The root hash of a stored trie (the root node's hash)."""
    node = read(b"")
    if node is None:
        return ZERO_HASH
    if node[:1] == _LEAF_TAG:
        return node[1 + KEY_SIZE :]
    return _branch_hash([node[part] for part in _CHILD_SLICES])


def compute_root(entries: Mapping[bytes, bytes]) -> bytes:
    """Root of a trie holding exactly ``entries`` (key -> value hash), built from scratch."""
    nodes: dict[bytes, bytes | None] = {}
    root, _ = update_trie(nodes.get, dict(entries))
    return root
