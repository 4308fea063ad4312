"""Inbound connection limits: who gets an inbound slot, and who loses one. Pure: `now` passed in.

A node has room for `max_inbound` inbound connections and keeps `max_outbound` more for its own
dials, which inbound peers can never take (libp2p's global cap is the sum). Each inbound
connection passes two gates:

1. at TCP accept, only the address is known: at most `max_pending` connections may be in their
   handshakes at once (noise, yamux, then our chain `status` exchange; each costs CPU before the
   peer has proven anything), at most `max_pending_per_ip` from one IP, and at most
   `max_inbound_per_ip` connections in all from one IP;
2. after noise, the peer id is known: a banned peer is refused; an identity holds one inbound
   connection: a new one replaces an old one that passed the chain handshake (the old one is
   closed, counted as `per-identity`: only the key's owner can do that, and a node that
   restarts dials back before we notice its old connection died), and is refused
   (`per-identity`) while the old one is still in its handshakes (whose failure would drop the
   peer, new connection included); and when all `max_inbound` slots are taken, a slot is freed
   by **evicting** an unprotected inbound peer, or the newcomer is refused (`inbound-full`)
   when none can be evicted.

Why evict rather than refuse when full (Bitcoin Core's `AttemptToEvictConnection` is the model):
refusing protects whoever came first, so an attacker who fills the slots once, and holds them,
keeps every honest newcomer out for as long as it likes. Evicting lets a newcomer in at the
expense of the peer we would miss least, while the peers that are worth most to us are never
candidates. Protected (in this order; each group chosen among those not already protected):
- the `protect_useful` inbound peers that most recently gave us a block we did not have (by
  gossip or sync): the ones we would miss; this is the "good score" reservation;
- the longest-connected half of the rest that passed the chain handshake and hold no
  misbehaviour points: a flood of fresh connections can never push out settled peers.
Among the others, the victim is the one with the most misbehaviour points, then the one from the
IP with the most inbound connections (an attacker's connections crowd one address and evict each
other first), then the youngest. A newcomer with more misbehaviour points than that victim is
refused instead: a clean peer is never evicted for a worse one.

Refusal reasons (kebab-case, for metrics): `pending-full`, `pending-per-ip`, `per-ip`, `banned`,
`per-identity`, `inbound-full`; a connection closed to make room is counted as `evicted`, or as
`per-identity` when its own peer replaced it.
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

PENDING_FULL = "pending-full"
PENDING_PER_IP = "pending-per-ip"
PER_IP = "per-ip"
PER_IDENTITY = "per-identity"
BANNED = "banned"
INBOUND_FULL = "inbound-full"
EVICTED = "evicted"
REFUSALS = (PENDING_FULL, PENDING_PER_IP, PER_IP, PER_IDENTITY, BANNED, INBOUND_FULL, EVICTED)


@dataclass(frozen=True, slots=True)
class ConnectionLimits:
    """Caps on connections; the defaults a daemon runs with (see the module docstring)."""

    max_inbound: int = 100  # inbound connections, handshaking or established
    max_outbound: int = 28  # kept for our own dials: libp2p's global cap is inbound + this
    max_pending: int = 16  # inbound connections still in noise / yamux / status handshakes
    max_pending_per_ip: int = 4
    max_inbound_per_ip: int = 8  # tests on 127.0.0.1 raise it: every peer shares that IP
    protect_useful: int = 8  # inbound peers that recently brought us a new block: never evicted

    def __post_init__(self) -> None:
        for name in ("max_inbound", "max_outbound", "max_pending", "max_pending_per_ip", "max_inbound_per_ip"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1")
        if self.protect_useful < 0:
            raise ValueError("protect_useful must be 0 or more")


@dataclass(slots=True)
class InboundConn:
    """One inbound connection, from TCP accept until it closes."""

    ticket: int
    ip: str
    since: float
    peer: str | None = None  # known once noise is done
    handshaken: bool = False  # passed our chain handshake: no longer pending
    useful_at: float | None = None  # last time it gave us a block we did not have
    evicted: bool = False  # chosen to make room: closing, its slot already handed on

    @property
    def holds_slot(self) -> bool:
        return self.peer is not None and not self.evicted


@dataclass(frozen=True, slots=True)
class Admission:
    """The second gate's answer: refused with `reason`, or admitted (evicting `evict`, if set)."""

    reason: str | None = None
    evict: InboundConn | None = None  # the connection that must close to make room
    evict_reason: str = EVICTED  # why: EVICTED, or PER_IDENTITY when it is the same peer's older one

    @property
    def admitted(self) -> bool:
        return self.reason is None


Points = Callable[[str], float]  # a peer's current misbehaviour points


class ConnectionObserver(Protocol):
    """Told of each refused inbound connection by reason (one of `REFUSALS`; neurod counts them
    in its metrics). Called on the event loop: it must return at once and must not raise."""

    def connection_refused(self, reason: str) -> None: ...


class Uncounted:
    """The connection observer nobody watches (tests, tools)."""

    def connection_refused(self, reason: str) -> None:
        pass


@dataclass(slots=True)
class InboundSlots:
    """The inbound connections of one node and the two gates; see the module docstring."""

    limits: ConnectionLimits = field(default_factory=ConnectionLimits)
    conns: dict[int, InboundConn] = field(default_factory=dict)
    _tickets: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    # -- counts --------------------------------------------------------------------------------

    def inbound(self) -> int:
        """Inbound connections past noise (the ones holding a slot)."""
        return sum(1 for c in self.conns.values() if c.holds_slot)

    def pending(self) -> int:
        """Inbound connections that have not passed the chain handshake yet."""
        return sum(1 for c in self.conns.values() if not c.handshaken)

    # -- gates ---------------------------------------------------------------------------------

    def accept(self, ip: str, now: float) -> tuple[int | None, str | None]:
        """First gate, at TCP accept: `(ticket, None)`, or `(None, reason)` to close it at once."""
        pending_from_ip = sum(1 for c in self.conns.values() if c.ip == ip and not c.handshaken)
        if self.pending() >= self.limits.max_pending:
            return None, PENDING_FULL
        if pending_from_ip >= self.limits.max_pending_per_ip:
            return None, PENDING_PER_IP
        if sum(1 for c in self.conns.values() if c.ip == ip) >= self.limits.max_inbound_per_ip:
            return None, PER_IP
        ticket = next(self._tickets)
        self.conns[ticket] = InboundConn(ticket, ip, now)
        return ticket, None

    def identify(self, ticket: int, peer: str, *, banned: bool, points: Points) -> Admission:
        """Second gate, once noise names the peer. On admission the connection holds a slot;
        the caller closes `evict`'s connection (marked `evicted`; its `release` follows)."""
        conn = self.conns[ticket]
        if banned:
            return Admission(BANNED)
        older = next((c for c in self.conns.values() if c.peer == peer and c.holds_slot), None)
        if older is not None:
            if not older.handshaken:
                return Admission(PER_IDENTITY)
            older.evicted = True
            conn.peer = peer
            return Admission(None, older, PER_IDENTITY)
        evict = None
        if self.inbound() >= self.limits.max_inbound:
            victim = self._victim(points)
            if victim is None or points(peer) > points(victim.peer or ""):
                return Admission(INBOUND_FULL)
            victim.evicted = True  # its slot is the newcomer's now, while its connection closes
            evict = victim
        conn.peer = peer
        return Admission(None, evict)

    def handshaken(self, peer: str) -> None:
        """`peer` passed the chain handshake: its connection is no longer pending."""
        for conn in self.conns.values():
            if conn.peer == peer and conn.holds_slot:
                conn.handshaken = True

    def useful(self, peer: str, now: float) -> None:
        """`peer` gave us a block we did not have (protects it from eviction for a while)."""
        for conn in self.conns.values():
            if conn.peer == peer and conn.holds_slot:
                conn.useful_at = now

    def release(self, ticket: int) -> None:
        """The connection closed (or never got past a gate): its slot is free."""
        self.conns.pop(ticket, None)

    # -- eviction ------------------------------------------------------------------------------

    def _victim(self, points: Points) -> InboundConn | None:
        """The inbound connection to evict, or None when every one is protected."""
        held = [c for c in self.conns.values() if c.holds_slot]
        useful = sorted((c for c in held if c.useful_at is not None), key=lambda c: -(c.useful_at or 0.0))
        protected = {c.ticket for c in useful[: self.limits.protect_useful]}
        settled = sorted(
            (c for c in held if c.ticket not in protected and c.handshaken and points(c.peer or "") <= 0),
            key=lambda c: c.since,
        )
        rest = [c for c in held if c.ticket not in protected]
        protected |= {c.ticket for c in settled[: len(rest) // 2]}
        candidates = [c for c in held if c.ticket not in protected]
        if not candidates:
            return None
        crowding = Counter(c.ip for c in held)
        return max(candidates, key=lambda c: (points(c.peer or ""), crowding[c.ip], c.since, c.ticket))
