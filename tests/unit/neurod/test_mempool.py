"""Mempool: ordering, limits, fee-bump replacement, expiry and reorg re-admission; pending and
queued transactions, the queue's caps, the byte cap and eviction by fee rate."""

from __future__ import annotations

import pytest

from chain.crypto import public_key_of
from chain.errors import ChainError, RejectKind
from chain.market_types import JobPost
from chain.types import Transaction
from neurod.mempool import Mempool, MempoolLimits
from tests.support.chain_builders import (
    account_of,
    funded_genesis,
    mine_blocks,
    new_chain,
    signed_transfer,
)

FEE = 2_000


@pytest.fixture
def setup():
    genesis, seeds = funded_genesis(6, "10")
    chain = new_chain(genesis)
    pool = Mempool(chain, chain.chain_id, MempoolLimits(max_txs=8, max_per_sender=4, min_fee=1_000))
    return chain, pool, seeds


def tx(chain, seed, nonce, fee=FEE, amount=1_000, to=None):
    return signed_transfer(chain.chain_id, seed, to or account_of(seed), amount, nonce, fee)


def reason_of(call) -> tuple[str, RejectKind]:
    with pytest.raises(ChainError) as info:
        call()
    return info.value.reason, info.value.kind


def test_selects_each_sender_in_nonce_order_and_richest_fee_first(setup):
    chain, pool, (a, b, *_) = setup
    for nonce in (2, 0, 1):
        pool.add(tx(chain, a, nonce, fee=FEE), 0)
    pool.add(tx(chain, b, 0, fee=5 * FEE), 0)
    picked = [(account_of(a) == t.sender_account, t.nonce) for t in pool.select(10)]
    assert picked == [(False, 0), (True, 0), (True, 1), (True, 2)]
    assert pool.pending_nonce(account_of(a)) == 3


def test_a_gap_holds_back_later_nonces(setup):
    chain, pool, (a, *_) = setup
    pool.add(tx(chain, a, 0), 0)
    pool.add(tx(chain, a, 2), 0)
    assert [t.nonce for t in pool.select(10)] == [0]


def test_rejections_are_named(setup):
    chain, pool, (a, b, *_) = setup
    first = tx(chain, a, 0)
    pool.add(first, 0)
    assert reason_of(lambda: pool.add(first, 0)) == ("already-known", RejectKind.STALE)
    assert reason_of(lambda: pool.add(tx(chain, a, 1, fee=10), 0))[0] == "fee-too-low"
    with pytest.raises(ChainError) as low:  # in NTK, the unit `--fee` takes (issue 16, finding 7)
        pool.add(tx(chain, a, 1, fee=0), 0)
    assert str(low.value) == "fee-too-low (expected '>= 0.000001 NTK', got '0 NTK')"
    forged = tx(chain, b, 0)
    forged = type(forged)(forged.chain_id, forged.sender, forged.nonce, forged.fee, forged.payload, bytes(64))
    assert reason_of(lambda: pool.add(forged, 0)) == ("bad-tx-signature", RejectKind.INVALID)
    too_much = tx(chain, b, 0, amount=10 * 10**9)
    assert reason_of(lambda: pool.add(too_much, 0))[0] == "insufficient-balance"
    mine_blocks(chain, 1, [tx(chain, b, 0)])
    assert reason_of(lambda: pool.add(tx(chain, b, 0, fee=3 * FEE), 0)) == ("nonce-too-low", RejectKind.STALE)


def test_pending_spends_count_against_the_balance(setup):
    chain, pool, (a, *_) = setup
    half = 5 * 10**9 - FEE
    pool.add(tx(chain, a, 0, amount=half), 0)
    pool.add(tx(chain, a, 1, amount=half - FEE), 0)
    assert reason_of(lambda: pool.add(tx(chain, a, 2, amount=1), 0))[0] == "insufficient-balance"


def test_replacement_needs_a_ten_percent_fee_bump(setup):
    chain, pool, (a, *_) = setup
    original = tx(chain, a, 0, fee=10_000)
    pool.add(original, 0)
    assert reason_of(lambda: pool.add(tx(chain, a, 0, fee=10_999, amount=7), 0))[0] == "replacement-underpriced"
    bumped = tx(chain, a, 0, fee=11_000, amount=7)
    pool.add(bumped, 0)
    assert bumped.txid in pool and original.txid not in pool and len(pool) == 1


def test_per_sender_and_global_limits_evict_the_cheapest(setup):
    chain, pool, seeds = setup
    a = seeds[0]
    for nonce in range(4):
        pool.add(tx(chain, a, nonce), 0)
    assert reason_of(lambda: pool.add(tx(chain, a, 4), 0))[0] == "too-many-pending"
    for seed in seeds[1:5]:
        pool.add(tx(chain, seed, 0, fee=FEE + 1), 0)
    assert len(pool) == 8
    assert reason_of(lambda: pool.add(tx(chain, seeds[5], 0, fee=FEE), 0))[0] == "mempool-full"
    rich = tx(chain, seeds[5], 0, fee=10 * FEE)
    pool.add(rich, 0)
    assert rich.txid in pool and len(pool) == 8
    assert pool.pending_nonce(account_of(a)) == 3  # the tail of a's run was evicted, not its head


def test_connected_blocks_drop_their_txs_and_expiry_drops_old_ones(setup):
    chain, pool, (a, b, *_) = setup
    included, waiting = tx(chain, a, 0), tx(chain, b, 0)
    pool.add(included, 0)
    pool.add(waiting, 100)
    block = mine_blocks(chain, 1, [included])[0]
    pool.on_block_connected(block)
    assert included.txid not in pool and waiting.txid in pool
    assert pool.expire(100 + pool.limits.expiry_seconds + 1) == 1 and len(pool) == 0


def test_reorg_readmits_transactions_of_undone_blocks(setup):
    chain, pool, (a, *_) = setup
    spend = tx(chain, a, 0)
    mine_blocks(chain, 1, [spend])
    undone = chain.block(chain.tip_hash)
    assert pool.on_block_disconnected(undone, 0) == []  # still confirmed at the tip: nonce used
    fresh = new_chain(chain.genesis)
    readmit = Mempool(fresh, fresh.chain_id, pool.limits)
    assert readmit.on_block_disconnected(undone, 0) == [spend.txid]


# ---- pending and queued (issue 17: a pool squatted by gapped transactions) -------------------


class Heard:
    """A MempoolObserver that keeps what it hears."""

    def __init__(self) -> None:
        self.evicted: list[tuple[str, str]] = []
        self.expired: list[str] = []

    def mempool_evicted(self, reason: str, kind: str) -> None:
        self.evicted.append((reason, kind))

    def mempool_expired(self, kind: str) -> None:
        self.expired.append(kind)


def pool_with(chain, heard=None, **limits) -> Mempool:
    return Mempool(chain, chain.chain_id, MempoolLimits(**{"min_fee": 1_000, **limits}), observer=heard)


def job_post(chain, seed, nonce, fee, spec_bytes):
    """A minable transaction of about ``spec_bytes`` bytes (the bare mempool runs no market rule)."""
    post = JobPost(1, b"x" * spec_bytes, 1, 1, 1, 1, 1)
    return Transaction(chain.chain_id, public_key_of(seed), nonce, fee, post).signed(seed)


def kinds(pool, txs) -> list[str | None]:
    return [pool.kind(t.txid) for t in txs]


def test_gapped_transactions_are_queued_and_promoted_when_the_gap_fills(setup):
    chain, pool, (a, *_) = setup
    first, third, fourth = tx(chain, a, 0), tx(chain, a, 2), tx(chain, a, 3)
    for t in (first, third, fourth):
        pool.add(t, 0)
    assert kinds(pool, [first, third, fourth]) == ["pending", "queued", "queued"]
    assert (pool.stats().pending, pool.stats().queued) == (1, 2)
    assert [t.nonce for t in pool.select(10)] == [0]  # the miner never sees a queued one
    second = tx(chain, a, 1)
    pool.add(second, 0)
    assert kinds(pool, [first, second, third, fourth]) == ["pending"] * 4
    assert [t.nonce for t in pool.select(10)] == [0, 1, 2, 3]
    stats = pool.stats()
    assert (stats.queued, stats.queued_bytes, stats.pending_bytes) == (0, 0, sum(len(t.encode()) for t in pool_txs(pool)))


def pool_txs(pool):
    return [pool.get(txid) for txid in pool.txids()]


def test_a_block_that_moves_the_nonce_promotes_queued_transactions(setup):
    chain, pool, (a, *_) = setup
    waiting = tx(chain, a, 2)
    pool.add(waiting, 0)
    assert pool.kind(waiting.txid) == "queued"
    pool.on_block_connected(mine_blocks(chain, 1, [tx(chain, a, 0), tx(chain, a, 1)])[0])
    assert pool.kind(waiting.txid) == "pending" and list(pool.select(10)) == [waiting]


def test_the_queue_has_a_cap_per_sender_and_a_global_one_shared_fairly(setup):
    chain, _, (a, b, c, d, e, _f) = setup
    heard = Heard()
    pool = pool_with(chain, heard, max_queued=4, max_queued_per_sender=3)
    a_queued = [tx(chain, a, nonce) for nonce in (1, 2, 3)]
    for t in a_queued:
        pool.add(t, 0)
    assert reason_of(lambda: pool.add(tx(chain, a, 4), 0)) == ("sender-queue-full", RejectKind.LOCAL)
    pool.add(tx(chain, b, 1), 0)  # the queue is full now
    pool.add(tx(chain, c, 1), 0)  # a holds 3, c none: a's furthest nonce makes room
    assert a_queued[2].txid not in pool and heard.evicted == [("queue-full", "queued")]
    pool.add(tx(chain, d, 1), 0)  # a holds 2 of the 4
    assert a_queued[1].txid not in pool and pool.stats().queued == 4
    # everyone holds one: no sender holds two more than e, so e waits its turn
    assert reason_of(lambda: pool.add(tx(chain, e, 1, fee=100 * FEE), 0)) == ("queue-full", RejectKind.LOCAL)
    pool.add(tx(chain, e, 0), 0)  # a pending transaction is never held back by the queue
    assert pool.stats().pending == 1


def test_a_gap_flood_never_turns_a_min_fee_pending_transaction_away():
    genesis, seeds = funded_genesis(8, "10")
    chain = new_chain(genesis)
    heard = Heard()
    pool = pool_with(chain, heard, max_txs=6, max_queued=6, max_queued_per_sender=2)
    for seed in seeds[:3]:
        for nonce in (1, 2):  # gapped, at a fee no miner will ever collect
            pool.add(tx(chain, seed, nonce, fee=10**6), 0)
    assert len(pool) == 6 and pool.stats().queued == 6
    pool.add(tx(chain, seeds[3], 1, fee=10**6), 0)  # a newcomer to the queue takes a share of it
    assert pool.stats().queued == 6 and heard.evicted == [("queue-full", "queued")]
    honest = tx(chain, seeds[4], 0, fee=pool.limits.min_fee)
    pool.add(honest, 0)
    assert pool.kind(honest.txid) == "pending" and len(pool) == 6
    assert heard.evicted[1:] == [("mempool-full", "queued")]
    assert list(pool.select(10)) == [honest]


def test_the_byte_cap_evicts_the_lowest_fee_rate_not_the_lowest_fee(setup):
    chain, _, (a, b, c, d, e, _f) = setup
    heard = Heard()
    cheap_big, rich_big = job_post(chain, a, 0, 20_000, 4_000), job_post(chain, b, 0, 80_000, 4_000)
    small = tx(chain, c, 0, fee=2_000)  # the lowest fee, but a higher rate than cheap_big's
    size_big, size_small = len(cheap_big.encode()), len(small.encode())
    assert cheap_big.fee / size_big < small.fee / size_small < rich_big.fee / size_big
    pool = pool_with(chain, heard, max_bytes=2 * size_big + size_small + size_small // 2)
    for t in (cheap_big, rich_big, small):
        pool.add(t, 0)
    better = tx(chain, d, 0, fee=3_000)
    pool.add(better, 0)
    assert cheap_big.txid not in pool and {small.txid, rich_big.txid, better.txid} <= set(pool.txids())
    assert heard.evicted == [("mempool-full", "pending")]
    assert pool.stats().pending_bytes <= pool.limits.max_bytes
    # a big one at a rate below every tail's finds no room, and evicts nothing trying
    before = set(pool.txids())
    assert reason_of(lambda: pool.add(job_post(chain, e, 0, 10_000, 4_000), 0))[0] == "mempool-full"
    assert set(pool.txids()) == before


def test_a_tail_is_evicted_only_for_a_strictly_better_rate_and_never_the_newcomers_own(setup):
    chain, _, (a, b, c, *_) = setup
    pool = pool_with(chain, max_txs=2)
    head, tail = tx(chain, a, 0), tx(chain, a, 1, fee=FEE + 500)
    pool.add(head, 0)
    pool.add(tail, 0)
    # a's next nonce may not push out a's own run: it would stand behind a gap it made
    assert reason_of(lambda: pool.add(tx(chain, a, 2, fee=10 * FEE), 0))[0] == "mempool-full"
    rich = tx(chain, b, 0, fee=FEE + 600)
    pool.add(rich, 0)  # a's tail goes, though its head pays less: the run stays gap-free
    assert tail.txid not in pool and {head.txid, rich.txid} == set(pool.txids())
    same_rate = tx(chain, c, 0, fee=FEE)  # as much as a's head: not enough
    assert len(same_rate.encode()) == len(head.encode())
    assert reason_of(lambda: pool.add(same_rate, 0))[0] == "mempool-full"


def test_queued_transactions_expire_sooner_and_an_expired_head_demotes_its_run(setup):
    chain, _, (a, b, *_) = setup
    heard = Heard()
    pool = pool_with(chain, heard, expiry_seconds=100.0, queued_expiry_seconds=10.0)
    head, rest = tx(chain, a, 0), [tx(chain, a, 1), tx(chain, a, 2)]
    gapped = tx(chain, b, 2)
    pool.add(head, 0)
    pool.add(gapped, 0)
    for t in rest:
        pool.add(t, 50)
    assert pool.expire(11) == 1 and gapped.txid not in pool and heard.expired == ["queued"]
    assert pool.expire(101) == 1 and head.txid not in pool
    assert kinds(pool, rest) == ["queued", "queued"]  # queued from 101: ten more seconds
    assert pool.expire(110) == 0
    pool.add(head, 110)  # the sender resubmits the missing nonce
    assert kinds(pool, [head, *rest]) == ["pending"] * 3
    assert pool.expire(149) == 0  # pending again: their life counts from admission (50)
    assert pool.expire(151) == 2 and heard.expired == ["queued", "pending", "pending", "pending"]


def test_a_queued_replacement_keeps_its_expiry(setup):
    chain, _, (a, *_) = setup
    pool = pool_with(chain, queued_expiry_seconds=10.0)
    pool.add(tx(chain, a, 1), 0)
    bumped = tx(chain, a, 1, fee=2 * FEE)
    pool.add(bumped, 9)
    assert pool.kind(bumped.txid) == "queued" and pool.expire(11) == 1
