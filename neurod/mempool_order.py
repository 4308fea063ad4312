"""The mempool's records and its two eviction orders (neurod/mempool.py says when each applies).

- Queued transactions go first, by fair share: always from the sender holding the most of the
  queue, its furthest nonce first. A queued transaction's fee ranks nothing (it pays only if it is
  mined, and it cannot be), so the order rests on what a sender holds instead, which one party can
  raise only by funding more accounts.
- Pending transactions go by fee rate (fee per encoded byte), lowest first, and only from the
  tail of a sender's run, so that what stays is still gap-free. `TailHeap` keeps the tails in a
  heap with lazy deletion, as geth's `pricedList` does: an item whose entry has left the pool or
  is no longer a tail is dropped when it surfaces, and the heap is rebuilt when stale items
  outnumber live ones.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field

from chain.market_types import Stake
from chain.state import fee_from_balance
from chain.treasury_types import BuybackSell
from chain.types import Transaction, Transfer


@dataclass(slots=True)
class Entry:
    """One transaction in the mempool."""

    tx: Transaction
    txid: bytes
    encoded: bytes
    added: float  # admission time: a pending transaction expires counting from it
    queued: bool = False  # behind a nonce gap of its sender
    since: float = 0.0  # when it became queued (admission or demotion): a queued one expires from it
    size: int = 0  # encoded bytes
    cost: int = 0  # fee + amount: what the sender must hold for it

    def __post_init__(self) -> None:
        payload = self.tx.payload
        # what leaves the balance besides the fee (the market rules check the rest per tx)
        # (a Redeem's fee comes out of its voucher: `chain.state.fee_from_balance`)
        self.cost = fee_from_balance(self.tx) + (
            payload.amount if isinstance(payload, Transfer | Stake | BuybackSell) else 0)
        self.size = len(self.encoded)

    @property
    def nonce(self) -> int:
        return self.tx.nonce

    @property
    def sender(self) -> bytes:
        return self.tx.sender_account

    @property
    def kind(self) -> str:
        return "queued" if self.queued else "pending"

    def pays_less_than(self, other: Entry) -> bool:
        """A strictly lower fee rate than ``other``'s (exact: integers, no division)."""
        return self.tx.fee * other.size < other.tx.fee * self.size


@dataclass(slots=True)
class SenderTxs:
    """One sender's transactions: nonces ``head`` to ``end - 1`` are pending (the gap-free run
    from its account's nonce at the tip), every other one is queued."""

    txs: dict[int, Entry] = field(default_factory=dict)
    head: int = 0  # the account's nonce at the tip, as last synced
    end: int = 0  # the first nonce after the pending run
    cost: int = 0  # the costs of all its entries
    queued: int = 0  # how many of them are queued

    def tail(self) -> Entry | None:
        """The last pending entry: the only one of the run that can be evicted."""
        return self.txs[self.end - 1] if self.end > self.head else None

    def queued_entries(self) -> list[Entry]:
        """Its queued entries, nearest nonce first."""
        return sorted((e for e in self.txs.values() if e.queued), key=lambda e: e.nonce)


def queued_by_share(senders: Mapping[bytes, SenderTxs], exclude: bytes) -> Iterator[tuple[Entry, int]]:
    """Queued entries in eviction order, each with how many its sender holds before it goes:
    always from the sender holding the most (``exclude`` never), its furthest nonce first."""
    heap = [(-held.queued, account) for account, held in senders.items() if held.queued and account != exclude]
    heapq.heapify(heap)
    stacks: dict[bytes, list[Entry]] = {}
    while heap:
        minus_held, account = heapq.heappop(heap)
        stack = stacks.get(account)
        if stack is None:
            stack = stacks[account] = senders[account].queued_entries()
        yield stack.pop(), -minus_held
        if stack:
            heapq.heappush(heap, (minus_held + 1, account))


class TailHeap:
    """Pending tails, lowest fee rate first (ties: the latest admitted first), lazily deleted:
    whoever makes an entry a tail pushes it, and `pop` returns items that may since have gone
    stale, for the caller to check."""

    def __init__(self) -> None:
        self._heap: list[tuple[float, float, int, Entry]] = []
        self._order = itertools.count()

    def __len__(self) -> int:
        return len(self._heap)

    def push(self, entry: Entry) -> None:
        heapq.heappush(self._heap, (entry.tx.fee / entry.size, -entry.added, next(self._order), entry))

    def pop(self) -> Entry | None:
        return heapq.heappop(self._heap)[3] if self._heap else None

    def cheaper_than(
        self, entry: Entry, senders: Mapping[bytes, SenderTxs], count_over: int, bytes_over: int,
    ) -> list[Entry] | None:
        """Pending tails of senders other than ``entry``'s, lowest fee rate first, each paying
        less than ``entry``, enough to free ``count_over`` slots and ``bytes_over`` bytes; None
        if there are not enough of them. Choosing a tail makes the one before it a tail."""
        chosen: dict[bytes, Entry] = {}
        keep: list[Entry] = []  # live tails popped on the way, pushed back
        while count_over > 0 or bytes_over > 0:
            tail = self.pop()
            if tail is None:
                break
            if not _is_tail(tail, senders, chosen):
                continue  # stale: it left, or is no longer a tail
            keep.append(tail)
            if tail.sender == entry.sender:
                continue
            if not tail.pays_less_than(entry):
                break  # the cheapest left pays as much as the newcomer
            keep.pop()
            chosen[tail.txid] = tail
            count_over, bytes_over = count_over - 1, bytes_over - tail.size
            before = senders[tail.sender].txs.get(tail.nonce - 1)
            if before is not None and not before.queued:
                self.push(before)  # the tail once ``tail`` goes
        for tail in keep:
            self.push(tail)
        if count_over > 0 or bytes_over > 0:
            for tail in chosen.values():
                self.push(tail)
            return None
        return list(chosen.values())

    def rebuild(self, tails: Iterable[Entry]) -> None:
        """Only the current tails again: the stale items are gone."""
        self._heap = [(e.tx.fee / e.size, -e.added, next(self._order), e) for e in tails]
        heapq.heapify(self._heap)


def _is_tail(entry: Entry, senders: Mapping[bytes, SenderTxs], going: dict[bytes, Entry]) -> bool:
    """Whether ``entry`` is still in the pool, pending, and last of its run once ``going`` leave."""
    held = senders.get(entry.sender)
    if held is None or held.txs.get(entry.nonce) is not entry or entry.queued or entry.txid in going:
        return False
    after = held.txs.get(entry.nonce + 1)
    return after is None or after.queued or after.txid in going
