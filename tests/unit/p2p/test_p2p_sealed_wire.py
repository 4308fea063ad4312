"""The artifact protocol's `sealed` request and its answer, on the wire (p2p/README.md)."""

from __future__ import annotations

import pytest

from p2p.artifacts import (
    Refused,
    SealedRequest,
    decode_request,
    decode_sealed_response,
    encode_request,
    error_frame,
)
from p2p.errors import WireError
from p2p.wire import FRAME_PREFIX, _pack

PURCHASE = bytes(range(32))


def test_a_sealed_request_round_trips() -> None:
    assert decode_request(encode_request(SealedRequest(PURCHASE))) == SealedRequest(PURCHASE)


@pytest.mark.parametrize(("value", "reason"), [
    (["sealed", PURCHASE[:31]], "bad-hash"),
    (["sealed", PURCHASE, 1], "bad-shape"),
    (["sealed"], "bad-shape"),
])
def test_malformed_sealed_requests_are_named(value: list[object], reason: str) -> None:
    with pytest.raises(WireError) as info:
        decode_request(_pack(value))
    assert info.value.reason == reason


def test_the_answer_is_a_root_or_the_sellers_reason() -> None:
    assert decode_sealed_response(_pack(["sealed", PURCHASE])) == PURCHASE
    with pytest.raises(Refused) as refused:
        decode_sealed_response(error_frame("not-selling")[FRAME_PREFIX:])
    assert refused.value.reason == "not-selling"
    with pytest.raises(WireError):
        decode_sealed_response(_pack(["manifest", PURCHASE]))
