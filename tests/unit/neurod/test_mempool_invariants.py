"""Mempool invariants under any interleaving of admissions, blocks (ours and others') connected
and undone, and time passing: each sender's pending transactions are the gap-free run from its
account's nonce and the rest are queued; every cap holds; the miner is offered pending ones only;
and a min-fee transaction of a new sender is admitted whenever the pending ones leave it room,
however many queued ones fill the pool (issue 17)."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from functools import cache

from hypothesis import given, settings
from hypothesis import strategies as st

from chain.crypto import public_key_of
from chain.errors import ChainError
from chain.market_types import JobPost
from chain.state import Account
from chain.types import Transaction, Transfer
from neurod.mempool import Mempool, MempoolLimits
from tests.support.chain_builders import account_of, numbered_seed

CHAIN_ID = bytes(range(32))
SENDERS = [numbered_seed(i) for i in range(5)]
HONEST = numbered_seed(99)
LIMITS = MempoolLimits(
    max_txs=8, max_bytes=2_000, max_per_sender=6, max_queued=6, max_queued_per_sender=2,
    min_fee=1_000, expiry_seconds=100.0, queued_expiry_seconds=10.0,
)


class Accounts:
    """A StateReader whose nonces the test moves by hand; everyone is rich."""

    def __init__(self) -> None:
        self.nonces: dict[bytes, int] = {}

    def account(self, account_id: bytes) -> Account:
        return Account(balance=10**15, nonce=self.nonces.get(account_id, 0))


@dataclass(frozen=True)
class FakeBlock:
    txs: tuple[Transaction, ...]


@dataclass
class World:
    accounts: Accounts = field(default_factory=Accounts)
    blocks: list[FakeBlock] = field(default_factory=list)
    now: float = 0.0

    def __post_init__(self) -> None:
        self.pool = Mempool(self.accounts, CHAIN_ID, LIMITS)

    def nonce(self, seed: bytes) -> int:
        return self.accounts.nonces.get(account_of(seed), 0)

    def connect(self, txs: list[Transaction]) -> None:
        for t in txs:
            assert t.nonce == self.accounts.nonces.get(t.sender_account, 0)
            self.accounts.nonces[t.sender_account] = t.nonce + 1
        block = FakeBlock(tuple(txs))
        self.blocks.append(block)
        self.pool.on_block_connected(block)  # type: ignore[arg-type]

    def undo(self) -> None:
        block = self.blocks.pop()
        for t in reversed(block.txs):
            self.accounts.nonces[t.sender_account] = t.nonce
        self.pool.on_block_disconnected(block, self.now)  # type: ignore[arg-type]


@cache
def signed(seed: bytes, nonce: int, fee: int, big: bool = False, variant: int = 0) -> Transaction:
    """A transfer, or a JobPost about 400 bytes long (``big``); ``variant`` makes another tx for
    the same nonce (another miner's block)."""
    payload = JobPost(1, b"x" * 300, 1, 1, 1, 1, 1) if big else Transfer(account_of(HONEST), 1 + variant)
    return Transaction(CHAIN_ID, public_key_of(seed), nonce, fee, payload).signed(seed)


def check(world: World) -> None:
    pool, limits = world.pool, world.pool.limits
    txs = [pool.get(txid) for txid in pool.txids()]
    by_sender: dict[bytes, dict[int, Transaction]] = {}
    for t in txs:
        assert t is not None
        by_sender.setdefault(t.sender_account, {})[t.nonce] = t
    pending: set[bytes] = set()
    for sender, held in by_sender.items():
        nonce = world.accounts.nonces.get(sender, 0)
        assert min(held) >= nonce
        end = nonce
        while end in held:
            end += 1
        for n, t in held.items():
            assert pool.kind(t.txid) == ("pending" if n < end else "queued"), (n, nonce, end)
        pending |= {held[n].txid for n in range(nonce, end)}
        assert len(held) - (end - nonce) <= limits.max_queued_per_sender
        assert len(held) <= limits.max_per_sender
    stats = pool.stats()
    sizes = {t.txid: len(t.encode()) for t in txs if t is not None}
    assert (stats.pending, stats.queued) == (len(pending), len(txs) - len(pending))
    assert stats.pending_bytes == sum(sizes[t] for t in pending)
    assert stats.pending_bytes + stats.queued_bytes == sum(sizes.values())
    assert len(pool) <= limits.max_txs and sum(sizes.values()) <= limits.max_bytes
    assert stats.queued <= limits.max_queued
    assert {t.txid for t in pool.select(1_000)} == pending  # the miner sees pending ones only
    in_heap = {id(item[3]) for item in pool._tails._heap}
    for held_txs in pool._senders.values():
        tail = held_txs.tail()
        assert tail is None or id(tail) in in_heap  # every evictable tail can be found


def check_honest_admitted(world: World) -> None:
    """A new sender's min-fee transaction gets in whenever the pending ones leave it room."""
    honest = signed(HONEST, 0, LIMITS.min_fee)
    stats = world.pool.stats()
    if stats.pending < LIMITS.max_txs and stats.pending_bytes + len(honest.encode()) <= LIMITS.max_bytes:
        probe = copy.deepcopy(world)
        probe.pool.add(honest, probe.now, checked=True)
        assert probe.pool.kind(honest.txid) == "pending"
        check(probe)


sender = st.integers(0, len(SENDERS) - 1)
add = st.tuples(st.just("add"), sender, st.integers(0, 4), st.sampled_from([1_000, 1_500, 4_000, 9_000]), st.booleans())
steps = st.lists(
    st.one_of(
        add, add, add,  # mostly admissions, so that the caps are reached
        st.tuples(st.just("mine"), st.integers(1, 6)),
        st.tuples(st.just("foreign"), sender, st.integers(1, 3)),
        st.tuples(st.just("undo")),
        st.tuples(st.just("wait"), st.sampled_from([1.0, 6.0, 60.0])),
    ),
    min_size=5, max_size=60,
)


@settings(max_examples=250, deadline=None)
@given(steps)
def test_pending_runs_caps_and_honest_admission_hold_through_any_history(history: list[tuple]) -> None:
    world = World()
    for step in history:
        match step:
            case ("add", index, ahead, fee, big):
                seed = SENDERS[index]
                try:
                    world.pool.add(signed(seed, world.nonce(seed) + ahead, fee, big), world.now, checked=True)
                except ChainError:
                    pass
            case ("mine", count):
                world.connect(list(world.pool.select(count)))
            case ("foreign", index, count):  # another miner's block: txs we never saw
                seed = SENDERS[index]
                world.connect([signed(seed, world.nonce(seed) + i, 1_000, variant=1) for i in range(count)])
            case ("undo",):
                if world.blocks:
                    world.undo()
            case ("wait", seconds):
                world.now += seconds
                world.pool.expire(world.now)
        check(world)
        check_honest_admitted(world)


# ---- an undone block (a reorg) -----------------------------------------------------------------


def test_an_undone_block_demotes_later_nonces_when_its_transaction_does_not_come_back() -> None:
    a = SENDERS[0]
    world = World()
    world.connect([signed(a, 0, 10)])  # below our min fee: another miner took it, we will not
    later = [signed(a, nonce, 2_000) for nonce in (1, 2, 3)]
    for t in later:
        world.pool.add(t, 0, checked=True)
    world.undo()
    assert [world.pool.kind(t.txid) for t in later] == ["queued", "queued", None]  # 2 per sender
    check(world)


def test_an_undone_block_whose_transactions_come_back_keeps_the_run_whole() -> None:
    a = SENDERS[0]
    world = World()
    world.connect([signed(a, 0, 2_000), signed(a, 1, 2_000)])
    later = [signed(a, nonce, 2_000) for nonce in (2, 3, 4)]  # more than a sender may queue
    for t in later:
        world.pool.add(t, 0, checked=True)
    world.undo()
    assert world.pool.stats().pending == 5 and world.pool.stats().queued == 0
    check(world)
