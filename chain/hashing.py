"""Hash functions of the protocol: blake2b-256 for ids, blake2b-160 for addresses."""

from __future__ import annotations

from hashlib import blake2b

HASH_SIZE = 32
ADDRESS_HASH_SIZE = 20
ZERO_HASH = bytes(HASH_SIZE)


def hash256(data: bytes, *, person: bytes = b"") -> bytes:
    """blake2b-256; ``person`` separates domains (tx ids, merkle nodes, ...) at no extra cost."""
    return blake2b(data, digest_size=HASH_SIZE, person=person).digest()


def hash160(data: bytes) -> bytes:
    return blake2b(data, digest_size=ADDRESS_HASH_SIZE).digest()
