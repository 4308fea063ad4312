"""The mempool: transactions waiting for a block, split into pending and queued.

A sender's *pending* transactions are the gap-free run of its nonces from its account's nonce at
the tip: minable now. Its *queued* ones sit behind a gap (an earlier nonce is missing): they are
kept so that transactions arriving out of order (gossip, a wallet's burst) are not lost, in a
small queue of their own, as Bitcoin Core keeps orphans and geth "queued" transactions apart.
When the gap fills (the missing nonce arrives, or a block moves the account's nonce) they are
promoted; when a pending transaction leaves from the middle of a run (it expired, or a block that
held its predecessor was undone and the predecessor did not come back) the ones after it are
demoted. The miner takes pending transactions only (`select`).

Why apart: a queued transaction never pays its fee (it pays only if mined, and it cannot be), so
its fee ranks nothing, and a pool that treated it like a minable one could be filled at no cost:
49,999 gapped transactions once turned an honest min-fee transaction away with `mempool-full`.

Admission runs the context-free checks (chain id, signature), then the state checks against the
tip (nonce not used, the sender can pay for all its transactions here together). A transaction for
a (sender, nonce) already here replaces it only with a fee at least `REPLACE_BUMP_PERCENT` higher,
and keeps its kind (a queued one also keeps its expiry: a bump does not buy it time).

Limits (`MempoolLimits`), and why these numbers:
- `max_txs` 50,000 and `max_bytes` 64 MiB, pending and queued together. 50,000 transfers (166
  bytes each) are 8 MB, so the count binds first for ordinary traffic; the byte cap binds for big
  transactions (16 KiB at most: 800 MB under the count cap alone). 64 MiB is 32 full blocks.
- `max_per_sender` 256, pending and queued together.
- `max_queued` 1,000, `QUEUE_SHARE_PERCENT` (2%) of `max_txs` (`MempoolLimits.scaled` keeps the
  share for another `max_txs`). Out-of-order arrival is short and shallow; geth keeps 1,024 queued
  slots, Bitcoin Core 100 orphans. At most 16 MiB of queued transactions: a quarter of the bytes.
- `max_queued_per_sender` 16 (geth: 64). A sender that submits in order never queues; to fill the
  queue an attacker needs 63 funded accounts, each able to pay for its queued transactions.
- `queued_expiry_seconds` 10 minutes: ten target block intervals. A gap that has not filled in ten
  blocks is not a reordering. Pending transactions keep `expiry_seconds`, 3 hours.

When a limit is reached (the orders are in neurod/mempool_order.py):
- a queued transaction over its sender's 16 is refused (`sender-queue-full`); one over the queue's
  1,000 takes the place of the furthest-nonce transaction of the sender holding the most of the
  queue, if that sender holds at least two more than the newcomer's, else it is refused
  (`queue-full`). Fees play no part. A queued transaction never displaces a pending one.
- a pending transaction over `max_txs` or `max_bytes` displaces queued transactions first, any
  fee, then pending ones by fee rate (fee per byte), lowest first, each a tail of its sender's run
  (what stays is still gap-free), and only those paying a strictly lower rate than it; else it is
  refused (`mempool-full`). So a pool holding only queued transactions always admits a min-fee
  pending one.

Everything is pure bookkeeping over a `StateReader`, `now` an argument: the daemon calls
`on_block_connected` / `on_block_disconnected` as the chain moves (the second also re-admits the
undone block's transactions) and `expire` periodically. An optional `MempoolObserver` hears of
evictions and expiries (the node's metrics).
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

from chain.amounts import format_ntk
from chain.errors import ChainError, InvalidTransaction, RejectKind
from chain.state import EMPTY_ACCOUNT, Account, StateReader
from chain.types import Block, Transaction, Transfer, txid_of
from chain.validation import check_transaction
from neurod.mempool_order import Entry, SenderTxs, TailHeap, queued_by_share

REPLACE_BUMP_PERCENT = 10
QUEUE_SHARE_PERCENT = 2  # the queue's share of max_txs
MAX_QUEUED_PER_SENDER = 16
TAIL_HEAP_SLACK = 1_024  # stale eviction-heap items tolerated beyond one per transaction


@dataclass(frozen=True, slots=True)
class MempoolLimits:
    """Every bound of the mempool (the module docstring says why these numbers)."""

    max_txs: int = 50_000  # pending and queued together
    max_bytes: int = 64 << 20  # their encodings' sizes, summed
    max_per_sender: int = 256  # one sender's, pending and queued
    max_queued: int = 1_000  # queued, all senders: QUEUE_SHARE_PERCENT of max_txs
    max_queued_per_sender: int = MAX_QUEUED_PER_SENDER
    min_fee: int = 1_000  # base units; below it a tx is not relayed nor mined
    expiry_seconds: float = 3 * 3600.0  # a pending transaction's life, from its admission
    queued_expiry_seconds: float = 600.0  # a queued one's, from when it became queued

    @classmethod
    def scaled(cls, max_txs: int, **others: Any) -> MempoolLimits:
        """Limits for a pool of ``max_txs``, the queue keeping its share (one sender's at least)."""
        per_sender = others.get("max_queued_per_sender", MAX_QUEUED_PER_SENDER)
        queued = max(per_sender, max_txs * QUEUE_SHARE_PERCENT // 100)
        return cls(max_txs=max_txs, **{"max_queued": queued, **others})


class MempoolReject(InvalidTransaction):
    """A transaction the mempool refuses; ``reason`` goes back to the RPC caller or peer."""


class MempoolObserver(Protocol):
    """Hears what the mempool drops on its own (the node's metrics); the kind is the entry's when
    it went, "pending" or "queued"."""

    def mempool_evicted(self, reason: str, kind: str) -> None: ...

    def mempool_expired(self, kind: str) -> None: ...


class _Unobserved:
    def mempool_evicted(self, reason: str, kind: str) -> None:
        pass

    def mempool_expired(self, kind: str) -> None:
        pass


@dataclass(frozen=True, slots=True)
class MempoolStats:
    pending: int
    queued: int
    pending_bytes: int
    queued_bytes: int


class Mempool:
    def __init__(
        self, state: StateReader, chain_id: bytes, limits: MempoolLimits | None = None,
        observer: MempoolObserver | None = None,
    ) -> None:
        self.state = state
        self.chain_id = chain_id
        self.limits = limits or MempoolLimits()
        self.observer: MempoolObserver = observer or _Unobserved()
        self._by_id: dict[bytes, Entry] = {}
        self._senders: dict[bytes, SenderTxs] = {}
        self._bytes = 0
        self._queued = 0
        self._queued_bytes = 0
        self._tails = TailHeap()  # pending tails, cheapest fee rate first

    def __len__(self) -> int:
        return len(self._by_id)

    def __contains__(self, txid: bytes) -> bool:
        return txid in self._by_id

    def get(self, txid: bytes) -> Transaction | None:
        entry = self._by_id.get(txid)
        return entry.tx if entry else None

    def kind(self, txid: bytes) -> str | None:
        """The transaction's kind: "pending" (minable now), "queued" (behind a nonce gap), or
        None (not here)."""
        entry = self._by_id.get(txid)
        return entry.kind if entry else None

    def stats(self) -> MempoolStats:
        return MempoolStats(
            pending=len(self._by_id) - self._queued, queued=self._queued,
            pending_bytes=self._bytes - self._queued_bytes, queued_bytes=self._queued_bytes,
        )

    def txids(self) -> list[bytes]:
        return list(self._by_id)

    def entries(self) -> list[tuple[bytes, float]]:
        """(encoding, admission time) of every transaction, pending and queued, in admission
        order: what a snapshot saves, a copy so that it can be written while the mempool changes."""
        return [(entry.encoded, entry.added) for entry in self._by_id.values()]

    def has_pending(self, account_id: bytes) -> bool:
        """Whether the account has transactions waiting here (queued ones included)."""
        return account_id in self._senders

    def pending_nonce(self, account_id: bytes) -> int:
        """The nonce the sender's next transaction should use, counting pending ones."""
        nonce = self._account(account_id).nonce
        held = self._senders.get(account_id)
        while held is not None and nonce in held.txs:
            nonce += 1
        return nonce

    def _account(self, account_id: bytes) -> Account:
        return self.state.account(account_id) or EMPTY_ACCOUNT

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
            # in NTK, as `--fee` takes it: the reason and this line reach the user as they are
            raise MempoolReject("fee-too-low", kind=RejectKind.LOCAL, expected=f">= {format_ntk(self.limits.min_fee)} NTK",
                                got=f"{format_ntk(tx.fee)} NTK")
        sender = tx.sender_account
        account = self._account(sender)
        if tx.nonce < account.nonce:
            raise MempoolReject("nonce-too-low", kind=RejectKind.STALE, expected=f">= {account.nonce}", got=tx.nonce)
        held = self._sync(sender, account.nonce, now)
        replaced = held.txs.get(tx.nonce) if held else None
        entry = Entry(tx, txid, encoded, now, since=now)
        if replaced is not None:
            needed = replaced.tx.fee + replaced.tx.fee * REPLACE_BUMP_PERCENT // 100
            if tx.fee < max(needed, replaced.tx.fee + 1):
                raise MempoolReject("replacement-underpriced", kind=RejectKind.LOCAL, expected=f">= {needed}", got=tx.fee)
            entry.queued, entry.since = replaced.queued, replaced.since
        else:
            if tx.nonce > account.nonce + self.limits.max_per_sender or (
                held is not None and len(held.txs) >= self.limits.max_per_sender
            ):
                raise MempoolReject("too-many-pending", kind=RejectKind.LOCAL, expected=f"<= {self.limits.max_per_sender}")
            entry.queued = tx.nonce > (held.end if held else account.nonce)
            if entry.queued and held is not None and held.queued >= self.limits.max_queued_per_sender:
                raise MempoolReject("sender-queue-full", kind=RejectKind.LOCAL,
                                    expected=f"<= {self.limits.max_queued_per_sender} queued", got=held.queued)
        self._check_affordable(account, held, entry, replaced)
        for victim, reason in self._make_room(entry, held.queued if held else 0, replaced):
            self._remove(victim, now, reason)
        if held is None:
            held = self._senders[sender] = SenderTxs(head=account.nonce, end=account.nonce)
        if replaced is not None:
            self._replace(held, replaced, entry)
        else:
            self._insert(held, entry)
        return txid

    def _check_affordable(self, account: Account, held: SenderTxs | None, entry: Entry, replaced: Entry | None) -> None:
        """The sender must afford all its transactions here together, this one included."""
        total = (held.cost if held else 0) + entry.cost - (replaced.cost if replaced else 0)
        if total > account.balance:
            raise MempoolReject("insufficient-balance", kind=RejectKind.LOCAL, expected=f">= {total}", got=account.balance)

    # ---- eviction (orders: neurod/mempool_order.py) --------------------------------------

    def _make_room(self, entry: Entry, own_queued: int, replaced: Entry | None) -> list[tuple[Entry, str]]:
        """What ``entry`` displaces, with each one's eviction reason; raises if it cannot fit.

        Queued entries of other senders go first, in fair-share order: for a pending newcomer any
        of them, for a queued one only those of a sender holding at least two more than its own
        (``own_queued``). Then, for a pending newcomer only, pending tails paying a lower rate."""
        limits = self.limits
        need_slot = entry.queued and replaced is None and self._queued >= limits.max_queued
        count_over = len(self._by_id) + (replaced is None) - limits.max_txs
        bytes_over = self._bytes + entry.size - (replaced.size if replaced else 0) - limits.max_bytes
        if not (need_slot or count_over > 0 or bytes_over > 0):
            return []
        victims: list[tuple[Entry, str]] = []
        for victim, held_by in queued_by_share(self._senders, entry.sender):
            if entry.queued and held_by <= own_queued + 1:
                break
            victims.append((victim, "queue-full" if need_slot else "mempool-full"))
            need_slot, count_over, bytes_over = False, count_over - 1, bytes_over - victim.size
            if not (count_over > 0 or bytes_over > 0):
                break
        if need_slot:
            raise MempoolReject("queue-full", kind=RejectKind.LOCAL, expected=f"<= {limits.max_queued} queued")
        if count_over > 0 or bytes_over > 0:
            if entry.queued:
                raise MempoolReject("mempool-full", kind=RejectKind.LOCAL)
            tails = self._tails.cheaper_than(entry, self._senders, count_over, bytes_over)
            if tails is None:
                raise MempoolReject("mempool-full", kind=RejectKind.LOCAL)
            victims += [(victim, "mempool-full") for victim in tails]
        return victims

    def _trim_queue(self, held: SenderTxs, now: float | None) -> None:
        """After a demotion: back under the sender's and the global queue caps, furthest first."""
        while held.queued > self.limits.max_queued_per_sender:
            self._remove(held.queued_entries()[-1], now, "sender-queue-full")
        excess = self._queued - self.limits.max_queued
        if excess > 0:
            for victim, _ in list(itertools.islice(queued_by_share(self._senders, b""), excess)):
                self._remove(victim, now, "queue-full")

    # ---- bookkeeping ---------------------------------------------------------------------

    def _insert(self, held: SenderTxs, entry: Entry) -> None:
        """Add a new entry (pending ones extend the run, and promote what they un-gap)."""
        self._by_id[entry.txid] = entry
        held.txs[entry.nonce] = entry
        held.cost += entry.cost
        self._bytes += entry.size
        if entry.queued:
            held.queued += 1
            self._queued += 1
            self._queued_bytes += entry.size
            return
        held.end = entry.nonce + 1
        while (after := held.txs.get(held.end)) is not None:
            self._set_queued(held, after, False, None)
            held.end += 1
        self._tails.push(held.txs[held.end - 1])
        if len(self._tails) > 2 * len(self._by_id) + TAIL_HEAP_SLACK:
            self._tails.rebuild(tail for h in self._senders.values() if (tail := h.tail()) is not None)

    def _replace(self, held: SenderTxs, old: Entry, new: Entry) -> None:
        del self._by_id[old.txid]
        self._by_id[new.txid] = new
        held.txs[new.nonce] = new
        held.cost += new.cost - old.cost
        self._bytes += new.size - old.size
        if new.queued:
            self._queued_bytes += new.size - old.size
        elif new.nonce == held.end - 1:
            self._tails.push(new)

    def _set_queued(self, held: SenderTxs, entry: Entry, queued: bool, now: float | None) -> None:
        """Demote (``queued``) or promote ``entry``. A demotion dated ``now``; with no clock at
        hand the queued life counts from admission, the sooner end."""
        if entry.queued == queued:
            return
        entry.queued = queued
        step = 1 if queued else -1
        held.queued += step
        self._queued += step
        self._queued_bytes += step * entry.size
        if queued:
            entry.since = now if now is not None else entry.added

    def _unlink(self, entry: Entry) -> None:
        """Take ``entry`` out of every count, leaving its sender's run to the caller."""
        del self._by_id[entry.txid]
        held = self._senders[entry.sender]
        del held.txs[entry.nonce]
        held.cost -= entry.cost
        self._bytes -= entry.size
        if entry.queued:
            held.queued -= 1
            self._queued -= 1
            self._queued_bytes -= entry.size
        if not held.txs:
            del self._senders[entry.sender]

    def _remove(self, entry: Entry, now: float | None, reason: str | None = None) -> None:
        """Drop ``entry``; a pending one from inside its run demotes the rest of the run."""
        kind = entry.kind
        held = self._senders[entry.sender]
        self._unlink(entry)
        if reason is not None:
            self.observer.mempool_evicted(reason, kind)
        if entry.queued or not held.txs:
            return
        demoted = range(entry.nonce + 1, held.end)
        for nonce in demoted:
            self._set_queued(held, held.txs[nonce], True, now)
        held.end = entry.nonce
        tail = held.tail()
        if tail is not None:
            self._tails.push(tail)
        if demoted:
            self._trim_queue(held, now)

    def _sync(self, sender: bytes, nonce: int, now: float | None, *, trim: bool = True) -> SenderTxs | None:
        """Re-class the sender's entries against its account ``nonce`` at the tip (stale ones
        dropped, the run from ``nonce`` pending, the rest queued); ``trim`` applies the queue caps."""
        held = self._senders.get(sender)
        if held is None or held.head == nonce:
            return held
        for stale in [e for n, e in held.txs.items() if n < nonce]:
            self._unlink(stale)
        if not held.txs:
            return None
        end = nonce
        while end in held.txs:
            end += 1
        held.head, held.end = nonce, end
        for entry in held.txs.values():
            self._set_queued(held, entry, entry.nonce >= end, now)
        tail = held.tail()
        if tail is not None:
            self._tails.push(tail)
        if trim:
            self._trim_queue(held, now)
        return self._senders.get(sender)

    # ---- chain events --------------------------------------------------------------------

    def on_block_connected(self, block: Block) -> None:
        """Drop the block's transactions and its senders' stale nonces; promote what the new
        account nonces un-gap (a connected block only raises nonces: it never demotes)."""
        for sender in {tx.sender_account for tx in block.txs}:
            self._sync(sender, self._account(sender).nonce, None)

    def on_block_disconnected(self, block: Block, now: float) -> list[bytes]:
        """Re-admit an undone block's transactions; returns the txids taken back.

        Its senders' nonces went down, so their entries are demoted first; the queue caps are
        applied only once the undone transactions are back and have promoted them again."""
        senders = {tx.sender_account for tx in block.txs}
        for sender in senders:
            self._sync(sender, self._account(sender).nonce, now, trim=False)
        readmitted = []
        for tx in block.txs:
            try:
                readmitted.append(self.add(tx, now, checked=True))
            except ChainError:
                continue
        for sender in senders:
            held = self._senders.get(sender)
            if held is not None:
                self._trim_queue(held, now)
        return readmitted

    def expire(self, now: float) -> int:
        """Drop pending transactions older than `expiry_seconds` and queued ones queued for longer
        than `queued_expiry_seconds`; returns how many. Furthest nonces go first, so that a
        run is cut from its end where it can be."""
        limits = self.limits
        old = [
            e for e in self._by_id.values()
            if now - (e.since if e.queued else e.added) > (limits.queued_expiry_seconds if e.queued else limits.expiry_seconds)
        ]
        old.sort(key=lambda e: -e.nonce)
        gone = 0
        for entry in old:
            if self._by_id.get(entry.txid) is entry:
                kind = entry.kind
                self._remove(entry, now)
                self.observer.mempool_expired(kind)
                gone += 1
        return gone

    def drop_unminable(self, check: Callable[[Transaction], None]) -> list[tuple[Transaction, ChainError]]:
        """Drop each sender's next transaction when ``check`` (the market rules on the tip) now
        refuses it, with its later nonces: a market transaction can turn impossible for good
        (the shard it challenges was paid meanwhile), and left in place it would hold back every
        later transaction of its sender. The sender resubmits at the freed nonce."""
        dropped = []
        for sender in list(self._senders):
            nonce = self._account(sender).nonce
            held = self._senders.get(sender)
            entry = held.txs.get(nonce) if held else None
            if held is None or entry is None or type(entry.tx.payload) is Transfer:
                continue
            try:
                check(entry.tx)
            except ChainError as exc:
                for later in sorted((n for n in held.txs if n >= nonce), reverse=True):
                    self._remove(held.txs[later], None)
                dropped.append((entry.tx, exc))
        return dropped

    def revalidate(self) -> None:
        """After a reorg: drop what the new tip's state makes impossible, re-class the rest."""
        for sender in list(self._senders):
            self._sync(sender, self._account(sender).nonce, None)

    # ---- block building ------------------------------------------------------------------

    def select(self, limit: int) -> Iterator[Transaction]:
        """Pending transactions for a block: each sender's in nonce order, highest fee first
        across senders. Queued ones never: each run stops at its sender's first gap."""
        cursors: list[tuple[int, bytes, int, Iterator[Entry]]] = []
        for sender, held in self._senders.items():
            chain = _runs_from(held.txs, self._account(sender).nonce)
            first = next(chain, None)
            if first is not None:
                cursors.append((-first.tx.fee, sender, first.nonce, _prepend(first, chain)))
        heapq.heapify(cursors)
        count = 0
        while cursors and count < limit:
            _, sender, _, entries = heapq.heappop(cursors)
            entry = next(entries)
            yield entry.tx
            count += 1
            upcoming = next(entries, None)
            if upcoming is not None:
                heapq.heappush(cursors, (-upcoming.tx.fee, sender, upcoming.nonce, _prepend(upcoming, entries)))

    def encoded(self, txids: Iterable[bytes]) -> list[bytes]:
        return [self._by_id[t].encoded for t in txids if t in self._by_id]


def _runs_from(txs: dict[int, Entry], nonce: int) -> Iterator[Entry]:
    """Entries with consecutive nonces from ``nonce``: a gap stops the run."""
    while nonce in txs:
        yield txs[nonce]
        nonce += 1


def _prepend(first: Entry, rest: Iterator[Entry]) -> Iterator[Entry]:
    yield first
    yield from rest
