"""Inbound connection caps on real sockets (p2p/inbound.py over p2p/limits.py): slots come back
when peers leave, and each refusal is reported with its reason."""

from __future__ import annotations

from pathlib import Path

import trio
from libp2p.crypto.ed25519 import create_new_key_pair

from p2p.limits import BANNED, EVICTED, PER_IDENTITY, ConnectionLimits
from p2p.node import P2P
from tests.support.peer_crowd import PeerCrowd
from tests.unit.p2p.nodes import run, start_node
from tests.unit.p2p.toychain import ToyChain


class Refusals:
    def __init__(self) -> None:
        self.reasons: list[str] = []

    def connection_refused(self, reason: str) -> None:
        self.reasons.append(reason)


async def wait_for(predicate, what: str, timeout: float = 10.0) -> None:  # type: ignore[no-untyped-def]
    with trio.fail_after(timeout):
        while not predicate():
            await trio.sleep(0.02)


async def start(nursery: trio.Nursery, data_dir: Path, limits: ConnectionLimits) -> tuple[P2P, Refusals]:
    refusals = Refusals()
    node, _ = await start_node(nursery, data_dir, limits=limits, connection_observer=refusals)
    return node, refusals


def test_slots_come_back_after_many_more_connections_than_libp2p_allowed(tmp_path: Path) -> None:
    """py-libp2p kept an inbound slot per connection for the swarm's life; with these limits its
    limiter had 6 (max_inbound + max_outbound) and the second round was refused whole."""
    limits = ConnectionLimits(max_inbound=4, max_outbound=2, max_inbound_per_ip=100, max_pending_per_ip=100)

    async def body() -> None:
        async with trio.open_nursery() as nursery:
            node, refusals = await start(nursery, tmp_path / "node", limits)
            crowd = PeerCrowd(4, ToyChain().status())
            await nursery.start(crowd.run)
            tasks = []
            for round_ in range(6):
                assert await crowd.connect_all(node.listen_addrs()[0], timeout=10) == 4, round_
                await wait_for(lambda: len(node.peers()) == 4, "handshakes")
                await crowd.drop_all()
                await wait_for(lambda: node.connection_counts()["inbound"] == 0 and not node.peers(), "slots freed")
                await wait_for(lambda: not node._host.libp2p.get_network().connections, "connections gone")
                await trio.sleep(0.5)  # let closing tasks finish before counting
                tasks.append(trio.lowlevel.current_statistics().tasks_living)
                # and every per-peer record with them
                assert not node._host.inbound.slots.conns and not node.driver.claims
                assert not node.limits._buckets
                assert not set(crowd.peer_ids) & {str(p) for p in node._host.libp2p.get_peerstore().peer_ids()}
            assert refusals.reasons == []
            # no task per past connection (py-libp2p kept one per inbound connection): the count
            # after the last round is the count after the second
            assert tasks[-1] <= tasks[1], tasks
            nursery.cancel_scope.cancel()

    run(body, limit=60)


def test_full_slots_evict_and_the_gate_names_each_refusal(tmp_path: Path) -> None:
    limits = ConnectionLimits(max_inbound=2, max_inbound_per_ip=100, max_pending_per_ip=100)

    async def body() -> None:
        async with trio.open_nursery() as nursery:
            node, refusals = await start(nursery, tmp_path / "node", limits)
            addr = node.listen_addrs()[0]
            crowd = PeerCrowd(4, ToyChain().status())
            await nursery.start(crowd.run)
            # one at a time: each newcomer past the second evicts the youngest of the others
            await crowd.connect_all(addr, timeout=10, concurrency=1)
            await wait_for(lambda: crowd.held() == 2, "the evicted ones gone")
            assert refusals.reasons == [EVICTED, EVICTED]
            assert node.connection_counts()["inbound"] == 2
            # a second connection of an identity that holds a handshaken one replaces it (and
            # evicts nobody else)
            key = create_new_key_pair()
            old, new = PeerCrowd(1, ToyChain().status(), [key]), PeerCrowd(1, ToyChain().status(), [key])
            await nursery.start(old.run)
            await nursery.start(new.run)
            await old.connect_all(addr, timeout=10)
            await wait_for(lambda: old.peer_ids[0] in {p.peer_id for p in node.peers()}, "the handshake")
            assert await new.connect_all(addr, timeout=10) == 1
            await wait_for(lambda: old.connected() == 0, "the older connection closed")
            assert refusals.reasons[-2:] == [EVICTED, PER_IDENTITY], refusals.reasons
            # a banned peer: refused after noise, before anything else is opened
            banned = PeerCrowd(1, ToyChain().status())
            await nursery.start(banned.run)
            await node.ban(banned.peer_ids[0], 60)
            assert await banned.connect_all(addr, timeout=10) == 0
            assert refusals.reasons[-1] == BANNED
            nursery.cancel_scope.cancel()

    run(body, limit=60)
