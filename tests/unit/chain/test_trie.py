"""The state trie: incremental updates equal from-scratch builds, node for node, in any order."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chain.hashing import ZERO_HASH, hash160, hash256
from chain.trie import compute_root, root_of, update_trie

# Keys from two families: spread-out hashes (a shallow trie) and keys sharing long prefixes
# (deep branches, leaves that move up and down on delete and insert).
SPREAD = [hash160(b"%d" % i) for i in range(64)]
CLUSTERED = [bytes([0xAB, 0xCD, i >> 4, (i & 15) << 4]) + bytes(16) for i in range(32)]
KEYS = st.sampled_from(SPREAD + CLUSTERED)
VALUES = st.integers(0, 3).map(lambda i: hash256(b"value %d" % i))
CHANGE = st.tuples(KEYS, st.one_of(st.none(), VALUES))  # None deletes the key
BATCHES = st.lists(st.lists(CHANGE, min_size=1, max_size=12), min_size=1, max_size=12)


def fresh_nodes(entries: dict[bytes, bytes]) -> dict[bytes, bytes]:
    """The nodes of a trie holding ``entries``, built in one batch into an empty store."""
    empty: dict[bytes, bytes] = {}
    _, writes = update_trie(empty.get, dict(entries))
    return {path: node for path, node in writes.items() if node is not None}


def apply(nodes: dict[bytes, bytes], changes: dict[bytes, bytes | None]) -> bytes:
    root, writes = update_trie(nodes.get, changes)
    for path, node in writes.items():
        if node is None:
            assert path in nodes, "a delete of a node that was never stored"
            del nodes[path]
        else:
            nodes[path] = node
    return root


@settings(max_examples=150, deadline=None)
@given(BATCHES)
def test_incremental_updates_equal_a_from_scratch_build(batches: list[list[tuple[bytes, bytes | None]]]) -> None:
    nodes: dict[bytes, bytes] = {}
    entries: dict[bytes, bytes] = {}
    for batch in batches:
        changes = dict(batch)
        for key, value in changes.items():
            if value is None:
                entries.pop(key, None)
            else:
                entries[key] = value
        root = apply(nodes, changes)
        assert root == compute_root(entries)
        assert root_of(nodes.get) == root
        # the shape depends on the key set alone, so the stored nodes are exactly a fresh build's
        assert nodes == fresh_nodes(entries)


@settings(max_examples=60, deadline=None)
@given(st.dictionaries(KEYS, VALUES, max_size=60), st.randoms(use_true_random=False))
def test_order_independence(entries: dict[bytes, bytes], rng: random.Random) -> None:
    items = list(entries.items())
    rng.shuffle(items)
    nodes: dict[bytes, bytes] = {}
    position = 0
    while position < len(items):
        size = rng.randint(1, 5)
        apply(nodes, dict(items[position : position + size]))
        position += size
    assert root_of(nodes.get) == compute_root(entries)
    assert nodes == fresh_nodes(entries)


@settings(max_examples=60, deadline=None)
@given(st.dictionaries(KEYS, VALUES, min_size=1, max_size=40), st.data())
def test_deleting_everything_leaves_an_empty_store(entries: dict[bytes, bytes], data: st.DataObject) -> None:
    nodes: dict[bytes, bytes] = {}
    apply(nodes, dict(entries))
    keys = data.draw(st.permutations(sorted(entries)))
    for key in keys:
        apply(nodes, {key: None})
    assert nodes == {}
    assert root_of(nodes.get) == ZERO_HASH


def test_empty_and_single_key_roots() -> None:
    assert compute_root({}) == ZERO_HASH
    key, value = SPREAD[0], hash256(b"v")
    one = compute_root({key: value})
    assert one != ZERO_HASH
    assert one != compute_root({key: hash256(b"w")})
    assert one != compute_root({SPREAD[1]: value})


def test_no_changes_returns_the_current_root() -> None:
    nodes: dict[bytes, bytes] = {}
    root = apply(nodes, {key: hash256(key) for key in CLUSTERED})
    assert update_trie(nodes.get, {}) == (root, {})


def test_undo_is_the_same_update_with_old_values() -> None:
    nodes: dict[bytes, bytes] = {}
    before = {key: hash256(key) for key in SPREAD[:20] + CLUSTERED[:10]}
    root_before = apply(nodes, dict(before))
    snapshot = dict(nodes)
    change: dict[bytes, bytes | None] = {CLUSTERED[0]: None, CLUSTERED[20]: hash256(b"new"), SPREAD[3]: hash256(b"x")}
    apply(nodes, change)
    undo = {key: before.get(key) for key in change}
    assert apply(nodes, undo) == root_before
    assert nodes == snapshot


def test_a_leaf_created_and_collapsed_in_one_batch_leaves_no_stray_delete() -> None:
    # found by hypothesis: two leaves under the root are deleted while a third key arrives in
    # another slot; the new leaf moves up to the root within the same batch
    store: dict[bytes, bytes] = {}
    first = {bytes([0x39]) + bytes(19): hash256(b"a"), bytes([0x43]) + bytes(19): hash256(b"b")}
    _, writes = update_trie(store.get, first)
    store.update({path: node for path, node in writes.items() if node is not None})
    third = {bytes([0x59]) + bytes(19): hash256(b"c")}
    root, writes = update_trie(store.get, {key: None for key in first} | third)
    assert root == compute_root(third)
    assert list(writes) == [b""] and writes[b""] is not None and writes[b""][:1] == b"L"


def test_only_branches_are_stored_and_leaves_live_in_them() -> None:
    # 64 spread keys: a root branch and one branch per crowded slot, no row per leaf
    nodes: dict[bytes, bytes] = {}
    apply(nodes, {key: hash256(key) for key in SPREAD})
    assert all(node[:1] == b"B" for node in nodes.values())
    assert len(nodes) < len(SPREAD) // 2
    # changing one account rewrites the branches on its path, nothing else
    _, writes = update_trie(nodes.get, {SPREAD[5]: hash256(b"new")})
    assert set(writes) == {b""} | {path for path in nodes if SPREAD[5].hex().startswith(
        "".join(f"{nibble:x}" for nibble in path))}


def test_keys_of_another_size_are_refused() -> None:
    with pytest.raises(ValueError, match="20 bytes"):
        compute_root({b"short": hash256(b"v")})
