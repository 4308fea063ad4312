"""The miner service: block templates on the event loop, nonce search in worker processes.

Hashing holds the GIL (blake2b releases it only for inputs over 2 KiB), so it runs in separate
processes, each scanning its own nonce range in short chunks. Between chunks the miner checks the
tip: when another block arrives, the template is rebuilt on top of it. The event loop never waits
on a hash.
"""

from __future__ import annotations

import logging
import random
import time
from concurrent.futures import Future, ProcessPoolExecutor
from typing import TYPE_CHECKING, Any

import trio

from chain.assembly import assemble_block
from chain.errors import ChainError
from chain.pow import NONCE_SIZE, mine
from chain.types import Block
from neurod.procpool import process_pool

if TYPE_CHECKING:
    from neurod.node import Node

log = logging.getLogger("neuro.miner")

CHUNK_NONCES = 250_000  # ~0.1 s of hashing: how stale a template can get before a tip check
MAX_TEMPLATE_TXS = 5_000


class Miner:
    def __init__(self, node: Node, reward_account: bytes, *, processes: int = 1, block_interval: float = 0.0):
        self.node = node
        self.reward_account = reward_account
        self.processes = max(1, processes)
        self.block_interval = block_interval
        self.blocks_found = 0
        self._random = random.Random()

    async def run(self, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        with process_pool(self.processes) as pool:
            task_status.started()
            try:
                while True:
                    await self._pace()
                    await self._mine_one(pool)
            finally:
                pool.shutdown(wait=False, cancel_futures=True)

    async def _pace(self) -> None:
        """Devnet pacing: wait about `block_interval` after the tip last moved (jittered so
        several local miners do not all fire at once); restart the wait when the tip moves."""
        if self.block_interval <= 0:
            return
        while True:
            tip = self.node.chain.tip_hash
            delay = self.block_interval * self._random.uniform(0.5, 1.5)
            with trio.move_on_after(delay):
                await self.node.wait_tip_change(tip)
                continue
            if self.node.chain.tip_hash == tip:
                return

    async def _mine_one(self, pool: ProcessPoolExecutor) -> None:
        node = self.node
        parent = node.chain.tip_hash
        assembled = assemble_block(
            node.chain, node.mempool.select(MAX_TEMPLATE_TXS), self.reward_account, int(time.time()),
            max_txs=MAX_TEMPLATE_TXS,
        )
        template = assembled.block
        if assembled.skipped:
            tx, error = assembled.skipped[0]
            log.info("template for block %d skips %d transactions, first %s: %s", template.header.height,
                     len(assembled.skipped), tx.txid.hex()[:16], error)
        header_bytes = template.header.encode()
        bits = template.header.bits
        start = self._random.getrandbits(63)
        started, hashes = time.monotonic(), 0
        while node.chain.tip_hash == parent:
            futures: list[Future[int | None]] = [
                pool.submit(mine, header_bytes, bits, start + i * CHUNK_NONCES, CHUNK_NONCES)
                for i in range(self.processes)
            ]
            start += self.processes * CHUNK_NONCES
            results = [await trio.to_thread.run_sync(f.result, abandon_on_cancel=True) for f in futures]
            hashes += CHUNK_NONCES * self.processes
            elapsed = time.monotonic() - started
            if elapsed > 0:
                node.metrics.hashrate.set(hashes / elapsed)
            nonce = next((n for n in results if n is not None), None)
            if nonce is None:
                if start > (1 << 64) - NONCE_SIZE * CHUNK_NONCES:
                    return  # nonce space exhausted: a new template (new timestamp) is needed
                continue
            block = Block(template.header.with_nonce(nonce), template.txs)
            log.info("mined block %d %s txs=%d", block.header.height, block.hash.hex()[:16], len(block.txs))
            try:
                await node.import_block(block, publish=True)
            except ChainError as exc:
                log.warning("mined block %s rejected: %s", block.hash.hex()[:16], exc)
                return
            self.blocks_found += 1
            return
