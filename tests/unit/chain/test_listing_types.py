"""Every field check of the listing payloads and records (`chain.listing_types`), one past each
limit refused with its exact error and the limit itself accepted.

The errors are pinned whole: the field a peer's bad payload is refused for is what an operator
reads in the log, and the reason is what the mempool and the peer layer act on.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from chain import encoding as enc
from chain.listing_types import (
    MAX_AMOUNT,
    MAX_METHOD_CHARS,
    MAX_METRIC_VALUE,
    MAX_METRICS,
    MAX_RECORD_BYTES,
    Delist,
    Listing,
    ListingRecord,
    Metric,
    ModelClaim,
    Purchase,
    PurchaseRecord,
)
from tests.unit.chain.marketplace_checks import out_of_range, packed, refusal_text, swap

ROOT, LICENSE, KEY = bytes([1]) * 32, bytes([2]) * 32, bytes([3]) * 32
SELLER = bytes([4]) * 20
CLAIM = ModelClaim((Metric("accuracy", 973_100), Metric("loss", -12)), bytes([5]) * 32, "top-1 on 1000 digits")
METRIC = ["acc", 1]
MODEL_CLAIM = CLAIM.to_list()
LISTING = Listing(2, ROOT, 7, LICENSE, CLAIM).to_list()
PURCHASE = [ROOT, 7, KEY]
LISTING_RECORD = [SELLER, LISTING, 5, 0, 2]
PURCHASE_RECORD = [SELLER, ROOT, 7, KEY, 9]

listing_record = packed(ListingRecord.decode)
purchase_record = packed(PurchaseRecord.decode)


def metric_value(got: Any) -> str:
    """The refusal of a metric's value ``got`` (carried as its repr: a float or a string is named as such)."""
    return f"bad-encoding: metric.value: an integer in millionths (expected '|value| <= 9007199254740992', got {repr(got)!r})"


# (decode, value, the error's text)
REFUSED: list[tuple[Callable[[Any], Any], Any, str]] = [
    # Metric
    (Metric.from_list, "acc", "bad-encoding: metric: expected a list, got str"),
    (Metric.from_list, ["acc"], "bad-encoding: metric: wrong field count (expected 2, got 1)"),
    (Metric.from_list, ["acc", "1"], metric_value("1")),
    (Metric.from_list, ["acc", 1.5], metric_value(1.5)),
    (Metric.from_list, ["acc", True], metric_value(True)),
    (Metric.from_list, ["acc", MAX_METRIC_VALUE + 1], metric_value(MAX_METRIC_VALUE + 1)),
    (Metric.from_list, ["acc", -MAX_METRIC_VALUE - 1], metric_value(-MAX_METRIC_VALUE - 1)),
    (Metric.from_list, [b"acc", 1], "bad-encoding: metric.name: expected a string, got bytes"),
    (Metric.from_list, ["a" * 33, 1], "bad-encoding: metric.name: printable ASCII of at most 32 characters"),
    (Metric.from_list, ["Acc", 1], "bad-encoding: metric.name: 'Acc' does not match [a-z0-9][a-z0-9_.-]{0,31}"),
    (Metric.from_list, ["_acc", 1], "bad-encoding: metric.name: '_acc' does not match [a-z0-9][a-z0-9_.-]{0,31}"),
    # ModelClaim
    (ModelClaim.from_list, MODEL_CLAIM[:2], "bad-encoding: model_claim: wrong field count (expected 3, got 2)"),
    (ModelClaim.from_list, swap(MODEL_CLAIM, 0, b""), "bad-encoding: model_claim.metrics: expected a list, got bytes"),
    (ModelClaim.from_list, swap(MODEL_CLAIM, 0, [[f"m{i}", i] for i in range(MAX_METRICS + 1)]),
     "oversized: model_claim.metrics: too many items (expected '<= 16', got 17)"),
    (ModelClaim.from_list, swap(MODEL_CLAIM, 0, [["acc", 1], ["loss", 2], ["acc", 3]]),
     "bad-encoding: model_claim.metrics: a metric named twice"),
    (ModelClaim.from_list, swap(MODEL_CLAIM, 1, bytes(31)),
     "bad-encoding: model_claim.eval_data: wrong length (expected 32, got 31)"),
    (ModelClaim.from_list, swap(MODEL_CLAIM, 1, bytes(33)),
     "bad-encoding: model_claim.eval_data: wrong length (expected 32, got 33)"),
    (ModelClaim.from_list, swap(MODEL_CLAIM, 1, "x" * 32),
     "bad-encoding: model_claim.eval_data: expected bytes, got str"),
    (ModelClaim.from_list, swap(MODEL_CLAIM, 2, 5), "bad-encoding: model_claim.eval_method: expected a string, got int"),
    (ModelClaim.from_list, swap(MODEL_CLAIM, 2, "x" * (MAX_METHOD_CHARS + 1)),
     "bad-encoding: model_claim.eval_method: printable ASCII of at most 200 characters"),
    (ModelClaim.from_list, swap(MODEL_CLAIM, 2, "précis"),
     "bad-encoding: model_claim.eval_method: printable ASCII of at most 200 characters"),
    (ModelClaim.from_list, swap(MODEL_CLAIM, 2, "tab\there"),
     "bad-encoding: model_claim.eval_method: printable ASCII of at most 200 characters"),
    # Listing
    (Listing.from_list, LISTING[:4], "bad-encoding: listing: wrong field count (expected 5, got 4)"),
    (Listing.from_list, swap(LISTING, 0, "1"), "bad-encoding: listing.kind: expected int, got str"),
    (Listing.from_list, swap(LISTING, 0, 0), out_of_range("listing.kind", 0, 1, 255)),
    (Listing.from_list, swap(LISTING, 0, 256), out_of_range("listing.kind", 256, 1, 255)),
    (Listing.from_list, swap(LISTING, 0, 4), "bad-listing-kind: unknown listing kind 4"),
    (Listing.from_list, swap(LISTING, 0, 255), "bad-listing-kind: unknown listing kind 255"),
    (Listing.from_list, swap(LISTING, 1, bytes(31)), "bad-encoding: listing.root: wrong length (expected 32, got 31)"),
    (Listing.from_list, swap(LISTING, 2, 0), out_of_range("listing.price", 0, 1, MAX_AMOUNT)),
    (Listing.from_list, swap(LISTING, 2, MAX_AMOUNT + 1), out_of_range("listing.price", MAX_AMOUNT + 1, 1, MAX_AMOUNT)),
    (Listing.from_list, swap(LISTING, 2, 1.0), "bad-encoding: listing.price: expected int, got float"),
    (Listing.from_list, swap(LISTING, 3, bytes(33)),
     "bad-encoding: listing.license_hash: wrong length (expected 32, got 33)"),
    (Listing.from_list, swap(LISTING, 4, None), "bad-encoding: model_claim: expected a list, got NoneType"),
    # Delist
    (Delist.from_list, [], "bad-encoding: delist: wrong field count (expected 1, got 0)"),
    (Delist.from_list, [bytes(20)], "bad-encoding: delist.listing_id: wrong length (expected 32, got 20)"),
    # Purchase
    (Purchase.from_list, PURCHASE[:2], "bad-encoding: purchase: wrong field count (expected 3, got 2)"),
    (Purchase.from_list, swap(PURCHASE, 2, bytes(31)),
     "bad-encoding: purchase.delivery_key: wrong length (expected 32, got 31)"),
    (Purchase.from_list, swap(PURCHASE, 2, "k" * 32), "bad-encoding: purchase.delivery_key: expected bytes, got str"),
    (Purchase.from_list, swap(PURCHASE, 2, bytes(32)), "bad-delivery-key: the all-zero X25519 key"),
    (Purchase.from_list, swap(PURCHASE, 0, bytes(33)),
     "bad-encoding: purchase.listing_id: wrong length (expected 32, got 33)"),
    (Purchase.from_list, swap(PURCHASE, 1, 0), out_of_range("purchase.price", 0, 1, MAX_AMOUNT)),
    (Purchase.from_list, swap(PURCHASE, 1, MAX_AMOUNT + 1), out_of_range("purchase.price", MAX_AMOUNT + 1, 1, MAX_AMOUNT)),
    # ListingRecord
    (ListingRecord.decode, bytes(MAX_RECORD_BYTES + 1),
     "oversized: listing record of 4097 bytes (expected '<= 4096', got 4097)"),
    (ListingRecord.decode, enc.pack(LISTING_RECORD) + b"\x00", "bad-encoding: listing record: trailing bytes"),
    (ListingRecord.decode, b"\xd0\x05", "non-canonical: listing record does not re-encode to the same bytes"),
    (listing_record, LISTING_RECORD[:4], "bad-encoding: listing record: wrong field count (expected 5, got 4)"),
    (listing_record, swap(LISTING_RECORD, 0, bytes(32)), "bad-encoding: listing.seller: wrong length (expected 20, got 32)"),
    (listing_record, swap(LISTING_RECORD, 1, LISTING[:4]), "bad-encoding: listing: wrong field count (expected 5, got 4)"),
    (listing_record, swap(LISTING_RECORD, 2, -1), out_of_range("listing.listed", -1)),
    (listing_record, swap(LISTING_RECORD, 3, "0"), "bad-encoding: listing.delisted: expected int, got str"),
    (listing_record, swap(LISTING_RECORD, 4, b""), "bad-encoding: listing.sales: expected int, got bytes"),
    # PurchaseRecord
    (PurchaseRecord.decode, bytes(257), "oversized: purchase record of 257 bytes (expected '<= 256', got 257)"),
    (PurchaseRecord.decode, enc.pack(PURCHASE_RECORD) + b"\x00", "bad-encoding: purchase record: trailing bytes"),
    (purchase_record, PURCHASE_RECORD[1:], "bad-encoding: purchase record: wrong field count (expected 5, got 4)"),
    (purchase_record, swap(PURCHASE_RECORD, 0, bytes(19)), "bad-encoding: purchase.buyer: wrong length (expected 20, got 19)"),
    (purchase_record, swap(PURCHASE_RECORD, 1, bytes(20)), "bad-encoding: purchase.listing: wrong length (expected 32, got 20)"),
    (purchase_record, swap(PURCHASE_RECORD, 2, 0), out_of_range("purchase.price", 0, 1, MAX_AMOUNT)),
    (purchase_record, swap(PURCHASE_RECORD, 2, MAX_AMOUNT + 1), out_of_range("purchase.price", MAX_AMOUNT + 1, 1, MAX_AMOUNT)),
    (purchase_record, swap(PURCHASE_RECORD, 3, bytes(33)), "bad-encoding: purchase.key: wrong length (expected 32, got 33)"),
    (purchase_record, swap(PURCHASE_RECORD, 4, "9"), "bad-encoding: purchase.height: expected int, got str"),
]


@pytest.mark.parametrize(("decode", "value", "text"), REFUSED)
def test_each_bad_field_is_refused_by_name(decode: Callable[[Any], Any], value: Any, text: str) -> None:
    assert refusal_text(decode, value) == text


# each at a limit, which the refusals above pass by one
ACCEPTED: list[tuple[Callable[[Any], Any], Any, Any]] = [
    (Metric.from_list, ["a" * 32, MAX_METRIC_VALUE], Metric("a" * 32, MAX_METRIC_VALUE)),
    (Metric.from_list, ["0.x-y_z", -MAX_METRIC_VALUE], Metric("0.x-y_z", -MAX_METRIC_VALUE)),
    (ModelClaim.from_list, [[], ROOT, "x" * MAX_METHOD_CHARS], ModelClaim((), ROOT, "x" * MAX_METHOD_CHARS)),
    (ModelClaim.from_list, [[[f"m{i}", i] for i in range(MAX_METRICS)], ROOT, ""],
     ModelClaim(tuple(Metric(f"m{i}", i) for i in range(MAX_METRICS)), ROOT, "")),
    (Listing.from_list, [3, ROOT, MAX_AMOUNT, LICENSE, []], Listing(3, ROOT, MAX_AMOUNT, LICENSE, None)),
    (Listing.from_list, [1, ROOT, 1, LICENSE, []], Listing(1, ROOT, 1, LICENSE, None)),
    (Listing.from_list, LISTING, Listing(2, ROOT, 7, LICENSE, CLAIM)),
    (Delist.from_list, [ROOT], Delist(ROOT)),
    (Purchase.from_list, [ROOT, MAX_AMOUNT, bytes(31) + b"\x01"], Purchase(ROOT, MAX_AMOUNT, bytes(31) + b"\x01")),
    (Purchase.from_list, [ROOT, 1, KEY], Purchase(ROOT, 1, KEY)),
    (listing_record, LISTING_RECORD, ListingRecord(SELLER, Listing(2, ROOT, 7, LICENSE, CLAIM), 5, 0, 2)),
    (purchase_record, [SELLER, ROOT, MAX_AMOUNT, KEY, 0], PurchaseRecord(SELLER, ROOT, MAX_AMOUNT, KEY, 0)),
    (purchase_record, [SELLER, ROOT, 1, KEY, enc.MAX_INT], PurchaseRecord(SELLER, ROOT, 1, KEY, enc.MAX_INT)),
]


@pytest.mark.parametrize(("decode", "value", "decoded"), ACCEPTED)
def test_each_limit_itself_is_accepted(decode: Callable[[Any], Any], value: Any, decoded: Any) -> None:
    assert decode(value) == decoded


def test_records_round_trip_through_their_encoding() -> None:
    listing = ListingRecord(SELLER, Listing(2, ROOT, 7, LICENSE, CLAIM), 5, 6, 2)
    assert ListingRecord.decode(listing.encode()) == listing and not listing.active
    purchase = PurchaseRecord(SELLER, ROOT, 7, KEY, 9)
    assert PurchaseRecord.decode(purchase.encode()) == purchase
    for payload in (Listing(2, ROOT, 7, LICENSE, CLAIM), Delist(ROOT), Purchase(ROOT, 7, KEY)):
        assert type(payload).from_list(enc.unpack(enc.pack(payload.to_list()), what="t", max_size=4096)) == payload

