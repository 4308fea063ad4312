"""A malformed voucher string, as `neuro wallet redeem` reads it (`wallet.treasury_json`): each
kind of damage is one `WalletError` line with reason bad-voucher, never another exception."""

from __future__ import annotations

import base64
import os

import pytest

from chain import encoding as enc
from chain.hashing import hash256
from chain.treasury_types import (
    VOUCHER_CHECK_PERSON,
    VOUCHER_CHECK_SIZE,
    VOUCHER_TEXT_PREFIX,
    VoucherTicket,
)
from tests.unit.chain.test_treasury import voucher
from wallet.keys import WalletError
from wallet.treasury_json import parse_voucher

GOOD = voucher(bytes(32))
FIELDS = GOOD.voucher.to_list()


def checked_text(data: bytes) -> str:
    """``data`` as a ticket string with a right check: the damage is inside, not a typo."""
    check = hash256(data, person=VOUCHER_CHECK_PERSON)[:VOUCHER_CHECK_SIZE]
    return VOUCHER_TEXT_PREFIX + base64.urlsafe_b64encode(data + check).decode().rstrip("=")


def with_field(index: int, value: object) -> str:
    return checked_text(enc.pack([[*FIELDS[:index], value, *FIELDS[index + 1:]], GOOD.claim_seed]))


TEXT = GOOD.to_text()
MALFORMED = {
    "not a string": 5,
    "empty": "",
    "no prefix": TEXT[len(VOUCHER_TEXT_PREFIX):],
    "not base64url": TEXT[:30] + "*" + TEXT[31:],
    "not ascii": TEXT[:30] + "é" + TEXT[31:],
    "truncated": TEXT[:-10],
    "one character more": TEXT + "A",
    "typo": TEXT[:20] + ("B" if TEXT[20] == "A" else "A") + TEXT[21:],
    "huge": VOUCHER_TEXT_PREFIX + "A" * 1_000_000,
    "not a list": checked_text(enc.pack(5)),
    "three parts": checked_text(enc.pack([FIELDS, GOOD.claim_seed, b""])),
    "seven fields": checked_text(enc.pack([FIELDS[:7], GOOD.claim_seed])),
    "short id": with_field(1, os.urandom(15)),
    "short chain id": with_field(0, bytes(31)),
    "negative amount": with_field(2, -1),
    "amount past 2^63": with_field(2, 2**63),
    "text for bytes": with_field(0, "x" * 32),
    "short signature": with_field(7, bytes(63)),
    "trailing bytes": checked_text(enc.pack([FIELDS, GOOD.claim_seed]) + b"\x00"),
    "not utf-8": checked_text(b"\x92\xa2\xff\xfe\xc4\x00"),
    "another secret": VoucherTicket(GOOD.voucher, os.urandom(32)).to_text(),
    "short secret": VoucherTicket(GOOD.voucher, os.urandom(31)).to_text(),
}


@pytest.mark.parametrize("name", MALFORMED)
def test_a_malformed_voucher_is_one_named_line(name: str) -> None:
    with pytest.raises(WalletError) as caught:
        parse_voucher(MALFORMED[name])
    message = str(caught.value)
    assert caught.value.reason == "bad-voucher" and "\n" not in message and len(message) < 200, message
    assert "codec" not in message  # no Python internals


def test_a_good_voucher_still_parses_pasted_over_lines() -> None:
    assert parse_voucher(f" {TEXT[:50]}\n{TEXT[50:]}\n") == GOOD
