"""The authenticated state: a hexary Merkle trie over account ids, updated incrementally.

Shape is a function of the key set alone (so a root can be recomputed from scratch and compared):
a subtree holding one key is a leaf stored at the subtree's path; a subtree holding two or more is a
branch of 16 child hashes. Nodes are stored by their nibble path, not by hash, so an update rewrites
only the nodes on the changed keys' paths (cost ~ changed keys x log16(accounts)) and leaves no
garbage; undoing a block is the same update with the old values.

Hashes: leaf = blake2b(key || value_hash, person=st-leaf); branch = blake2b(16 x 32-byte child
hashes, zero for empty, person=st-node); the empty trie's root is all zeros.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TypeVar

from chain.hashing import HASH_SIZE, ZERO_HASH, hash256

LEAF_PERSON = b"neuro-st-leaf"
BRANCH_PERSON = b"neuro-st-node"
_LEAF_TAG = b"L"
_BRANCH_TAG = b"B"
_EMPTY_CHILDREN = [ZERO_HASH] * 16
_NIBBLES = [bytes([nibble]) for nibble in range(16)]  # path suffixes, built once
_CHILD_SLICES = [slice(1 + HASH_SIZE * i, 1 + HASH_SIZE * (i + 1)) for i in range(16)]

NodeReader = Callable[[bytes], "bytes | None"]
"""Reads the stored node at a nibble path (bytes of values 0-15), or None."""


@dataclass(frozen=True, slots=True)
class _Leaf:
    key: bytes
    value_hash: bytes

    @property
    def hash(self) -> bytes:
        return hash256(self.key + self.value_hash, person=LEAF_PERSON)

    def encode(self) -> bytes:
        return _LEAF_TAG + self.key + self.value_hash


def _decode_leaf(node: bytes) -> _Leaf:
    return _Leaf(node[1:-HASH_SIZE], node[-HASH_SIZE:])


def _branch_hash(children: list[bytes]) -> bytes:
    return hash256(b"".join(children), person=BRANCH_PERSON)


def _children(node: bytes) -> list[bytes]:
    return [node[part] for part in _CHILD_SLICES]




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

    def update(self, path: bytes, items: list[tuple[bytes, bytes | None]]) -> _Leaf | bytes | None:
        node = self.get(path)
        if node is None or node[:1] == _LEAF_TAG:
            if len(items) == 1 and (node is None or node[1:-HASH_SIZE] == items[0][0]):
                # The common case of a block: one key at its own leaf (or an empty slot).
                key, value_hash = items[0]
                if value_hash is None:
                    if node is not None:
                        self.delete(path)
                    return None
                leaf = _Leaf(key, value_hash)
                self.put(path, leaf.encode())
                return leaf
            leaves: dict[bytes, bytes] = {}
            if node is not None:
                leaf = _decode_leaf(node)
                leaves[leaf.key] = leaf.value_hash
            for key, value_hash in items:
                if value_hash is None:
                    leaves.pop(key, None)
                else:
                    leaves[key] = value_hash
            return self.build(path, sorted(leaves.items()), existed=node is not None)
        children = _children(node)
        depth = len(path)
        for nibble, group in _group(items, depth):
            summary = self.update(path + _NIBBLES[nibble], group)
            children[nibble] = _hash_of(summary)
        return self.finish_branch(path, children)

    def finish_branch(self, path: bytes, children: list[bytes]) -> _Leaf | bytes | None:
        empty = children.count(ZERO_HASH)
        if empty == 16:
            self.delete(path)
            return None
        if empty == 15:
            only = path + _NIBBLES[next(i for i, child in enumerate(children) if child != ZERO_HASH)]
            node = self.get(only)
            if node is not None and node[:1] == _LEAF_TAG:
                # A lone leaf moves up: a one-key subtree is always stored as a leaf.
                self.delete(only)
                self.put(path, node)
                return _decode_leaf(node)
        self.put(path, _BRANCH_TAG + b"".join(children))
        return _branch_hash(children)

    def build(
        self, path: bytes, leaves: list[tuple[bytes, bytes]], *, existed: bool
    ) -> _Leaf | bytes | None:
        """Write a fresh subtree (nothing is stored beneath a leaf or an empty path)."""
        if not leaves:
            if existed:
                self.delete(path)
            return None
        if len(leaves) == 1:
            leaf = _Leaf(*leaves[0])
            self.put(path, leaf.encode())
            return leaf
        children = list(_EMPTY_CHILDREN)
        for nibble, group in _group(leaves, len(path)):
            children[nibble] = _hash_of(self.build(path + _NIBBLES[nibble], group, existed=False))
        self.put(path, _BRANCH_TAG + b"".join(children))
        return _branch_hash(children)


_Item = TypeVar("_Item", tuple[bytes, bytes], tuple[bytes, "bytes | None"])


def _group(items: list[_Item], depth: int) -> Iterable[tuple[int, list[_Item]]]:
    """Split sorted items by their nibble at ``depth`` (they stay sorted)."""
    groups: dict[int, list[_Item]] = {}
    index = depth >> 1
    shift = 0 if depth & 1 else 4
    for item in items:
        nibble = (item[0][index] >> shift) & 0x0F
        group = groups.get(nibble)
        if group is None:
            groups[nibble] = [item]
        else:
            group.append(item)
    return groups.items()


def _hash_of(summary: _Leaf | bytes | None) -> bytes:
    if summary is None:
        return ZERO_HASH
    if isinstance(summary, _Leaf):
        return summary.hash
    return summary


def update_trie(
    read: NodeReader, changes: Mapping[bytes, bytes | None]
) -> tuple[bytes, dict[bytes, bytes | None]]:
    """Apply ``changes`` (key -> value hash, None to delete) to the trie behind ``read``.

    Returns the new root and the node writes (path -> node bytes, None to delete) to persist.
    Pure: it only reads through ``read``.
    """
    if not changes:
        return root_of(read), {}
    update = _Update(read)
    summary = update.update(b"", sorted(changes.items()))
    return _hash_of(summary), update.writes


def root_of(read: NodeReader) -> bytes:
    """The root hash of a stored trie (the root node's hash)."""
    node = read(b"")
    if node is None:
        return ZERO_HASH
    if node[:1] == _LEAF_TAG:
        return _decode_leaf(node).hash
    return _branch_hash(_children(node))


def compute_root(entries: Mapping[bytes, bytes]) -> bytes:
    """Root of a trie holding exactly ``entries`` (key -> value hash), built from scratch."""
    nodes: dict[bytes, bytes | None] = {}
    root, _ = update_trie(nodes.get, dict(entries))
    return root
