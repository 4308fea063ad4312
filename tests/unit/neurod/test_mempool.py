"""Mempool: ordering, limits, fee-bump replacement, expiry and reorg re-admission."""

from __future__ import annotations

import pytest

from chain.errors import ChainError, RejectKind
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
