"""Wallet keys: generation, signing, parsing, and addresses that match the chain's derivation."""

from __future__ import annotations

import pytest

from chain.crypto import address_hash, decode_address, encode_address, public_key_of, verify
from chain.devnet_keys import devnet_address, devnet_seed
from chain.types import Transfer
from chain.validation import check_transaction
from wallet.keys import Key, WalletError

SEED = bytes(range(32))


def test_generated_keys_are_distinct_and_sign_verifiably() -> None:
    first, second = Key.generate(), Key.generate()
    assert first.seed != second.seed
    signature = first.sign(b"hello")
    assert verify(first.public_key, b"hello", signature)
    assert not verify(second.public_key, b"hello", signature)
    assert not verify(first.public_key, b"hello!", signature)


def test_signing_is_deterministic() -> None:
    assert Key(SEED).sign(b"m") == Key(SEED).sign(b"m")


def test_from_hex_accepts_plain_and_prefixed_hex() -> None:
    assert Key.from_hex(SEED.hex()) == Key(SEED)
    assert Key.from_hex("0x" + SEED.hex().upper() + "\n") == Key(SEED)


@pytest.mark.parametrize("text", ["", "zz" * 32, SEED.hex()[:-2], SEED.hex() + "00", "0x", "12 34"])
def test_from_hex_errors(text: str) -> None:
    with pytest.raises(WalletError) as info:
        Key.from_hex(text)
    assert info.value.reason == "bad-key"


def test_seed_of_the_wrong_size_is_refused() -> None:
    with pytest.raises(WalletError, match="32 bytes, got 31"):
        Key(bytes(31))


def test_repr_never_shows_the_seed() -> None:
    assert SEED.hex() not in repr(Key(SEED))
    assert repr(SEED) not in repr(Key(SEED))


def test_address_derivation_matches_chain_crypto() -> None:
    key = Key(SEED)
    assert key.public_key == public_key_of(SEED)
    assert key.account_id == address_hash(public_key_of(SEED))
    assert key.address("ntk") == encode_address(key.account_id, "ntk")
    assert decode_address(key.address("tntk"), "tntk") == key.account_id
    assert Key(devnet_seed("alice")).address("tntk") == devnet_address("alice")


def test_transaction_is_signed_for_its_chain() -> None:
    key = Key(SEED)
    chain_id = bytes([7]) * 32
    tx = key.transaction(chain_id, nonce=3, fee=10, payload=Transfer(bytes(20), 5))
    assert (tx.sender, tx.nonce, tx.fee) == (key.public_key, 3, 10)
    check_transaction(tx, chain_id)
