"""Shared set-up of the network benchmarks: a funded custom devnet, daemons, pre-signed txs."""

from __future__ import annotations

import json
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from chain.chainstate import ChainState
from chain.genesis import Genesis, parse_genesis
from chain.store import LevelKV
from chain.types import Block, Transaction
from tests.support.chain_builders import (
    account_of,
    genesis_doc,
    make_block,
    numbered_seed,
    signed_transfer,
)

FEE = 10_000


def funded_network(workdir: Path, senders: int) -> tuple[Genesis, Path, list[bytes]]:
    seeds = [numbered_seed(i) for i in range(senders)]
    doc = genesis_doc(seeds, "1000000", network="benchnet")
    path = workdir / "genesis.json"
    path.write_text(json.dumps(doc))
    return parse_genesis(doc), path, seeds


def presigned(genesis: Genesis, seeds: list[bytes], per_sender: int) -> list[Transaction]:
    """Transfers interleaved across senders (nonce-major), as many independent wallets would send."""
    sink = account_of(numbered_seed(10**6))
    return [
        signed_transfer(genesis.chain_id, seed, sink, 1_000 + nonce, nonce, FEE)
        for nonce in range(per_sender)
        for seed in seeds
    ]


def import_rate(genesis: Genesis, txs: list[Transaction], per_block: int = 1000) -> float:
    """Chain-core reference: tx/s importing blocks of these txs into a fresh LevelDB store,
    signatures on 2 threads (the node's own configuration). Block building is not timed."""
    with tempfile.TemporaryDirectory() as tmp, ThreadPoolExecutor(2) as pool:
        builder = ChainState(LevelKV(Path(tmp) / "build"), genesis)
        blocks: list[Block] = []
        for start in range(0, len(txs), per_block):
            block = make_block(builder, txs[start : start + per_block])
            builder.process_block(block, block.header.timestamp)
            blocks.append(block)
        target = ChainState(LevelKV(Path(tmp) / "target"), genesis, verify_pool=pool)
        encoded = [b.encode() for b in blocks]
        started = time.perf_counter()
        for data in encoded:
            block = Block.decode(data)
            target.process_block(block, block.header.timestamp, encoded_size=len(data))
        elapsed = time.perf_counter() - started
        builder.kv.close()
        target.kv.close()
    return len(txs) / elapsed


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]
