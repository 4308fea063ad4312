"""The fate of an oversized gossip message, from both sides (issue 17, finding 5).

- Ours: a message over its topic's cap is refused at publish (`gossip-oversize`), never sent.
- A py-libp2p peer's 5 MB publish is dropped by its own library (over the 1 MiB RPC cap): it
  never reaches us, so there is nothing to blame.
- Any other sender's 5 MB RPC is refused by our library before a validator sees it; we penalise
  it as `oversize` (60 points), as a message over a topic cap but under 1 MiB is.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import trio

from p2p.errors import P2PError
from p2p.node import P2P
from p2p.scoring import OFFENCE_PENALTY, Offence
from tests.support.evil_peer import EvilPeer, publish_raw_rpc
from tests.unit.p2p.nodes import run, start_node, wait_gossip_mesh

FIVE_MB = 5 * 2**20
OVERSIZE = OFFENCE_PENALTY[Offence.OVERSIZE]


def points(node: P2P, peer: str) -> float:
    return node.scores.points(peer, trio.current_time())


async def wait_points(node: P2P, peer: str, at_least: float) -> None:
    """Until `peer` has about `at_least` points (they decay from the moment they are given)."""
    with trio.fail_after(10):
        while points(node, peer) < at_least * 0.99:
            await trio.sleep(0.02)


async def target_and_evil(nursery: trio.Nursery, tmp_path: Path) -> tuple[P2P, EvilPeer]:
    """A node, and an evil peer through the handshake with it."""
    target, chain = await start_node(nursery, tmp_path / "t")
    evil = EvilPeer(tmp_path / "evil", chain_id=chain.chain_id)
    await nursery.start(evil.run)
    await evil.connect(target.listen_addrs()[0])
    return target, evil


def test_our_oversized_publish_is_refused_and_never_sent(tmp_path: Path) -> None:
    async def body() -> None:
        async with trio.open_nursery() as nursery:
            a, _ = await start_node(nursery, tmp_path / "a")
            b, _ = await start_node(nursery, tmp_path / "b")
            await b.connect(a.listen_addrs()[0])
            await wait_gossip_mesh([a, b], "txs")
            with pytest.raises(P2PError) as refused:
                await a.gossip.publish("txs", b"\x07" * FIVE_MB)
            assert refused.value.reason == "gossip-oversize" and "5242880 bytes" in str(refused.value)
            with pytest.raises(P2PError, match="gossip-oversize"):
                await a.gossip.publish("bids", b"\x07" * (a.gossip.cap("bids") + 1))
            assert not await a.publish_block(b"\x07" * (a.config.max_block_gossip_bytes + 1))
            # the link works, and carried none of the above: b penalised nobody, got nothing big
            await a.publish_txs([b"tx-after"])
            with trio.fail_after(10):
                while b.gossip.delivered["txs"] == 0:
                    await trio.sleep(0.02)
            assert b.gossip.delivered == {"blocks": 0, "txs": 1, "bids": 0}
            assert points(b, a.peer_id) == 0
            nursery.cancel_scope.cancel()

    run(body)


def test_five_mb_from_a_py_libp2p_peer_is_dropped_by_its_own_library(tmp_path: Path) -> None:
    async def body() -> None:
        async with trio.open_nursery() as nursery:
            target, evil = await target_and_evil(nursery, tmp_path)
            await evil.wait_subscribed(target.peer_id, "txs")
            await evil.publish("txs", b"\x05" * FIVE_MB)  # over 1 MiB: its library drops it
            await evil.publish("txs", b"\x06" * 600_000)  # over the 512 KiB topic cap only
            await wait_points(target, evil.peer_id, OVERSIZE)
            await trio.sleep(0.5)  # not a wait for success: a window for a late first message to show
            assert points(target, evil.peer_id) == pytest.approx(OVERSIZE, rel=0.01)  # one, not two
            nursery.cancel_scope.cancel()

    run(body)


def test_five_mb_rpc_is_refused_by_our_library_and_penalised(tmp_path: Path) -> None:
    async def body() -> None:
        async with trio.open_nursery() as nursery:
            target, evil = await target_and_evil(nursery, tmp_path)
            await publish_raw_rpc(evil, target.peer_id, "txs", b"\x05" * FIVE_MB)
            await wait_points(target, evil.peer_id, OVERSIZE)
            assert not target.is_banned(evil.peer_id)
            await publish_raw_rpc(evil, target.peer_id, "txs", b"\x06" * FIVE_MB)
            assert await evil.banned_by(target.listen_addrs()[0])
            assert target.gossip.delivered["txs"] == 0
            nursery.cancel_scope.cancel()

    run(body, limit=60)
