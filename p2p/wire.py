"""Wire formats of the sync protocol and of the tx-batch gossip envelope.

Every message is msgpack of a positional list whose first item is a string tag. A sync stream
carries exactly one request frame and one response frame; a frame is a 4-byte big-endian length
then the msgpack body. Sizes are checked before anything is read or decoded, and decoding checks
every type and length, then re-encodes and compares so only canonical bytes are accepted.
Cumulative work is an unbounded integer, so it travels as unsigned big-endian bytes.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import msgpack

from p2p.backend import ChainStatus
from p2p.errors import WireError

HASH_LEN = 32
MAX_REQUEST_BYTES = 64 * 1024
DEFAULT_MAX_RESPONSE_BYTES = 8 * 1024 * 1024
MAX_LOCATOR = 128  # hashes in a locator: dense near the tip, then exponentially sparse
MAX_HEADERS = 2000  # headers per get_headers answer
MAX_BLOCKS = 128  # hashes per get_blocks request
MAX_WORK_BYTES = 64  # 512-bit cumulative work is far beyond any real chain
MAX_BATCH_TXS = 4096  # transactions in one gossip batch
FRAME_PREFIX = 4


@dataclass(frozen=True, slots=True)
class StatusRequest:
    """Ask for the peer's `ChainStatus`; also the chain-id handshake on connect."""


@dataclass(frozen=True, slots=True)
class HeadersRequest:
    """Headers of the peer's best chain after the first locator hash it knows."""

    locator: tuple[bytes, ...]
    limit: int


@dataclass(frozen=True, slots=True)
class BlocksRequest:
    """Full encoded blocks by hash; the answer skips hashes the peer does not have."""

    hashes: tuple[bytes, ...]


Request = StatusRequest | HeadersRequest | BlocksRequest


@dataclass(frozen=True, slots=True)
class ItemsResponse:
    """Encoded headers or blocks, in the order of the chain or of the request."""

    tag: str  # "headers" or "blocks"
    items: tuple[bytes, ...]


@dataclass(frozen=True, slots=True)
class ErrorResponse:
    """The responder refused the request; `reason` is kebab-case."""

    reason: str


Response = ChainStatus | ItemsResponse | ErrorResponse


def _pack(obj: Any) -> bytes:
    packed: bytes = msgpack.packb(obj, use_bin_type=True)
    return packed


def _unpack(data: bytes, cap: int) -> list[Any]:
    if len(data) > cap:
        raise WireError("oversize", f"{len(data)} bytes > {cap}")
    try:
        obj = msgpack.unpackb(data, raw=False, use_list=True, strict_map_key=True)
    except Exception as exc:  # msgpack raises several unrelated types on garbage
        raise WireError("bad-msgpack", type(exc).__name__) from exc
    if not isinstance(obj, list) or not obj or not isinstance(obj[0], str):
        raise WireError("bad-shape", "expected a list starting with a tag")
    if _pack(obj) != data:
        raise WireError("non-canonical", "re-encoding differs")
    return obj


def _expect_len(obj: list[Any], n: int) -> None:
    if len(obj) != n:
        raise WireError("bad-shape", f"{obj[0]} has {len(obj)} fields, expected {n}")


def _hashes(value: Any, cap: int, what: str) -> tuple[bytes, ...]:
    if not isinstance(value, list) or len(value) > cap:
        raise WireError("bad-shape", f"{what} must be a list of at most {cap} hashes")
    if not all(isinstance(h, bytes) and len(h) == HASH_LEN for h in value):
        raise WireError("bad-hash", f"{what} holds a value that is not a {HASH_LEN}-byte hash")
    return tuple(value)


def _blobs(value: Any, cap: int, what: str) -> tuple[bytes, ...]:
    if not isinstance(value, list) or len(value) > cap:
        raise WireError("bad-shape", f"{what} must be a list of at most {cap} items")
    if not all(isinstance(b, bytes) and b for b in value):
        raise WireError("bad-shape", f"{what} holds a value that is not non-empty bytes")
    return tuple(value)


def _uint(value: Any, what: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise WireError("bad-shape", f"{what} must be a non-negative integer")
    return value


def encode_request(req: Request) -> bytes:
    if isinstance(req, StatusRequest):
        return _pack(["status"])
    if isinstance(req, HeadersRequest):
        return _pack(["headers", list(req.locator), req.limit])
    return _pack(["blocks", list(req.hashes)])


def decode_request(data: bytes) -> Request:
    """Parse one request frame body; raises WireError with the reason a penalty is keyed on."""
    obj = _unpack(data, MAX_REQUEST_BYTES)
    tag = obj[0]
    if tag == "status":
        _expect_len(obj, 1)
        return StatusRequest()
    if tag == "headers":
        _expect_len(obj, 3)
        limit = _uint(obj[2], "limit")
        if not 1 <= limit <= MAX_HEADERS:
            raise WireError("bad-limit", f"limit {limit} outside 1..{MAX_HEADERS}")
        return HeadersRequest(_hashes(obj[1], MAX_LOCATOR, "locator"), limit)
    if tag == "blocks":
        _expect_len(obj, 2)
        return BlocksRequest(_hashes(obj[1], MAX_BLOCKS, "hashes"))
    raise WireError("unknown-request", f"tag {tag!r}")


def encode_response(resp: Response) -> bytes:
    if isinstance(resp, ChainStatus):
        work = resp.work.to_bytes((resp.work.bit_length() + 7) // 8, "big")
        return _pack(["status", resp.genesis, resp.height, resp.tip, work])
    if isinstance(resp, ItemsResponse):
        return _pack([resp.tag, list(resp.items)])
    return _pack(["error", resp.reason])


def decode_response(data: bytes, cap: int = DEFAULT_MAX_RESPONSE_BYTES) -> Response:
    obj = _unpack(data, cap)
    tag = obj[0]
    if tag == "status":
        _expect_len(obj, 5)
        genesis, tip, work = _hashes([obj[1], obj[3]], 2, "status hashes") + (obj[4],)
        if not isinstance(work, bytes) or len(work) > MAX_WORK_BYTES or work[:1] == b"\0":
            raise WireError("bad-work", "work must be minimal unsigned big-endian bytes")
        return ChainStatus(genesis, _uint(obj[2], "height"), tip, int.from_bytes(work, "big"))
    if tag in ("headers", "blocks"):
        _expect_len(obj, 2)
        cap_items = MAX_HEADERS if tag == "headers" else MAX_BLOCKS
        return ItemsResponse(tag, _blobs(obj[1], cap_items, tag))
    if tag == "error":
        _expect_len(obj, 2)
        if not isinstance(obj[1], str) or len(obj[1]) > 64:
            raise WireError("bad-shape", "error reason must be a short string")
        return ErrorResponse(obj[1])
    raise WireError("unknown-response", f"tag {tag!r}")


def encode_tx_batch(txs: list[bytes]) -> bytes:
    """The gossip payload of `neuro/<chain>/txs/1`: ["txs", [tx, ...]]."""
    return _pack(["txs", txs])


def decode_tx_batch(data: bytes, cap: int) -> list[bytes]:
    obj = _unpack(data, cap)
    if obj[0] != "txs":
        raise WireError("unknown-batch", f"tag {obj[0]!r}")
    _expect_len(obj, 2)
    txs = _blobs(obj[1], MAX_BATCH_TXS, "txs")
    if not txs:
        raise WireError("empty-batch", "a tx batch holds at least one transaction")
    return list(txs)


ReadFn = Callable[[int], Awaitable[bytes]]


async def read_exactly(read: ReadFn, n: int) -> bytes:
    """Read exactly `n` bytes; a short stream is a WireError, never a silent truncation."""
    chunks: list[bytes] = []
    left = n
    while left > 0:
        chunk = await read(left)
        if not chunk:
            raise WireError("truncated", f"stream ended {left} bytes short")
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


async def read_frame(read: ReadFn, cap: int) -> bytes:
    """One length-prefixed frame; the length is checked against `cap` before the body is read."""
    length = int.from_bytes(await read_exactly(read, FRAME_PREFIX), "big")
    if length > cap:
        raise WireError("oversize", f"frame of {length} bytes > {cap}")
    return await read_exactly(read, length)


def frame(body: bytes) -> bytes:
    return len(body).to_bytes(FRAME_PREFIX, "big") + body
