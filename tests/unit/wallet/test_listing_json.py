"""Listing payloads as readable JSON (`neuro tx build --kind listing|delist|purchase`, tx objects)."""

from __future__ import annotations

import pytest

from chain.listing_types import Delist, Listing, ListingKind, Metric, ModelClaim, Purchase
from wallet.keys import WalletError
from wallet.listing_json import format_metric, parse_metric
from wallet.payload_json import payload_from_json, payload_to_json

ROOT = "ab" * 32
CLAIM = ModelClaim((Metric("accuracy", 973_100), Metric("loss", -500_000)), bytes.fromhex("cd" * 32), "top-1")


@pytest.mark.parametrize("payload", [
    Listing(int(ListingKind.MODEL), bytes.fromhex(ROOT), 3_500_000_000, bytes(32), CLAIM),
    Listing(int(ListingKind.GENERATOR), bytes.fromhex(ROOT), 1, bytes(32), None),
    Delist(bytes.fromhex(ROOT)),
    Purchase(bytes.fromhex(ROOT), 7, bytes([9]) * 32),
])
def test_listing_payloads_round_trip_through_json(payload: object) -> None:
    doc = payload_to_json(payload, "tntk")  # type: ignore[arg-type]
    assert payload_from_json(type(payload), doc, "tntk") == payload


def test_metrics_are_decimals_in_millionths() -> None:
    assert [format_metric(v) for v in (973_100, -500_000, 0, 1_000_000)] == ["0.9731", "-0.5", "0", "1"]
    assert [parse_metric(t, "m") for t in ("0.9731", "-0.5", 1, 0.25)] == [973_100, -500_000, 1_000_000, 250_000]
    for bad in ("1.1234567", "x", "", True):
        with pytest.raises(WalletError) as info:
            parse_metric(bad, "m")
        assert info.value.reason == "bad-metric"


@pytest.mark.parametrize(("doc", "reason"), [
    ({"kind": "movie", "root": ROOT, "price": "1", "license_hash": ROOT}, "bad-listing-kind"),
    ({"kind": "model", "root": ROOT, "price": "1", "license_hash": ROOT, "metrics": {"a": "1"}}, "bad-listing"),
    ({"kind": "model", "root": ROOT, "price": "1", "license_hash": ROOT, "metrics": {"Bad Name": "1"},
      "eval_data": ROOT, "eval_method": "x"}, "bad-encoding"),
])
def test_bad_listing_json_is_named(doc: dict[str, object], reason: str) -> None:
    with pytest.raises(WalletError) as info:
        payload_from_json("listing", doc, "tntk")
    assert info.value.reason == reason
