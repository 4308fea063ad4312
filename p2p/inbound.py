"""Our host's inbound connection path, in place of py-libp2p 0.8.1's, with `p2p.limits` applied.

Why it replaces the library's: `Swarm._handle_inbound_connection` (libp2p/network/swarm.py:1982)
takes one token of a `trio.CapacityLimiter` sized `max_connections - min_connections` (250 with
the defaults) per accepted TCP connection, and after a successful upgrade its handler waits for
the *swarm* to stop (`await self.manager.wait_finished()`, swarm.py:2060) before giving the
token back: a connection that closes keeps its token. After 250 inbound connections in a node's
life (a burst of 300 peers, or one peer reconnecting 250 times), every new inbound connection is
accepted by TCP and closed at once, for good (issue 17, finding 2; measured here: 250 of 300 got
in, 0 of the next 300, and an honest `node_connect` failed).

`InboundGate.install` swaps that method on our swarm instance for `handle`: the same upgrade
(noise, then yamux, then `Swarm.add_conn`, which applies libp2p's own resource manager), with
our two gates around it (`p2p.limits.InboundSlots`), and a handler task that lives exactly as
long as its connection: when the connection closes, its task ends and its slot is free. Not
kept from the library's path: its connection gate (allow/deny lists; we configure none), its
pre-upgrade resource-manager admission (`add_conn` still applies the manager), pre-shared keys
(unused), and QUIC (we listen on TCP only).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import trio
from libp2p.network.connection.raw_connection import RawConnection

from p2p.limits import ConnectionLimits, InboundSlots, Points

log = logging.getLogger("neuro.p2p")

CLOSE_POLL = 5.0  # seconds between checks that a connection is still the swarm's (a safety net)


class InboundGate:
    """Admits, upgrades and watches every inbound connection of one swarm."""

    def __init__(
        self,
        limits: ConnectionLimits,
        *,
        upgrade_timeout: float,
        banned: Callable[[str], bool],
        points: Points,
        on_refused: Callable[[str], None],
    ) -> None:
        self.slots = InboundSlots(limits)
        self._upgrade_timeout = upgrade_timeout
        self._banned = banned
        self._points = points
        self._on_refused = on_refused
        self._swarm: Any = None
        # ticket -> set when that connection is evicted: its own handler closes it (the victim
        # may still be upgrading, not yet in the swarm's table, where nobody else could find it)
        self._evicted: dict[int, trio.Event] = {}

    def install(self, swarm: Any) -> None:
        """Take over `swarm`'s inbound path (its listeners look the method up per connection)."""
        self._swarm = swarm
        swarm._handle_inbound_connection = self.handle

    async def handle(self, read_write_closer: Any, maddr: Any) -> None:
        """One inbound TCP connection, from accept to close."""
        ticket, reason = self.slots.accept(_remote_ip(read_write_closer), trio.current_time())
        if ticket is None:
            self._refuse(reason or "", "")
            with trio.CancelScope(shield=True):
                await _close(read_write_closer)
            return
        self._evicted[ticket] = trio.Event()
        try:
            muxed = await self._upgrade(ticket, RawConnection(read_write_closer, False))
            if muxed is not None:
                await self._hold(ticket, muxed)
        finally:
            del self._evicted[ticket]
            self.slots.release(ticket)

    async def _upgrade(self, ticket: int, raw: Any) -> Any:
        """noise, the second gate, yamux, then the swarm's `add_conn`; None if any step fails
        (everything opened so far is closed)."""
        swarm = self._swarm
        opened: list[Any] = [raw]
        try:
            with trio.fail_after(self._upgrade_timeout):
                secured = await swarm.upgrader.upgrade_security(raw, False)
                opened.append(secured)
                peer_id = secured.get_remote_peer()
                peer = str(peer_id)
                admission = self.slots.identify(ticket, peer, banned=self._banned(peer), points=self._points)
                if not admission.admitted:
                    self._refuse(admission.reason or "", peer)
                    raise _Refused
                if admission.evict is not None:
                    self._refuse(admission.evict_reason, admission.evict.peer or "")
                    self._evicted[admission.evict.ticket].set()
                muxed = await swarm.upgrader.upgrade_connection(secured, peer_id)
                opened.append(muxed)
            await swarm.add_conn(muxed, direction="inbound")
            return muxed
        except BaseException as exc:
            with trio.CancelScope(shield=True):
                for conn in reversed(opened):
                    await _close(conn)
            if isinstance(exc, Exception):  # a failed handshake is a peer's business, not ours
                if not isinstance(exc, _Refused):
                    log.debug("inbound upgrade failed: %s", type(exc).__name__)
                return None
            raise

    async def _hold(self, ticket: int, muxed: Any) -> None:
        """Until the connection closes, or is evicted (then we close it)."""
        evicted = self._evicted[ticket]
        async with trio.open_nursery() as nursery:

            async def until_closed() -> None:
                await self._wait_closed(muxed)
                nursery.cancel_scope.cancel()

            nursery.start_soon(until_closed)
            await evicted.wait()
            nursery.cancel_scope.cancel()
        if evicted.is_set():
            with trio.CancelScope(shield=True):
                await self._close(muxed)

    async def _wait_closed(self, muxed: Any) -> None:
        """Its closed event is the signal; the poll only guards against a connection the swarm
        dropped without closing it."""
        while not muxed.is_closed and self._swarm_conn(muxed) is not None:
            with trio.move_on_after(CLOSE_POLL):
                await muxed.event_closed.wait()

    def _swarm_conn(self, muxed: Any) -> Any:
        return next((c for c in self._swarm.connections.get(muxed.peer_id, ()) if c.muxed_conn is muxed), None)

    async def _close(self, muxed: Any) -> None:
        """Close through the swarm when it holds the connection (it then tells its notifees)."""
        conn = self._swarm_conn(muxed)
        await _close(conn if conn is not None else muxed)

    def _refuse(self, reason: str, peer: str) -> None:
        log.debug("inbound connection %s: %s", reason, peer or "(before noise)")
        self._on_refused(reason)


class _Refused(Exception):
    """The second gate said no: close what is open, quietly."""


def _remote_ip(read_write_closer: Any) -> str:
    try:
        return str(read_write_closer.get_remote_address()[0])
    except Exception:  # noqa: BLE001 - a socket already gone has no address; share one bucket
        return "?"


async def _close(conn: Any) -> None:
    try:
        await conn.close()
    except Exception:  # closing a half-open connection can raise anything
        log.debug("close failed", exc_info=True)
