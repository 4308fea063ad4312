"""A misbehaving peer for tests: real libp2p, real Neuro protocols, hostile payloads.

It passes the chain-id handshake (it answers `status` with the asking peer's own status, or with
whatever `ChainStatus` it is told to claim, e.g. a huge amount of work) and then does what a
test asks:
publishes arbitrary bytes on the gossip topics (malformed msgpack, oversized or invalid blocks
and tx batches), sends raw bytes on the sync protocol, or serves bogus headers and blocks when
the target syncs from it, or serves an artifact whose pieces are corrupted (`serve_bad_artifact`:
the true manifest and piece lists, every piece with one byte flipped). `banned_by` reports whether the target banned it: the connection was
closed and a re-dial is refused (closed again at once, before any request gets through).

Usage (inside a trio nursery):
    evil = EvilPeer(tmp_path / "evil", chain_id=chain_id)  # mirrors the target's status
    await nursery.start(evil.run)
    await evil.connect(target_addr)
    await evil.publish("blocks", b"\\xc1garbage")
    assert await evil.banned_by(target_addr)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import trio

from p2p.backend import ChainStatus
from p2p.errors import P2PError
from p2p.gossip import topic_name
from p2p.host import Host, ReadFn, load_or_create_key
from p2p.sync import sync_protocol
from p2p.wire import (
    MAX_REQUEST_BYTES,
    HeadersRequest,
    ItemsResponse,
    StatusRequest,
    decode_request,
    decode_response,
    encode_request,
    encode_response,
    frame,
    read_frame,
)


class EvilPeer:
    """A scriptable hostile node; see the module docstring."""

    def __init__(
        self, data_dir: Path, claim: ChainStatus | None = None, *, chain_id: str | None = None
    ) -> None:
        """`claim` is the status we answer with; without one, give the target's `chain_id`
        (hex genesis hash) and we mirror the status of whichever peer asks."""
        if chain_id is None:
            if claim is None:
                raise ValueError("EvilPeer needs a claim or a chain_id")
            chain_id = claim.genesis.hex()
        self.claim = claim
        self.chain_id = chain_id
        self.headers_reply: list[bytes] = []  # what get_headers answers
        self.blocks_reply: list[bytes] = []  # what get_blocks answers
        self.requests_served = 0
        self._events: dict[str, trio.Event] = {}
        self.host = Host(
            load_or_create_key(data_dir / "p2p_key"),
            ["/ip4/127.0.0.1/tcp/0"],
            on_connect=lambda peer, _: self._fire("connect", peer),
            on_disconnect=lambda peer, _: self._fire("disconnect", peer),
        )
        self.peer_id = self.host.peer_id
        self.protocol = sync_protocol(self.chain_id)
        self.host.set_handler(self.protocol, self._serve)

    def _fire(self, what: str, peer: str) -> None:
        self._events.pop(f"{what}:{peer}", trio.Event()).set()
        if what == "status":
            self._events.pop("status:*", trio.Event()).set()

    def _event(self, what: str, peer: str) -> trio.Event:
        return self._events.setdefault(f"{what}:{peer}", trio.Event())

    async def run(self, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            await nursery.start(self.host.run)
            for name in ("blocks", "txs", "bids"):
                subscription = await self.host.pubsub.subscribe(topic_name(self.chain_id, name))
                nursery.start_soon(self._discard, subscription)
            task_status.started()

    async def _discard(self, subscription: Any) -> None:
        while True:
            await subscription.get()

    async def _serve(self, peer: str, read: ReadFn, write: Any) -> None:
        request = decode_request(await read_frame(read, MAX_REQUEST_BYTES))
        self.requests_served += 1
        if isinstance(request, StatusRequest):
            claim = self.claim or await self._their_status(peer)
            await write(frame(encode_response(claim)))
            self._fire("status", peer)
            return
        tag = "headers" if isinstance(request, HeadersRequest) else "blocks"
        items = self.headers_reply if tag == "headers" else self.blocks_reply
        await write(frame(encode_response(ItemsResponse(tag, tuple(items)))))

    async def _their_status(self, peer: str) -> ChainStatus:
        raw = await self.host.request(
            peer, self.protocol, frame(encode_request(StatusRequest())), 1024
        )
        status = decode_response(raw)
        assert isinstance(status, ChainStatus), f"{peer} answered status with {status!r}"
        return status

    # -- actions -------------------------------------------------------------------------------

    async def connect(self, addr: str, timeout: float = 10.0) -> str:
        """Dial the target and wait until we have answered its status request. The target
        counts us as a peer only once it has read and checked that answer, a moment later: a
        test that needs that (e.g. names us as a source by peer id) waits on the target's
        `node_peers` too."""
        peer = addr.rsplit("/p2p/", 1)[-1]
        handshake = self._event("status", peer)
        await self.host.connect(addr, timeout)
        with trio.fail_after(timeout):
            await handshake.wait()
        return peer

    async def wait_subscribed(self, peer: str, name: str, timeout: float = 10.0) -> None:
        """Wait until `peer` is known to subscribe to topic `name` (so a publish reaches it)."""
        await self.host.wait_subscribed(peer, topic_name(self.chain_id, name), timeout)

    async def publish(self, name: str, data: bytes) -> None:
        """Publish raw bytes on one of the chain's topics ("blocks", "txs", "bids")."""
        await self.host.pubsub.publish(topic_name(self.chain_id, name), data)

    async def raw_request(self, peer: str, body: bytes, declared: int | None = None) -> bytes:
        """Send arbitrary bytes as a sync request frame (optionally lying about its length)
        and return the raw response frame body; raises P2PError if the target hangs up."""
        prefix = (len(body) if declared is None else declared).to_bytes(4, "big")
        return await self.host.request(peer, self.protocol, prefix + body, 1 << 20)

    async def dropped_by(self, peer: str, timeout: float = 10.0) -> bool:
        """Wait up to `timeout` for `peer` to close our connection; True once it has."""
        with trio.move_on_after(timeout):
            while self.host.is_connected(peer):
                await self._event("disconnect", peer).wait()
        return not self.host.is_connected(peer)

    async def banned_by(self, addr: str, timeout: float = 10.0) -> bool:
        """True when the target dropped us and refuses a re-dial; False if it keeps us."""
        peer = addr.rsplit("/p2p/", 1)[-1]
        if not await self.dropped_by(peer, timeout):
            return False
        dropped = self._event("disconnect", peer)
        handshake = self._event("status", peer)
        try:
            await self.host.connect(addr, timeout)
        except P2PError:
            return True
        with trio.move_on_after(timeout):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(_set_when, dropped, nursery.cancel_scope)
                nursery.start_soon(_set_when, handshake, nursery.cancel_scope)
        return dropped.is_set() and not handshake.is_set()


    def serve_bad_artifact(self, folder: Path) -> None:
        """Answer `/neuro/<chain16>/artifact/1` for the artifact in `folder` (its manifest.json
        and files): the true manifest and true piece lists, but every piece served with its
        first byte flipped, so each one fails the list it is checked against."""
        from p2p.artifacts import (
            ManifestRequest,
            PiecesRequest,
            ReadFilesRequest,
            artifact_protocol,
            error_frame,
            file_frames,
            piece_hashes,
            read_range,
        )
        from p2p.artifacts import decode_request as decode_artifact_request
        from p2p.wire import _pack
        from worker.artifact import MANIFEST_FILE, read_manifest

        manifest = read_manifest(folder)
        files = {f.hash: (folder / f.path, f.size) for f in manifest.files}
        self.bad_pieces_served = 0

        def flipped_files(hashes: list[bytes]) -> list[bytearray]:
            frames = file_frames([(h, *files[h]) for h in hashes])
            for data, h in zip(frames, hashes, strict=True):
                if files[h][1]:
                    data[-1] ^= 0xFF  # the file's last byte: the frame ends with its content
            return frames

        async def serve(peer: str, read: ReadFn, write: Any) -> None:
            request = decode_artifact_request(await read_frame(read, MAX_REQUEST_BYTES))
            if request.root != manifest.root:
                await write(error_frame("unknown-artifact"))
                return
            if isinstance(request, ManifestRequest):
                await write(frame(_pack(["manifest", (folder / MANIFEST_FILE).read_bytes()])))
                return
            if isinstance(request, ReadFilesRequest):
                if not all(h in files for h in request.file_hashes):
                    await write(error_frame("unknown-file"))
                    return
                for data in await trio.to_thread.run_sync(flipped_files, request.file_hashes):
                    self.bad_pieces_served += 1
                    await write(bytes(data))
                return
            if request.file_hash not in files:
                await write(error_frame("unknown-file"))
                return
            path, size = files[request.file_hash]
            if isinstance(request, PiecesRequest):
                await write(frame(_pack(["pieces", piece_hashes(path, size)])))
                return
            pieces = await trio.to_thread.run_sync(read_range, path, request.first, request.count, size)
            for index, piece in enumerate(pieces, request.first):
                data = bytearray(piece)
                if data:
                    data[0] ^= 0xFF
                self.bad_pieces_served += 1
                await write(frame(_pack(["piece", index, bytes(data)])))

        self.host.set_handler(artifact_protocol(self.chain_id), serve)

    def link_state(self, peer: str, topic: str | None = None) -> dict[str, bool]:
        """Our side of the link to `peer`, for failure reports: connected, whether pubsub has an
        outbound stream to it, and whether it is in our mesh for `topic`."""
        from libp2p.peer.id import ID

        state = {
            "connected": self.host.is_connected(peer),
            "pubsub-stream": ID.from_base58(peer) in self.host.pubsub.peers,
        }
        if topic in ("blocks", "txs", "bids"):
            state["in-mesh"] = peer in self.host.mesh_peers(topic_name(self.chain_id, topic))
        return state


async def _set_when(event: trio.Event, scope: trio.CancelScope) -> None:
    await event.wait()
    scope.cancel()


class MirrorPeer(EvilPeer):
    """Serves a fixed chain (``blocks``, encoded, in chain order) over the real sync protocol as an
    honest peer would, except as told:
    - ``block_delay``: seconds before each block answer (None: never answers one), a slow or
      stalling block-fetch helper;
    - ``alternate``: claims far more work than it has, and answers every headers request
      alternately with the chain's first header and its first two (an answer that changes but
      never brings new work).
    ``claim`` is the status it answers with (the honest source's, for a helper)."""

    def __init__(self, data_dir: Path, blocks: list[bytes], claim: ChainStatus, *,
                 block_delay: float | None = 0.0, alternate: bool = False) -> None:
        from chain.types import Block

        if alternate:
            claim = ChainStatus(claim.genesis, claim.height * 1000, claim.tip, claim.work * 1000)
        super().__init__(data_dir, claim)
        decoded = [Block.decode(data) for data in blocks]
        self.order = [decoded[0].header.parent] + [b.hash for b in decoded]  # genesis first
        self.position = {h: i for i, h in enumerate(self.order)}
        self.header_bytes = [b.header.encode() for b in decoded]
        self.block_bytes = dict(zip(self.order[1:], blocks))
        self.block_delay, self.alternate = block_delay, alternate
        self.header_requests = self.block_requests = self.blocks_served = 0

    async def _serve(self, peer: str, read: ReadFn, write: Any) -> None:
        request = decode_request(await read_frame(read, MAX_REQUEST_BYTES))
        self.requests_served += 1
        if isinstance(request, StatusRequest):
            assert self.claim is not None
            await write(frame(encode_response(self.claim)))
            self._fire("status", peer)
            return
        if isinstance(request, HeadersRequest):
            self.header_requests += 1
            if self.alternate:
                items = self.header_bytes[: 1 + self.header_requests % 2]
            else:
                start = next((self.position[h] for h in request.locator if h in self.position), 0)
                items = self.header_bytes[start : start + request.limit]
            await write(frame(encode_response(ItemsResponse("headers", tuple(items)))))
            return
        self.block_requests += 1
        if self.block_delay is None:
            await trio.sleep_forever()
        await trio.sleep(self.block_delay)
        found = [self.block_bytes[h] for h in request.hashes if h in self.block_bytes]
        self.blocks_served += len(found)
        await write(frame(encode_response(ItemsResponse("blocks", tuple(found)))))


async def publish_raw_rpc(evil: EvilPeer, peer: str, name: str, data: bytes) -> None:
    """Publish `data` on topic `name` as one pubsub RPC written straight onto a fresh meshsub
    stream, bypassing py-libp2p's own sender-side 1 MiB cap (`EvilPeer.publish` goes through it,
    and its library silently drops anything larger): what another implementation, or a hostile
    one, can send. Returns when the target resets the stream (or after 5 s)."""
    import contextlib

    from libp2p.custom_types import TProtocol
    from libp2p.peer.id import ID
    from libp2p.pubsub.gossipsub import PROTOCOL_ID_V11
    from libp2p.pubsub.pb import rpc_pb2
    from libp2p.utils import encode_varint_prefixed

    topic = topic_name(evil.chain_id, name)
    rpc = rpc_pb2.RPC(publish=[rpc_pb2.Message(data=data, topicIDs=[topic], seqno=b"\0" * 8)])
    stream = await evil.host.libp2p.new_stream(ID.from_base58(peer), [TProtocol(PROTOCOL_ID_V11)])
    with contextlib.suppress(Exception):  # the target resets the stream: the expected answer
        await stream.write(encode_varint_prefixed(rpc.SerializeToString()))
        with trio.move_on_after(5):
            await stream.read(1)
