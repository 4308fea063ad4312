"""Throughput of the p2p layer on 127.0.0.1, each figure with a reference from the same run.

1. Transaction gossip, 3 nodes in a line-free triangle: batched publish (`P2P.publish_txs`)
   versus one gossip message per transaction (the reference), counting a tx when both other
   nodes have handed it to their backend.
2. Sync: a fresh node pulls N toy blocks from a peer over the sync protocol, versus importing
   the same blocks straight into a backend with no network (the reference).

Run: .venv/bin/python bench/p2p_gossip.py [--quick]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import trio

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from p2p.wire import encode_tx_batch
from tests.unit.p2p.nodes import start_node, wait_gossip_mesh
from tests.unit.p2p.toychain import ToyChain


async def gossip_rates(root: Path, count: int) -> tuple[float, float]:
    """(batched tx/s, one-message-per-tx tx/s)."""
    async with trio.open_nursery() as nursery:
        nodes = [await start_node(nursery, root / name) for name in "abc"]
        (a, _), (b, cb), (c, cc) = nodes
        await b.connect(a.listen_addrs()[0])
        await c.connect(a.listen_addrs()[0])
        await c.connect(b.listen_addrs()[0])
        await wait_gossip_mesh([a, b, c], "txs")

        async def delivered(total: int) -> None:
            await cb.wait_until(lambda: len(cb.txs) >= total)
            await cc.wait_until(lambda: len(cc.txs) >= total)

        batched = [f"batched-{i:08d}".encode() * 8 for i in range(count)]
        start = time.perf_counter()
        await a.publish_txs(batched)
        await delivered(len(batched))
        batched_rate = count / (time.perf_counter() - start)

        single = [f"single-{i:08d}".encode() * 8 for i in range(count // 10)]
        start = time.perf_counter()
        for tx in single:
            await a.gossip.publish("txs", encode_tx_batch([tx]))
        await delivered(len(batched) + len(single))
        single_rate = len(single) / (time.perf_counter() - start)
        nursery.cancel_scope.cancel()
    return batched_rate, single_rate


async def sync_rates(root: Path, count: int) -> tuple[float, float]:
    """(blocks/s synced over the network, blocks/s imported locally)."""
    source = ToyChain()
    blocks = source.mine(count)
    local = ToyChain()
    start = time.perf_counter()
    for block in blocks:
        await local.import_block(block, None)
    local_rate = count / (time.perf_counter() - start)
    async with trio.open_nursery() as nursery:
        a, _ = await start_node(nursery, root / "sa", source)
        b, cb = await start_node(nursery, root / "sb")
        start = time.perf_counter()
        await b.connect(a.listen_addrs()[0])
        await cb.wait_until(lambda: cb.tip == source.tip)
        synced_rate = count / (time.perf_counter() - start)
        nursery.cancel_scope.cancel()
    return synced_rate, local_rate


async def main(quick: bool) -> None:
    txs, blocks = (2_000, 1_000) if quick else (20_000, 5_000)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        with trio.fail_after(120):
            batched, single = await gossip_rates(root, txs)
            synced, local = await sync_rates(root, blocks)
    print(f"tx gossip, batched, 3 nodes:       {batched:10,.0f} tx/s")
    print(f"tx gossip, one message per tx:     {single:10,.0f} tx/s (reference)")
    print(f"  ratio batched / reference:       {batched / single:10.1f}x")
    print(f"sync of {blocks} toy blocks:        {synced:10,.0f} blocks/s")
    print(f"local import, no network:          {local:10,.0f} blocks/s (reference)")
    print(f"  ratio synced / reference:        {synced / local:10.2f}x")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller counts (~10 s)")
    trio.run(main, parser.parse_args().quick)
