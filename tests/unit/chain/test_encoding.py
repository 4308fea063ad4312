"""Canonical encoding: round trips, random bytes, and every kind of malformed input refused."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chain.encoding import array_header, pack
from chain.errors import DecodeError, RejectKind
from chain.params import MAX_BLOCK_TXS, MAX_SUPPLY_UNITS, MAX_TX_BYTES
from chain.state import Account
from chain.types import MAX_AMOUNT, Block, Header, Transaction, Transfer

U64 = 2**64 - 1


def fixed(size: int) -> st.SearchStrategy[bytes]:
    return st.binary(min_size=size, max_size=size)


transfers = st.builds(Transfer, to=fixed(20), amount=st.integers(1, MAX_AMOUNT))
transactions = st.builds(
    Transaction,
    chain_id=fixed(32),
    sender=fixed(32),
    nonce=st.integers(0, U64),
    fee=st.integers(0, MAX_AMOUNT),
    payload=transfers,
    signature=fixed(64),
)
headers = st.builds(
    Header,
    version=st.integers(0, 2**32 - 1),
    height=st.integers(0, 2**63 - 1),
    parent=fixed(32),
    timestamp=st.integers(0, 2**63 - 1),
    bits=st.integers(0, 2**32 - 1),
    tx_root=fixed(32),
    state_root=fixed(32),
    miner=fixed(20),
    nonce=fixed(8),
)
blocks = st.builds(Block, header=headers, txs=st.lists(transactions, max_size=4).map(tuple))
amounts = st.integers(0, MAX_SUPPLY_UNITS)


@st.composite
def accounts(draw: st.DrawFn) -> Account:
    """Accounts that never staked (two fields) and stakers (six; locked within bonded)."""
    balance, nonce = draw(amounts), draw(st.integers(0, U64))
    if not draw(st.booleans()):
        return Account(balance, nonce)
    bonded = draw(amounts)
    return Account(balance, nonce, bonded, draw(st.integers(0, bonded)), draw(amounts), draw(st.integers(0, U64)))

DECODERS: list[Any] = [Transaction.decode, Header.decode, Block.decode, Account.decode]


@given(transactions)
def test_transaction_round_trip(tx: Transaction) -> None:
    data = tx.encode()
    assert Transaction.decode(data) == tx
    assert Transaction.decode(data).encode() == data


@given(headers)
def test_header_round_trip(header: Header) -> None:
    assert Header.decode(header.encode()) == header


@settings(max_examples=50)
@given(blocks)
def test_block_round_trip(block: Block) -> None:
    decoded = Block.decode(block.encode())
    assert decoded == block
    assert decoded.hash == block.hash


@given(accounts())
def test_account_round_trip(account: Account) -> None:
    assert Account.decode(account.encode()) == account


@settings(max_examples=300)
@given(st.binary(max_size=400), st.sampled_from(DECODERS))
def test_random_bytes_never_crash_decode(data: bytes, decode: Any) -> None:
    try:
        value = decode(data)
    except DecodeError as exc:
        assert exc.kind is RejectKind.MALFORMED
    else:  # the rare random input that is canonical must round trip exactly
        assert value.encode() == data


@settings(max_examples=200)
@given(transactions, st.data())
def test_mutated_transaction_bytes_decode_or_raise(tx: Transaction, data: st.DataObject) -> None:
    raw = bytearray(tx.encode())
    position = data.draw(st.integers(0, len(raw) - 1))
    raw[position] = data.draw(st.integers(0, 255))
    try:
        decoded = Transaction.decode(bytes(raw))
    except DecodeError:
        return
    assert decoded.encode() == bytes(raw)


# ---- one malformed input per rule ----------------------------------------------------------

TX = Transaction(bytes(range(32)), bytes(32), 5, 1, Transfer(bytes(20), 7), bytes(64))
HEADER = Header(1, 3, bytes(32), 100, 0x2100FFFF, bytes(32), bytes(32), bytes(20), bytes(8))


def tx_with(index: int, value: Any) -> bytes:
    fields = TX.to_list()
    fields[index] = value
    return pack(fields)


def header_with(index: int, value: Any) -> bytes:
    fields = HEADER.to_list()
    fields[index] = value
    return pack(fields)


def non_canonical_nonce() -> bytes:
    """The tx with its nonce 5 written as uint16 (0xcd 0x00 0x05) instead of fixint 0x05."""
    canonical = TX.encode()
    prefix = pack(TX.to_list()[:3])[1:]  # the fields before the nonce
    head = canonical[:1] + prefix
    assert canonical[len(head)] == 0x05
    return head + b"\xcd\x00\x05" + canonical[len(head) + 1 :]


MALFORMED: list[tuple[str, Any, bytes, str, str]] = [
    ("non-canonical int", Transaction.decode, non_canonical_nonce(), "non-canonical", "tx"),
    ("trailing bytes", Transaction.decode, TX.encode() + b"\x00", "bad-encoding", "trailing"),
    ("str for bytes", Transaction.decode, tx_with(0, "x" * 32), "bad-encoding", "tx.chain_id"),
    ("bool for int", Transaction.decode, tx_with(3, True), "bad-encoding", "tx.nonce"),
    ("float for int", Transaction.decode, tx_with(4, 1.0), "bad-encoding", "tx.fee"),
    ("negative int", Transaction.decode, tx_with(3, -1), "bad-encoding", "tx.nonce"),
    ("short sender", Transaction.decode, tx_with(2, bytes(31)), "bad-encoding", "tx.sender"),
    ("long signature", Transaction.decode, tx_with(6, bytes(65)), "bad-encoding", "tx.signature"),
    ("zero amount", Transaction.decode, tx_with(5, [bytes(20), 0]), "bad-encoding", "transfer.amount"),
    ("amount too big", Transaction.decode, tx_with(5, [bytes(20), 2**63]), "bad-encoding", "transfer.amount"),
    ("payload not a list", Transaction.decode, tx_with(5, b"x"), "bad-encoding", "transfer"),
    ("ext type", Transaction.decode, tx_with(4, msgpack.ExtType(1, b"abcd")), "bad-encoding", "ext"),
    # an empty ext passes max_ext_len=0 and reaches the ext hook, which refuses it by type
    ("empty ext type", Transaction.decode, tx_with(4, msgpack.ExtType(1, b"")), "bad-encoding", "ext type 1 is not allowed"),
    ("map", Transaction.decode, msgpack.packb({"nonce": 5}), "bad-encoding", "tx"),
    ("empty map field", Transaction.decode, tx_with(0, {}), "bad-encoding", "tx.chain_id"),
    ("six fields", Transaction.decode, msgpack.packb(TX.to_list()[:6], use_bin_type=True), "bad-encoding", "field count"),
    ("eight fields", Transaction.decode, msgpack.packb([*TX.to_list(), 0], use_bin_type=True), "bad-encoding", "field count"),
    ("oversized tx", Transaction.decode, tx_with(0, bytes(MAX_TX_BYTES)), "oversized", "tx"),
    ("unknown tx kind", Transaction.decode, tx_with(1, 99), "bad-tx-kind", "kind 99"),
    ("tx kind out of range", Transaction.decode, tx_with(1, 256), "bad-encoding", "tx.kind"),
    ("not a list", Transaction.decode, msgpack.packb(5), "bad-encoding", "tx"),
    ("empty input", Transaction.decode, b"", "bad-encoding", "tx"),
    ("truncated", Transaction.decode, TX.encode()[:-1], "bad-encoding", "tx"),
    ("bad utf-8", Transaction.decode, b"\xa2\xff\xfe", "bad-encoding", "tx"),
    ("header version too big", Header.decode, header_with(0, 2**32), "bad-encoding", "header.version"),
    ("header bool height", Header.decode, header_with(1, False), "bad-encoding", "header.height"),
    ("header short nonce", Header.decode, header_with(8, bytes(7)), "bad-encoding", "header.nonce"),
    ("header str miner", Header.decode, header_with(7, "m" * 20), "bad-encoding", "header.miner"),
    ("header oversized", Header.decode, header_with(5, bytes(300)), "oversized", "header"),
    ("account balance above supply", Account.decode, msgpack.packb([MAX_SUPPLY_UNITS + 1, 0]), "bad-encoding", "account.balance"),
    ("block with too many txs", Block.decode, msgpack.packb([HEADER.to_list(), [0] * (MAX_BLOCK_TXS + 1)]), "oversized", "block.txs"),
    ("block of three fields", Block.decode, msgpack.packb([HEADER.to_list(), [], []], use_bin_type=True), "bad-encoding", "field count"),
]


@pytest.mark.parametrize(
    ("decode", "data", "reason", "names"),
    [pytest.param(*case[1:], id=case[0]) for case in MALFORMED],
)
def test_malformed_input_is_refused(decode: Any, data: bytes, reason: str, names: str) -> None:
    with pytest.raises(DecodeError) as info:
        decode(data)
    assert info.value.reason == reason
    assert info.value.kind is RejectKind.MALFORMED
    assert names in str(info.value)


def test_the_non_canonical_nonce_is_what_plain_msgpack_accepts() -> None:
    # Guards the test above: the bytes differ from the canonical ones only in the nonce's width.
    assert msgpack.unpackb(non_canonical_nonce()) == msgpack.unpackb(TX.encode())


def test_oversized_block_input_is_refused_before_unpacking() -> None:
    with pytest.raises(DecodeError) as info:
        Block.decode(bytes(1000), max_size=999)
    assert info.value.reason == "oversized"
    assert info.value.got == 1000


def test_decode_refuses_non_bytes() -> None:
    with pytest.raises(DecodeError, match="expected bytes, got str"):
        Transaction.decode("not bytes")  # type: ignore[arg-type]


# ---- exact limits: at the limit decodes, one past it is refused --------------------------


@pytest.mark.parametrize("length", [0, 15, 16, 17, 2**16 - 1, 2**16])
def test_array_header_is_msgpacks_own_at_each_width_boundary(length: int) -> None:
    # fixarray up to 15 items, array16 from 16, array32 from 65,536: a block re-encodes its
    # transaction list from this header, so a wrong width makes a valid block non-canonical
    packed = msgpack.packb([0] * length)
    assert pack([0] * length) == packed
    assert packed.startswith(array_header(length))
    assert len(packed) == len(array_header(length)) + length


@pytest.mark.parametrize("count", [15, 16, 17])
def test_blocks_round_trip_across_the_array16_boundary(count: int) -> None:
    txs = tuple(replace(TX, nonce=n) for n in range(count))
    block = Block(HEADER, txs)
    assert Block.decode(block.encode()) == block


def test_input_of_exactly_max_size_decodes_and_one_byte_more_does_not() -> None:
    data = Block(HEADER, (TX,)).encode()
    assert Block.decode(data, max_size=len(data)).encode() == data
    with pytest.raises(DecodeError) as info:
        Block.decode(data, max_size=len(data) - 1)
    assert info.value.reason == "oversized"


def test_a_block_of_exactly_max_block_txs_decodes() -> None:
    txs = [replace(TX, nonce=n).to_list() for n in range(MAX_BLOCK_TXS)]
    data = pack([HEADER.to_list(), txs])
    assert len(Block.decode(data, max_size=len(data)).txs) == MAX_BLOCK_TXS


@pytest.mark.parametrize("txs", [7, b"txs", "txs", True], ids=["int", "bytes", "str", "bool"])
def test_a_block_whose_transactions_are_not_a_list_is_malformed(txs: Any) -> None:
    with pytest.raises(DecodeError) as info:
        Block.decode(pack([HEADER.to_list(), txs]))
    assert info.value.reason == "bad-encoding"
    assert "block.txs" in str(info.value)
