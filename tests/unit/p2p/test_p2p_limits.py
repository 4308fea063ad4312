"""Pure tests of the inbound connection gates and the eviction choice (p2p/limits.py)."""

from __future__ import annotations

import pytest

from p2p.limits import (
    BANNED,
    INBOUND_FULL,
    PENDING_FULL,
    PENDING_PER_IP,
    PER_IDENTITY,
    PER_IP,
    Admission,
    ConnectionLimits,
    InboundSlots,
)


def clean(peer: str) -> float:
    return 0.0


def admit(slots: InboundSlots, peer: str, ip: str = "10.0.0.1", now: float = 0.0, *, handshake: bool = True,
          points=clean) -> int:
    """One inbound connection through both gates (and the chain handshake); returns its ticket."""
    ticket, reason = slots.accept(ip, now)
    assert ticket is not None, reason
    admission = slots.identify(ticket, peer, banned=False, points=points)
    assert admission.admitted, admission
    if handshake:
        slots.handshaken(peer)
    return ticket


def evicted_peer(admission: Admission) -> str | None:
    return admission.evict.peer if admission.evict is not None else None


def test_pending_caps_refuse_at_accept_and_free_on_handshake() -> None:
    slots = InboundSlots(ConnectionLimits(max_pending=3, max_pending_per_ip=2, max_inbound_per_ip=10))
    first, _ = slots.accept("1.1.1.1", 0)
    slots.accept("1.1.1.1", 0)
    assert slots.accept("1.1.1.1", 0) == (None, PENDING_PER_IP)
    slots.accept("2.2.2.2", 0)
    assert slots.pending() == 3
    assert slots.accept("3.3.3.3", 0) == (None, PENDING_FULL)
    assert first is not None
    slots.identify(first, "a", banned=False, points=clean)
    slots.handshaken("a")  # no longer pending: a handshake slot frees, the connection stays
    assert slots.pending() == 2 and slots.inbound() == 1
    assert slots.accept("3.3.3.3", 0)[0] is not None


def test_per_ip_cap_counts_every_inbound_connection_from_the_address() -> None:
    slots = InboundSlots(ConnectionLimits(max_inbound_per_ip=2))
    admit(slots, "a", "1.1.1.1")
    admit(slots, "b", "1.1.1.1")
    assert slots.accept("1.1.1.1", 0) == (None, PER_IP)
    assert slots.accept("2.2.2.2", 0)[0] is not None


def test_second_gate_refuses_banned_peers() -> None:
    slots = InboundSlots()
    ticket, _ = slots.accept("10.0.0.2", 0)
    assert ticket is not None
    assert slots.identify(ticket, "b", banned=True, points=clean).reason == BANNED
    assert slots.identify(ticket, "b", banned=False, points=clean).admitted


def test_an_identity_holds_one_inbound_connection_the_newest() -> None:
    """A restarted node dials back before its old connection is seen to die: the new one wins."""
    slots = InboundSlots(ConnectionLimits(max_inbound=3, max_inbound_per_ip=10))
    old = admit(slots, "a")
    admit(slots, "b")
    ticket, _ = slots.accept("10.0.0.2", 1)
    assert ticket is not None
    admission = slots.identify(ticket, "a", banned=False, points=clean)
    assert admission.admitted and admission.evict_reason == PER_IDENTITY
    assert admission.evict is not None and admission.evict.ticket == old
    assert slots.inbound() == 2  # "b" was not evicted for it: the slot was "a"'s already
    # while the older one is still in its handshakes, the newer one is refused instead
    admit(slots, "c", handshake=False)
    ticket, _ = slots.accept("10.0.0.3", 2)
    assert ticket is not None
    assert slots.identify(ticket, "c", banned=False, points=clean).reason == PER_IDENTITY


def test_release_frees_every_count() -> None:
    """What finding 2 was about: a closed connection gives its slot back, every time."""
    slots = InboundSlots(ConnectionLimits(max_inbound=3, max_pending=3, max_inbound_per_ip=3))
    for round_ in range(100):
        tickets = [admit(slots, f"p{round_}-{i}", "127.0.0.1") for i in range(3)]
        assert slots.inbound() == 3
        for ticket in tickets:
            slots.release(ticket)
        assert slots.inbound() == 0 and slots.pending() == 0 and not slots.conns


def test_full_slots_evict_the_youngest_unprotected_peer() -> None:
    slots = InboundSlots(ConnectionLimits(max_inbound=4, max_inbound_per_ip=10, protect_useful=1))
    for i in range(4):
        admit(slots, f"p{i}", now=float(i))
    ticket, _ = slots.accept("10.0.0.9", 10)
    assert ticket is not None
    admission = slots.identify(ticket, "new", banned=False, points=clean)
    # p0 and p1 (the longest-connected half) are protected; of p2 and p3 the youngest goes
    assert admission.admitted and admission.evict is not None and admission.evict.peer == "p3"
    assert slots.inbound() == 4  # the evicted one's slot is already the newcomer's


def test_useful_peers_and_old_peers_are_never_evicted() -> None:
    slots = InboundSlots(ConnectionLimits(max_inbound=4, max_inbound_per_ip=10, protect_useful=1))
    for i in range(4):
        admit(slots, f"p{i}", "10.0.0.9", now=float(i))
    slots.useful("p3", now=5)  # the youngest brought us a block: it stays
    evicted = []
    for n in range(5):
        ticket, _ = slots.accept("10.0.0.9", 10 + n)
        assert ticket is not None
        admission = slots.identify(ticket, f"new{n}", banned=False, points=clean)
        assert admission.evict is not None and admission.evict.evicted
        evicted.append(admission.evict.peer)
        slots.handshaken(f"new{n}")
        slots.release(admission.evict.ticket)
    # p3 stays as useful, p0 (and then p1) by uptime; each newcomer pushes out the previous one
    assert evicted == ["p2", "new0", "new1", "new2", "new3"]
    assert {c.peer for c in slots.conns.values()} == {"p0", "p1", "p3", "new4"}


def test_misbehaving_peers_go_first_and_never_push_out_a_cleaner_one() -> None:
    slots = InboundSlots(ConnectionLimits(max_inbound=4, max_inbound_per_ip=10))
    points = {"dirty": 30.0, "dirtier": 50.0}.get
    score = lambda peer: points(peer) or 0.0
    for i, peer in enumerate(["dirtier", "a", "b", "dirty"]):
        admit(slots, peer, now=float(i), points=score)
    ticket, _ = slots.accept("10.0.0.9", 10)
    assert ticket is not None
    assert evicted_peer(slots.identify(ticket, "new", banned=False, points=score)) == "dirtier"
    ticket, _ = slots.accept("10.0.0.9", 11)
    assert ticket is not None
    worse = {"dirty": 30.0, "dirtier": 50.0, "worst": 80.0}
    refused = slots.identify(ticket, "worst", banned=False, points=lambda p: worse.get(p, 0.0))
    assert refused.reason == INBOUND_FULL  # would have evicted "dirty" (30 points) for 80


def test_crowded_address_loses_first() -> None:
    slots = InboundSlots(ConnectionLimits(max_inbound=6, max_inbound_per_ip=10))
    admit(slots, "solo-old", "1.1.1.1", now=0)
    admit(slots, "crowd-old", "6.6.6.6", now=1)
    admit(slots, "crowd-a", "6.6.6.6", now=2)
    admit(slots, "crowd-b", "6.6.6.6", now=3)
    admit(slots, "solo", "2.2.2.2", now=4)  # the youngest, but alone on its address
    admit(slots, "crowd-c", "6.6.6.6", now=3.5)
    ticket, _ = slots.accept("3.3.3.3", 10)
    assert ticket is not None
    assert evicted_peer(slots.identify(ticket, "new", banned=False, points=clean)) == "crowd-c"


def test_nothing_to_evict_refuses_the_newcomer() -> None:
    slots = InboundSlots(ConnectionLimits(max_inbound=2, max_inbound_per_ip=10, protect_useful=2))
    admit(slots, "a")
    admit(slots, "b")
    slots.useful("a", 1)
    slots.useful("b", 1)
    ticket, _ = slots.accept("10.0.0.9", 2)
    assert ticket is not None
    assert slots.identify(ticket, "new", banned=False, points=clean).reason == INBOUND_FULL


def test_limits_are_checked() -> None:
    with pytest.raises(ValueError, match="max_inbound"):
        ConnectionLimits(max_inbound=0)
    with pytest.raises(ValueError, match="protect_useful"):
        ConnectionLimits(protect_useful=-1)
