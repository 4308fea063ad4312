"""Unbonding, pinned whole: the refusals of `Unstake` and `Release` with the details a worker's
operator is shown (how much stake is free, from which height it can be released), the events a
wallet's history shows, and the unbonding period exactly at its end.

The flow itself (locked stake backs awarded shards, released only after the period) is in
`test_market`; these are the exact values around it.
"""

from __future__ import annotations

import pytest

from chain.errors import RejectKind
from chain.jobs import Event
from chain.market_types import Release, Stake, Unstake
from chain.state import Account
from chain.types import Transfer
from tests.support.chain_builders import DEFAULT_FEE, account_of
from tests.support.market import (
    BOB,
    DAVE,
    NTK,
    acct,
    awarded_job,
    market_chain,
    mine_until,
    step,
    tx,
)
from tests.unit.chain.marketplace_checks import block_events, rejection

BOB_ID = account_of(BOB)


def test_unstake_of_locked_stake_is_refused_with_what_is_free() -> None:
    chain, _ = awarded_job()
    bob = acct(chain, BOB)
    free = bob.bonded - bob.locked
    assert rejection(chain, tx(chain, BOB, Unstake(free + 1))) == (
        "insufficient-free-stake", "locked stake backs awarded shards", f">= {free + 1}", free, RejectKind.LOCAL)
    unstake = tx(chain, BOB, Unstake(free))  # all that is free: taken
    assert block_events(chain, unstake) == (Event("unbond", BOB_ID, free),)


def test_release_at_the_end_of_the_unbonding_period_and_not_a_block_before() -> None:
    chain, _ = awarded_job()
    step(chain, tx(chain, BOB, Unstake(5 * NTK)))
    bob = acct(chain, BOB)
    assert bob.release_height == chain.height + 20  # devnet's unbonding_blocks
    mine_until(chain, bob.release_height - 2)  # the next block is one short of the release height
    assert rejection(chain, tx(chain, BOB, Release())) == (
        "still-unbonding", "", f">= {bob.release_height}", bob.release_height - 1, RejectKind.LOCAL)
    step(chain)  # the next block is at the release height
    release = tx(chain, BOB, Release())
    assert block_events(chain, release) == (Event("release", BOB_ID, 5 * NTK),)
    step(chain, release)
    assert acct(chain, BOB) == Account(bob.balance + 5 * NTK - release.fee, bob.nonce + 1, bob.bonded, bob.locked)


def test_an_accounts_events_are_the_newest_hundred_unless_asked_for_more() -> None:
    chain = market_chain()
    nonce = acct(chain, DAVE).nonce
    step(chain, *[tx(chain, DAVE, Stake(amount), nonce=nonce + amount - 1) for amount in range(1, 102)])
    newest_first = [(chain.height, Event("bond", account_of(DAVE), amount)) for amount in range(101, 0, -1)]
    assert chain.events(account=account_of(DAVE)) == newest_first[:100]
    assert chain.events(account=account_of(DAVE), limit=101) == newest_first
    for neither_or_both in ({}, {"account": account_of(DAVE), "job_id": bytes(32)}):
        with pytest.raises(ValueError, match="^events: give exactly one of account and job_id$"):
            chain.events(**neither_or_both)


def test_a_transfer_keeps_the_senders_stake_as_it_is() -> None:
    """A worker pays from its balance: bonded, locked and unbonding stake are not touched (the
    transfer's fast path rebuilds the account)."""
    chain, _ = awarded_job()
    step(chain, tx(chain, BOB, Unstake(NTK)))
    bob = acct(chain, BOB)
    assert bob.locked and bob.unbonding and bob.release_height
    step(chain, tx(chain, BOB, Transfer(account_of(DAVE), 7)))
    assert acct(chain, BOB) == Account(bob.balance - 7 - DEFAULT_FEE, bob.nonce + 1, bob.bonded, bob.locked,
                                       bob.unbonding, bob.release_height)
