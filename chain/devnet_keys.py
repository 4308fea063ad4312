"""Well-known devnet keys: seeds anyone can derive, so tests and demos can spend devnet funds.

They are public by construction: never use them outside the devnet.
"""

from __future__ import annotations

from chain.crypto import address_hash, encode_address, public_key_of
from chain.hashing import hash256

DEVNET_HRP = "tntk"
DEVNET_ACCOUNTS = ("treasury", "alice", "bob", "carol", "dave", "miner")


def devnet_seed(name: str) -> bytes:
    return hash256(b"neuro devnet key: " + name.encode())


def devnet_address(name: str) -> str:
    return encode_address(address_hash(public_key_of(devnet_seed(name))), DEVNET_HRP)
