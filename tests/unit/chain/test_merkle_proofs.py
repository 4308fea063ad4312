"""Inclusion proofs of chain/merkle.py (result commitments and fraud proofs lean on them): every leaf
of every small tree, odd sizes included, proves against the root; each way to bend a proof fails."""

from __future__ import annotations

import dataclasses

import pytest

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
