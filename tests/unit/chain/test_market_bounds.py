"""The bounds of `chain.market_rules`, pinned exactly: the value at each limit is taken (its
transaction applies in a real block) and the value one past it is refused, the refusal pinned
whole (reason, detail, expected, got, kind; `rejection`).

The flows in `test_market` stay clear of the limits, so a rule written ``>=`` for ``>`` (or
``<=`` for ``<``) passed them all: a consensus rule off by one splits nodes that read it apart.
Here every bound is hit on the nose: a stake, an escrow and a worker's free stake that are
exactly what is held, a job of exactly the most shards and the longest windows, a shard that
pays exactly one base unit, a bid expiring in its award's block, an award in the last block of
the bid window and of a reopened shard's award window, a commit in its deadline's block.

Heights: after `mine_until(chain, h - 1)` the next transaction stepped lands in block ``h``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from chain.amounts import format_ntk
from chain.errors import RejectKind
from chain.genesis import parse_genesis
from chain.job_spec import job_terms
from chain.jobs import Event, Shard, ShardStatus
from chain.market_types import AwardEntry, Challenge, JobAward, JobPost, Service, Settle, Stake
from chain.params import MAX_SUPPLY_UNITS
from chain.types import Transfer
from tests.support.chain_builders import DEFAULT_FEE, account_of, genesis_doc, numbered_seed
from tests.support.market import (
    ALICE,
    BOB,
    DAVE,
    MAX_PRICE,
    NTK,
    PRICE,
    SPEC,
    acct,
    awarded_job,
    bid,
    clone_market_chain,
    commit,
    digits_job_spec,
    job_of,
    market_chain,
    market_chain_on,
    market_genesis,
    mine_until,
    post,
    render_shard_artifact,
    staked,
    statuses,
    step,
    tx,
)
from tests.unit.chain.marketplace_checks import block_events, rejection

LOCAL = RejectKind.LOCAL
ESCROW = "the escrow is the shards' payments at the max price"


@pytest.fixture(scope="module")
def good0(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """Bob's honest artifact of shard 0 of SPEC (items 0 to 3)."""
    out: Path = tmp_path_factory.mktemp("bounds-art")
    return render_shard_artifact(SPEC, 0, 4, out / "good0")


def _posting(chain: Any, client: bytes = ALICE, *, spec: bytes = SPEC, shards: int = 2, max_price: int = MAX_PRICE,
             bid_blocks: int = 3, deadline_blocks: int = 20, challenge_blocks: int = 3, fee: int = DEFAULT_FEE) -> Any:
    return tx(chain, client, JobPost(Service.GENERATE, spec, shards, max_price, bid_blocks, deadline_blocks,
                                     challenge_blocks), fee=fee)


def _funded(chain: Any, *amounts: int) -> list[bytes]:
    """Fresh keys holding ``amounts`` (alice pays them in one block)."""
    seeds = [numbered_seed(800 + i) for i in range(len(amounts))]
    nonce = acct(chain, ALICE).nonce
    step(chain, *[tx(chain, ALICE, Transfer(account_of(s), a), nonce=nonce + i)
                  for i, (s, a) in enumerate(zip(seeds, amounts, strict=True))])
    return seeds


def _award(chain: Any, job_id: bytes, worker: bytes, *shards: int, price: int = PRICE, **bid_kw: Any) -> Any:
    return tx(chain, ALICE, JobAward(job_id, (AwardEntry(bid(chain, worker, job_id, price, **bid_kw), shards),)))


# ---- stake and post ----------------------------------------------------------------------------


def test_a_stake_may_bond_the_whole_balance_left_after_its_fee() -> None:
    chain = market_chain()
    exact, short = _funded(chain, 5 * NTK + DEFAULT_FEE, 5 * NTK + DEFAULT_FEE - 1)
    assert rejection(chain, tx(chain, short, Stake(5 * NTK))) == (
        "insufficient-balance", "", f">= {5 * NTK}", 5 * NTK - 1, LOCAL)
    step(chain, tx(chain, exact, Stake(5 * NTK)))
    assert (acct(chain, exact).balance, acct(chain, exact).bonded) == (0, 5 * NTK)


def test_a_job_of_exactly_max_shards_is_posted() -> None:
    chain = market_chain_on(market_genesis(max_shards=2))  # SPEC has 8 items: shards are not short of them
    assert rejection(chain, _posting(chain, shards=3)) == ("too-many-shards", "", "<= 2", 3, LOCAL)
    job_id = post(chain, shards=2)
    assert len(job_of(chain, job_id).shards) == 2


def test_a_bid_window_of_exactly_min_bid_blocks_is_posted() -> None:
    chain = market_chain()
    low = chain.params.market.min_bid_blocks
    assert rejection(chain, _posting(chain, bid_blocks=low - 1)) == (
        "bid-window-too-short", "", f">= {low}", low - 1, LOCAL)
    job_id = post(chain, bid_blocks=low)
    assert job_of(chain, job_id).bid_end == chain.height + low


@pytest.mark.parametrize("window", ["deadline_blocks", "challenge_blocks"])
def test_a_window_of_exactly_max_job_blocks_is_posted(window: str) -> None:
    chain = market_chain()
    top = chain.params.market.max_job_blocks
    assert rejection(chain, _posting(chain, **{window: top + 1})) == ("job-too-long", "", f"<= {top}", top + 1, LOCAL)
    job_id = post(chain, **{window: top})
    job = job_of(chain, job_id)
    assert (job.deadline - job.posted if window == "deadline_blocks" else job.challenge_blocks) == top


def test_a_post_whose_smallest_shard_pays_exactly_one_unit() -> None:
    """3 items in 2 shards: shard 0 has 1 item, shard 1 has 2. At the lowest max price that pays
    shard 0 one unit the post is taken; a unit of price less pays shard 0 nothing (shard 1 one
    unit: the smallest payment decides, not the sum)."""
    chain = market_chain()
    spec = digits_job_spec(3)
    terms = job_terms(Service.GENERATE, spec, chain.params.market.max_spec_bytes)
    units = terms.shard_units(0, 2)
    price = -(-10**6 // units)  # the least that pays one unit per megapixel quoted
    assert [terms.payment(k, 2, price) for k in (0, 1)] == [1, 2]
    assert [terms.payment(k, 2, price - 1) for k in (0, 1)] == [0, 1]
    assert rejection(chain, _posting(chain, spec=spec, max_price=price - 1)) == (
        "price-too-low", "a shard would pay nothing at the max price", None, None, LOCAL)
    job_id = post(chain, spec=spec, max_price=price)
    assert job_of(chain, job_id).escrow == 3
    # a shard paying one unit still locks a unit of stake (1.5x of 1 rounds down to 1, never to 0)
    step(chain, tx(chain, BOB, Stake(10 * NTK)))
    offer = bid(chain, BOB, job_id, price)
    award = tx(chain, ALICE, JobAward(job_id, (AwardEntry(offer, (0, 1)),)))
    bob = account_of(BOB)
    assert block_events(chain, award) == (
        Event("lock", bob, 1, job_id, 0, "stake"), Event("lock", bob, 3, job_id, 1, "stake"))
    step(chain, award)
    job = job_of(chain, job_id)
    assert job.shards[0] == Shard(ShardStatus.ASSIGNED, worker=bob, price=price, payment=1, stake=1,
                                  bid_id=offer.bid_id, deadline=job.deadline)


def test_a_post_may_escrow_the_whole_balance_left_after_its_fee() -> None:
    chain = market_chain()
    escrow = 401_408  # SPEC's two shards at MAX_PRICE
    exact, short = _funded(chain, escrow + DEFAULT_FEE, escrow + DEFAULT_FEE - 1)
    assert rejection(chain, _posting(chain, short)) == ("insufficient-balance", ESCROW, f">= {escrow}", escrow - 1,
                                                        LOCAL)
    posting = _posting(chain, exact)
    assert block_events(chain, posting) == (Event("lock", account_of(exact), escrow, posting.txid, note="escrow"),)
    step(chain, posting)
    assert (acct(chain, exact).balance, job_of(chain, posting.txid).escrow) == (0, escrow)


def test_a_post_may_escrow_the_whole_supply() -> None:
    """The supply cap is reached only by a chain whose one account holds every token there is: a
    genesis allocating all of it, no block reward, a post paying no fee. Its escrow of exactly
    the cap is taken; one unit more is refused (by the balance, which the cap also bounds)."""
    genesis = parse_genesis(genesis_doc([ALICE], format_ntk(MAX_SUPPLY_UNITS), initial_reward="0"))
    chain = market_chain_on(genesis)
    spec = digits_job_spec(20)  # 1,003,520 pixel units: a max price in range reaches the cap
    terms = job_terms(Service.GENERATE, spec, chain.params.market.max_spec_bytes)
    price = -(-MAX_SUPPLY_UNITS * 10**6 // terms.units)
    assert (terms.payment(0, 1, price), terms.payment(0, 1, price + 1)) == (MAX_SUPPLY_UNITS, MAX_SUPPLY_UNITS + 1)
    mp = chain.params.market  # the default market rules: the shortest windows they allow
    windows = {"bid_blocks": mp.min_bid_blocks, "deadline_blocks": mp.min_bid_blocks + 1,
               "challenge_blocks": mp.min_challenge_blocks}
    assert rejection(chain, _posting(chain, spec=spec, shards=1, max_price=price + 1, fee=0, **windows)) == (
        "insufficient-balance", ESCROW, f">= {MAX_SUPPLY_UNITS + 1}", MAX_SUPPLY_UNITS, LOCAL)
    posting = _posting(chain, spec=spec, shards=1, max_price=price, fee=0, **windows)
    step(chain, posting)
    assert (acct(chain, ALICE).balance, job_of(chain, posting.txid).escrow) == (0, MAX_SUPPLY_UNITS)


# ---- awards ------------------------------------------------------------------------------------


def test_a_bid_expiring_in_the_award_block_is_taken() -> None:
    chain = staked()
    job_id = post(chain)
    h = chain.height + 1  # the award's block
    assert rejection(chain, _award(chain, job_id, BOB, 0, expiry=h - 1)) == ("bid-expired", "", f">= {h}", h - 1, LOCAL)
    step(chain, _award(chain, job_id, BOB, 0, expiry=h))
    assert statuses(chain, job_id) == [ShardStatus.ASSIGNED, ShardStatus.OPEN]


def test_an_award_in_the_last_block_of_the_bid_window() -> None:
    chain = staked()
    job_id = post(chain)
    end = job_of(chain, job_id).bid_end
    mine_until(chain, end - 1)
    at_end = clone_market_chain(chain)
    step(at_end, _award(chain, job_id, BOB, 0))
    assert at_end.height == end and statuses(at_end, job_id)[0] is ShardStatus.ASSIGNED
    step(chain)
    assert rejection(chain, _award(chain, job_id, BOB, 0)) == ("bid-window-closed", "", f"<= {end}", end + 1, LOCAL)


def test_a_reopened_shard_is_awarded_in_the_last_block_of_its_award_window() -> None:
    """Both workers no-show: the settle after the deadline slashes them and reopens both shards,
    which an award may take until `Job.award_end` (a job's length of work after the deadline)."""
    chain, job_id = awarded_job()
    mine_until(chain, job_of(chain, job_id).deadline)
    step(chain, tx(chain, DAVE, Settle(job_id)))
    job = job_of(chain, job_id)
    assert statuses(chain, job_id) == [ShardStatus.OPEN, ShardStatus.OPEN]
    end = job.award_end(job.shards[1])
    mine_until(chain, end - 1)
    at_end = clone_market_chain(chain)
    step(at_end, _award(chain, job_id, BOB, 1))
    assert at_end.height == end and statuses(at_end, job_id)[1] is ShardStatus.ASSIGNED
    step(chain)
    assert rejection(chain, _award(chain, job_id, BOB, 1)) == (
        "award-too-late", "a reopened shard is awarded within a job's length after its deadline", f"<= {end}",
        end + 1, LOCAL)


def test_a_worker_whose_free_stake_is_exactly_the_shards_stake_is_awarded() -> None:
    """A shard of a dear job locks more than the minimum stake: dave bonds exactly that."""
    chain = market_chain()
    price = 10**11
    job_id = post(chain, max_price=price)
    payment = job_terms(Service.GENERATE, SPEC, chain.params.market.max_spec_bytes).payment(0, 2, price)
    stake = payment * chain.params.market.stake_per_payment_bp // 10_000
    assert stake > chain.params.market.min_stake
    step(chain, tx(chain, DAVE, Stake(stake - 1)))
    assert rejection(chain, _award(chain, job_id, DAVE, 0, price=price)) == (
        "insufficient-free-stake", "worker for shard 0", f">= {stake}", stake - 1, LOCAL)
    step(chain, tx(chain, DAVE, Stake(1)))
    step(chain, _award(chain, job_id, DAVE, 0, price=price))
    assert (acct(chain, DAVE).locked, job_of(chain, job_id).shards[0].stake) == (stake, stake)


# ---- commits and queries -----------------------------------------------------------------------


def test_a_commit_in_the_deadline_block_is_taken_and_one_block_later_is_late(good0: Any) -> None:
    chain, job_id = awarded_job()
    deadline = job_of(chain, job_id).shards[0].deadline
    mine_until(chain, deadline - 1)
    at_deadline = clone_market_chain(chain)
    step(at_deadline, commit(chain, job_id, BOB, 0, good0))
    assert at_deadline.height == deadline and statuses(at_deadline, job_id)[0] is ShardStatus.COMMITTED
    step(chain)
    assert rejection(chain, commit(chain, job_id, BOB, 0, good0)) == (
        "commit-too-late", "", f"<= {deadline}", deadline + 1, LOCAL)


def test_a_query_locks_the_challengers_bond(good0: Any) -> None:
    chain, job_id = awarded_job()
    step(chain, commit(chain, job_id, BOB, 0, good0))
    bond = chain.params.market.challenge_bond
    assert block_events(chain, tx(chain, DAVE, Challenge(job_id, 0, 1, None))) == (
        Event("lock", account_of(DAVE), bond, job_id, 0, note="bond"),)
    assert bond == NTK  # devnet's challenge bond


@pytest.mark.parametrize("capacity", [2, 3])
def test_a_bids_capacity_counts_the_shards_it_won_in_earlier_awards(capacity: int) -> None:
    """A bid may be carried by several awards of one job: each counts the shards it already holds."""
    chain = staked()
    job_id = post(chain, shards=3, bid_blocks=5)
    offer = bid(chain, BOB, job_id, PRICE, max_shards=capacity)
    step(chain, tx(chain, ALICE, JobAward(job_id, (AwardEntry(offer, (0, 1)),))))
    again = tx(chain, ALICE, JobAward(job_id, (AwardEntry(offer, (2,)),)))
    if capacity == 2:
        assert rejection(chain, again) == ("bid-over-capacity", "", "<= 2", 3, LOCAL)
    else:
        step(chain, again)
        assert statuses(chain, job_id) == [ShardStatus.ASSIGNED] * 3
        assert {shard.bid_id for shard in job_of(chain, job_id).shards} == {offer.bid_id}


def test_a_commit_records_its_block_and_opens_the_challenge_window(tmp_path: Path) -> None:
    chain, job_id = awarded_job()
    manifest = render_shard_artifact(SPEC, 0, 4, tmp_path / "shard0")
    step(chain, commit(chain, job_id, BOB, 0, manifest))
    shard = job_of(chain, job_id).shards[0]
    assert (shard.status, shard.root, shard.items) == (ShardStatus.COMMITTED, manifest.root, 4)
    assert (shard.committed_at, shard.challenge_end) == (chain.height, chain.height + 3)
