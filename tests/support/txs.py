"""Signed devnet transactions for functional tests (the well-known devnet keys)."""

from __future__ import annotations

from chain.crypto import decode_address
from chain.devnet_keys import devnet_address, devnet_seed
from chain.genesis import load_genesis
from chain.types import Transfer
from wallet.keys import Key

DEVNET = load_genesis("devnet")
FEE = 10_000


def devnet_key(name: str) -> Key:
    return Key(devnet_seed(name))


def transfer_hex(sender: str | Key, to: str, amount: int, nonce: int, fee: int = FEE) -> tuple[str, str]:
    """(hex of the signed tx, txid hex); ``to`` is a devnet account name or an address."""
    key = devnet_key(sender) if isinstance(sender, str) else sender
    address = to if to.startswith("tntk1") else devnet_address(to)
    tx = key.transaction(DEVNET.chain_id, nonce, fee, Transfer(decode_address(address, "tntk"), amount))
    return tx.encode().hex(), tx.txid.hex()
