"""The libp2p host, built the one way measured to work here (see shared/notes/py-libp2p.md).

Ed25519 identity kept in the data dir; noise only (no plaintext); yamux; one connection per peer;
GossipSub meshsub 1.1/1.0 tuned for throughput; message id = blake2b-256 of the payload; StrictSign.
Inbound connections go through `p2p.inbound` (our caps, and the fix for py-libp2p's inbound slots
that were never given back); libp2p's auto-connector is off (it dialed every peer in the
peerstore, banned ones included, whenever we had fewer than 200 connections: our re-dial loop
decides whom to dial).
`Host` turns libp2p's world (ID, Multiaddr, INetStream, notifees) into `str` peer ids, `str`
addresses and plain callbacks, so nothing outside this package touches a libp2p type.
"""

from __future__ import annotations

import logging
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from hashlib import blake2b
from pathlib import Path
from typing import Any

import multiaddr
import trio
from libp2p import new_host
from libp2p.abc import INetConn, INetStream, INetwork, INotifee
from libp2p.crypto.ed25519 import create_new_key_pair
from libp2p.crypto.keys import KeyPair
from libp2p.crypto.serialization import deserialize_private_key
from libp2p.crypto.x25519 import create_new_key_pair as create_x25519
from libp2p.custom_types import TProtocol
from libp2p.network.config import ConnectionConfig
from libp2p.peer.id import ID
from libp2p.peer.peerinfo import info_from_p2p_addr
from libp2p.peer.peerstore import PeerStoreError
from libp2p.pubsub.gossipsub import PROTOCOL_ID, PROTOCOL_ID_V11, GossipSub
from libp2p.pubsub.pb import rpc_pb2
from libp2p.pubsub.pubsub import Pubsub
from libp2p.security.noise.transport import PROTOCOL_ID as NOISE
from libp2p.security.noise.transport import Transport as Noise
from libp2p.stream_muxer.yamux.yamux import PROTOCOL_ID as YAMUX
from libp2p.stream_muxer.yamux.yamux import Yamux
from libp2p.tools.anyio_service import background_trio_service

from chain.files import write_atomic
from p2p.errors import ConfigError, P2PError, RequestFailed, WireError
from p2p.files import describe
from p2p.inbound import InboundGate
from p2p.limits import ConnectionLimits
from p2p.wire import read_frame

log = logging.getLogger("neuro.p2p")

# Streams carry a peer id as `str`; handlers get the stream's read and write and the peer.
ReadFn = Callable[[int], Awaitable[bytes]]
StreamHandler = Callable[[str, ReadFn, Callable[[bytes], Awaitable[None]]], Awaitable[None]]
PeerEvent = Callable[[str, str], None]  # (peer id, "inbound" | "outbound")
RPC_TOO_LARGE = "rpc-too-large"  # what `on_bad_gossip` is told of a pubsub RPC over libp2p's cap


KEY_REMEDY = "restore it from a backup, or delete it to start under a new peer id"


def load_or_create_key(path: Path) -> KeyPair:
    """The node's libp2p identity: read from `path`, or generated and saved there (mode 0600,
    atomically, so a crash never leaves the empty file that would stop the next start). A file
    that is not a key is `ConfigError("bad-p2p-key")` naming it, never silently replaced: the
    peer id is how other nodes' bootstrap addresses find this one."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        key_pair = create_new_key_pair()
        write_atomic(path, key_pair.private_key.serialize(), overwrite=False)
        return key_pair
    except OSError as exc:
        raise ConfigError("bad-p2p-key", f"{path}: cannot be read ({describe(exc)})") from None
    if not data:
        raise ConfigError("bad-p2p-key", f"{path}: is empty; {KEY_REMEDY}")
    try:
        private_key = deserialize_private_key(data)
        return KeyPair(private_key, private_key.get_public_key())
    except Exception as exc:  # noqa: BLE001 - protobuf and each key type raise their own kinds
        why = " ".join(str(exc).split()) or type(exc).__name__
        raise ConfigError("bad-p2p-key", f"{path}: not a libp2p private key ({why}); {KEY_REMEDY}") from None


def message_id(msg: rpc_pb2.Message) -> bytes:
    """The network's gossip message id: blake2b-256 of the payload (part of the protocol)."""
    return blake2b(msg.data, digest_size=32).digest()


def parse_addr(addr: str) -> multiaddr.Multiaddr:
    try:
        return multiaddr.Multiaddr(addr)
    except Exception as exc:  # multiaddr raises several types for a bad string
        raise ConfigError("bad-multiaddr", f"{addr!r}: {exc}") from exc


class _Notifee(INotifee):
    """Forwards connection events to the Host without ever blocking the swarm."""

    def __init__(self, host: Host) -> None:
        self._host = host

    async def connected(self, network: INetwork, conn: INetConn) -> None:
        self._host._on_connected(conn)

    async def disconnected(self, network: INetwork, conn: INetConn) -> None:
        self._host._on_disconnected(conn)

    async def opened_stream(self, network: INetwork, stream: INetStream) -> None:
        return None

    async def closed_stream(self, network: INetwork, stream: INetStream) -> None:
        return None

    async def listen(self, network: INetwork, addr: multiaddr.Multiaddr) -> None:
        return None

    async def listen_close(self, network: INetwork, addr: multiaddr.Multiaddr) -> None:
        return None


class Host:
    """A running libp2p host with gossip; connection events go to `on_connect`/`on_disconnect`."""

    def __init__(
        self,
        key_pair: KeyPair,
        listen: list[str],
        *,
        on_connect: PeerEvent,
        on_disconnect: PeerEvent,
        on_bad_gossip: PeerEvent | None = None,
        limits: ConnectionLimits | None = None,
        banned: Callable[[str], bool] = lambda peer: False,
        points: Callable[[str], float] = lambda peer: 0.0,
        on_refused: Callable[[str], None] = lambda reason: None,
        handshake_timeout: float = 5.0,
    ) -> None:
        """`limits` caps inbound connections (`p2p.limits`), which ask `banned` and `points`
        (misbehaviour points) about a peer and report each refusal's reason to `on_refused`;
        `handshake_timeout` bounds an inbound noise + yamux upgrade."""
        self._listen = [parse_addr(a) for a in listen]
        self._on_connect = on_connect
        self._on_disconnect = on_disconnect
        self._on_bad_gossip = on_bad_gossip
        self._nursery: trio.Nursery | None = None
        limits = limits or ConnectionLimits()
        most = limits.max_inbound + limits.max_outbound
        self.libp2p = new_host(
            key_pair=key_pair,
            listen_addrs=self._listen,
            sec_opt={NOISE: Noise(key_pair, noise_privkey=create_x25519().private_key)},
            muxer_opt={TProtocol(YAMUX): Yamux},
            # the global cap leaves `max_outbound` slots that inbound (capped by the gate) never
            # reaches; the watermarks at the cap keep libp2p's pruner from closing anyone
            connection_config=ConnectionConfig(
                max_connections_per_peer=1, max_connections=most, min_connections=0,
                low_watermark=0, high_watermark=most,
            ),
        )
        swarm: Any = self.libp2p.get_network()
        swarm.auto_connector.maybe_connect = _no_auto_dial
        self.inbound = InboundGate(
            limits, upgrade_timeout=handshake_timeout, banned=banned, points=points, on_refused=on_refused,
        )
        self.inbound.install(swarm)
        self.router = GossipSub(
            protocols=[PROTOCOL_ID_V11, PROTOCOL_ID],
            degree=6,
            degree_low=4,
            degree_high=12,
            heartbeat_interval=1,
            spam_protection_enabled=False,
            eclipse_protection_enabled=False,
        )
        self.pubsub = SerialPubsub(self.libp2p, self.router, msg_id_constructor=message_id)
        self.pubsub.on_oversize = self._oversize_rpc
        self._guard_pubsub_streams()
        self.peer_id = str(self.libp2p.get_id())

    async def run(self, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        """Listen, start pubsub, report started; on cancellation close every connection."""
        # libp2p logs a WARNING per dropped message and per failed dial.
        logging.getLogger("libp2p").setLevel(logging.ERROR)
        network = self.libp2p.get_network()
        network.register_notifee(_Notifee(self))
        # Pubsub and GossipSub start before host.run(): an early inbound pubsub stream would
        # otherwise crash the host.
        async with (
            trio.open_nursery() as nursery,
            background_trio_service(self.pubsub),
            background_trio_service(self.router),
            self.libp2p.run(self._listen),
        ):
            self._nursery = nursery
            started = False
            try:
                await self.pubsub.wait_until_ready()
                bound = self.listen_addrs()
                if bound or not self._listen:  # libp2p only logs a listen failure
                    task_status.started()
                    started = True
                    await trio.sleep_forever()
            finally:
                self._nursery = None
                nursery.cancel_scope.cancel()
                # Leaving host.run() does not close connections: close them, shielded.
                with trio.CancelScope(shield=True), trio.move_on_after(5):
                    await self.libp2p.close()
        if started:
            raise P2PError("host-stopped", "the libp2p host stopped unexpectedly")
        raise ConfigError("listen-failed", f"could not listen on {[str(a) for a in self._listen]}")

    def listen_addrs(self) -> list[str]:
        """Bound addresses with the /p2p/<id> suffix, ready to give to another node."""
        return [str(a) for a in self.libp2p.get_addrs()]

    def is_connected(self, peer: str) -> bool:
        """A connection to ``peer`` that can carry a new stream. A connection the other side
        closed stays listed until the swarm's cleanup runs (on a loaded machine, seconds later);
        `new_stream` skips it ("No valid connections"), so it does not count here either, and a
        caller that redials when not connected (the artifact fetch) does not wait on it."""
        connections = self.libp2p.get_network().get_connections(ID.from_base58(peer))
        return any(not connection.is_closed for connection in connections)

    def addrs(self, peer: str) -> list[str]:
        try:
            return [str(a) for a in self.libp2p.get_peerstore().addrs(ID.from_base58(peer))]
        except PeerStoreError:  # no record of the peer
            return []

    async def connect(self, addr: str, timeout: float) -> str:
        """Dial a /.../p2p/<id> multiaddr; returns the peer id."""
        try:
            info = info_from_p2p_addr(parse_addr(addr))
        except ConfigError:
            raise
        except Exception as exc:
            raise ConfigError("bad-peer-addr", f"{addr!r} lacks a /p2p/<id> part") from exc
        # A failed dial blocks the peer for 60 s inside libp2p; our own timers decide retries.
        network: Any = self.libp2p.get_network()  # the Swarm; the interface lacks unblock_peer
        network.unblock_peer(info.peer_id)
        try:
            with trio.fail_after(timeout):
                # libp2p's connect returns at once while a connection the other side closed is
                # still listed (its cleanup lags on a loaded machine): wait for it to go, then dial
                while (listed := network.get_connections(info.peer_id)) and all(c.is_closed for c in listed):
                    await trio.sleep(0.02)
                await self.libp2p.connect(info)
        except trio.TooSlowError as exc:
            raise RequestFailed("dial-timeout", addr) from exc
        except Exception as exc:
            raise RequestFailed("dial-failed", f"{addr}: {exc}") from exc
        return str(info.peer_id)

    async def disconnect(self, peer: str) -> None:
        try:
            await self.libp2p.disconnect(ID.from_base58(peer))
        except Exception:  # closing a dying connection can raise anything
            log.debug("disconnect %s failed", peer, exc_info=True)

    def forget(self, peer: str) -> None:
        """Drop a peer's addresses and keys: the peerstore otherwise keeps every peer forever."""
        try:
            self.libp2p.get_peerstore().clear_peerdata(ID.from_base58(peer))
        except Exception:  # the peerstore's cleanup of an unknown peer is best effort
            log.debug("forget %s failed", peer, exc_info=True)

    def spawn(self, fn: Callable[..., Awaitable[Any]], *args: Any) -> None:
        """Run `fn(*args)` in the host's nursery (dropped when the host is shutting down)."""
        if self._nursery is not None:
            self._nursery.start_soon(fn, *args)

    def _guard_pubsub_streams(self) -> None:
        """Pubsub registers its own stream handler, which lets a protobuf DecodeError from a
        malformed or oversized RPC escape, and that takes the whole swarm down (pitfall 9):
        wrap it, reset the stream and report the peer."""
        inner = self.pubsub.stream_handler

        async def guarded(stream: INetStream) -> None:
            peer = str(stream.muxed_conn.peer_id)
            try:
                await inner(stream)
            except Exception as exc:  # noqa: BLE001 - whatever a peer sends must not stop the swarm
                log.info("bad pubsub stream from %s: %s", peer, type(exc).__name__)
                with trio.CancelScope(shield=True):
                    await _reset(stream)
                if self._on_bad_gossip is not None:
                    self._on_bad_gossip(peer, type(exc).__name__)

        for protocol in self.router.get_protocols():
            self.libp2p.set_stream_handler(protocol, guarded)

    def _oversize_rpc(self, peer: str) -> None:
        log.info("pubsub RPC over %d bytes from %s: stream reset", self.pubsub.max_inbound_rpc_size, peer)
        if self._on_bad_gossip is not None:
            self._on_bad_gossip(peer, RPC_TOO_LARGE)

    def set_handler(self, protocol: str, handler: StreamHandler) -> None:
        """Serve `protocol`; an exception in `handler` is logged, never allowed to kill the host."""

        async def wrapped(stream: INetStream) -> None:
            peer = str(stream.muxed_conn.peer_id)
            try:
                await handler(peer, stream.read, stream.write)
                await stream.close()
            except Exception:  # pitfall: an exception escaping a handler kills the host
                log.debug("handler %s from %s failed", protocol, peer, exc_info=True)
                with trio.CancelScope(shield=True):
                    await _reset(stream)

        self.libp2p.set_stream_handler(TProtocol(protocol), wrapped)

    async def request(self, peer: str, protocol: str, data: bytes, cap: int) -> bytes:
        """Write `data` (a framed request), half-close, read one response frame, on a fresh stream.

        Raises RequestFailed (cannot open, reset, refused protocol) or WireError (bad frame).
        The caller puts the timeout around it.
        """
        if not self.is_connected(peer):  # new_stream would dial, even a peer we just banned
            raise RequestFailed("not-connected", peer)
        try:
            stream = await self.libp2p.new_stream(ID.from_base58(peer), [TProtocol(protocol)])
        except Exception as exc:
            raise RequestFailed("no-stream", f"{protocol}: {exc}") from exc
        try:
            await stream.write(data)
            await stream.close_write()  # type: ignore[attr-defined]  # NetStream has it
            answer = await read_frame(stream.read, cap)
            await stream.close()
            return answer
        except P2PError:
            await _reset(stream)
            raise
        except Exception as exc:
            await _reset(stream)
            if "EOF" in type(exc).__name__:
                raise WireError("truncated", "stream closed before a full response") from exc
            raise RequestFailed("stream-failed", repr(exc)) from exc

    @asynccontextmanager
    async def stream_request(self, peer: str, protocol: str, data: bytes) -> AsyncIterator[ReadFn]:
        """Like `request` for an answer of several frames: writes `data`, half-closes and yields
        the stream's read (a reset reads as RequestFailed, an early end as b""); the stream is
        closed when the block exits, reset if it raised."""
        if not self.is_connected(peer):
            raise RequestFailed("not-connected", peer)
        try:
            stream = await self.libp2p.new_stream(ID.from_base58(peer), [TProtocol(protocol)])
        except Exception as exc:
            raise RequestFailed("no-stream", f"{protocol}: {exc}") from exc

        async def read(n: int) -> bytes:
            try:
                return await stream.read(n)
            except Exception as exc:
                if "EOF" in type(exc).__name__:
                    return b""
                raise RequestFailed("stream-failed", repr(exc)) from exc

        try:
            try:
                await stream.write(data)
                await stream.close_write()  # type: ignore[attr-defined]  # NetStream has it
            except Exception as exc:
                raise RequestFailed("stream-failed", repr(exc)) from exc
            yield read
        except BaseException:
            with trio.CancelScope(shield=True):
                await _reset(stream)
            raise
        with trio.CancelScope(shield=True):
            try:
                await stream.close()
            except Exception:  # the peer may have gone meanwhile
                log.debug("stream close failed", exc_info=True)

    async def wait_subscribed(self, peer: str, topic: str, timeout: float) -> None:
        """Wait until `peer` subscribes to `topic` and sits in our mesh for it: a publish on a
        topic we subscribe to goes to mesh peers only, and the mesh forms at a heartbeat."""
        await self.pubsub.wait_for_subscription(ID.from_base58(peer), topic, timeout)
        await self.pubsub.wait_for_mesh(ID.from_base58(peer), topic, timeout)

    def mesh_peers(self, topic: str) -> list[str]:
        return [str(p) for p in self.router.mesh.get(topic, ())]

    def mark_handshaken(self, peer: str) -> None:
        """`peer` passed the chain handshake: an inbound connection of its is no longer pending."""
        self.inbound.slots.handshaken(peer)

    def mark_useful(self, peer: str) -> None:
        """`peer` gave us a block we lacked: its inbound slot is protected from eviction."""
        self.inbound.slots.useful(peer, trio.current_time())

    def connection_counts(self) -> dict[str, int]:
        """Open connections by direction, and inbound ones still in their handshakes."""
        swarm: Any = self.libp2p.get_network()
        outbound = sum(
            1 for conns in list(swarm.connections.values()) for conn in conns
            if getattr(getattr(conn, "direction", None), "name", "").lower() == "outbound"
        )
        slots = self.inbound.slots
        return {"inbound": slots.inbound(), "outbound": outbound, "pending": slots.pending()}

    def _on_connected(self, conn: INetConn) -> None:
        peer = str(conn.muxed_conn.peer_id)
        direction = getattr(conn, "direction", None)
        name = getattr(direction, "name", "unknown").lower()
        self._on_connect(peer, name if name in ("inbound", "outbound") else "unknown")

    def _on_disconnected(self, conn: INetConn) -> None:
        peer = str(conn.muxed_conn.peer_id)
        if not self.is_connected(peer):
            self._on_disconnect(peer, "")


class SerialPubsub(Pubsub):
    """Pubsub whose writes to one peer stream never interleave.

    py-libp2p writes to a peer's pubsub stream from more than one task: the per-peer sending
    loop, and, when a stream is (re)opened, the flush of pending messages and the replay of
    recent ones. Yamux sends a write over 64 KiB as several frames and yields between them, so
    two large RPCs written at once interleave, and the receiver gets one undecodable RPC, resets
    the stream and blames the sender: an honest peer gossiping a large block loses it and earns
    a penalty (measured: tests/unit/p2p/test_p2p_host.py, two 300 KB writes). A lock per stream
    makes each RPC one contiguous write.

    It also reports an inbound RPC over `max_inbound_rpc_size` (1 MiB) to `on_oversize`: the
    library reads the length prefix, resets the stream and forgets the peer's subscriptions, all
    inside its read loop, and tells nobody, so a peer could send 5 MB messages for free. The
    read loop resets the stream it reads only in that case, so the stream it is handed is
    wrapped to catch that reset (`_ResetWatch`).
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._write_locks: weakref.WeakKeyDictionary[INetStream, trio.Lock] = (
            weakref.WeakKeyDictionary()
        )
        self.on_oversize: Callable[[str], None] | None = None

    async def continuously_read_stream(self, stream: INetStream) -> None:
        peer = str(stream.muxed_conn.peer_id)
        reported = False

        def reset() -> None:
            # once per stream: the library may reset a stream again on its way out of the read
            # loop, and one oversized RPC must cost one penalty (a second one bans)
            nonlocal reported
            if self.on_oversize is not None and not reported:
                reported = True
                self.on_oversize(peer)

        await super().continuously_read_stream(_ResetWatch(stream, reset))  # type: ignore[arg-type]

    async def write_msg(self, stream: INetStream, rpc_msg: rpc_pb2.RPC) -> bool:
        lock = self._write_locks.setdefault(stream, trio.Lock())
        async with lock:
            return await super().write_msg(stream, rpc_msg)


class _ResetWatch:
    """A stream as Pubsub's read loop sees it: the same in every respect, except that a reset is
    told to `on_reset` first (see `SerialPubsub`)."""

    def __init__(self, stream: INetStream, on_reset: Callable[[], None]) -> None:
        self._stream = stream
        self._on_reset = on_reset

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)

    async def reset(self) -> None:
        self._on_reset()
        await self._stream.reset()


async def _no_auto_dial() -> None:
    """libp2p's auto-connector, switched off (see the module docstring)."""


async def _reset(stream: INetStream) -> None:
    try:
        await stream.reset()
    except Exception:  # the stream may already be gone with its connection
        log.debug("stream reset failed", exc_info=True)
