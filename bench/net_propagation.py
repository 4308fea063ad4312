"""Block propagation across 5 daemons in a line (each peers only with its neighbours), so a block
from the miner at one end crosses 4 hops to reach the farthest node.

Latency per block = (time the farthest node logged the new tip) - (time the miner logged mining it),
from the daemons' own JSON logs on one machine clock. Reference, same run: the time to validate and
import one such block locally, times the number of hops (a relay must validate before forwarding,
so this is the floor the network could reach).

    python bench/net_propagation.py [--nodes 5] [--blocks 40]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from net_common import percentile

from chain.genesis import load_genesis
from tests.support.chain_builders import make_block, new_chain
from tests.support.daemons import Daemon, wait_converged, wait_until


def events(datadir: Path, prefix: str) -> dict[str, float]:
    """hash prefix -> first log time of messages starting with ``prefix``."""
    seen: dict[str, float] = {}
    for line in (datadir / "neurod.log").read_text().splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        message = entry.get("msg", "")
        if message.startswith(prefix):
            block = message.split()[3]
            seen.setdefault(block, entry["ts"])
    return seen


def local_import_seconds(samples: int = 50) -> float:
    chain = new_chain(load_genesis("devnet"))
    blocks = []
    for _ in range(samples):
        block = make_block(chain, [])
        chain.process_block(block, block.header.timestamp)
        blocks.append(block)
    fresh = new_chain(load_genesis("devnet"))
    started = time.perf_counter()
    for block in blocks:
        fresh.process_block(block, block.header.timestamp)
    return (time.perf_counter() - started) / samples


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--nodes", type=int, default=5)
    parser.add_argument("--blocks", type=int, default=40)
    parser.add_argument("--interval", type=float, default=0.5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        nodes: list[Daemon] = []
        try:
            for i in range(args.nodes):
                bootstrap = [nodes[-1].p2p_addr] if nodes else []
                extra = ["--log-format", "json"]
                nodes.append(Daemon(work / f"n{i}", mine=(i == 0), block_interval=args.interval,
                                    bootstrap=bootstrap, extra=extra).start())
            for node in nodes[1:]:
                wait_until(lambda n=node: n.peers() >= 1, 60, "peering")
            start_height = wait_converged(nodes, 120) and nodes[0].height()
            wait_until(lambda: nodes[-1].height() >= start_height + args.blocks, 600, "blocks to arrive")
            mined = events(nodes[0].datadir, "mined block")
            arrived = events(nodes[-1].datadir, "new tip")
        finally:
            for node in nodes:
                node.stop()
    latencies = [
        (arrived[h] - t) * 1000 for h, t in mined.items() if h in arrived
    ][-args.blocks:]
    hops = args.nodes - 1
    reference = local_import_seconds() * 1000 * hops
    p50, p95 = percentile(latencies, 0.5), percentile(latencies, 0.95)
    print(f"{len(latencies)} blocks, {args.nodes} daemons in a line ({hops} hops), 127.0.0.1")
    print(f"propagation miner -> farthest node: p50 {p50:.1f} ms, p95 {p95:.1f} ms")
    print(f"reference, local validate+import of one block x {hops} hops: {reference:.1f} ms")
    print(f"ratio p50 / reference: {p50 / reference:.1f}")


if __name__ == "__main__":
    main()
