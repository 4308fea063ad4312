"""`P2P`: the one object neurod holds: host, gossip, sync server and driver, peer policy.

Peer policy lives here: the chain-id handshake on every new connection, misbehaviour points
and bans (`p2p.scoring`), per-peer rate limits, inbound connection caps (`p2p.limits`, applied
by the host; a peer that brings us a new block, by gossip or sync, is marked useful there and
keeps its inbound slot), re-dialing bootstrap peers, and forgetting peers that left. Everything
public speaks `str` peer ids and `str` multiaddrs.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

import trio

from chain.errors import RejectKind
from p2p.artifact_fetch import ArtifactTransfers, FetchProgress
from p2p.artifacts import (
    ArtifactBackend,
    ArtifactServer,
    SealedRequest,
    artifact_protocol,
    decode_sealed_response,
    encode_request,
)
from p2p.backend import ChainBackend, Verdict
from p2p.config import BAN_FILE, KEY_FILE, P2PConfig
from p2p.errors import P2PError, RequestFailed
from p2p.gossip import BidHandler, Gossip
from p2p.host import RPC_TOO_LARGE, Host, load_or_create_key
from p2p.scoring import MANUAL_BAN, BanList, Offence, PeerScores, RateLimiter, penalty
from p2p.sync import PeerFault, SyncClient, SyncServer, sync_protocol
from p2p.syncdriver import SyncDriver
from p2p.wire import MAX_REQUEST_BYTES, frame

log = logging.getLogger("neuro.p2p")

WRONG_CHAIN_SECONDS = 600.0  # how long a peer of another chain is not re-dialed
MAINTENANCE_INTERVAL = 60.0


@dataclass(frozen=True, slots=True)
class PeerView:
    """One handshaken peer, as `P2P.peers()` reports it."""

    peer_id: str
    addrs: list[str]
    score: float  # 0 is clean; the peer is banned at -threshold
    direction: str  # "inbound" | "outbound" | "unknown"
    height: int  # best height the peer last claimed


class P2P:
    """The network side of a Neuro node. Start with `await nursery.start(p2p.run)`."""

    def __init__(
        self, config: P2PConfig, backend: ChainBackend, *, on_bid: BidHandler | None = None,
        artifacts: ArtifactBackend | None = None,
    ) -> None:
        self.config = config
        self.backend = backend
        self.scores = PeerScores(config.ban_threshold, config.score_half_life)
        self.bans = BanList(config.data_dir / BAN_FILE)
        self.limits = RateLimiter(config.rates)
        self._host = Host(
            load_or_create_key(config.data_dir / KEY_FILE),
            config.listen,
            on_connect=self._on_connect,
            on_disconnect=self._on_disconnect,
            on_bad_gossip=self._bad_pubsub,
            limits=config.limits,
            banned=self.is_banned,
            points=lambda peer: self.scores.points(peer, trio.current_time()),
            on_refused=config.connection_observer.connection_refused,
            handshake_timeout=config.handshake_timeout,
        )
        self.peer_id = self._host.peer_id
        protocol = sync_protocol(backend.chain_id)
        self._client = SyncClient(
            self._host,
            protocol,
            config.max_response_bytes,
            config.request_timeout,
            config.request_pace,
        )
        server = SyncServer(backend, self.penalise, self._allow, config.max_response_bytes)
        self._host.set_handler(protocol, server.handle)
        self.driver = SyncDriver(
            cast(ChainBackend, _CreditingImports(backend, self._host.mark_useful)),
            self._client,
            self.penalise,
            status_interval=config.status_interval,
            headers_per_request=config.headers_per_request,
            blocks_per_request=config.blocks_per_request,
        )
        self.gossip = Gossip(
            self._host,
            backend,
            config,
            penalise=self.penalise,
            allow=self._allow,
            banned=self.is_banned,
            on_missing_parent=self.driver.request_sync,
            on_bid=on_bid,
            on_new_block=self._host.mark_useful,
        )
        self.artifacts: ArtifactTransfers | None = None
        self._artifact_server: ArtifactServer | None = None
        if artifacts is not None:
            self._artifact_server = ArtifactServer(
                artifacts, self.penalise, self._allow, config.artifact_streams, config.artifact_rate
            )
            self._artifact_protocol = artifact_protocol(backend.chain_id)
            self._host.set_handler(self._artifact_protocol, self._artifact_server.handle)
            self.artifacts = ArtifactTransfers(
                self._host, artifact_protocol(backend.chain_id), artifacts, self.penalise, config.artifact_timeout,
                may_dial=lambda peer: not self.is_banned(peer),  # a banned peer is never dialed again
            )
        self._peers: dict[str, str] = {}  # handshaken peer -> direction
        self._wrong_chain: dict[str, float] = {}  # peer -> monotonic time until re-dial allowed
        self._peers_changed = trio.Event()

    # -- service -------------------------------------------------------------------------------

    async def run(self, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        """Listen, join gossip, start syncing; started once the listen addresses are bound."""
        self.bans.load(time.time())
        try:
            async with trio.open_nursery() as nursery:
                await nursery.start(self._host.run)
                await nursery.start(self.gossip.run)
                await nursery.start(self.driver.run)
                if self.artifacts is not None:
                    await nursery.start(self.artifacts.run)
                nursery.start_soon(self._redial_loop)
                nursery.start_soon(self._maintenance_loop)
                task_status.started()
        except* P2PError as group:  # one clear error (e.g. listen-failed), not a group
            raise group.exceptions[0] from None

    # -- public API ----------------------------------------------------------------------------

    def listen_addrs(self) -> list[str]:
        return self._host.listen_addrs()

    def connection_counts(self) -> dict[str, int]:
        """Open connections: "inbound", "outbound", and "pending" (inbound, still handshaking)."""
        return self._host.connection_counts()

    def peers(self) -> list[PeerView]:
        now = trio.current_time()
        return [
            PeerView(
                peer,
                self._host.addrs(peer),
                self.scores.score(peer, now),
                direction,
                claim.height if (claim := self.driver.claims.get(peer)) else 0,
            )
            for peer, direction in sorted(self._peers.items())
        ]

    async def connect(self, addr: str) -> str:
        """Dial a /.../p2p/<id> address and wait for the chain handshake; returns the peer id."""
        peer = addr.rsplit("/p2p/", 1)[-1]
        if self.is_banned(peer):
            raise P2PError("peer-banned", peer)
        peer = await self._host.connect(addr, self.config.request_timeout)
        with trio.move_on_after(self.config.handshake_timeout + 1):
            while peer not in self._peers:
                if not self._host.is_connected(peer):
                    raise RequestFailed("handshake-failed", f"{peer} dropped the connection")
                await self._changed()
            return peer
        raise RequestFailed("handshake-timeout", peer)

    async def wait_for_peers(self, count: int) -> None:
        """Return once at least `count` peers have completed the handshake."""
        while len(self._peers) < count:
            await self._changed()

    async def ban(self, peer: str, seconds: float) -> None:
        """Ban `peer` for `seconds` (persisted) and drop its connection."""
        self._record_ban(peer, seconds, MANUAL_BAN)
        await self._host.disconnect(peer)

    def _record_ban(self, peer: str, seconds: float, reason: str) -> None:
        self.bans.ban(peer, time.time() + seconds)
        self.scores.forget(peer)
        self.config.observer.peer_banned(reason)

    def is_banned(self, peer: str) -> bool:
        return self.bans.is_banned(peer, time.time())

    def penalise(self, peer: str, cause: RejectKind | Offence, reason: str) -> None:
        """Add the points `cause` is worth; past the threshold the peer is banned and dropped."""
        amount = penalty(cause)
        if amount <= 0 or peer == self.peer_id:
            return
        log.info("penalise %s +%.0f (%s: %s)", peer, amount, cause.value, reason)
        self.config.observer.peer_penalised(cause.value)
        if self.scores.add(peer, amount, trio.current_time()):
            log.warning("banning %s for %.0f s: %s", peer, self.config.ban_seconds, reason)
            self._record_ban(peer, self.config.ban_seconds, cause.value)
            self._host.spawn(self._host.disconnect, peer)

    def _bad_pubsub(self, peer: str, why: str) -> None:
        """A pubsub stream the library could not read: over its RPC size cap, or undecodable."""
        self.penalise(peer, Offence.OVERSIZE if why == RPC_TOO_LARGE else RejectKind.MALFORMED, f"pubsub: {why}")

    def fetch_artifact(self, root: bytes, sources: list[str]) -> FetchProgress:
        """Start fetching artifact `root` (returns at once; see `artifact_progress`). `sources`
        are multiaddrs (dialed) or ids of peers that passed the handshake; none means every peer.
        A source that cannot be used is reported in the fetch's `dropped`, not silently left out."""
        if self.artifacts is None:
            raise P2PError("no-artifact-store", "this node does not fetch artifacts")

        async def resolve() -> tuple[list[str], dict[str, str]]:
            peers: list[str] = []
            failed: dict[str, str] = {}
            for source in sources:
                try:
                    peers.append(await self.connect(source) if "/" in source else self._known(source))
                except P2PError as exc:
                    failed[source.rsplit("/p2p/", 1)[-1]] = f"unreachable: {exc}"
            if not sources:
                peers = list(self._peers)
            if not peers:
                why = "; ".join(f"{s[-16:]}: {w}" for s, w in failed.items())
                raise P2PError("no-sources", why or "no connected peers to fetch from")
            return peers, failed

        return self.artifacts.start(root, resolve)

    async def sealed_root(self, source: str, purchase_id: bytes, timeout: float) -> bytes:
        """Ask `source` (a multiaddr or a connected peer id) which artifact holds the sealed
        delivery of a purchase; raises `Refused` with the seller's reason, or P2PError."""
        peer = await self.connect(source) if "/" in source else self._known(source)
        with trio.fail_after(timeout):
            raw = await self._host.request(peer, self._artifact_protocol, frame(encode_request(SealedRequest(purchase_id))),
                                           MAX_REQUEST_BYTES)
        return decode_sealed_response(raw)

    def artifact_progress(self, root: bytes) -> FetchProgress | None:
        return self.artifacts.progress(root) if self.artifacts else None

    def _known(self, peer: str) -> str:
        if peer not in self._peers:
            raise P2PError("not-connected", f"{peer} is not a connected peer (give its multiaddr)")
        return peer

    async def publish_block(self, data: bytes) -> bool:
        """Gossip a block we made or accepted; False when it is too large for gossip (peers
        then fetch it through sync after their next status poll)."""
        if len(data) > self.config.max_block_gossip_bytes:
            return False
        await self.gossip.publish("blocks", data)
        return True

    async def publish_txs(self, txs: list[bytes]) -> None:
        """Queue transactions for batched gossip (waits when the batcher is behind)."""
        await self.gossip.publish_txs(txs)

    async def publish_bid(self, data: bytes) -> None:
        await self.gossip.publish("bids", data)

    # -- connection policy ---------------------------------------------------------------------

    def _allow(self, peer: str, kind: str) -> bool:
        """A banned peer gets nothing served or relayed, even in the moment before its
        connection is closed; everyone else is rate-limited."""
        if self.is_banned(peer):
            return False
        return self.limits.allow(peer, kind, trio.current_time())

    async def _changed(self) -> None:
        await self._peers_changed.wait()

    def _notify_peers_changed(self) -> None:
        self._peers_changed.set()
        self._peers_changed = trio.Event()

    def _on_connect(self, peer: str, direction: str) -> None:
        if self.is_banned(peer):
            log.info("closing connection of banned peer %s", peer)
            self._host.spawn(self._host.disconnect, peer)
            return
        self._host.spawn(self._handshake, peer, direction)

    def _on_disconnect(self, peer: str, _: str) -> None:
        self._peers.pop(peer, None)
        self.driver.forget(peer)
        self.limits.forget(peer)
        self._client.forget(peer)
        if self._artifact_server is not None:
            self._artifact_server.forget(peer)
        if peer not in self._bootstrap_peers():
            self._host.forget(peer)
        self._notify_peers_changed()

    async def _handshake(self, peer: str, direction: str) -> None:
        """Status exchange: a peer that cannot speak our chain's sync protocol, or follows
        another genesis, is disconnected and not re-dialed for a while (a peer that is merely
        slow to answer is disconnected but may be re-dialed)."""
        try:
            theirs = await self._client.status(peer, timeout=self.config.handshake_timeout)
        except PeerFault as fault:
            log.info("handshake with %s failed: %s", peer, fault)
            await self._refuse(peer, wrong_chain=fault.offence is not Offence.TIMEOUT)
            return
        if theirs.genesis != self.backend.status().genesis:
            log.info("peer %s follows another chain", peer)
            await self._refuse(peer, wrong_chain=True)
            return
        if not self._host.is_connected(peer):
            return
        self._peers[peer] = direction
        self._host.mark_handshaken(peer)
        self._notify_peers_changed()
        self.driver.on_status(peer, theirs)

    async def _refuse(self, peer: str, *, wrong_chain: bool) -> None:
        if wrong_chain:
            self._wrong_chain[peer] = trio.current_time() + WRONG_CHAIN_SECONDS
        await self._host.disconnect(peer)
        self._notify_peers_changed()

    def _bootstrap_peers(self) -> dict[str, str]:
        return {addr.rsplit("/p2p/", 1)[-1]: addr for addr in self.config.bootstrap}

    async def _redial_loop(self) -> None:
        """libp2p's bootstrap gives up after 3 failures: keep dialing the configured peers."""
        while True:
            now = trio.current_time()
            for peer, addr in self._bootstrap_peers().items():
                skip = self._wrong_chain.get(peer, 0.0) > now or self.is_banned(peer)
                if skip or self._host.is_connected(peer):
                    continue
                try:
                    await self._host.connect(addr, self.config.request_timeout)
                except P2PError as exc:
                    log.debug("bootstrap dial %s: %s", addr, exc)
            await trio.sleep(self.config.redial_interval)

    async def _maintenance_loop(self) -> None:
        while True:
            await trio.sleep(MAINTENANCE_INTERVAL)
            now = trio.current_time()
            self.scores.prune(now)
            self._wrong_chain = {p: t for p, t in self._wrong_chain.items() if t > now}


class _CreditingImports:
    """The chain backend as the sync driver sees it: a batch that brings a block we lacked
    credits the peer that served it (`Host.mark_useful`); everything else passes through."""

    def __init__(self, backend: ChainBackend, credit: Callable[[str], None]) -> None:
        self._backend = backend
        self._credit = credit

    def __getattr__(self, name: str) -> Any:
        return getattr(self._backend, name)

    async def import_blocks(self, blocks: list[bytes], origin: str | None) -> list[Verdict]:
        verdicts = await self._backend.import_blocks(blocks, origin)
        if origin is not None and any(v.accepted for v in verdicts):
            self._credit(origin)
        return verdicts
