"""Gossip topics of one chain: blocks, transaction batches, and market bids.

Validators run synchronously inside libp2p (async ones race the seen-cache) and call only the
backend's cheap checks. libp2p validators can only accept or reject, and a rejection is not
penalised by libp2p here (its scoring is off), so "ignore" is a rejection that *we* do not
penalise: the message is neither delivered nor forwarded, and the sender keeps its score.
Blame for failing a validator goes to the forwarding peer (the one that handed us the bytes),
never the signer: every node runs the same cheap checks before forwarding, so an honest relay
never forwards what fails them. Full validation (`import_block`) happens after forwarding, so an
honest relay may pass on a block that fails it; that penalises the forwarder only when it is
also the message's author.

Delivered messages are drained from each subscription by their own task at once (libp2p drops
when its 32-slot channel is full), de-duplicated by message id, and processed in another task.
Outgoing transactions are collected by a batcher into one message per `tx_batch_size` or per
`tx_batch_delay` seconds, and every publish waits while a peer's outbound queue is near full,
because libp2p drops silently instead of blocking.

Size: each topic has a cap (`cap`). A message over it is never sent: `publish` refuses it with
`P2PError("gossip-oversize")` (libp2p would otherwise send what fits its own 1 MiB RPC cap, for
every peer to penalise us, and silently drop anything larger). Received, a message over the
topic's cap is dropped by the validator and its forwarder penalised (`oversize`, 60 points); an
RPC over libp2p's 1 MiB is refused by the library before any validator sees it, and
`host.SerialPubsub` turns that into the same penalty.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from hashlib import blake2b
from typing import Any

import trio
from libp2p.peer.id import ID
from libp2p.pubsub.pb import rpc_pb2

from chain.errors import RejectKind
from p2p.backend import ChainBackend, Outcome, Verdict
from p2p.config import P2PConfig
from p2p.errors import P2PError, WireError
from p2p.host import Host
from p2p.scoring import Offence
from p2p.wire import decode_tx_batch, encode_tx_batch

log = logging.getLogger("neuro.p2p.gossip")

SEEN_CAPACITY = 65_536  # message ids remembered for application-level de-duplication
QUEUE_HIGH_WATER = 24  # of libp2p's 32 outbound RPC slots per peer
INBOX_SIZE = 1024  # delivered messages waiting for import, per topic
TX_INBOX_SIZE = 8192  # outgoing transactions waiting for the batcher (publish_txs blocks beyond)
MESH_WAIT = 2.5  # seconds a publish waits for a forming mesh (two heartbeats and a bit)

Penalise = Callable[[str, "RejectKind | Offence", str], None]
Allow = Callable[[str, str], bool]
Banned = Callable[[str], bool]
BidHandler = Callable[[bytes, str | None], Awaitable[None]]


def topic_name(chain_id: str, name: str) -> str:
    return f"neuro/{chain_id}/{name}/1"


def payload_id(data: bytes) -> bytes:
    return blake2b(data, digest_size=32).digest()


class _Lru(OrderedDict[bytes, Any]):
    """Bounded map of message id -> value; the oldest entries fall out."""

    def __init__(self, capacity: int) -> None:
        super().__init__()
        self.capacity = capacity

    def put(self, key: bytes, value: Any) -> None:
        self[key] = value
        self.move_to_end(key)
        while len(self) > self.capacity:
            self.popitem(last=False)


class Gossip:
    """Subscribes the chain's topics, validates, delivers to the backend, publishes."""

    def __init__(
        self,
        host: Host,
        backend: ChainBackend,
        config: P2PConfig,
        *,
        penalise: Penalise,
        allow: Allow,
        banned: Banned,
        on_missing_parent: Callable[[str], None],
        on_bid: BidHandler | None = None,
        on_new_block: Callable[[str], None] | None = None,
    ) -> None:
        """`on_new_block(peer)`: `peer` forwarded a block the backend accepted (new to us)."""
        self._host = host
        self._backend = backend
        self._config = config
        self._penalise = penalise
        self._allow = allow
        self._banned = banned
        self._on_missing_parent = on_missing_parent
        self._on_bid = on_bid
        self._on_new_block = on_new_block
        chain = backend.chain_id
        self.topics = {n: topic_name(chain, n) for n in ("blocks", "txs", "bids")}
        self._seen = _Lru(SEEN_CAPACITY)
        # msg id -> (forwarding peer, decoded payload, whether the forwarder also signed it)
        self._origin = _Lru(SEEN_CAPACITY)
        self._tx_send, self._tx_recv = trio.open_memory_channel[bytes](TX_INBOX_SIZE)
        self.delivered = {"blocks": 0, "txs": 0, "bids": 0}  # counters for metrics and tests

    # -- service -------------------------------------------------------------------------------

    async def run(self, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        pubsub = self._host.pubsub
        validators = {"blocks": self._check_block, "txs": self._check_txs, "bids": self._check_bid}
        async with trio.open_nursery() as nursery:
            for name, topic in self.topics.items():
                pubsub.set_topic_validator(topic, self._validator(name, validators[name]), False)
                subscription = await pubsub.subscribe(topic)
                send, recv = trio.open_memory_channel[rpc_pb2.Message](INBOX_SIZE)
                nursery.start_soon(self._drain, subscription, send)
                nursery.start_soon(self._process, name, recv)
            nursery.start_soon(self._batch_txs)
            task_status.started()

    def cap(self, name: str) -> int:
        """The largest message topic `name` carries, in bytes."""
        return self._config.max_block_gossip_bytes if name == "blocks" else self._config.max_tx_batch_bytes

    def topic_peers(self, name: str) -> list[str]:
        """Peers known to subscribe to one of our topics."""
        return [str(p) for p in self._host.pubsub.peer_topics.get(self.topics[name], ())]

    def mesh_peers(self, name: str) -> list[str]:
        """Peers our publishes on topic `name` go to (GossipSub sends to the mesh only)."""
        return self._host.mesh_peers(self.topics[name])

    # -- validation (synchronous, inside libp2p) -----------------------------------------------

    def _validator(self, name: str, check: Callable[[str, bytes, str], tuple[Verdict, Any]]) -> Any:
        def validate(forwarder: ID, msg: rpc_pb2.Message) -> bool:
            peer = str(forwarder)
            if peer == self._host.peer_id:
                return True  # our own publish: checked before it was published
            if self._banned(peer):
                return False
            if not self._allow(peer, name):
                self._penalise(peer, Offence.RATE_LIMIT, f"{name} gossip over rate")
                return False
            author = str(ID(msg.from_id))  # StrictSign: libp2p checked its signature
            try:
                verdict, decoded = check(peer, msg.data, author)
            except Exception:  # a bug in a check must not take libp2p's read loop down
                log.exception("%s validator failed", name)
                return False
            if verdict.outcome is Outcome.REJECT:
                self._penalise(peer, verdict.kind, f"{name}: {verdict.reason}")
                return False
            if verdict.outcome is Outcome.IGNORE:
                return False
            authored = author == peer
            self._origin.put(payload_id(msg.data), (peer, decoded, authored))
            return True

        return validate

    def _sized(self, peer: str, data: bytes, cap: int, name: str) -> bool:
        if len(data) <= cap:
            return True
        self._penalise(peer, Offence.OVERSIZE, f"{name} message of {len(data)} bytes")
        return False

    def _check_block(self, peer: str, data: bytes, author: str) -> tuple[Verdict, Any]:
        if not self._sized(peer, data, self._config.max_block_gossip_bytes, "block"):
            return Verdict.ignore("oversize", RejectKind.LOCAL), None  # penalised above
        return self._backend.check_block(data), data

    def _check_txs(self, peer: str, data: bytes, author: str) -> tuple[Verdict, Any]:
        if not self._sized(peer, data, self._config.max_tx_batch_bytes, "tx batch"):
            return Verdict.ignore("oversize", RejectKind.LOCAL), None
        try:
            txs = decode_tx_batch(data, self._config.max_tx_batch_bytes)
        except WireError as exc:
            return Verdict.reject(exc.reason, RejectKind.MALFORMED), None
        return self._backend.check_tx_batch(txs), txs

    def _check_bid(self, peer: str, data: bytes, author: str) -> tuple[Verdict, Any]:
        """A bid names the peer that publishes it (the worker's node, where its results are
        fetched): the backend checks that against the message's signed author."""
        if not self._sized(peer, data, self._config.max_tx_batch_bytes, "bid"):
            return Verdict.ignore("oversize", RejectKind.LOCAL), None
        return self._backend.check_bid(data, author), data

    # -- delivery ------------------------------------------------------------------------------

    async def _drain(
        self, subscription: Any, send: trio.MemorySendChannel[rpc_pb2.Message]
    ) -> None:
        async with send:
            while True:
                msg = await subscription.get()
                key = payload_id(msg.data)
                if key in self._seen:
                    continue
                self._seen.put(key, True)
                await send.send(msg)

    async def _process(self, name: str, recv: trio.MemoryReceiveChannel[rpc_pb2.Message]) -> None:
        async for msg in recv:
            origin, decoded, authored = self._origin.pop(payload_id(msg.data), (None, None, False))
            if origin is None:
                continue  # our own publish, already known to the backend
            try:
                verdict = await self._deliver(name, msg.data, decoded, origin)
            except Exception:  # the backend failing must not stop the topic
                log.exception("%s import failed", name)
                continue
            self.delivered[name] += 1
            if verdict.accepted and name == "blocks" and self._on_new_block is not None:
                self._on_new_block(origin)
            if verdict.outcome is Outcome.REJECT and authored:
                self._penalise(origin, verdict.kind, f"{name}: {verdict.reason}")
            elif verdict.kind is RejectKind.MISSING and name == "blocks":
                self._on_missing_parent(origin)

    async def _deliver(self, name: str, data: bytes, decoded: Any, origin: str) -> Verdict:
        if name == "blocks":
            return await self._backend.import_block(data, origin)
        if name == "txs":
            return await self._backend.accept_tx_batch(decoded, origin)
        if self._on_bid is not None:
            await self._on_bid(data, origin)
        return Verdict.accept()

    # -- publishing ----------------------------------------------------------------------------

    async def _wait_for_room(self, name: str) -> None:
        """Backpressure: libp2p drops an RPC when a peer's 32-slot queue is full. Also wait
        (briefly) for the mesh: just after connecting, peers subscribe before the heartbeat
        grafts them, and a publish then would reach nobody."""
        queues = self._host.pubsub.peer_queues
        while any(len(q) >= QUEUE_HIGH_WATER for q in list(queues.values())):
            await trio.sleep(0.002)
        with trio.move_on_after(MESH_WAIT):
            while self.topic_peers(name) and not self.mesh_peers(name):
                await trio.sleep(0.02)

    async def publish(self, name: str, data: bytes) -> None:
        """Publish on topic `name`; a message over the topic's cap is refused, never sent."""
        if len(data) > self.cap(name):
            raise P2PError("gossip-oversize", f"{name} message of {len(data)} bytes is over the {self.cap(name)}-byte cap")
        # libp2p's publish reads the listeners' addresses before its first checkpoint: during a
        # shutdown they may be closed already (EBADF), so a cancelled caller stops here instead
        await trio.lowlevel.checkpoint_if_cancelled()
        self._seen.put(payload_id(data), True)
        await self._wait_for_room(name)
        await self._host.pubsub.publish(self.topics[name], data)

    async def publish_txs(self, txs: list[bytes]) -> None:
        """Queue transactions for batched gossip; waits when the batcher is behind."""
        for tx in txs:
            await self._tx_send.send(tx)

    async def _batch_txs(self) -> None:
        cap = self._config.max_tx_batch_bytes - 64
        carry: bytes | None = None
        while True:
            first = carry if carry is not None else await self._tx_recv.receive()
            carry = None
            batch, size = [first], len(first) + 5
            with trio.move_on_after(self._config.tx_batch_delay):
                while len(batch) < self._config.tx_batch_size:
                    tx = await self._tx_recv.receive()
                    if size + len(tx) + 5 > cap:
                        carry = tx
                        break
                    batch.append(tx)
                    size += len(tx) + 5
            try:
                await self.publish("txs", encode_tx_batch(batch))
            except P2PError as exc:  # a transaction too large for any batch: it travels in blocks
                log.warning("%d transactions not gossiped: %s", len(batch), exc)
            except Exception:  # a failed publish must not stop all future tx gossip
                log.exception("publishing a batch of %d txs failed", len(batch))
