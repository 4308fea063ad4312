"""Binary Merkle trees over 32-byte leaves, with inclusion proofs.

Leaves and inner nodes are hashed under different blake2b personalisations, so an inner node can
never be passed off as a leaf (the second-preimage trap of Bitcoin's tree). An odd node is promoted
unchanged to the next level rather than duplicated, so no two different leaf lists share a root
(Bitcoin's CVE-2012-2459). The empty tree has the all-zero root.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from hashlib import blake2b

from chain.hashing import HASH_SIZE, ZERO_HASH, hash256

LEAF_PERSON = b"neuro-leaf"
NODE_PERSON = b"neuro-node"


def leaf_hash(item: bytes) -> bytes:
    return hash256(item, person=LEAF_PERSON)


def node_hash(left: bytes, right: bytes) -> bytes:
    return hash256(left + right, person=NODE_PERSON)


def _next_level(level: Sequence[bytes]) -> list[bytes]:
    # hashlib inline, not `node_hash`: a block's tx root hashes ~2,000 nodes on the import path
    paired = [
        blake2b(level[i] + level[i + 1], digest_size=HASH_SIZE, person=NODE_PERSON).digest()
        for i in range(0, len(level) - 1, 2)
    ]
    if len(level) % 2:
        paired.append(level[-1])
    return paired


def merkle_root(items: Sequence[bytes]) -> bytes:
    """Root over ``items`` (each hashed as a leaf first)."""
    if not items:
        return ZERO_HASH
    level = [blake2b(item, digest_size=HASH_SIZE, person=LEAF_PERSON).digest() for item in items]
    while len(level) > 1:
        level = _next_level(level)
    return level[0]


@dataclass(frozen=True, slots=True)
class MerkleProof:
    """Sibling hashes from the leaf up; ``None`` marks a level where the node was promoted."""

    index: int
    count: int
    siblings: tuple[bytes, ...]


def merkle_proof(items: Sequence[bytes], index: int) -> MerkleProof:
    if not 0 <= index < len(items):
        raise IndexError(f"leaf {index} outside a tree of {len(items)}")
    level = [leaf_hash(item) for item in items]
    siblings: list[bytes] = []
    position = index
    while len(level) > 1:
        sibling = position ^ 1
        if sibling < len(level):
            siblings.append(level[sibling])
        level = _next_level(level)
        position //= 2
    return MerkleProof(index=index, count=len(items), siblings=tuple(siblings))


def verify_proof(root: bytes, item: bytes, proof: MerkleProof) -> bool:
    """True when ``item`` is leaf ``proof.index`` of a ``proof.count``-leaf tree with ``root``."""
    if not 0 <= proof.index < proof.count:
        return False
    node = leaf_hash(item)
    position, width = proof.index, proof.count
    remaining = list(proof.siblings)
    while width > 1:
        sibling = position ^ 1
        if sibling < width:
            if not remaining:
                return False
            other = remaining.pop(0)
            node = node_hash(other, node) if position & 1 else node_hash(node, other)
        position //= 2
        width = (width + 1) // 2
    return not remaining and node == root
