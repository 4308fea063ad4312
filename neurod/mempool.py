"""The mempool: transactions waiting for a block, in per-sender nonce order, fee-prioritised.

Admission runs the context-free checks (chain id, signature) and the state checks against the tip
(nonce not used, sender can pay for all its pending transactions). A transaction for a (sender,
nonce) already pending replaces it only with a fee at least `REPLACE_BUMP_PERCENT` higher. Limits
are global and per sender; when full, the cheapest transaction is evicted for a better one.
Everything is pure bookkeeping over a `StateReader`: the daemon calls `on_block_connected` /
`on_block_disconnected` as the chain moves, which also re-admits transactions of undone blocks.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from chain.errors import ChainError, InvalidTransaction, RejectKind
from chain.market_types import Stake
from chain.state import EMPTY_ACCOUNT, Account, StateReader
from chain.types import Block, Transaction, Transfer, txid_of
from chain.validation import check_transaction

REPLACE_BUMP_PERCENT = 10


@dataclass(frozen=True, slots=True)
class MempoolLimits:
    max_txs: int = 50_000
    max_per_sender: int = 256
    min_fee: int = 1_000  # base units; below it a tx is not relayed nor mined
    expiry_seconds: float = 3 * 3600.0


class MempoolReject(InvalidTransaction):
    """A transaction the mempool refuses; ``reason`` goes back to the RPC caller or peer."""


@dataclass(slots=True)
class _Entry:
    tx: Transaction
    txid: bytes
    encoded: bytes
    added: float
    cost: int = 0  # fee + amount: what the sender must hold for it

    def __post_init__(self) -> None:
        payload = self.tx.payload
        # what leaves the balance besides the fee (the market rules check the rest per tx)
        self.cost = self.tx.fee + (payload.amount if isinstance(payload, Transfer | Stake) else 0)


class Mempool:
    def __init__(self, state: StateReader, chain_id: bytes, limits: MempoolLimits | None = None):
        self.state = state
        self.chain_id = chain_id
        self.limits = limits or MempoolLimits()
        self._by_id: dict[bytes, _Entry] = {}
        self._by_sender: dict[bytes, dict[int, _Entry]] = {}
        self._sender_cost: dict[bytes, int] = {}  # sum of the costs of each sender's entries

    def __len__(self) -> int:
        return len(self._by_id)

    def __contains__(self, txid: bytes) -> bool:
        return txid in self._by_id

    def get(self, txid: bytes) -> Transaction | None:
        entry = self._by_id.get(txid)
        return entry.tx if entry else None

    def txids(self) -> list[bytes]:
        return list(self._by_id)

    def entries(self) -> list[tuple[bytes, float]]:
        """(encoding, admission time) of every pending transaction in admission order: what a
        snapshot saves, a copy so that it can be written while the mempool changes."""
        return [(entry.encoded, entry.added) for entry in self._by_id.values()]

    def has_pending(self, account_id: bytes) -> bool:
        """Whether the account has transactions waiting here."""
        return bool(self._by_sender.get(account_id))

    def pending_nonce(self, account_id: bytes) -> int:
        """The nonce the sender's next transaction should use, counting pending ones."""
        account = self.state.account(account_id) or EMPTY_ACCOUNT
        nonce = account.nonce
        pending = self._by_sender.get(account_id, {})
        while nonce in pending:
            nonce += 1
        return nonce

    # ---- admission -----------------------------------------------------------------------

    def add(self, tx: Transaction, now: float, *, encoded: bytes | None = None, checked: bool = False) -> bytes:
        """Admit ``tx`` or raise MempoolReject/InvalidTransaction with a reason; returns the txid.

        ``checked`` skips the signature check when the caller (a gossip validator) did it.
        """
        encoded = encoded if encoded is not None else tx.encode()
        txid = txid_of(encoded)
        if txid in self._by_id:
            raise MempoolReject("already-known", kind=RejectKind.STALE)
        if not checked:
            check_transaction(tx, self.chain_id)
        elif tx.chain_id != self.chain_id:
            raise InvalidTransaction("bad-tx-chain-id")
        if tx.fee < self.limits.min_fee:
            raise MempoolReject("fee-too-low", kind=RejectKind.LOCAL, expected=f">= {self.limits.min_fee}", got=tx.fee)
        sender = tx.sender_account
        account = self.state.account(sender) or EMPTY_ACCOUNT
        if tx.nonce < account.nonce:
            raise MempoolReject("nonce-too-low", kind=RejectKind.STALE, expected=f">= {account.nonce}", got=tx.nonce)
        pending = self._by_sender.get(sender, {})
        replaced = pending.get(tx.nonce)
        if replaced is not None:
            needed = replaced.tx.fee + replaced.tx.fee * REPLACE_BUMP_PERCENT // 100
            if tx.fee < max(needed, replaced.tx.fee + 1):
                raise MempoolReject("replacement-underpriced", kind=RejectKind.LOCAL, expected=f">= {needed}", got=tx.fee)
        elif tx.nonce > account.nonce + self.limits.max_per_sender or (
            len(pending) >= self.limits.max_per_sender
        ):
            raise MempoolReject("too-many-pending", kind=RejectKind.LOCAL, expected=f"<= {self.limits.max_per_sender}")
        entry = _Entry(tx, txid, encoded, now)
        self._check_affordable(account, sender, entry, replaced)
        if replaced is None and len(self._by_id) >= self.limits.max_txs:
            self._evict_for(entry)
        if replaced is not None:
            self._remove(replaced)
        self._by_id[txid] = entry
        self._by_sender.setdefault(sender, {})[tx.nonce] = entry
        self._sender_cost[sender] = self._sender_cost.get(sender, 0) + entry.cost
        return txid

    def _check_affordable(self, account: Account, sender: bytes, entry: _Entry, replaced: _Entry | None) -> None:
        """The sender must afford all its pending transactions together, this one included."""
        total = self._sender_cost.get(sender, 0) + entry.cost - (replaced.cost if replaced else 0)
        if total > account.balance:
            raise MempoolReject("insufficient-balance", kind=RejectKind.LOCAL, expected=f">= {total}", got=account.balance)

    def _evict_for(self, entry: _Entry) -> None:
        """Make room by dropping the lowest-fee tail transaction, if it pays less than ``entry``."""
        victims = [s[max(s)] for s in self._by_sender.values() if s]  # tails keep nonces gap-free
        cheapest = min(victims, key=lambda e: (e.tx.fee, -e.added))
        if cheapest.tx.fee >= entry.tx.fee:
            raise MempoolReject("mempool-full", kind=RejectKind.LOCAL)
        self._remove(cheapest)

    def _remove(self, entry: _Entry) -> None:
        self._by_id.pop(entry.txid, None)
        sender = entry.tx.sender_account
        pending = self._by_sender.get(sender)
        if pending is not None and pending.get(entry.tx.nonce) is entry:
            del pending[entry.tx.nonce]
            self._sender_cost[sender] -= entry.cost
            if not pending:
                del self._by_sender[sender]
                del self._sender_cost[sender]

    # ---- chain events --------------------------------------------------------------------

    def on_block_connected(self, block: Block) -> None:
        """Drop the block's transactions and any now-stale nonces of its senders."""
        for tx in block.txs:
            entry = self._by_id.get(tx.txid)
            if entry is not None:
                self._remove(entry)
        for sender in {tx.sender_account for tx in block.txs}:
            self._drop_stale(sender)

    def on_block_disconnected(self, block: Block, now: float) -> list[bytes]:
        """Re-admit an undone block's transactions; returns the txids taken back."""
        readmitted = []
        for tx in block.txs:
            try:
                readmitted.append(self.add(tx, now, checked=True))
            except ChainError:
                continue
        return readmitted

    def _drop_stale(self, sender: bytes) -> None:
        account = self.state.account(sender) or EMPTY_ACCOUNT
        for nonce, entry in list(self._by_sender.get(sender, {}).items()):
            if nonce < account.nonce:
                self._remove(entry)

    def expire(self, now: float) -> int:
        old = [e for e in self._by_id.values() if now - e.added > self.limits.expiry_seconds]
        for entry in old:
            self._remove(entry)
        return len(old)

    def drop_unminable(self, check: Callable[[Transaction], None]) -> list[tuple[Transaction, ChainError]]:
        """Drop each sender's next transaction when ``check`` (the market rules on the tip) now
        refuses it, with its later nonces: a market transaction can turn impossible for good
        (the shard it challenges was paid meanwhile), and left in place it would hold back every
        later transaction of its sender. The sender resubmits at the freed nonce."""
        dropped = []
        for sender in list(self._by_sender):
            account = self.state.account(sender) or EMPTY_ACCOUNT
            pending = self._by_sender.get(sender, {})
            entry = pending.get(account.nonce)
            if entry is None or type(entry.tx.payload) is Transfer:
                continue
            try:
                check(entry.tx)
            except ChainError as exc:
                for later in sorted(n for n in pending if n >= account.nonce):
                    self._remove(pending[later])
                dropped.append((entry.tx, exc))
        return dropped

    def revalidate(self) -> None:
        """After a reorg: drop what the new tip's state makes impossible."""
        for sender in list(self._by_sender):
            self._drop_stale(sender)

    # ---- block building ------------------------------------------------------------------

    def select(self, limit: int) -> Iterator[Transaction]:
        """Transactions for a block: each sender's in nonce order, highest fee first across senders."""
        cursors: list[tuple[int, bytes, int, Iterator[_Entry]]] = []
        for sender, pending in self._by_sender.items():
            account = self.state.account(sender) or EMPTY_ACCOUNT
            chain = _runs_from(pending, account.nonce)
            first = next(chain, None)
            if first is not None:
                cursors.append((-first.tx.fee, sender, first.tx.nonce, _prepend(first, chain)))
        heapq.heapify(cursors)
        count = 0
        while cursors and count < limit:
            _, sender, _, entries = heapq.heappop(cursors)
            entry = next(entries)
            yield entry.tx
            count += 1
            upcoming = next(entries, None)
            if upcoming is not None:
                heapq.heappush(cursors, (-upcoming.tx.fee, sender, upcoming.tx.nonce, _prepend(upcoming, entries)))

    def encoded(self, txids: Iterable[bytes]) -> list[bytes]:
        return [self._by_id[t].encoded for t in txids if t in self._by_id]


def _runs_from(pending: dict[int, _Entry], nonce: int) -> Iterator[_Entry]:
    """Entries with consecutive nonces from ``nonce``: a gap stops the run."""
    while nonce in pending:
        yield pending[nonce]
        nonce += 1


def _prepend(first: _Entry, rest: Iterator[_Entry]) -> Iterator[_Entry]:
    yield first
    yield from rest
