"""This node's own transactions, announced again until a block carries them.

Gossip is fire and forget: a transaction published while the node has no peer, or just before it
is killed (the batcher had not flushed; the journal brought it back at restart), reaches nobody,
and a transaction of the same sender with the next nonce then waits behind a gap in every other
mempool until it expires. Bitcoin Core keeps an "unbroadcast set" for the same reason (0.21,
PR #18038): transactions submitted locally are re-announced until the network is seen to have
them. Here "seen" is "mined" (gossipsub has no getdata to learn that a peer asked for it), so a
transaction is announced again at growing intervals (FIRST_RETRY doubled up to MAX_RETRY) while it
is in the mempool, and forgotten when it leaves it. Only the node's own transactions are kept:
those submitted through its RPC or by its agents, and those restored from its mempool files.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

FIRST_RETRY = 2.0  # seconds after submission: a peer that missed the first announcement gets it soon
MAX_RETRY = 120.0  # the interval stops doubling here: one announcement per own tx per two minutes
MAX_TRACKED = 10_000  # a flood of local submissions does not grow this without bound (oldest go)


@dataclass
class _Due:
    at: float
    interval: float


class Unbroadcast:
    def __init__(self, first: float = FIRST_RETRY, cap: float = MAX_RETRY, limit: int = MAX_TRACKED) -> None:
        self._first, self._cap, self._limit = first, cap, limit
        self._due: dict[bytes, _Due] = {}

    def __len__(self) -> int:
        return len(self._due)

    def add(self, txid: bytes, now: float, *, announced: bool = True) -> None:
        """Track ``txid``; ``announced`` says it was just published (the first retry waits
        FIRST_RETRY), else it is due at once (restored from disk: nobody may have it)."""
        if txid in self._due:
            return
        if len(self._due) >= self._limit:
            del self._due[next(iter(self._due))]
        self._due[txid] = _Due(now + self._first if announced else now, self._first)

    def take_due(self, now: float, in_mempool: Callable[[bytes], bool]) -> list[bytes]:
        """The txids to announce again now, each rescheduled at twice its last interval; those no
        longer in the mempool (mined, replaced, evicted, expired) are forgotten."""
        for gone in [txid for txid in self._due if not in_mempool(txid)]:
            del self._due[gone]
        due = [txid for txid, entry in self._due.items() if entry.at <= now]
        for txid in due:
            entry = self._due[txid]
            entry.interval = min(entry.interval * 2, self._cap)
            entry.at = now + entry.interval
        return due

    def add_all(self, txids: Iterable[bytes], now: float) -> None:
        for txid in txids:
            self.add(txid, now, announced=False)
