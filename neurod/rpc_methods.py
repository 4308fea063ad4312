"""The JSON-RPC methods of docs/rpc.md, over a running `Node`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from chain.amounts import format_ntk
from chain.crypto import AddressError, decode_address, encode_address
from chain.errors import ChainError, InvalidTransaction
from chain.types import Block, Header, Transaction, Transfer
from neurod.rpc import INVALID_PARAMS, Method, RpcError
from p2p.errors import P2PError

if TYPE_CHECKING:
    from neurod.node import Node

TX_REJECTED, NOT_FOUND, BAD_ADDRESS, CONNECT_FAILED = -32010, -32011, -32012, -32013
VERSION = "neurod/0.1.0"
MAX_SUBMIT_MANY = 5_000


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


class RpcMethods:
    def __init__(self, node: Node) -> None:
        self.node = node
        self.hrp = node.chain.params.hrp

    def table(self) -> dict[str, Method]:
        return {
            "node_status": self.node_status, "node_peers": self.node_peers,
            "chain_head": self.chain_head, "chain_block": self.chain_block, "chain_tx": self.chain_tx,
            "chain_supply": self.chain_supply, "account_get": self.account_get,
            "account_history": self.account_history, "tx_submit": self.tx_submit,
            "mempool_list": self.mempool_list, "tx_submit_many": self.tx_submit_many, "node_connect": self.node_connect,
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
        out: dict[str, Any] = {
            "txid": tx.txid.hex(), "kind": "transfer", "chain_id": tx.chain_id.hex(),
            "from": self._address(tx.sender_account), "sender_pubkey": tx.sender.hex(),
            "nonce": tx.nonce, "fee": tx.fee, "fee_ntk": format_ntk(tx.fee),
            "signature": tx.signature.hex(),
        }
        if isinstance(tx.payload, Transfer):
            out.update(to=self._address(tx.payload.to), amount=tx.payload.amount,
                       amount_ntk=format_ntk(tx.payload.amount))
        return out

    # ---- methods -------------------------------------------------------------------------

    async def node_status(self) -> dict[str, Any]:
        node, chain = self.node, self.node.chain
        return {
            "network": chain.params.network, "chain_id": chain.chain_id.hex(), "version": VERSION,
            "height": chain.height, "tip": chain.tip_hash.hex(), "peers": len(node.p2p.peers()),
            "mempool": len(node.mempool), "mining": node.miner is not None, "hrp": self.hrp,
            "peer_id": node.p2p.peer_id, "p2p_addrs": node.p2p.listen_addrs(),
        }

    async def node_peers(self) -> list[dict[str, Any]]:
        return [
            {"peer_id": p.peer_id, "addrs": p.addrs, "direction": p.direction, "score": p.score, "height": p.height}
            for p in self.node.p2p.peers()
        ]

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
            block_hash = chain.hash_at(id)
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
        chain = self.node.chain
        return {"supply": chain.supply, "supply_ntk": format_ntk(chain.supply), "height": chain.height}

    async def account_get(self, address: Any) -> dict[str, Any]:
        account_id = self._account_param(address)
        account = self.node.chain.account(account_id)
        balance = account.balance if account else 0
        return {
            "address": address, "balance": balance, "balance_ntk": format_ntk(balance),
            "nonce": account.nonce if account else 0,
            "pending_nonce": self.node.mempool.pending_nonce(account_id),
        }

    async def account_history(self, address: Any, limit: Any = 50) -> list[dict[str, Any]]:
        account_id = self._account_param(address)
        if not isinstance(limit, int) or isinstance(limit, bool) or not 1 <= limit <= 1000:
            raise RpcError(INVALID_PARAMS, "limit must be an integer in [1, 1000]")
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
        return rows

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
        and one gossip batch for all the admitted ones."""
        if not isinstance(txs, list) or not 1 <= len(txs) <= MAX_SUBMIT_MANY:
            raise RpcError(INVALID_PARAMS, f"txs must be a list of 1 to {MAX_SUBMIT_MANY} hex strings")
        results: list[dict[str, Any] | None] = [None] * len(txs)
        decoded: list[tuple[int, bytes, Transaction]] = []
        for index, item in enumerate(txs):
            try:
                raw = _hex(item, "tx")
                decoded.append((index, raw, Transaction.decode(raw)))
            except RpcError as exc:
                results[index] = {"error": exc.message, "reason": "invalid-params"}
            except ChainError as exc:
                results[index] = {"error": str(exc), "reason": exc.reason}
        valid = self.node.signatures_valid([tx for _, _, tx in decoded])
        admitted: list[bytes] = []
        for (index, raw, tx), signed in zip(decoded, valid):
            try:
                if not signed:
                    raise InvalidTransaction("bad-tx-signature")
                txid = self.node.add_transaction(tx, encoded=raw, checked=True)
            except ChainError as exc:
                results[index] = {"error": str(exc), "reason": exc.reason}
            else:
                admitted.append(raw)
                results[index] = {"txid": txid.hex()}
        if admitted:
            await self.node.p2p.publish_txs(admitted)
        return [r for r in results if r is not None]

    async def mempool_list(self, limit: Any = 100) -> dict[str, Any]:
        if not isinstance(limit, int) or isinstance(limit, bool) or limit < 1:
            raise RpcError(INVALID_PARAMS, "limit must be a positive integer")
        txids = self.node.mempool.txids()
        return {"count": len(txids), "txs": [t.hex() for t in txids[:limit]]}
