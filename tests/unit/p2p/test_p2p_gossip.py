"""Gossip between real hosts on 127.0.0.1: blocks and transaction batches reach every node."""

from __future__ import annotations

from pathlib import Path

import trio

from tests.unit.p2p.nodes import run, start_node, wait_gossip_mesh


def test_block_and_tx_gossip_reaches_three_nodes(tmp_path: Path) -> None:
    async def body() -> None:
        async with trio.open_nursery() as nursery:
            a, ca = await start_node(nursery, tmp_path / "a")
            b, cb = await start_node(nursery, tmp_path / "b")
            c, cc = await start_node(nursery, tmp_path / "c")
            await b.connect(a.listen_addrs()[0])
            await c.connect(b.listen_addrs()[0])
            await c.connect(a.listen_addrs()[0])
            for name in ("blocks", "txs"):
                await wait_gossip_mesh([a, b, c], name)
            block = ca.mine(1)[0]
            await a.publish_block(block)
            await cb.wait_until(lambda: ca.tip in cb.blocks)
            await cc.wait_until(lambda: ca.tip in cc.blocks)
            txs = [f"tx-{i}".encode() for i in range(500)]
            await a.publish_txs(txs)
            await cb.wait_until(lambda: len(cb.txs) >= 500)
            await cc.wait_until(lambda: len(cc.txs) >= 500)
            assert sorted(cb.txs) == sorted(txs) and sorted(cc.txs) == sorted(txs)
            assert ca.txs == []  # our own batches are not handed back to our backend
            assert b.gossip.delivered["txs"] < 50  # batched: far fewer messages than txs
            await wait_gossip_mesh([a, b, c], "bids")
            await c.publish_bid(b"bid-1")
            await ca.wait_until(lambda: ca.bids == [b"bid-1"])
            await cb.wait_until(lambda: cb.bids == [b"bid-1"])
            nursery.cancel_scope.cancel()

    run(body)


def test_bootstrap_peers_are_dialed_and_redialed(tmp_path: Path) -> None:
    async def body() -> None:
        async with trio.open_nursery() as nursery:
            a, _ = await start_node(nursery, tmp_path / "a")
            b, _ = await start_node(nursery, tmp_path / "b", bootstrap=a.listen_addrs())
            await a.wait_for_peers(1)
            await b.wait_for_peers(1)
            assert [p.direction for p in b.peers()] == ["outbound"]
            assert [p.direction for p in a.peers()] == ["inbound"]
            await a._host.disconnect(b.peer_id)  # the redial loop brings it back
            await b.wait_for_peers(0)
            while not b.peers():
                await b._changed()
            assert [p.peer_id for p in b.peers()] == [a.peer_id]
            nursery.cancel_scope.cancel()

    run(body)
