"""Offline transactions: build and check a transfer, sign it from a file, read the signed file back."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chain.amounts import format_ntk
from chain.crypto import decode_address, verify
from chain.devnet_keys import DEVNET_HRP, devnet_address, devnet_seed
from chain.genesis import load_genesis
from chain.types import Transaction
from wallet.keys import Key, WalletError
from wallet.txfile import (
    UnsignedTransfer,
    build_transfer,
    describe,
    read_signed,
    sign_transfer,
    signed_json,
)

CHAIN_ID = load_genesis("devnet").chain_id


def unsigned(**changes: Any) -> UnsignedTransfer:
    args: dict[str, Any] = {
        "chain_id": CHAIN_ID,
        "sender": devnet_address("alice"),
        "to": devnet_address("bob"),
        "amount": "12.5",
        "fee": "0.00001",
        "nonce": 7,
    }
    args.update(changes)
    return build_transfer(**args)


def test_build_uses_exact_decimals() -> None:
    transfer = unsigned(amount="0.000000001", fee="1")
    assert (transfer.amount, transfer.fee) == (1, 10**9)
    assert transfer.to_json() == {
        "type": "neuro-unsigned-tx",
        "chain": CHAIN_ID.hex(),
        "from": devnet_address("alice"),
        "to": devnet_address("bob"),
        "amount": "0.000000001",
        "fee": "1",
        "nonce": 7,
    }


@pytest.mark.parametrize(
    "changes, reason",
    [
        ({"amount": "1.0000000001"}, "bad-amount"),
        ({"amount": "-1"}, "bad-amount"),
        ({"amount": "0"}, "bad-amount"),
        ({"amount": "1e400"}, "bad-amount"),
        ({"amount": "ten"}, "bad-amount"),
        ({"fee": "0.1234567891"}, "bad-amount"),
        ({"to": devnet_address("bob")[:-1] + "x"}, "bad-address"),
        ({"to": devnet_address("bob").replace("tntk", "ntk")}, "bad-address"),
        ({"nonce": -1}, "bad-nonce"),
        ({"chain_id": b"short"}, "bad-chain-id"),
    ],
)
def test_bad_input_is_refused_with_its_reason(changes: dict[str, Any], reason: str) -> None:
    with pytest.raises(WalletError) as caught:
        unsigned(**changes)
    assert caught.value.reason == reason


def test_sign_from_file_and_read_back() -> None:
    doc = json.loads(json.dumps(unsigned().to_json()))
    transfer = UnsignedTransfer.from_json(doc)
    tx = sign_transfer(transfer, Key(devnet_seed("alice")))
    assert verify(tx.sender, tx.signing_message(), tx.signature)
    assert tx.chain_id == CHAIN_ID and tx.nonce == 7 and tx.fee == 10_000
    assert tx.payload.to == decode_address(devnet_address("bob"), DEVNET_HRP)
    signed = json.loads(json.dumps(signed_json(tx, DEVNET_HRP)))
    assert signed["txid"] == tx.txid.hex()
    again = read_signed(signed)
    assert again == tx and again.encode() == tx.encode()
    assert describe(again, DEVNET_HRP)["amount"] == "12.5"


def test_signing_with_another_key_is_refused() -> None:
    with pytest.raises(WalletError) as caught:
        sign_transfer(unsigned(), Key(devnet_seed("bob")))
    assert caught.value.reason == "wrong-key"


@pytest.mark.parametrize(
    "doc",
    [
        {"type": "neuro-signed-tx", "tx": "zz"},
        {"type": "neuro-signed-tx", "tx": "00"},
        {"type": "neuro-unsigned-tx", "tx": "00"},
        [],
    ],
)
def test_bad_signed_files_are_refused(doc: Any) -> None:
    with pytest.raises(WalletError) as caught:
        read_signed(doc)
    assert caught.value.reason == "bad-tx-file"


def test_unsigned_file_needs_every_field() -> None:
    doc = unsigned().to_json()
    doc.pop("fee")
    with pytest.raises(WalletError) as caught:
        UnsignedTransfer.from_json(doc)
    assert caught.value.reason == "bad-tx-file"


@given(
    units=st.integers(min_value=1, max_value=2**63 - 1),
    nonce=st.integers(min_value=0, max_value=2**63 - 1),
)
def test_amounts_survive_the_file_exactly(units: int, nonce: int) -> None:
    transfer = unsigned(amount=format_ntk(units), nonce=nonce)
    assert UnsignedTransfer.from_json(transfer.to_json()) == transfer
    assert transfer.amount == units
    assert (
        Transaction.decode(
            sign_transfer(transfer, Key(devnet_seed("alice"))).encode()
        ).payload.amount
        == units
    )
