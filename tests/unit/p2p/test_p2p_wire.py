"""Encoding of sync messages and tx batches: round trips, caps, and strict rejection."""

from __future__ import annotations

import msgpack
import pytest
import trio
from hypothesis import given
from hypothesis import strategies as st

from p2p.backend import ChainStatus
from p2p.errors import WireError
from p2p.wire import (
    MAX_BLOCKS,
    MAX_REQUEST_BYTES,
    BlocksRequest,
    ErrorResponse,
    HeadersRequest,
    ItemsResponse,
    StatusRequest,
    decode_request,
    decode_response,
    decode_tx_batch,
    encode_request,
    encode_response,
    encode_tx_batch,
    frame,
    read_frame,
)

hashes = st.lists(st.binary(min_size=32, max_size=32), max_size=20).map(tuple)


@given(hashes, st.integers(1, 2000))
def test_requests_round_trip(locator: tuple[bytes, ...], limit: int) -> None:
    for req in (StatusRequest(), HeadersRequest(locator, limit), BlocksRequest(locator)):
        assert decode_request(encode_request(req)) == req


@given(st.integers(0, 2**300), st.integers(0, 2**40))
def test_status_round_trips_unbounded_work(work: int, height: int) -> None:
    status = ChainStatus(b"g" * 32, height, b"t" * 32, work)
    assert decode_response(encode_response(status)) == status


def test_responses_round_trip() -> None:
    for resp in (
        ItemsResponse("headers", (b"a", b"b")),
        ItemsResponse("blocks", ()),
        ErrorResponse("rate-limited"),
    ):
        assert decode_response(encode_response(resp)) == resp


@pytest.mark.parametrize(
    "body, reason",
    [
        (b"\xc1", "bad-msgpack"),
        (msgpack.packb({"status": 1}), "bad-shape"),
        (msgpack.packb(["status", 1]), "bad-shape"),
        (msgpack.packb(["headers", [b"x" * 31], 10]), "bad-hash"),
        (msgpack.packb(["headers", [], 0]), "bad-limit"),
        (msgpack.packb(["headers", [], 2001]), "bad-limit"),
        (msgpack.packb(["headers", [], True]), "bad-shape"),
        (msgpack.packb(["blocks", [b"h" * 32] * (MAX_BLOCKS + 1)]), "bad-shape"),
        (msgpack.packb(["gossip"]), "unknown-request"),
        (b"\x92\xa6status", "bad-msgpack"),
        (b"\x91\xd9\x06status", "non-canonical"),  # str8 where fixstr is canonical
        (b"\x00" * (MAX_REQUEST_BYTES + 1), "oversize"),
    ],
)
def test_bad_requests_are_rejected_with_a_reason(body: bytes, reason: str) -> None:
    with pytest.raises(WireError) as err:
        decode_request(body)
    assert err.value.reason == reason


def test_bad_status_work_is_rejected() -> None:
    with pytest.raises(WireError):
        decode_response(msgpack.packb(["status", b"g" * 32, 1, b"t" * 32, b"\x00\x01"]))


def test_tx_batch_envelope() -> None:
    assert decode_tx_batch(encode_tx_batch([b"a", b"bc"]), 1024) == [b"a", b"bc"]
    for bad in (encode_tx_batch([]), msgpack.packb(["txs", [1]]), b"\xc1"):
        with pytest.raises(WireError):
            decode_tx_batch(bad, 1024)
    with pytest.raises(WireError):
        decode_tx_batch(encode_tx_batch([b"x" * 2000]), 1024)


def test_frames_are_capped_before_reading_the_body() -> None:
    async def body() -> None:
        data = bytearray(frame(b"hello") + (100).to_bytes(4, "big"))

        async def read(n: int) -> bytes:
            chunk = bytes(data[: min(n, 2)])  # a stream that returns short reads
            del data[: len(chunk)]
            return chunk

        assert await read_frame(read, 16) == b"hello"
        with pytest.raises(WireError) as err:
            await read_frame(read, 16)
        assert err.value.reason == "oversize"
        with pytest.raises(WireError) as err:
            await read_frame(read, 16)
        assert err.value.reason == "truncated"

    trio.run(body)
