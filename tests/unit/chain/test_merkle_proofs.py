"""Inclusion proofs of chain/merkle.py (result commitments and fraud proofs lean on them): every leaf
of every small tree, odd sizes included, proves against the root; each way to bend a proof fails.
And the two BLAKE3 steps of `chain.commitments` that fold an artifact's items into its root."""

from __future__ import annotations

import dataclasses

import pytest
from blake3 import blake3

from chain.commitments import fold_root, item_leaf
from chain.merkle import MerkleProof, merkle_proof, merkle_root, verify_proof


def leaves(count: int) -> list[bytes]:
    return [bytes([i]) * 32 for i in range(count)]


@pytest.mark.parametrize("count", range(1, 12))
def test_every_leaf_proves_and_only_at_its_own_place(count: int) -> None:
    items = leaves(count)
    root = merkle_root(items)
    depth = (count - 1).bit_length()
    for index, item in enumerate(items):
        proof = merkle_proof(items, index)
        assert (proof.index, proof.count) == (index, count)
        assert len(proof.siblings) <= depth
        assert verify_proof(root, item, proof)
        assert not verify_proof(root, b"\xff" * 32, proof)  # another item
        for other in range(count):
            if other != index:  # the same path read at another place
                assert not verify_proof(root, item, dataclasses.replace(proof, index=other))
        for wrong in (-1, count, count + 1):
            assert not verify_proof(root, item, dataclasses.replace(proof, index=wrong))
        if count > 1:
            assert not verify_proof(root, item, dataclasses.replace(proof, siblings=proof.siblings[:-1]))
            assert not verify_proof(root, item, dataclasses.replace(proof, siblings=(*proof.siblings, root)))


def test_a_proof_names_its_siblings_in_order_from_the_leaf() -> None:
    items = leaves(5)  # levels: 5 leaves -> 3 nodes -> 2 -> root; leaf 4 is promoted twice
    assert len(merkle_proof(items, 4).siblings) == 1  # only the top pairs it
    assert len(merkle_proof(items, 0).siblings) == 3
    assert len(merkle_proof(items, 2).siblings) == 3


def test_a_leaf_outside_the_tree_has_no_proof() -> None:
    items = leaves(3)
    for index in (-1, 3, 4):
        with pytest.raises(IndexError, match=f"leaf {index} outside a tree of 3"):
            merkle_proof(items, index)


def test_a_one_leaf_tree_needs_no_sibling_and_accepts_none() -> None:
    item = leaves(1)[0]
    assert merkle_proof([item], 0) == MerkleProof(0, 1, ())
    assert verify_proof(merkle_root([item]), item, MerkleProof(0, 1, ()))
    assert not verify_proof(merkle_root([item]), item, MerkleProof(0, 0, ()))
    assert not verify_proof(merkle_root([item]), item, MerkleProof(0, 1, (item,)))


def test_an_items_leaf_and_the_artifact_root_are_the_documented_blake3_steps() -> None:
    """Reference vectors of `chain.commitments` for other implementations (a browser or js node
    checking a delivery): the leaf hashes the item's canonical msgpack under the leaf context,
    the root the items' Merkle root and the header hash under the root context."""
    check, labels, files = bytes([1]) * 32, bytes([2]) * 32, (bytes([4]) * 32, bytes([5]) * 32)
    packed = (b"\x94\x03" + b"\xc4\x20" + check + b"\xc4\x20" + labels
              + b"\x92" + b"\xc4\x20" + files[0] + b"\xc4\x20" + files[1])
    leaf = item_leaf(3, check, labels, files)
    assert leaf == blake3(packed, derive_key_context="neuro 2026-12 artifact leaf v1").digest()
    assert leaf.hex() == "6a8a835965cdbdfaa49167ed1a70378c9c2d2201c0130058572f1ed73568db5c"
    root = fold_root(bytes([6]) * 32, bytes([7]) * 32)
    assert root == blake3(bytes([6]) * 32 + bytes([7]) * 32, derive_key_context="neuro 2026-12 artifact root v1").digest()
    assert root.hex() == "a90b649ffd23e69e6c1093cce092c79188a2fb84626a2e64336672a5a0aa61c3"
