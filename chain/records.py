"""State records besides accounts and jobs: small values stored under a `chain.schema` prefix
(one of `schema.RECORD_PREFIXES`) and an id.

The store keeps a record's bytes under its row key (prefix + id); the state trie commits to their
hash under `record_key(row key)`, a 20-byte key hashed in its own domain, so one state root covers
every record with accounts, jobs and the totals, and a block's update stays O(changed keys x log n).
"""

from __future__ import annotations

from chain.hashing import ADDRESS_HASH_SIZE, hash256

RECORD_KEY_PERSON = b"neuro-recordkey"
RECORD_VALUE_PERSON = b"neuro-record"


def record_key(row_key: bytes) -> bytes:
    """Where the state trie keeps the record stored under ``row_key`` (prefix + id)."""
    return hash256(row_key, person=RECORD_KEY_PERSON)[:ADDRESS_HASH_SIZE]


def record_value_hash(data: bytes) -> bytes:
    return hash256(data, person=RECORD_VALUE_PERSON)
