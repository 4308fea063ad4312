"""Every field check of the treasury's payloads, records and voucher strings
(`chain.treasury_types`), one past each limit refused with its exact error and the limit itself
accepted.

The errors are pinned whole, as `test_listing_types` does for listings: a voucher string a user
pastes is refused with the reason the CLI shows, and a payload with the reason a peer is judged by.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

import pytest

from chain import encoding as enc
from chain.crypto import public_key_of
from chain.hashing import hash256
from chain.treasury_types import (
    MAX_AMOUNT,
    MAX_HEIGHT,
    MAX_VOUCHER_BYTES,
    VOUCHER_CHECK_PERSON,
    BuybackOffer,
    BuybackSell,
    Claim,
    Offer,
    Redeem,
    Redemption,
    Voucher,
    VoucherTicket,
)
from tests.unit.chain.marketplace_checks import (
    out_of_range,
    packed,
    refusal_text,
    swap,
    wrong_length,
)

SEED = bytes([8]) * 32
CLAIM_KEY = public_key_of(SEED)
ACCOUNT = bytes([4]) * 20
VOUCHER = [bytes([1]) * 32, bytes([2]) * 16, 5, ACCOUNT, 9, bytes([3]) * 32, b"", bytes([6]) * 64]
KEYED = swap(swap(VOUCHER, 3, b""), 6, CLAIM_KEY)  # bound to a claim key instead of an account
OFFER = [b"USD", 1_250_000, 100, 10]
REDEMPTION = [7, ACCOUNT, 5, 1]
OFFER_RECORD = [b"EUR", 2, 100, 40, 9, 3]
CLAIM = [ACCOUNT, bytes([9]) * 32, 2 * 10**9, 1_250_000, b"USD", 7]  # 2 NTK at 1.25 USD

redemption = packed(Redemption.decode)
offer_record = packed(Offer.decode)
claim_record = packed(Claim.decode)


def amount_out_of_range(field: str, got: int) -> str:
    return out_of_range(field, got, 1, MAX_AMOUNT)


def too_long(field: str, limit: int) -> str:
    return f"oversized: {field}: too long (expected '<= {limit}', got {limit + 1})"


def text_of(data: bytes) -> str:
    """A voucher string carrying ``data`` with a correct check (what `to_text` would make of it)."""
    check = hash256(data, person=VOUCHER_CHECK_PERSON)[:4]
    return "ntkv1" + base64.urlsafe_b64encode(data + check).decode().rstrip("=")


def ticket_text(voucher: list[Any], seed: bytes) -> str:
    return text_of(enc.pack([voucher, seed]))


BOUND_TWICE = "bad-voucher: a voucher names either a beneficiary or a claim key"
BAD_BINDING = ("bad-encoding: voucher: a beneficiary is an account id (20 bytes), a claim key a public key "
               "(32 bytes)")

# (decode, value, the error's text)
REFUSED: list[tuple[Callable[[Any], Any], Any, str]] = [
    # Voucher
    (Voucher.from_list, VOUCHER[:7], "bad-encoding: voucher: wrong field count (expected 8, got 7)"),
    (Voucher.from_list, swap(VOUCHER, 0, bytes(31)), wrong_length("voucher.chain_id", 32, 31)),
    (Voucher.from_list, swap(VOUCHER, 0, bytes(33)), wrong_length("voucher.chain_id", 32, 33)),
    (Voucher.from_list, swap(VOUCHER, 1, bytes(15)), wrong_length("voucher.id", 16, 15)),
    (Voucher.from_list, swap(VOUCHER, 1, bytes(17)), wrong_length("voucher.id", 16, 17)),
    (Voucher.from_list, swap(VOUCHER, 2, 0), amount_out_of_range("voucher.amount", 0)),
    (Voucher.from_list, swap(VOUCHER, 2, MAX_AMOUNT + 1), amount_out_of_range("voucher.amount", MAX_AMOUNT + 1)),
    (Voucher.from_list, swap(VOUCHER, 3, bytes(21)), too_long("voucher.beneficiary", 20)),
    (Voucher.from_list, swap(VOUCHER, 3, "x"), "bad-encoding: voucher.beneficiary: expected bytes, got str"),
    (Voucher.from_list, swap(VOUCHER, 3, bytes(19)), BAD_BINDING),
    (Voucher.from_list, swap(KEYED, 6, bytes(33)), too_long("voucher.claim_key", 32)),
    (Voucher.from_list, swap(KEYED, 6, None), "bad-encoding: voucher.claim_key: expected bytes, got NoneType"),
    (Voucher.from_list, swap(KEYED, 6, bytes(31)), BAD_BINDING),
    (Voucher.from_list, swap(VOUCHER, 6, CLAIM_KEY), BOUND_TWICE),
    (Voucher.from_list, swap(KEYED, 6, b""), BOUND_TWICE),
    (Voucher.from_list, swap(VOUCHER, 4, -1), out_of_range("voucher.expiry", -1, 0, MAX_HEIGHT)),
    (Voucher.from_list, swap(VOUCHER, 4, MAX_HEIGHT + 1), out_of_range("voucher.expiry", MAX_HEIGHT + 1, 0, MAX_HEIGHT)),
    (Voucher.from_list, swap(VOUCHER, 5, bytes(31)), wrong_length("voucher.treasury", 32, 31)),
    (Voucher.from_list, swap(VOUCHER, 5, bytes(33)), wrong_length("voucher.treasury", 32, 33)),
    (Voucher.from_list, swap(VOUCHER, 7, bytes(63)), wrong_length("voucher.signature", 64, 63)),
    (Voucher.from_list, swap(VOUCHER, 7, bytes(65)), wrong_length("voucher.signature", 64, 65)),
    (Voucher.decode, bytes(MAX_VOUCHER_BYTES + 1), "oversized: voucher of 321 bytes (expected '<= 320', got 321)"),
    (Voucher.decode, enc.pack(VOUCHER) + b"\x00", "bad-encoding: voucher: trailing bytes"),
    # Redeem
    (Redeem.from_list, [VOUCHER], "bad-encoding: redeem: wrong field count (expected 2, got 1)"),
    (Redeem.from_list, [KEYED, bytes(65)], too_long("redeem.claim", 64)),
    (Redeem.from_list, [KEYED, bytes(63)], "bad-encoding: redeem.claim: a signature (64 bytes) or none (got 63)"),
    (Redeem.from_list, [KEYED, bytes(1)], "bad-encoding: redeem.claim: a signature (64 bytes) or none (got 1)"),
    (Redeem.from_list, [KEYED, "sig"], "bad-encoding: redeem.claim: expected bytes, got str"),
    (Redeem.from_list, [VOUCHER[:7], b""], "bad-encoding: voucher: wrong field count (expected 8, got 7)"),
    # BuybackOffer
    (BuybackOffer.from_list, OFFER[:3], "bad-encoding: buyback_offer: wrong field count (expected 4, got 3)"),
    (BuybackOffer.from_list, swap(OFFER, 0, b"US"),
     "bad-currency: buyback_offer.currency: 3 to 8 capital letters A-Z (e.g. USD) (got '5553')"),
    (BuybackOffer.from_list, swap(OFFER, 0, b"usd"),
     "bad-currency: buyback_offer.currency: 3 to 8 capital letters A-Z (e.g. USD) (got '757364')"),
    (BuybackOffer.from_list, swap(OFFER, 0, b"ABCDEFGHI"), too_long("buyback_offer.currency", 8)),
    (BuybackOffer.from_list, swap(OFFER, 0, "USD"), "bad-encoding: buyback_offer.currency: expected bytes, got str"),
    (BuybackOffer.from_list, swap(OFFER, 1, 0), amount_out_of_range("buyback_offer.price", 0)),
    (BuybackOffer.from_list, swap(OFFER, 1, MAX_AMOUNT + 1), amount_out_of_range("buyback_offer.price", MAX_AMOUNT + 1)),
    (BuybackOffer.from_list, swap(OFFER, 2, 0), amount_out_of_range("buyback_offer.cap", 0)),
    (BuybackOffer.from_list, swap(OFFER, 2, MAX_AMOUNT + 1), amount_out_of_range("buyback_offer.cap", MAX_AMOUNT + 1)),
    (BuybackOffer.from_list, swap(OFFER, 3, -1), out_of_range("buyback_offer.expiry", -1, 0, MAX_HEIGHT)),
    (BuybackOffer.from_list, swap(OFFER, 3, MAX_HEIGHT + 1),
     out_of_range("buyback_offer.expiry", MAX_HEIGHT + 1, 0, MAX_HEIGHT)),
    # BuybackSell
    (BuybackSell.from_list, [bytes(32)], "bad-encoding: buyback_sell: wrong field count (expected 2, got 1)"),
    (BuybackSell.from_list, [bytes(31), 1], wrong_length("buyback_sell.offer_id", 32, 31)),
    (BuybackSell.from_list, [bytes(33), 1], wrong_length("buyback_sell.offer_id", 32, 33)),
    (BuybackSell.from_list, [bytes(32), 0], amount_out_of_range("buyback_sell.amount", 0)),
    (BuybackSell.from_list, [bytes(32), MAX_AMOUNT + 1], amount_out_of_range("buyback_sell.amount", MAX_AMOUNT + 1)),
    # Redemption
    (Redemption.decode, bytes(65), "oversized: redemption of 65 bytes (expected '<= 64', got 65)"),
    (Redemption.decode, enc.pack(REDEMPTION) + b"\x00", "bad-encoding: redemption: trailing bytes"),
    (redemption, REDEMPTION[:3], "bad-encoding: redemption: wrong field count (expected 4, got 3)"),
    (redemption, swap(REDEMPTION, 0, -1), out_of_range("redemption.height", -1)),
    (redemption, swap(REDEMPTION, 1, bytes(21)), wrong_length("redemption.account", 20, 21)),
    (redemption, swap(REDEMPTION, 2, "5"), "bad-encoding: redemption.amount: expected int, got str"),
    (redemption, swap(REDEMPTION, 3, -1), out_of_range("redemption.fee", -1)),
    # Offer
    (Offer.decode, bytes(97), "oversized: offer of 97 bytes (expected '<= 96', got 97)"),
    (Offer.decode, enc.pack(OFFER_RECORD) + b"\x00", "bad-encoding: offer: trailing bytes"),
    (offer_record, OFFER_RECORD[:5], "bad-encoding: offer: wrong field count (expected 6, got 5)"),
    (offer_record, swap(OFFER_RECORD, 0, b"E"),
     "bad-currency: offer.currency: 3 to 8 capital letters A-Z (e.g. USD) (got '45')"),
    (offer_record, swap(OFFER_RECORD, 1, -2), out_of_range("offer.price", -2)),
    (offer_record, swap(OFFER_RECORD, 2, "100"), "bad-encoding: offer.cap: expected int, got str"),
    (offer_record, swap(OFFER_RECORD, 3, 101), out_of_range("offer.sold", 101, 0, 100)),
    (offer_record, swap(OFFER_RECORD, 3, -1), out_of_range("offer.sold", -1, 0, 100)),
    (offer_record, swap(OFFER_RECORD, 4, -1), out_of_range("offer.expiry", -1)),
    (offer_record, swap(OFFER_RECORD, 5, None), "bad-encoding: offer.posted: expected int, got NoneType"),
    # Claim
    (Claim.decode, bytes(129), "oversized: claim of 129 bytes (expected '<= 128', got 129)"),
    (Claim.decode, enc.pack(CLAIM) + b"\x00", "bad-encoding: claim: trailing bytes"),
    (claim_record, CLAIM[:5], "bad-encoding: claim: wrong field count (expected 6, got 5)"),
    (claim_record, swap(CLAIM, 0, bytes(32)), wrong_length("claim.seller", 20, 32)),
    (claim_record, swap(CLAIM, 1, bytes(20)), wrong_length("claim.offer_id", 32, 20)),
    (claim_record, swap(CLAIM, 2, -1), out_of_range("claim.amount", -1)),
    (claim_record, swap(CLAIM, 3, "2"), "bad-encoding: claim.price: expected int, got str"),
    (claim_record, swap(CLAIM, 4, b"usd"), "bad-currency: claim.currency: 3 to 8 capital letters A-Z (e.g. USD) (got '757364')"),
    (claim_record, swap(CLAIM, 5, -1), out_of_range("claim.height", -1)),
    # VoucherTicket.from_text
    (VoucherTicket.from_text, "ntkv2" + ticket_text(VOUCHER, b"")[5:], "bad-voucher: a voucher starts with 'ntkv1'"),
    (VoucherTicket.from_text, "ntkv1AB!C", "bad-voucher: not base64url after the prefix (mistyped?)"),
    (VoucherTicket.from_text, "ntkv1", "bad-voucher: check mismatch: the string is damaged or mistyped"),
    # four bytes, the check of nothing: too short to carry a voucher, refused as damaged
    (VoucherTicket.from_text, text_of(b""), "bad-voucher: check mismatch: the string is damaged or mistyped"),
    (VoucherTicket.from_text, text_of(bytes(MAX_VOUCHER_BYTES + 41)),
     "oversized: voucher ticket of 361 bytes (expected '<= 360', got 361)"),
    (VoucherTicket.from_text, text_of(enc.pack([KEYED, SEED, b""])),
     "bad-encoding: voucher ticket: wrong field count (expected 2, got 3)"),
    (VoucherTicket.from_text, text_of(enc.pack([KEYED, SEED]) + b"\x00"), "bad-encoding: voucher ticket: trailing bytes"),
    (VoucherTicket.from_text, ticket_text(KEYED, SEED[:31]), wrong_length("voucher ticket.claim_seed", 32, 31)),
    (VoucherTicket.from_text, ticket_text(KEYED, SEED + b"\x00"), wrong_length("voucher ticket.claim_seed", 32, 33)),
    (VoucherTicket.from_text, ticket_text(VOUCHER, SEED), wrong_length("voucher ticket.claim_seed", 0, 32)),
    (VoucherTicket.from_text, ticket_text(KEYED, bytes(32)),
     "bad-voucher: the claim secret does not match the voucher's claim key"),
    (VoucherTicket.from_text, ticket_text(VOUCHER[:7], b""), "bad-encoding: voucher: wrong field count (expected 8, got 7)"),
]


@pytest.mark.parametrize(("decode", "value", "text"), REFUSED)
def test_each_bad_field_is_refused_by_name(decode: Callable[[Any], Any], value: Any, text: str) -> None:
    assert refusal_text(decode, value) == text


def test_a_large_ticket_within_its_limit_reaches_the_field_checks() -> None:
    """360 bytes are read (and the seed judged); 361 are refused unread (above)."""
    seed = SEED + bytes(MAX_VOUCHER_BYTES + 40 - len(enc.pack([KEYED, SEED])))
    while len(enc.pack([KEYED, seed])) > MAX_VOUCHER_BYTES + 40:  # the longer seed's length takes more bytes
        seed = seed[:-1]
    assert len(enc.pack([KEYED, seed])) == MAX_VOUCHER_BYTES + 40
    assert refusal_text(VoucherTicket.from_text, ticket_text(KEYED, seed)) == wrong_length(
        "voucher ticket.claim_seed", 32, len(seed))


ACCEPTED: list[tuple[Callable[[Any], Any], Any, Any]] = [
    (Voucher.from_list, VOUCHER, Voucher(*VOUCHER)),
    (Voucher.from_list, KEYED, Voucher(*KEYED)),
    (Voucher.from_list, swap(swap(VOUCHER, 2, MAX_AMOUNT), 4, MAX_HEIGHT),
     Voucher(*swap(swap(VOUCHER, 2, MAX_AMOUNT), 4, MAX_HEIGHT))),
    (Voucher.from_list, swap(swap(VOUCHER, 2, 1), 4, 0), Voucher(*swap(swap(VOUCHER, 2, 1), 4, 0))),
    (Redeem.from_list, [KEYED, bytes(64)], Redeem(Voucher(*KEYED), bytes(64))),
    (Redeem.from_list, [VOUCHER, b""], Redeem(Voucher(*VOUCHER))),
    (BuybackOffer.from_list, [b"ABCDEFGH", MAX_AMOUNT, MAX_AMOUNT, MAX_HEIGHT],
     BuybackOffer(b"ABCDEFGH", MAX_AMOUNT, MAX_AMOUNT, MAX_HEIGHT)),
    (BuybackOffer.from_list, [b"USD", 1, 1, 0], BuybackOffer(b"USD", 1, 1, 0)),
    (BuybackSell.from_list, [bytes(32), MAX_AMOUNT], BuybackSell(bytes(32), MAX_AMOUNT)),
    (BuybackSell.from_list, [bytes(32), 1], BuybackSell(bytes(32), 1)),
    (redemption, REDEMPTION, Redemption(*REDEMPTION)),
    (offer_record, swap(OFFER_RECORD, 3, 100), Offer(*swap(OFFER_RECORD, 3, 100))),
    (offer_record, swap(OFFER_RECORD, 3, 0), Offer(*swap(OFFER_RECORD, 3, 0))),
    (claim_record, CLAIM, Claim(*CLAIM)),
    (VoucherTicket.from_text, ticket_text(KEYED, SEED), VoucherTicket(Voucher(*KEYED), SEED)),
    (VoucherTicket.from_text, ticket_text(VOUCHER, b""), VoucherTicket(Voucher(*VOUCHER))),
]


@pytest.mark.parametrize(("decode", "value", "decoded"), ACCEPTED)
def test_each_limit_itself_is_accepted(decode: Callable[[Any], Any], value: Any, decoded: Any) -> None:
    assert decode(value) == decoded


def test_records_round_trip_through_their_encoding() -> None:
    for record in (Redemption(*REDEMPTION), Offer(*OFFER_RECORD), Claim(*CLAIM)):
        assert type(record).decode(record.encode()) == record
    for payload in (Redeem(Voucher(*KEYED), bytes(64)), BuybackOffer(*OFFER), BuybackSell(bytes(32), 5)):
        assert type(payload).from_list(enc.unpack(enc.pack(payload.to_list()), what="t", max_size=512)) == payload
    assert Voucher.decode(Voucher(*VOUCHER).encode()) == Voucher(*VOUCHER)
    assert Offer(*OFFER_RECORD).remaining == 60 and Claim(*CLAIM).value_micro == 2_500_000
