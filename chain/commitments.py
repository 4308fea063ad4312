"""What an artifact root commits to, as consensus checks it: an item's leaf and its way up.

The artifact format is `worker.artifact` (read its docstring); the two hash steps that a fraud
proof retraces on chain live here so that validators and workers share one definition:

- leaf = BLAKE3 derive-key(LEAF_CONTEXT, msgpack([index, check, labels, [file hash, ...]]))
- root = BLAKE3 derive-key(ROOT_CONTEXT, items_root || header_hash), where items_root is
  `chain.merkle.merkle_root` over the leaves in item order.

BLAKE3 (the `blake3` package, the reference Rust implementation) because the artifact format
hashes every delivered byte with it; the leaf's msgpack is `chain.encoding.pack`'s canonical form.
"""

from __future__ import annotations

from collections.abc import Sequence

from blake3 import blake3

from chain import encoding as enc
from chain.market_types import LeafClaim
from chain.merkle import verify_proof

LEAF_CONTEXT = "neuro 2026-12 artifact leaf v1"
ROOT_CONTEXT = "neuro 2026-12 artifact root v1"


def item_leaf(index: int, check: bytes, labels: bytes, files: Sequence[bytes]) -> bytes:
    return blake3(enc.pack([index, check, labels, list(files)]), derive_key_context=LEAF_CONTEXT).digest()


def fold_root(items_root: bytes, header_hash: bytes) -> bytes:
    """The artifact id: the items' Merkle root and the header, one documented step."""
    return blake3(items_root + header_hash, derive_key_context=ROOT_CONTEXT).digest()


def claim_reaches(claim: LeafClaim, root: bytes, index: int, position: int, count: int) -> bool:
    """True when ``claim`` is item ``index``'s leaf at ``position`` of a ``count``-item artifact
    whose id is ``root``."""
    leaf = item_leaf(index, claim.check, claim.labels, claim.files)
    return verify_proof(claim.items_root, leaf, claim.path(position, count)) and fold_root(
        claim.items_root, claim.header_hash
    ) == root
