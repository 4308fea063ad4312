"""The sync request/response protocol: `status`, `get_headers`, `get_blocks` on one stream each.

Server side (`SyncServer`) answers from the backend, within the response cap; every malformed,
oversized or over-rate request earns the sender a penalty and an error answer, never a crash.
Client side (`SyncClient`) sends one request with a timeout and turns each way a peer can fail
into a `PeerFault` that names the offence, so the caller decides on the penalty in one place.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import trio

from chain.errors import RejectKind
from p2p.backend import ChainBackend, ChainStatus
from p2p.errors import P2PError, RequestFailed, WireError
from p2p.host import Host, ReadFn
from p2p.scoring import Offence, Rate, TokenBucket
from p2p.wire import (
    MAX_HEADERS,
    MAX_REQUEST_BYTES,
    BlocksRequest,
    ErrorResponse,
    HeadersRequest,
    ItemsResponse,
    Request,
    Response,
    StatusRequest,
    decode_request,
    decode_response,
    encode_request,
    encode_response,
    frame,
    read_frame,
)

log = logging.getLogger("neuro.p2p.sync")

Penalise = Callable[[str, "RejectKind | Offence", str], None]
Allow = Callable[[str, str], bool]
ITEM_OVERHEAD = 5  # msgpack bin header of one item, at most


def sync_protocol(chain_id: str) -> str:
    """Protocol id; embeds the chain id so daemons on different chains cannot even negotiate it."""
    return f"/neuro/{chain_id[:16]}/sync/1"


class PeerFault(P2PError):
    """A peer failed a request; `offence` is None when nobody is to blame (it just went away)."""

    reason = "peer-fault"

    def __init__(self, offence: Offence | None, detail: str) -> None:
        self.offence = offence
        super().__init__(offence.value if offence else "peer-gone", detail)


def _fit(items: list[bytes], budget: int) -> tuple[bytes, ...]:
    """The longest prefix of `items` whose encoding stays within `budget` bytes."""
    used, kept = 0, 0
    for item in items:
        used += len(item) + ITEM_OVERHEAD
        if used > budget:
            break
        kept += 1
    return tuple(items[:kept])


@dataclass(slots=True)
class SyncServer:
    """Answers sync requests from the backend; `penalise` and `allow` come from the peer policy."""

    backend: ChainBackend
    penalise: Penalise
    allow: Allow
    max_response_bytes: int

    async def handle(
        self, peer: str, read: ReadFn, write: Callable[[bytes], Awaitable[None]]
    ) -> None:
        if not self.allow(peer, "requests"):
            self.penalise(peer, Offence.RATE_LIMIT, "sync requests over rate")
            await write(frame(encode_response(ErrorResponse("rate-limited"))))
            return
        try:
            request = decode_request(await read_frame(read, MAX_REQUEST_BYTES))
        except WireError as exc:
            offence = Offence.OVERSIZE if exc.reason == "oversize" else Offence.BAD_REQUEST
            self.penalise(peer, offence, str(exc))
            await write(frame(encode_response(ErrorResponse(exc.reason))))
            return
        # off the event loop: reading blocks back and checking each against its hash costs
        # milliseconds per large block, a whole batch's worth would stall gossip and RPC
        response = await trio.to_thread.run_sync(self.answer, request)
        await write(frame(encode_response(response)))

    def answer(self, request: Request) -> Response:
        """The response to one well-formed request; never larger than the response cap."""
        budget = self.max_response_bytes - 64  # room for the list and tag around the items
        if isinstance(request, StatusRequest):
            return self.backend.status()
        if isinstance(request, HeadersRequest):
            limit = min(request.limit, MAX_HEADERS)
            headers = self.backend.headers_after(list(request.locator), limit)
            return ItemsResponse("headers", _fit(headers[:limit], budget))
        assert isinstance(request, BlocksRequest)
        blocks = self.backend.blocks_by_hash(list(request.hashes))
        return ItemsResponse("blocks", _fit(blocks[: len(request.hashes)], budget))


class SyncClient:
    """Sends sync requests to connected peers, each on its own stream, with a timeout."""

    def __init__(
        self, host: Host, protocol: str, max_response_bytes: int, timeout: float, pace: Rate
    ) -> None:
        self._host = host
        self._protocol = protocol
        self._cap = max_response_bytes
        self._timeout = timeout
        self._pace = pace
        self._buckets: dict[str, TokenBucket] = {}

    async def _paced(self, peer: str) -> None:
        """Stay under `pace` requests per peer: peers penalise requests over their rate limit,
        so an honest node paces itself below the protocol's documented limit."""
        bucket = self._buckets.get(peer)
        if bucket is None:
            bucket = self._buckets[peer] = TokenBucket(self._pace.per_second, self._pace.burst)
        while not bucket.take(trio.current_time()):
            await trio.sleep(1 / self._pace.per_second)

    def forget(self, peer: str) -> None:
        self._buckets.pop(peer, None)

    async def _call(self, peer: str, request: Request, timeout: float | None) -> Response:
        await self._paced(peer)
        data = frame(encode_request(request))
        try:
            with trio.fail_after(timeout or self._timeout):
                raw = await self._host.request(peer, self._protocol, data, self._cap)
            response = decode_response(raw, self._cap)
        except trio.TooSlowError as exc:
            raise PeerFault(Offence.TIMEOUT, f"{type(request).__name__} timed out") from exc
        except WireError as exc:
            offence = Offence.OVERSIZE if exc.reason == "oversize" else Offence.BAD_RESPONSE
            raise PeerFault(offence, str(exc)) from exc
        except RequestFailed as exc:
            raise PeerFault(None, str(exc)) from exc
        if isinstance(response, ErrorResponse):
            raise PeerFault(None, f"peer refused: {response.reason}")
        return response

    async def status(self, peer: str, timeout: float | None = None) -> ChainStatus:
        response = await self._call(peer, StatusRequest(), timeout)
        if not isinstance(response, ChainStatus):
            raise PeerFault(Offence.BAD_RESPONSE, "status answered with another type")
        return response

    async def headers(self, peer: str, locator: list[bytes], limit: int) -> list[bytes]:
        response = await self._call(peer, HeadersRequest(tuple(locator), limit), None)
        if not isinstance(response, ItemsResponse) or response.tag != "headers":
            raise PeerFault(Offence.BAD_RESPONSE, "get_headers answered with another type")
        if len(response.items) > limit:
            raise PeerFault(Offence.BAD_RESPONSE, "more headers than asked for")
        return list(response.items)

    async def blocks(self, peer: str, hashes: list[bytes]) -> list[bytes]:
        response = await self._call(peer, BlocksRequest(tuple(hashes)), None)
        if not isinstance(response, ItemsResponse) or response.tag != "blocks":
            raise PeerFault(Offence.BAD_RESPONSE, "get_blocks answered with another type")
        if len(response.items) > len(hashes):
            raise PeerFault(Offence.BAD_RESPONSE, "more blocks than asked for")
        return list(response.items)
