"""The JSON-RPC methods of docs/rpc.md, over a running `Node`.

Every integer param is checked against a range before use: JSON integers are unbounded, and a
height of 2^64 used to reach the store's 8-byte key encoding and fail there with OverflowError.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import trio

from chain.amounts import format_ntk
from chain.crypto import AddressError, decode_address, encode_address
from chain.errors import ChainError, InvalidTransaction
from chain.hashing import HASH_SIZE
from chain.market_types import Bid
from chain.types import Block, Header, Transaction, Transfer
from neurod import market_json
from neurod.account_history import full_history
from neurod.id_rpc import id_methods
from neurod.listings.rpc import listing_methods
from neurod.market.bids import BidNotice
from neurod.market.rpc import market_methods
from neurod.rpc import INVALID_PARAMS, Method, RpcError, in_slices
from neurod.treasury_rpc import supply_json, treasury_methods
from p2p.errors import P2PError

if TYPE_CHECKING:
    from neurod.node import Node

TX_REJECTED, NOT_FOUND, BAD_ADDRESS, CONNECT_FAILED, BID_REJECTED = -32010, -32011, -32012, -32013, -32014
VERSION = "neurod/0.1.0"
MAX_SUBMIT_MANY = 5_000
MAX_HEIGHT = (1 << 64) - 1  # heights are stored as 8-byte keys (chain/schema.py)
MAX_HISTORY = 1_000  # account_history rows in one reply
MAX_MEMPOOL_LIST = 10_000  # mempool_list txids in one reply (`count` always tells the total)
MAX_FETCH_SOURCES = 32
MAX_JOBS = 1_000  # job_list rows in one reply
MAX_EVENTS = 1_000  # market_events rows in one reply


def _hex(value: Any, name: str, size: int | None = None) -> bytes:
    if not isinstance(value, str):
        raise RpcError(INVALID_PARAMS, f"{name} must be a hex string")
    try:
        raw = bytes.fromhex(value.removeprefix("0x"))
    except ValueError:
        raise RpcError(INVALID_PARAMS, f"{name} is not valid hex") from None
    if size is not None and len(raw) != size:
        raise RpcError(INVALID_PARAMS, f"{name} must be {size} bytes")
    return raw


def _int_param(value: Any, name: str, low: int, high: int) -> int:
    """``value`` if it is an integer in [low, high], else -32602 naming the param."""
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise RpcError(INVALID_PARAMS, f"{name} must be an integer in [{low}, {high}]", {"param": name})
    return value


class RpcMethods:
    def __init__(self, node: Node) -> None:
        self.node = node
        self.hrp = node.chain.params.hrp

    def table(self) -> dict[str, Method]:
        return {
            "node_status": self.node_status, "node_peers": self.node_peers, "node_bans": self.node_bans,
            "chain_head": self.chain_head, "chain_block": self.chain_block, "chain_tx": self.chain_tx,
            "chain_supply": self.chain_supply, "account_get": self.account_get,
            "account_history": self.account_history, "tx_submit": self.tx_submit,
            "mempool_list": self.mempool_list, "mempool_info": self.mempool_info,
            "tx_submit_many": self.tx_submit_many, "node_connect": self.node_connect,
            "node_verify_db": self.node_verify_db,
            "artifact_fetch": self.artifact_fetch, "artifact_progress": self.artifact_progress,
            "job_get": self.job_get, "job_list": self.job_list, "stake_get": self.stake_get,
            "market_events": self.market_events, "bid_submit": self.bid_submit, "bid_list": self.bid_list,
            **market_methods(self.node),
            **treasury_methods(self.node),
            **listing_methods(self.node),
            **id_methods(self.node),
        }

    # ---- rendering -------------------------------------------------------------------------

    def _address(self, account_id: bytes) -> str:
        return encode_address(account_id, self.hrp)

    def _account_param(self, address: Any) -> bytes:
        if not isinstance(address, str):
            raise RpcError(INVALID_PARAMS, "address must be a string")
        try:
            return decode_address(address, self.hrp)
        except AddressError as exc:
            raise RpcError(BAD_ADDRESS, str(exc), {"reason": exc.reason}) from None

    def header_json(self, header: Header) -> dict[str, Any]:
        meta = self.node.chain.meta(header.hash)
        return {
            "hash": header.hash.hex(), "version": header.version, "height": header.height,
            "parent": header.parent.hex(), "timestamp": header.timestamp, "bits": f"{header.bits:08x}",
            "tx_root": header.tx_root.hex(), "state_root": header.state_root.hex(),
            "miner": self._address(header.miner), "nonce": header.nonce.hex(), "work": str(meta.work),
        }

    def tx_json(self, tx: Transaction) -> dict[str, Any]:
        """The envelope, then the payload's kind and fields (`neurod.market_json.payload_json`)."""
        payload = market_json.payload_json(tx.payload, self.hrp)
        return {
            "txid": tx.txid.hex(), "kind": payload.pop("kind"), "chain_id": tx.chain_id.hex(),
            "from": self._address(tx.sender_account), "sender_pubkey": tx.sender.hex(),
            "nonce": tx.nonce, "fee": tx.fee, "fee_ntk": format_ntk(tx.fee),
            "signature": tx.signature.hex(), **payload,
        }

    def _job_param(self, job: Any) -> bytes:
        return _hex(job, "job", HASH_SIZE)

    # ---- methods -------------------------------------------------------------------------

    async def node_status(self) -> dict[str, Any]:
        node, chain = self.node, self.node.chain
        return {
            "network": chain.params.network, "chain_id": chain.chain_id.hex(), "version": VERSION,
            "height": chain.height, "tip": chain.tip_hash.hex(), "peers": len(node.p2p.peers()),
            "mempool": len(node.mempool), "mining": node.miner is not None, "hrp": self.hrp,
            "peer_id": node.p2p.peer_id, "p2p_addrs": node.p2p.listen_addrs(),
            "store_read_errors": node.store_read_errors,
        }

    async def node_verify_db(self) -> dict[str, Any]:
        """The whole-store check (`neurod --check-db`) on a snapshot of the running node's store,
        in a worker thread: blocks go on importing, and other calls are answered meanwhile."""
        report = await trio.to_thread.run_sync(self.node.verify_db)
        return {
            "ok": report.ok, "blocks": report.blocks, "txs": report.txs, "accounts": report.accounts,
            "supply": report.supply, "state_root": report.state_root, "seconds": report.seconds,
            "problems": [{"reason": p.reason, "detail": p.detail} for p in report.problems],
        }

    async def node_peers(self) -> list[dict[str, Any]]:
        return [
            {"peer_id": p.peer_id, "addrs": p.addrs, "direction": p.direction, "score": p.score, "height": p.height}
            for p in self.node.p2p.peers()
        ]

    async def node_bans(self) -> list[dict[str, Any]]:
        """Peers banned now (for misbehaviour or by hand), soonest expiry first."""
        now = time.time()
        bans = sorted(self.node.p2p.bans.banned(now).items(), key=lambda item: item[1])
        return [{"peer_id": peer, "until": until, "seconds_left": round(until - now, 1)} for peer, until in bans]

    async def node_connect(self, addr: Any) -> dict[str, Any]:
        if not isinstance(addr, str) or "/p2p/" not in addr:
            raise RpcError(INVALID_PARAMS, "addr must be a multiaddr ending in /p2p/<peer id>")
        try:
            peer = await self.node.p2p.connect(addr)
        except P2PError as exc:
            raise RpcError(CONNECT_FAILED, f"connect failed: {exc}", {"reason": exc.reason}) from None
        return {"peer_id": peer}

    async def chain_head(self) -> dict[str, Any]:
        return self.header_json(self.node.chain.tip_header)

    async def chain_block(self, id: Any) -> dict[str, Any]:
        chain = self.node.chain
        if isinstance(id, int) and not isinstance(id, bool):
            block_hash = chain.hash_at(_int_param(id, "id", 0, MAX_HEIGHT))
            if block_hash is None:
                raise RpcError(NOT_FOUND, f"no block at height {id}", {"reason": "unknown-block"})
        else:
            block_hash = _hex(id, "id", 32)
        data = chain.block_bytes(block_hash)
        if data is None:
            raise RpcError(NOT_FOUND, f"unknown block {block_hash.hex()}", {"reason": "unknown-block"})
        block = Block.decode(data, max_size=1 << 30)
        return {
            "hash": block_hash.hex(), "height": block.header.height, "header": self.header_json(block.header),
            "txs": [self.tx_json(tx) for tx in block.txs], "size": len(data),
            "main_chain": chain.hash_at(block.header.height) == block_hash,
        }

    async def chain_tx(self, txid: Any) -> dict[str, Any]:
        raw = _hex(txid, "txid", 32)
        chain = self.node.chain
        location = chain.tx_location(raw)
        if location is not None:
            block_hash, index = location
            block = chain.block(block_hash)
            height = block.header.height
            return {
                "tx": self.tx_json(block.txs[index]), "status": "confirmed", "block_hash": block_hash.hex(),
                "height": height, "index": index, "confirmations": chain.height - height + 1,
            }
        pending = self.node.mempool.get(raw)
        if pending is not None:
            return {"tx": self.tx_json(pending), "status": "pending", "block_hash": None,
                    "height": None, "index": None, "confirmations": 0}
        raise RpcError(NOT_FOUND, f"unknown transaction {raw.hex()}", {"reason": "unknown-tx"})

    async def chain_supply(self) -> dict[str, Any]:
        return supply_json(self.node.chain)

    async def account_get(self, address: Any) -> dict[str, Any]:
        account_id = self._account_param(address)
        account = self.node.chain.account(account_id)
        balance = account.balance if account else 0
        return {
            "address": address, "balance": balance, "balance_ntk": format_ntk(balance),
            "nonce": account.nonce if account else 0,
            "pending_nonce": self.node.mempool.pending_nonce(account_id),
            **market_json.account_stake_fields(account),
        }

    async def account_history(self, address: Any, limit: Any = 50) -> list[dict[str, Any]]:
        account_id = self._account_param(address)
        limit = _int_param(limit, "limit", 1, MAX_HISTORY)
        chain = self.node.chain
        rows = []
        for height, index, txid in chain.history(account_id, limit):
            block_hash = chain.hash_at(height)
            if block_hash is None:
                continue
            tx = chain.block(block_hash).txs[index]
            out = self.tx_json(tx)
            to = tx.payload.to if isinstance(tx.payload, Transfer) else None
            sent, received = tx.sender_account == account_id, to == account_id
            direction = "self" if sent and received else ("out" if sent else "in")
            rows.append({**out, "height": height, "index": index, "direction": direction})
        return await full_history(chain, account_id, rows, limit, self.hrp)  # with rewards and market events

    async def tx_submit(self, tx: Any) -> dict[str, Any]:
        raw = _hex(tx, "tx")
        try:
            decoded = Transaction.decode(raw)
            txid = await self.node.submit_transaction(decoded, raw)
        except ChainError as exc:  # DecodeError included
            raise RpcError(TX_REJECTED, f"transaction rejected: {exc}", {"reason": exc.reason}) from None
        return {"txid": txid.hex()}

    async def tx_submit_many(self, txs: Any) -> list[dict[str, Any]]:
        """Many transactions in one call (bulk senders); one result or error object per tx,
        and one gossip batch for all the admitted ones.

        5,000 transactions are a lot of work for the one event loop: decoding and admission run
        in slices (`in_slices`) and the signatures are checked on the verify workers from a
        thread, so other requests are answered meanwhile. Admission stays on the event loop
        thread: the mempool is not thread-safe.
        """
        if not isinstance(txs, list) or not 1 <= len(txs) <= MAX_SUBMIT_MANY:
            raise RpcError(INVALID_PARAMS, f"txs must be a list of 1 to {MAX_SUBMIT_MANY} hex strings")
        results: list[dict[str, Any]] = [{} for _ in txs]
        decoded = await self._decode_many(txs, results)
        signed: list[bool] = []
        if decoded:  # junk only: no thread to start
            signed = await trio.to_thread.run_sync(self.node.signatures_valid, [tx for _, _, tx in decoded])
        admitted = await self._admit_many(decoded, signed, results)
        if admitted:
            await self.node.p2p.publish_txs(admitted)
        return results

    async def _decode_many(
        self, txs: list[Any], results: list[dict[str, Any]]
    ) -> list[tuple[int, bytes, Transaction]]:
        """(index, encoding, transaction) of each item that decodes; the others' errors go to
        ``results``."""
        decoded: list[tuple[int, bytes, Transaction]] = []
        async for index, item in in_slices(enumerate(txs)):
            try:
                raw = _hex(item, "tx")
                decoded.append((index, raw, Transaction.decode(raw)))
            except RpcError as exc:
                results[index] = {"error": exc.message, "reason": "invalid-params"}
            except ChainError as exc:
                results[index] = {"error": str(exc), "reason": exc.reason}
        return decoded

    async def _admit_many(
        self, decoded: list[tuple[int, bytes, Transaction]], signed: list[bool], results: list[dict[str, Any]]
    ) -> list[bytes]:
        """Admit the signed ones to the mempool as local transactions, journaled in one write
        before the call replies; returns their encodings."""
        admitted: list[bytes] = []
        with self.node.journal_batch():
            async for (index, raw, tx), valid in in_slices(zip(decoded, signed)):
                try:
                    if not valid:
                        raise InvalidTransaction("bad-tx-signature")
                    txid = self.node.add_transaction(tx, encoded=raw, checked=True, local=True)
                except ChainError as exc:
                    results[index] = {"error": str(exc), "reason": exc.reason}
                else:
                    admitted.append(raw)
                    results[index] = {"txid": txid.hex()}
        return admitted

    async def mempool_list(self, limit: Any = 100) -> dict[str, Any]:
        limit = _int_param(limit, "limit", 1, MAX_MEMPOOL_LIST)
        txids = self.node.mempool.txids()
        return {"count": len(txids), "txs": [t.hex() for t in txids[:limit]]}

    async def mempool_info(self) -> dict[str, Any]:
        """The mempool's size by kind (pending: minable now; queued: behind a nonce gap) and its
        limits (neurod/mempool.py)."""
        mempool = self.node.mempool
        stats, limits = mempool.stats(), mempool.limits
        return {
            "count": len(mempool), "bytes": stats.pending_bytes + stats.queued_bytes,
            "pending": stats.pending, "pending_bytes": stats.pending_bytes,
            "queued": stats.queued, "queued_bytes": stats.queued_bytes,
            "max_txs": limits.max_txs, "max_bytes": limits.max_bytes, "max_per_sender": limits.max_per_sender,
            "max_queued": limits.max_queued, "max_queued_per_sender": limits.max_queued_per_sender,
            "min_fee": limits.min_fee,
        }

    # ---- market (chain/market_rules.py) --------------------------------------------------------

    async def job_get(self, job: Any) -> dict[str, Any]:
        job_id = self._job_param(job)
        chain = self.node.chain
        found = chain.job(job_id)
        if found is None:
            raise RpcError(NOT_FOUND, f"unknown job {job_id.hex()}", {"reason": "unknown-job"})
        return market_json.job_json(job_id, found, chain.job_spec(job_id), self.hrp, chain.height)

    async def job_list(
        self, client: Any = None, worker: Any = None, status: Any = None, limit: Any = 100
    ) -> list[dict[str, Any]]:
        """Jobs newest first (by post height), filtered by client, worker and status."""
        limit = _int_param(limit, "limit", 1, MAX_JOBS)
        wanted = None
        if status is not None:
            wanted = market_json.job_status_param(status) if isinstance(status, str) else None
            if wanted is None:
                raise RpcError(INVALID_PARAMS, "status must be open or closed", {"param": "status"})
        chain = self.node.chain
        ids: set[bytes] | None = None
        for role, address in (("client", client), ("worker", worker)):
            if address is not None:
                roles = chain.jobs_of(self._account_param(address))
                mine = {job_id for job_id, has in roles.items() if role in has}
                ids = mine if ids is None else ids & mine
        if ids is None:
            jobs = list(chain.jobs())
        else:
            jobs = [(job_id, job) for job_id in ids if (job := chain.job(job_id)) is not None]
        jobs = [(job_id, job) for job_id, job in jobs if wanted is None or job.status is wanted]
        jobs.sort(key=lambda item: (-item[1].posted, item[0]))
        return [market_json.job_summary(job_id, job, self.hrp, chain.height) for job_id, job in jobs[:limit]]

    async def stake_get(self, address: Any) -> dict[str, Any]:
        account_id = self._account_param(address)
        chain = self.node.chain
        return market_json.stake_json(address, chain.account(account_id), chain.params.market, chain.height)

    async def market_events(self, address: Any = None, job: Any = None, limit: Any = 100) -> list[dict[str, Any]]:
        """The market's token movements of an account or of a job, newest first."""
        if (address is None) == (job is None):
            raise RpcError(INVALID_PARAMS, "give exactly one of address and job")
        limit = _int_param(limit, "limit", 1, MAX_EVENTS)
        chain = self.node.chain
        if address is not None:
            rows = chain.events(account=self._account_param(address), limit=limit)
        else:
            rows = chain.events(job_id=self._job_param(job), limit=limit)
        return [market_json.event_json(height, event, self.hrp) for height, event in rows]

    # ---- bids (neurod/market/bids.py) ----------------------------------------------------------

    def _notice_param(self, value: Any) -> BidNotice:
        """A `BidNotice`, or a bare `Bid` published as this node's (its peer id and addresses)."""
        raw = _hex(value, "bid")
        try:
            return BidNotice.decode(raw)
        except ChainError as exc:
            notice_error = exc
        try:
            bid = Bid.decode(raw)
        except ChainError:
            raise RpcError(BID_REJECTED, f"bid rejected: {notice_error}", {"reason": notice_error.reason}) from None
        return self.node.notice_of(bid)

    async def bid_submit(self, bid: Any) -> dict[str, Any]:
        notice = self._notice_param(bid)
        try:
            bid_id = await self.node.submit_bid(notice)
        except ChainError as exc:
            raise RpcError(BID_REJECTED, f"bid rejected: {exc}", {"reason": exc.reason}) from None
        return {"bid_id": bid_id.hex()}

    async def bid_list(self, job: Any) -> list[dict[str, Any]]:
        """The bids this node holds for a job, cheapest first."""
        return [
            {"bid_id": n.bid_id.hex(), "worker": self._address(n.bid.worker_account), "unit_price": n.bid.unit_price,
             "max_shards": n.bid.max_shards, "expiry": n.bid.expiry, "peer_id": n.peer_id, "addrs": list(n.addrs),
             "bid": n.bid.encode().hex()}
            for n in self.node.bids.for_job(self._job_param(job))
        ]

    # ---- artifacts (p2p/artifact_fetch.py) ---------------------------------------------------

    def _progress_json(self, root: bytes) -> dict[str, Any]:
        progress = self.node.p2p.artifact_progress(root)
        if progress is not None:
            return progress.to_json(trio.current_time())
        if self.node.artifacts.has(root):
            return {"root": root.hex(), "state": "done", "bytes_total": 0, "bytes_done": 0, "bytes_resumed": 0,
                    "rate": 0.0, "seconds": 0.0, "reason": "", "error": "", "sources": [], "dropped": {},
                    "requests": 0}
        raise RpcError(NOT_FOUND, f"no fetch of {root.hex()}", {"reason": "unknown-fetch"})

    async def artifact_fetch(self, root: Any, sources: Any = None, **named: Any) -> dict[str, Any]:
        """Start fetching an artifact (returns at once); params `root` and `from` (multiaddrs
        or connected peer ids; none: every peer)."""
        if set(named) - {"from"}:
            raise RpcError(INVALID_PARAMS, f"unknown params: {', '.join(sorted(set(named) - {'from'}))}")
        sources = named.get("from", sources) or []
        if not isinstance(sources, list) or len(sources) > MAX_FETCH_SOURCES or not all(
            isinstance(s, str) and 0 < len(s) <= 512 for s in sources
        ):
            raise RpcError(INVALID_PARAMS, f"from must be a list of up to {MAX_FETCH_SOURCES} multiaddrs or peer ids")
        raw = _hex(root, "root", 32)
        try:
            self.node.p2p.fetch_artifact(raw, sources)
        except P2PError as exc:
            raise RpcError(CONNECT_FAILED, str(exc), {"reason": exc.reason}) from None
        return self._progress_json(raw)

    async def artifact_progress(self, root: Any) -> dict[str, Any]:
        return self._progress_json(_hex(root, "root", 32))
