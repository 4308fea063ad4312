"""Transaction throughput across the network, with batched gossip.

Pre-signed transfers from many senders are submitted to one daemon (`tx_submit_many`, 1,000 per
call, two client connections); the figure is tx/s from the first submission until every other daemon's mempool holds all of
them. Reference, same run: the chain core's block import rate for the same transactions (LevelDB,
signatures on 2 threads). Goal: >= 5,000 tx/s.

    python bench/net_tx_throughput.py [--nodes 3] [--txs 10000]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from net_common import funded_network, import_rate, presigned

from tests.support.daemons import Daemon, wait_until


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--nodes", type=int, default=3)
    parser.add_argument("--txs", type=int, default=10_000)
    parser.add_argument("--senders", type=int, default=200)
    parser.add_argument("--per-call", type=int, default=1000, help="transactions per tx_submit_many")
    parser.add_argument("--clients", type=int, default=2, help="concurrent RPC connections")
    args = parser.parse_args()
    per_sender = max(1, args.txs // args.senders)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        genesis, genesis_path, seeds = funded_network(work, args.senders)
        txs = presigned(genesis, seeds, per_sender)
        reference = import_rate(genesis, txs)
        nodes: list[Daemon] = []
        try:
            for i in range(args.nodes):
                bootstrap = [n.p2p_addr for n in nodes]
                nodes.append(Daemon(work / f"n{i}", genesis=str(genesis_path), bootstrap=bootstrap).start())
            for node in nodes:
                wait_until(lambda n=node: n.peers() >= 1, 60, "peering")
            time.sleep(2)  # let the gossip mesh form (heartbeat 1 s) before timing
            hexes = [tx.encode().hex() for tx in txs]
            chunks = [hexes[i : i + args.per_call] for i in range(0, len(hexes), args.per_call)]

            def submit(chunk: list[str]) -> None:
                results = nodes[0].rpc("tx_submit_many", txs=chunk)
                bad = [r for r in results if "error" in r]
                assert not bad, bad[:3]

            started = time.perf_counter()
            # two client connections, as a bulk sender would pipeline its calls
            with ThreadPoolExecutor(args.clients) as clients:
                list(clients.map(submit, chunks))
            submitted = time.perf_counter() - started
            for node in nodes[1:]:
                wait_until(lambda n=node: n.rpc("mempool_list", limit=1)["count"] >= len(txs), 300, "mempools", 0.02)
            elapsed = time.perf_counter() - started
        finally:
            for node in nodes:
                node.stop()
    rate = len(txs) / elapsed
    print(f"txs: {len(txs)} from {args.senders} senders, {args.nodes} daemons on 127.0.0.1")
    print(f"submit to node0 (RPC, {args.per_call:,} per call, {args.clients} clients): {len(txs) / submitted:,.0f} tx/s")
    print(f"network throughput (seen in all mempools): {rate:,.0f} tx/s")
    print(f"reference, chain-core block import (same txs, same run): {reference:,.0f} tx/s")
    print(f"ratio network / import: {rate / reference:.2f}   goal: >= 5,000 tx/s -> {'met' if rate >= 5000 else 'NOT met'}")


if __name__ == "__main__":
    main()
