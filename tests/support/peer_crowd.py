"""Many libp2p identities in one process, for connection-exhaustion tests.

A `PeerCrowd` holds `count` bare libp2p hosts (Ed25519 identities, noise, yamux: what a real
peer offers), each of which dials the target once and answers its chain handshake (`status` on
`/neuro/<chain16>/sync/1`) with a fixed claim, then sits idle: a hostile node that takes an
inbound slot and does nothing with it. They have no gossip and no listener, so a few hundred
cost a few MB and no CPU while idle (measured: 300 of them in 0.3 s, +15 MB).

Usage (inside a trio nursery):
    crowd = PeerCrowd(300, claim)
    await nursery.start(crowd.run)
    admitted = await crowd.connect_all(target_addr)   # how many the target kept after its handshake
    await crowd.drop_all()                            # every connection closed at once
"""

from __future__ import annotations

import contextlib
import logging
from contextlib import AsyncExitStack
from typing import Any

import trio
from libp2p import new_host
from libp2p.abc import INetStream
from libp2p.crypto.ed25519 import create_new_key_pair
from libp2p.crypto.keys import KeyPair
from libp2p.crypto.x25519 import create_new_key_pair as create_x25519
from libp2p.custom_types import TProtocol
from libp2p.host.basic_host import BasicHost
from libp2p.network.config import ConnectionConfig
from libp2p.peer.id import ID
from libp2p.peer.peerinfo import info_from_p2p_addr
from libp2p.security.noise.transport import PROTOCOL_ID as NOISE
from libp2p.security.noise.transport import Transport as Noise
from libp2p.stream_muxer.yamux.yamux import PROTOCOL_ID as YAMUX
from libp2p.stream_muxer.yamux.yamux import Yamux

from p2p.backend import ChainStatus
from p2p.host import parse_addr
from p2p.sync import sync_protocol
from p2p.wire import (
    MAX_REQUEST_BYTES,
    StatusRequest,
    decode_request,
    encode_response,
    frame,
    read_frame,
)


def _bare_host(key_pair: KeyPair) -> BasicHost:
    host = new_host(
        key_pair=key_pair,
        sec_opt={NOISE: Noise(key_pair, noise_privkey=create_x25519().private_key)},
        muxer_opt={TProtocol(YAMUX): Yamux},
        connection_config=ConnectionConfig(max_connections_per_peer=1),
    )
    assert isinstance(host, BasicHost)
    host.get_network().auto_connector.maybe_connect = _no_auto_dial  # type: ignore[attr-defined, method-assign]
    return host


class PeerCrowd:
    """`count` idle hostile peers; see the module docstring."""

    def __init__(self, count: int, claim: ChainStatus, identities: list[KeyPair] | None = None) -> None:
        """`identities`: the members' key pairs (to make two share one); fresh ones by default."""
        self.claim = claim
        keys = identities or [create_new_key_pair() for _ in range(count)]
        self.hosts = [_bare_host(key_pair) for key_pair in keys[:count]]
        self.peer_ids = [str(h.get_id()) for h in self.hosts]
        self.answered: set[int] = set()  # crowd members whose status the target asked for
        self._answered = [trio.Event() for _ in self.hosts]
        self._target: ID | None = None
        self._muxed: list[Any] = []  # every connection made, closed directly on the way out
        protocol = TProtocol(sync_protocol(claim.genesis.hex()))
        for index, host in enumerate(self.hosts):
            host.set_stream_handler(protocol, self._status_handler(index))

    def _status_handler(self, index: int) -> Any:
        async def serve(stream: INetStream) -> None:
            try:
                request = decode_request(await read_frame(stream.read, MAX_REQUEST_BYTES))
                if isinstance(request, StatusRequest):
                    await stream.write(frame(encode_response(self.claim)))
                    self.answered.add(index)
                    self._answered[index].set()
                await stream.close()
            except Exception:  # noqa: BLE001 - the target may hang up on us: that is its right
                with contextlib.suppress(Exception):
                    await stream.reset()

        return serve

    async def run(self, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        logging.getLogger("libp2p").setLevel(logging.CRITICAL)  # a line per refused dial otherwise
        async with AsyncExitStack() as stack:
            for host in self.hosts:
                await stack.enter_async_context(host.run([]))
            task_status.started()
            try:
                await trio.sleep_forever()
            finally:
                with trio.CancelScope(shield=True), trio.move_on_after(10):
                    # by then the hosts' own tasks are cancelled, and host.close was seen to leave
                    # the sockets open (the target kept them): close each connection directly
                    async with trio.open_nursery() as nursery:
                        for muxed in self._muxed:
                            nursery.start_soon(_close, muxed)
                    async with trio.open_nursery() as nursery:
                        for host in self.hosts:
                            nursery.start_soon(host.close)

    async def connect_all(self, addr: str, timeout: float = 60.0, concurrency: int = 1000) -> int:
        """Every member dials `addr` at once (at most `concurrency` dials in flight) and waits up
        to `timeout` for the target's status request; returns how many are still connected
        after answering it (the ones the target admitted)."""
        info = info_from_p2p_addr(parse_addr(addr))
        self._target = info.peer_id
        limiter = trio.CapacityLimiter(concurrency)

        async def one(index: int) -> None:
            host, answered = self.hosts[index], self._answered[index]
            async with limiter:
                with trio.move_on_after(timeout), contextlib.suppress(Exception):
                    await host.connect(info)
                    self._muxed += [c.muxed_conn for c in host.get_network().get_connections(info.peer_id)]
                    while not answered.is_set() and host.get_network().get_connections(info.peer_id):
                        with trio.move_on_after(0.1):
                            await answered.wait()

        async with trio.open_nursery() as nursery:
            for index in range(len(self.hosts)):
                nursery.start_soon(one, index)
        return self.held()

    def held(self) -> int:
        """Members whose connection to the target is open and who answered its handshake."""
        if self._target is None:
            return 0
        return sum(
            1 for index in self.answered if self.hosts[index].get_network().get_connections(self._target)
        )

    def connected(self) -> int:
        """Members with an open connection to the target (handshaken or not)."""
        if self._target is None:
            return 0
        return sum(1 for host in self.hosts if host.get_network().get_connections(self._target))

    async def drop_all(self) -> None:
        """Close every member's connection to the target at once; forget who answered."""
        if self._target is None:
            return
        target = self._target
        async with trio.open_nursery() as nursery:
            for host in self.hosts:
                if host.get_network().get_connections(target):
                    nursery.start_soon(_disconnect, host, target)
        self.answered.clear()
        self._answered = [trio.Event() for _ in self.hosts]


async def _no_auto_dial() -> None:
    """libp2p's auto-connector would re-dial the target whenever we drop it."""


async def _close(conn: Any) -> None:
    with contextlib.suppress(Exception):
        await conn.close()


async def _disconnect(host: BasicHost, peer: ID) -> None:
    with contextlib.suppress(Exception):  # a connection already closing may raise anything
        await host.disconnect(peer)
