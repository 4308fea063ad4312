"""The chain as the p2p layer sees it: `p2p.backend.ChainBackend` over the node's chain and mempool.

Gossip validators call the cheap synchronous checks on the event loop; full validation happens in
`Node.import_block`, off the loop. Every chain rejection is turned into a `Verdict` whose kind the
p2p layer maps to a penalty for the peer that sent the data.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from typing import TYPE_CHECKING

from chain.errors import ChainError, InvalidTransaction, RejectKind, StoreError
from chain.hashing import hash256
from chain.types import Block, Header, Transaction, txid_of
from chain.validation import check_header
from neurod.market.bids import BidNotice, check_notice
from p2p.backend import ChainStatus, HeaderPlan, Outcome, Verdict

if TYPE_CHECKING:
    from neurod.node import Node


def verdict_of(exc: ChainError) -> Verdict:
    """Malformed or invalid data is the sender's fault; stale or missing data is not."""
    if exc.kind in (RejectKind.MALFORMED, RejectKind.INVALID):
        return Verdict.reject(exc.reason, exc.kind)
    return Verdict.ignore(exc.reason, exc.kind)


DECODED_BATCHES_KEPT = 64


class NodeBackend:
    def __init__(self, node: Node) -> None:
        self.node = node
        # tx batches decoded by the gossip validator, kept (by identity) for the delivery that
        # follows, so that each transaction is decoded once per node
        self._decoded: OrderedDict[int, tuple[list[bytes], list[Transaction]]] = OrderedDict()
        # blocks the gossip validator decoded, by payload hash, for the import that follows
        self._blocks: OrderedDict[bytes, Block] = OrderedDict()

    @property
    def chain_id(self) -> str:
        return self.node.chain.chain_id.hex()

    def status(self) -> ChainStatus:
        chain = self.node.chain
        return ChainStatus(chain.chain_id, chain.height, chain.tip_hash, chain.tip_meta.work)

    def locator(self) -> list[bytes]:
        return self.node.chain.locator()

    def headers_after(self, locator: list[bytes], limit: int) -> list[bytes]:
        try:
            return [h.encode() for h in self.node.chain.headers_after(locator, limit)]
        except StoreError:  # damage was reported where it was read: serve nothing wrong
            return []

    def blocks_by_hash(self, hashes: list[bytes]) -> list[bytes]:
        """The blocks we hold of ``hashes``, each verified against its hash: a damaged one is
        left out (the node's fault listener has counted and logged it)."""
        found = []
        for block_hash in hashes:
            try:
                data = self.node.chain.block_bytes(block_hash)
            except StoreError:
                continue
            if data is not None:
                found.append(data)
        return found

    def plan_headers(self, headers: list[bytes]) -> HeaderPlan:
        """Check a peer's header batch links up and carries valid PoW; list the blocks to fetch."""
        chain = self.node.chain
        needed: list[bytes] = []
        previous: Header | None = None
        try:
            for data in headers:
                header = Header.decode(data)
                check_header(header, chain.params)
                if previous is None:
                    if not chain.has_block(header.parent):
                        return HeaderPlan(Verdict.reject("headers-unconnected", RejectKind.INVALID))
                elif header.parent != previous.hash or header.height != previous.height + 1:
                    return HeaderPlan(Verdict.reject("headers-not-continuous", RejectKind.INVALID))
                if not chain.has_block(header.hash):
                    needed.append(header.hash)
                previous = header
        except ChainError as exc:
            return HeaderPlan(verdict_of(exc))
        return HeaderPlan(Verdict.accept(), needed, previous.hash if previous else None)

    def check_block(self, data: bytes) -> Verdict:
        try:
            block = Block.decode(data)
            if self.node.chain.has_block(block.hash):
                return Verdict.ignore("duplicate")
            check_header(block.header, self.node.chain.params)
        except ChainError as exc:
            self.node.metrics.blocks_rejected.labels(exc.reason).inc()
            return verdict_of(exc)
        self._blocks[hash256(data)] = block
        while len(self._blocks) > DECODED_BATCHES_KEPT:
            self._blocks.popitem(last=False)
        return Verdict.accept()

    def check_tx_batch(self, txs: list[bytes]) -> Verdict:
        """Decode every tx and check the chain id and the signatures of the unknown ones (on the
        verify workers); one bad tx rejects the batch: an honest relay never forwards one."""
        chain_id = self.node.chain.chain_id
        mempool = self.node.mempool
        fresh: list[Transaction] = []
        decoded: list[Transaction] = []
        try:
            for data in txs:
                tx = Transaction.decode(data)
                decoded.append(tx)
                if txid_of(data) in mempool:
                    continue
                if tx.chain_id != chain_id:
                    raise InvalidTransaction("bad-tx-chain-id")
                fresh.append(tx)
            if not all(self.node.signatures_valid(fresh)):
                raise InvalidTransaction("bad-tx-signature")
        except ChainError as exc:
            self.node.metrics.txs_rejected.labels(exc.reason).inc()
            return verdict_of(exc)
        if not fresh:
            return Verdict.ignore("already-known")
        self._decoded[id(txs)] = (txs, decoded)
        while len(self._decoded) > DECODED_BATCHES_KEPT:
            self._decoded.popitem(last=False)
        return Verdict.accept()

    async def import_block(self, data: bytes, origin: str | None) -> Verdict:
        try:
            block = self._blocks.pop(hash256(data), None) or Block.decode(data)
            await self.node.import_block(block, encoded_size=len(data))
        except ChainError as exc:
            return verdict_of(exc)
        return Verdict.accept()

    async def import_blocks(self, blocks: list[bytes], origin: str | None) -> list[Verdict]:
        outcomes = await self.node.import_blocks(blocks)
        return [verdict_of(o) if isinstance(o, ChainError) else Verdict.accept() for o in outcomes]

    async def accept_tx_batch(self, txs: list[bytes], origin: str | None) -> Verdict:
        """Admit a batch the validator checked (signatures included) to the mempool."""
        kept = self._decoded.pop(id(txs), None)
        if kept is not None and kept[0] is txs:
            pairs = zip(txs, kept[1])
        else:  # not seen by our validator: check everything here
            verdict = self.check_tx_batch(txs)
            if verdict.outcome is not Outcome.ACCEPT:
                return verdict
            pairs = zip(txs, self._decoded.pop(id(txs))[1])
        for data, tx in pairs:
            try:
                self.node.add_transaction(tx, encoded=data, checked=True)
            except ChainError as exc:
                if exc.kind in (RejectKind.MALFORMED, RejectKind.INVALID):
                    return verdict_of(exc)
        return Verdict.accept()

    # ---- bids (neurod/market/bids.py) --------------------------------------------------------

    def check_bid(self, data: bytes, author: str) -> Verdict:
        """Decode a gossiped `BidNotice` and judge it; an undecodable one is malformed."""
        try:
            notice = BidNotice.decode(data)
        except ChainError as exc:
            self.node.metrics.bids_rejected.labels(exc.reason).inc()
            return verdict_of(exc)
        return self.judge_bid(notice, author)

    def judge_bid(self, notice: BidNotice, author: str) -> Verdict:
        """`check_notice` against our tip and mempool, then the book's own limits: a bid it
        holds already is ignored, and so is one over its worker's rate (spent only here, once
        everything else, the signature included, passed)."""
        node = self.node
        if node.bids.knows(notice.bid_id):
            verdict = Verdict.ignore("bid-known", RejectKind.STALE)
        else:
            verdict = check_notice(notice, author, node.chain, node.chain.params.market, node.mempool.has_pending)
            if verdict.accepted and not node.bids.allow_worker(notice.bid.worker_account, time.monotonic()):
                verdict = Verdict.ignore("bid-worker-rate", RejectKind.LOCAL)
        if verdict.accepted:
            node.metrics.bids_accepted.inc()
        else:
            node.metrics.bids_rejected.labels(verdict.reason).inc()
        return verdict

    async def accept_bid(self, data: bytes, origin: str | None) -> None:
        """Delivery of a bid the validator accepted: into the node's book."""
        try:
            notice = BidNotice.decode(data)
        except ChainError:  # the validator decoded the same bytes: cannot happen
            return
        self.node.bids.add(notice)
