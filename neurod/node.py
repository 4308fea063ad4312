"""`Node`: the composition root. Opens the store, wires chain, mempool, p2p, miner and RPC, and
runs them as services of one nursery under the daemon's single `trio.run`.

The chain state has one writer: `import_block` serialises imports with a lock and runs each in a
worker thread (signature checks there use both cores), so gossip and RPC stay responsive while a
large block validates. Readers on the event loop see the previous tip until the commit lands.
"""

from __future__ import annotations

import gc
import json
import logging
import os
import time
from contextlib import AbstractContextManager
from typing import Any

import trio

from chain.assembly import check_against_tip
from chain.chainstate import ChainState, ImportResult
from chain.crypto import decode_address, verify_many
from chain.errors import ChainError
from chain.genesis import Genesis, load_genesis
from chain.market_types import Bid
from chain.sigpool import SignaturePool
from chain.store import LevelKV
from chain.storecheck import CheckReport, check_recent, check_store
from chain.types import Block, Transaction
from chain.validation import bid_signature_items
from neurod.adjudicator import RenderAdjudicator
from neurod.artifact_backend import StoreArtifacts
from neurod.artifact_store import store_of
from neurod.backend import NodeBackend
from neurod.config import NodeConfig
from neurod.datadir import NODE_INFO_FILE, NODE_KEY_FILE, load_or_create_node_key
from neurod.listings.service import Listings
from neurod.market.bids import MAX_ADDRS, BidBook, BidNotice, BidRejected, biddable
from neurod.mempool import Mempool, MempoolLimits
from neurod.mempool_store import MempoolStore, restore
from neurod.metrics import NodeMetrics
from neurod.miner import Miner
from neurod.rpc import AuthFailures, RpcApp, serve_rpc, write_cookie
from neurod.rpc_methods import RpcMethods
from neurod.ui.app import Dashboard
from neurod.unbroadcast import Unbroadcast
from p2p.config import P2PConfig
from p2p.limits import ConnectionLimits
from p2p.node import P2P

log = logging.getLogger("neuro.node")

MAINTENANCE_INTERVAL = 30.0
REANNOUNCE_TICK = 1.0  # how often the node's own unmined transactions are checked for a re-announcement
MEMPOOL_SAVE_INTERVAL = 600.0  # mempool.dat rewritten, journal emptied (sooner if the journal fills)


class Node:
    def __init__(self, config: NodeConfig, genesis: Genesis | None = None) -> None:
        self.config = config
        self.datadir = config.datadir
        self.genesis = genesis or load_genesis(config.genesis_source)
        self.metrics = NodeMetrics()
        # Signature checks run in worker processes, which share no GIL with the import thread:
        # a block's checks overlap its state transition. Started on the first batch big enough
        # to need them (64 signatures), so an idle node runs no extra processes.
        self._verify_pool = SignaturePool(config.verify_workers)
        self.store_read_errors = 0  # stored values found damaged since start (node_status says)
        self.kv = LevelKV(self.datadir / "chain", verify_checksums=config.verify_checksums)
        try:
            self.chain = ChainState(self.kv, self.genesis, verify_pool=self._verify_pool,
                                    adjudicator=RenderAdjudicator())
            checked = check_recent(self.chain, config.check_blocks)
        except BaseException:  # the refusal is the operator's one line: nothing logged before it
            self.kv.close()
            self._verify_pool.close()
            raise
        # from here on a damaged read is logged and counted where it happens
        self.kv.on_fault = self.chain.on_fault = self._store_fault
        self.metrics.store_check_blocks.set(checked.blocks)
        self.metrics.store_check_seconds.set(checked.seconds)
        log.info("store check: tip %d, last %d blocks and their undo data verified in %.3f s",
                 self.chain.height, checked.blocks, checked.seconds)
        self.mempool = Mempool(
            self.chain, self.chain.chain_id,
            MempoolLimits.scaled(config.mempool_max_txs, min_fee=config.min_fee), observer=self.metrics,
        )
        # every mempool tx had its signature checked on admission: blocks skip re-checking them
        self.chain.verified_txids = self.mempool
        self._mempool_save_due = trio.Event()
        self.mempool_store = MempoolStore(
            self.datadir, self.chain.chain_id, on_journal_full=lambda: self._mempool_save_due.set()
        )
        self.unbroadcast = Unbroadcast()  # own transactions, announced again until mined
        self._restore_mempool()
        self.node_key = load_or_create_node_key(self.datadir / NODE_KEY_FILE)
        self.backend = NodeBackend(self)
        self.bids = BidBook()  # bids seen on the bids topic (and our own), by job
        self.artifacts = StoreArtifacts(
            store_of(self.datadir, config.artifact_budget_mb << 20), serve=config.artifact_serve
        )
        self.p2p = P2P(
            P2PConfig(
                data_dir=self.datadir, listen=config.resolved_listen(), bootstrap=list(config.bootstrap),
                status_interval=config.status_interval, redial_interval=config.redial_interval,
                observer=self.metrics,
                limits=ConnectionLimits(
                    max_inbound=config.max_inbound, max_inbound_per_ip=config.max_inbound_per_ip,
                    max_pending=config.max_pending_inbound, max_pending_per_ip=config.max_pending_per_ip,
                ),
                connection_observer=self.metrics,
            ),
            self.backend,
            on_bid=self.backend.accept_bid,
            artifacts=self.artifacts,
        )
        self.miner: Miner | None = None
        if config.mine:
            reward = (
                decode_address(config.miner_address, self.chain.params.hrp)
                if config.miner_address else self.node_key.account_id
            )
            self.miner = Miner(self, reward, processes=config.mining_processes, block_interval=config.block_interval)
        from neurod.market.agents import Agents

        self.agents = Agents.from_config(self)  # the market agents this node runs (none without a key)
        self.listings = Listings(self)  # what this node sells, and purchases it receives
        self._import_lock = trio.Lock()
        self._tip_changed = trio.Event()
        self.rpc_url = ""

    def _store_fault(self, error: ChainError) -> None:
        """A stored value read back damaged or unreadable. The read that found it fails, so the
        value is neither served nor built on; the node keeps serving what is intact and the
        operator is told, once per read, how to repair the store."""
        self.store_read_errors += 1
        self.metrics.store_faults.labels(error.reason).inc()
        log.error("chain store damaged: %s; stop the node and run `neurod --reindex`", error)

    def verify_db(self) -> CheckReport:
        """`check_store` over a LevelDB snapshot of the running node's store (blocks go on
        importing meanwhile); slow on a long chain, so callers run it in a thread."""
        snapshot = self.kv.snapshot()
        try:
            return check_store(ChainState(snapshot, self.genesis, on_fault=self._store_fault,
                                          adjudicator=RenderAdjudicator()))
        finally:
            snapshot.close()

    # ---- chain events --------------------------------------------------------------------

    async def wait_tip_change(self, tip: bytes) -> None:
        while self.chain.tip_hash == tip:
            await self._tip_changed.wait()

    async def import_block(self, block: Block, *, encoded_size: int | None = None, publish: bool = False) -> ImportResult:
        """Validate and store a block off the event loop; update mempool and watchers."""
        async with self._import_lock:
            try:
                result = await trio.to_thread.run_sync(
                    lambda: self.chain.process_block(block, int(time.time()), encoded_size=encoded_size)
                )
            except ChainError as exc:
                self.metrics.blocks_rejected.labels(exc.reason).inc()
                raise
        self._imported(result)
        if publish:
            await self.p2p.publish_block(block.encode())
        return result

    async def import_blocks(self, blocks: list[bytes]) -> list[ImportResult | ChainError]:
        """A sync batch, encoded: `ChainState.process_blocks` off the event loop (the next
        blocks' signatures are checked while each one connects), then the same bookkeeping."""
        async with self._import_lock:
            outcomes = await trio.to_thread.run_sync(lambda: self.chain.process_blocks(blocks, int(time.time())))
        for outcome in outcomes:
            if isinstance(outcome, ChainError):
                self.metrics.blocks_rejected.labels(outcome.reason).inc()
            else:
                self._imported(outcome)
        return outcomes

    def _imported(self, result: ImportResult) -> None:
        self.metrics.blocks_imported.inc()
        if not result.tip_changed:
            return
        now = time.time()
        for undone in result.disconnected:
            self.mempool.on_block_disconnected(undone, now)
        for done in result.connected:
            self.mempool.on_block_connected(done)
        for tx, error in self.mempool.drop_unminable(lambda tx: check_against_tip(self.chain, tx)):
            log.info("mempool: dropped %s (%s from %s), no longer valid: %s", tx.txid.hex()[:16],
                     type(tx.payload).__name__, tx.sender_account.hex()[:8], error)
        if result.disconnected:
            self.metrics.reorgs.inc()
            self.mempool.revalidate()
            log.info("reorg: -%d +%d blocks, tip %d", len(result.disconnected), len(result.connected), self.chain.height)
        log.info("new tip %d %s txs=%d", self.chain.height, self.chain.tip_hash.hex()[:16], len(result.connected[-1].txs))
        self.bids.prune(self.chain.height, self._still_biddable)
        self._tip_changed.set()
        self._tip_changed = trio.Event()

    def signatures_valid(self, txs: list[Transaction]) -> list[bool]:
        """Batch signature check on the verify worker processes: a tx is valid when its own
        signature and those of the bids it carries (an award) all are."""
        items, owners = [], []
        for index, tx in enumerate(txs):
            for item in [(tx.sender, tx.signing_message(), tx.signature), *bid_signature_items(tx)]:
                items.append(item)
                owners.append(index)
        valid = [True] * len(txs)
        for owner, ok in zip(owners, verify_many(items, self._verify_pool), strict=True):
            valid[owner] = valid[owner] and ok
        return valid

    def add_transaction(
        self, tx: Transaction, *, encoded: bytes | None = None, checked: bool = False, local: bool = False
    ) -> bytes:
        """Admit ``tx`` to the mempool; ``local`` (submitted through this node's RPC) also
        journals it, so that a kill before the next mempool snapshot does not lose it."""
        now = time.time()
        encoded = encoded if encoded is not None else tx.encode()
        try:
            check_against_tip(self.chain, tx)  # market rules; a transfer costs nothing here
            txid = self.mempool.add(tx, now, encoded=encoded, checked=checked)
        except ChainError as exc:
            self.metrics.txs_rejected.labels(exc.reason).inc()
            raise
        self.metrics.txs_accepted.inc()
        if local:  # the caller publishes it now; announced again until a block carries it
            self.mempool_store.record(encoded, now)
            self.unbroadcast.add(txid, now)
        return txid

    def journal_batch(self) -> AbstractContextManager[None]:
        """Journal the local transactions admitted inside in one write, when the block exits
        (tx_submit_many: 5,000 transactions, one write), and always before the caller replies."""
        return self.mempool_store.batch()

    async def submit_transaction(self, tx: Transaction, encoded: bytes) -> bytes:
        """A transaction from a local client: admit it, then gossip it (batched)."""
        txid = self.add_transaction(tx, encoded=encoded, local=True)
        await self.p2p.publish_txs([encoded])
        return txid

    # ---- bids (neurod/market/bids.py) ----------------------------------------------------

    def _still_biddable(self, job_id: bytes) -> bool:
        job = self.chain.job(job_id)
        return job is not None and biddable(job, self.chain.height)

    def notice_of(self, bid: Bid) -> BidNotice:
        """The notice that publishes ``bid`` as this node's: its peer id and listen addresses."""
        return BidNotice(bid, self.p2p.peer_id, tuple(self.p2p.listen_addrs()[:MAX_ADDRS]))

    async def submit_bid(self, notice: BidNotice) -> bytes:
        """A bid from a local worker (RPC, worker agent): the checks every relay runs, with this
        node as the publishing peer; then into the book and onto the bids topic. Returns the bid
        id; raises `BidRejected` with the check's reason."""
        verdict = self.backend.judge_bid(notice, self.p2p.peer_id)
        if not verdict.accepted:
            raise BidRejected(verdict.reason, kind=verdict.kind)
        self.bids.add(notice)
        await self.p2p.publish_bid(notice.encode())
        return notice.bid_id

    # ---- service -------------------------------------------------------------------------

    async def run(self, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        cookie = write_cookie(self.datadir)
        methods = RpcMethods(self).table()
        failures = AuthFailures()  # one budget for the JSON-RPC and the dashboard's login

        def count_failure(outcome: str) -> None:
            self.metrics.rpc_auth_failures.labels(outcome).inc()

        dashboard = Dashboard(methods, cookie, failures, count_failure, lambda: self.rpc_url)
        app = RpcApp(
            {**methods, **dashboard.rpc_methods()}, cookie, self._render_metrics,
            auth_failures=failures, on_auth_failure=count_failure, ui=dashboard,
        )
        try:
            async with trio.open_nursery() as nursery:
                await nursery.start(self.p2p.run)
                self.rpc_url = await nursery.start(serve_rpc, app, self.config.rpc_host, self.config.resolved_rpc_port())
                if self.miner is not None:
                    await nursery.start(self.miner.run)
                nursery.start_soon(self._maintenance)
                nursery.start_soon(self._save_mempool_periodically)
                nursery.start_soon(self._announce_own_transactions)
                await self.agents.start(nursery)
                await nursery.start(self.listings.run)
                self._write_node_info()
                # What start-up built (modules, libp2p, hypercorn: ~100k objects) lives as long as
                # the node: leave it out of the cyclic GC, whose full passes over it stalled the
                # event loop 50-140 ms under an RPC flood (bench/rpc_flood.py).
                gc.freeze()
                log.info(
                    "neurod up: network=%s height=%d rpc=%s p2p=%s", self.chain.params.network,
                    self.chain.height, self.rpc_url, ",".join(self.p2p.listen_addrs()),
                )
                task_status.started(self)
        finally:
            self._remove_node_info()

    def _render_metrics(self) -> bytes:
        """Gauges are read from their source at scrape time, so they are never stale."""
        self.metrics.height.set(self.chain.height)
        self.metrics.peers.set(len(self.p2p.peers()))
        for direction, count in self.p2p.connection_counts().items():
            self.metrics.connections.labels(direction).set(count)
        self.metrics.mempool.set(len(self.mempool))
        pool = self.mempool.stats()
        for kind, count, size in (("pending", pool.pending, pool.pending_bytes), ("queued", pool.queued, pool.queued_bytes)):
            self.metrics.mempool_kind.labels(kind).set(count)
            self.metrics.mempool_bytes.labels(kind).set(size)
        driver = self.p2p.driver
        for event, count in (("round", driver.rounds_done), ("stall", driver.stalls), ("rotation", driver.rotations)):
            self.metrics.sync_events.labels(event).set(count)
        return self.metrics.render()

    async def _maintenance(self) -> None:
        while True:
            await trio.sleep(MAINTENANCE_INTERVAL)
            self.mempool.expire(time.time())

    async def _announce_own_transactions(self) -> None:
        """Publish again the node's own transactions that are due (neurod/unbroadcast.py); with
        no peer connected nothing is due, so a restored transaction waits for the first peer."""
        while True:
            await trio.sleep(REANNOUNCE_TICK)
            if not self.p2p.peers():
                continue
            due = self.unbroadcast.take_due(time.time(), self.mempool.__contains__)
            if due:
                await self.p2p.publish_txs(self.mempool.encoded(due))

    # ---- mempool persistence (neurod/mempool_store.py) -----------------------------------

    def _restore_mempool(self) -> None:
        """Re-admit what the last run saved and journaled, then snapshot the result at once: the
        journal is emptied, and what failed re-validation is not read again at the next start."""
        report = restore(self.mempool, self.mempool_store.load(), self.signatures_valid, time.time())
        self.mempool_store.save(self.mempool.entries())
        # what the last run held may never have left this node (killed before its gossip batch)
        self.unbroadcast.add_all(self.mempool.txids(), time.time())
        log.info("mempool: %s", report)

    async def _save_mempool_periodically(self) -> None:
        """Rewrite mempool.dat every MEMPOOL_SAVE_INTERVAL, or as soon as the journal passes its
        bound, so the journal stays small. The write runs in a thread while RPC calls go on
        journaling into a fresh journal (`MempoolStore.rotate_journal`)."""
        while True:
            with trio.move_on_after(MEMPOOL_SAVE_INTERVAL):
                await self._mempool_save_due.wait()
            self._mempool_save_due = trio.Event()
            await self.save_mempool()

    async def save_mempool(self) -> None:
        """Snapshot the mempool as it is now, written in a thread while journaling goes on."""
        self.mempool_store.rotate_journal()
        await trio.to_thread.run_sync(self.mempool_store.write_snapshot, self.mempool.entries())

    def _write_node_info(self) -> None:
        info = {
            "rpc_url": self.rpc_url, "pid": os.getpid(), "p2p_addrs": self.p2p.listen_addrs(),
            "peer_id": self.p2p.peer_id, "network": self.chain.params.network,
            "chain_id": self.chain.chain_id.hex(),
        }
        path = self.datadir / NODE_INFO_FILE
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(info, indent=2))
        os.replace(tmp, path)

    def _remove_node_info(self) -> None:
        try:
            (self.datadir / NODE_INFO_FILE).unlink()
        except FileNotFoundError:
            pass

    def close(self) -> None:
        if self.mempool_store.save(self.mempool.entries()):
            log.info("mempool: %d transactions saved to %s", len(self.mempool), self.mempool_store.snapshot_path.name)
        self.mempool_store.close()
        self.kv.close()
        self._verify_pool.close()
