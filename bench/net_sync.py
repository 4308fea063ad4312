"""Sync: a daemon with an empty store catches up 2,000 blocks from a peer.

The chain is pre-built into the source daemon's LevelDB (blocks of `--txs` transfers); the figure is
blocks/s from the fresh daemon's start until its tip equals the source's. Reference, same run:
importing the same blocks locally, from disk, into a fresh LevelDB store in one process.
Goal: ratio >= 0.5.

    python bench/net_sync.py [--blocks 2000] [--txs 10]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from net_common import funded_network, presigned

from chain.chainstate import ChainState
from chain.store import LevelKV
from chain.types import Block
from tests.support.chain_builders import prebuilt_chain
from tests.support.daemons import Daemon, wait_until


def build_chain(genesis, seeds, datadir: Path, blocks: int, txs_per_block: int) -> list[bytes]:
    txs = presigned(genesis, seeds, -(-blocks * txs_per_block // len(seeds))) if txs_per_block else []
    return prebuilt_chain(genesis, datadir, blocks, txs, txs_per_block)[0]


def local_import_rate(genesis, blocks: list[bytes], path: Path) -> float:
    with ThreadPoolExecutor(2) as pool:
        chain = ChainState(LevelKV(path), genesis, verify_pool=pool)
        started = time.perf_counter()
        for data in blocks:
            chain.process_block(Block.decode(data), int(time.time()), encoded_size=len(data))
        elapsed = time.perf_counter() - started
        chain.kv.close()
    return len(blocks) / elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--blocks", type=int, default=2000)
    parser.add_argument("--txs", type=int, default=10, help="transfers per block")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        genesis, genesis_path, seeds = funded_network(work, 200)
        blocks = build_chain(genesis, seeds, work / "source", args.blocks, args.txs)
        reference = local_import_rate(genesis, blocks, work / "local")
        source = Daemon(work / "source", genesis=str(genesis_path)).start()
        try:
            assert source.height() == args.blocks
            fresh = Daemon(work / "fresh", genesis=str(genesis_path), bootstrap=[source.p2p_addr])
            started = time.perf_counter()
            fresh.start()
            wait_until(lambda: fresh.height() >= args.blocks, 600, "sync", 0.05)
            elapsed = time.perf_counter() - started
            assert fresh.tip() == source.tip()
            fresh.stop()
        finally:
            source.stop()
    rate = args.blocks / elapsed
    print(f"sync of {args.blocks} blocks ({args.txs} transfers each) from one peer: {elapsed:.1f} s, {rate:,.0f} blocks/s")
    print(f"reference, local import of the same blocks from disk: {reference:,.0f} blocks/s")
    print(f"ratio sync / local import: {rate / reference:.2f}   goal >= 0.5 -> {'met' if rate / reference >= 0.5 else 'NOT met'}")
    print("(the sync figure includes the fresh daemon's start-up, about 1-2 s of libp2p import and handshake)")


if __name__ == "__main__":
    main()
