"""Stored records (accounts, block metas) decode strictly: each malformed field is refused with
its own name and bound, so a damaged row reads as damage, never as a plausible value."""

from __future__ import annotations

import pytest

from chain import encoding as enc
from chain.chainstate import BlockMeta, BlockStatus
from chain.errors import ChainError, DecodeError
from chain.params import MAX_SUPPLY_UNITS
from chain.state import Account

OVER = f"out of range (expected '[0, {MAX_SUPPLY_UNITS}]', got {MAX_SUPPLY_UNITS + 1})"
STAKE = "bad-encoding: account: stake fields all zero, or locked above bonded"
M = MAX_SUPPLY_UNITS


@pytest.mark.parametrize(
    "fields, described",
    [
        (["x", 0, 1, 0, 0, 0], "bad-encoding: account.balance: expected int, got str"),
        ([0, "x", 1, 0, 0, 0], "bad-encoding: account.nonce: expected int, got str"),
        ([0, 0, "x", 0, 0, 0], "bad-encoding: account.bonded: expected int, got str"),
        ([0, 0, 1, "x", 0, 0], "bad-encoding: account.locked: expected int, got str"),
        ([0, 0, 1, 0, "x", 0], "bad-encoding: account.unbonding: expected int, got str"),
        ([0, 0, 1, 0, 0, "x"], "bad-encoding: account.release: expected int, got str"),
        ([M + 1, 0, 1, 0, 0, 0], f"bad-encoding: account.balance: {OVER}"),
        ([0, 0, M + 1, 0, 0, 0], f"bad-encoding: account.bonded: {OVER}"),
        ([0, 0, M, M + 1, 0, 0], f"bad-encoding: account.locked: {OVER}"),
        ([0, 0, 1, 0, M + 1, 0], f"bad-encoding: account.unbonding: {OVER}"),
        ([5, 1, 0, 0, 0, 0], STAKE),  # the six-field form of an account with no stake: not canonical
        ([5, 1, 1, 2, 0, 0], STAKE),
    ],
)
def test_a_malformed_staked_account_names_its_field(fields: list[object], described: str) -> None:
    with pytest.raises(DecodeError) as refused:
        Account.decode(enc.pack(fields))
    assert refused.value.describe() == described


def test_account_bounds_are_exact() -> None:
    widest = Account(M, 2**64 - 1, M, M, M, 2**64 - 1)
    assert Account.decode(widest.encode()) == widest
    assert Account.decode(Account(5, 1, 2, 2).encode()) == Account(5, 1, 2, 2)  # locked == bonded
    with pytest.raises(DecodeError) as oversized:
        Account.decode(b"\x96" + bytes(64))
    assert oversized.value.describe() == "oversized: account of 65 bytes (expected '<= 64', got 65)"
    with pytest.raises(DecodeError) as at_bound:  # 64 bytes pass the size check, then fail to parse
        Account.decode(b"\x96" + bytes(63))
    assert at_bound.value.reason == "bad-encoding"


def test_block_meta_decodes_strictly() -> None:
    meta = BlockMeta(7, 2**200 + 5, BlockStatus.STORED)
    assert BlockMeta.decode(meta.encode()) == meta
    cases = [
        (b"\x93" + bytes(128), "oversized: meta of 129 bytes (expected '<= 128', got 129)"),
        (enc.pack([1, 2]), "bad-encoding: meta: wrong field count (expected 3, got 2)"),
    ]
    for data, described in cases:
        with pytest.raises(ChainError) as refused:
            BlockMeta.decode(data)
        assert refused.value.describe() == described
    with pytest.raises(DecodeError) as at_bound:
        BlockMeta.decode(b"\x93" + bytes(127))
    assert at_bound.value.reason == "bad-encoding"
