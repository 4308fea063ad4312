"""Refusals of `chain.market_rules` that the flows in `test_market` and `test_training_disputes` do
not reach, pinned whole: reason, detail, expected, got and kind, as the mempool's check gives
them (`rejection`; a block carrying the transaction is refused with the same details).

- a dispute's committee that is full (`MAX_VOTERS` votes recorded),
- a genesis whose market cannot run (a zero re-computation budget, quorum or response window),
- a challenger who is neither the client nor the worker voting on its own dispute,
- a payload kind with no market rule (`apply_market` itself: every kind a block can carry has one),
- a challenge of the first and last item of a shard, and one past either end,
- a no-show's slash, from the block after the deadline and not in it,
- a query that locks the challenger's whole balance as its bond, and one a unit short,
- a fraud proof the node itself cannot judge (no renderer, a lost spec): a store fault, not a refusal.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from chain import schema
from chain.assembly import check_against_tip
from chain.chainstate import _StateView
from chain.errors import InvalidTransaction, RejectKind, StoreError
from chain.genesis import GenesisError
from chain.jobs import MAX_VOTERS, Event
from chain.market_rules import MarketContext, apply_market
from chain.market_types import Challenge, Service, Settle, Stake
from chain.state import Ledger
from chain.store import Overlay
from chain.types import Transfer
from tests.support.chain_builders import DEFAULT_FEE, account_of, numbered_seed
from tests.support.market import (
    ALICE,
    BAD_SPEC,
    BOB,
    CAROL,
    DAVE,
    NTK,
    SPEC,
    acct,
    awarded_job,
    canonical,
    claim_of,
    clone_market_chain,
    committed_job,
    job_of,
    market_chain,
    market_genesis,
    mine_until,
    post,
    render_shard_artifact,
    step,
    tx,
)
from tests.unit.chain.marketplace_checks import block_events, rejection
from tests.unit.chain.test_training_disputes import (
    VOTERS,
    committee_chain,
    disputed,
    trained_job,
    vote,
)

LOCAL = RejectKind.LOCAL


@pytest.fixture(scope="module")
def art(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    out: Path = tmp_path_factory.mktemp("refusal-art")
    return {
        "good0": render_shard_artifact(SPEC, 0, 4, out / "good0"),
        "good1": render_shard_artifact(SPEC, 4, 8, out / "good1"),
        "bad1": render_shard_artifact(BAD_SPEC, 4, 8, out / "bad1"),
    }


def test_a_full_committee_takes_no_more_votes() -> None:
    """`MAX_VOTERS` votes fill a dispute (the job record keeps no more); the next is refused."""
    seeds = [numbered_seed(2000 + i) for i in range(MAX_VOTERS + 1)]
    chain = committee_chain(voters=0)
    nonce = acct(chain, ALICE).nonce
    step(chain, *[tx(chain, ALICE, Transfer(account_of(s), 11 * NTK), nonce=nonce + i) for i, s in enumerate(seeds)])
    step(chain, *[tx(chain, s, Stake(10 * NTK)) for s in seeds])
    job_id = trained_job(chain)
    disputed(chain, job_id)
    step(chain, *[vote(chain, s, job_id, True) for s in seeds[:MAX_VOTERS]])
    assert len(job_of(chain, job_id).shards[0].voters) == MAX_VOTERS
    # got: the votes there would be with this one
    assert rejection(chain, vote(chain, seeds[MAX_VOTERS], job_id, True)) == (
        "committee-full", "", f"<= {MAX_VOTERS} votes", MAX_VOTERS + 1, LOCAL)


def test_a_challenger_that_is_not_the_client_cannot_vote_on_its_dispute() -> None:
    chain = committee_chain()
    job_id = trained_job(chain)
    disputed(chain, job_id, by=CAROL)  # carol holds no stake either: the party rule comes first
    assert rejection(chain, vote(chain, CAROL, job_id, True)) == (
        "party-cannot-vote", "the worker, the client and the challenger have a stake in the verdict", None, None,
        LOCAL)
    step(chain, vote(chain, VOTERS[0], job_id, True))  # a drawn staker's vote is taken


@pytest.mark.parametrize("key", ["max_challenges_per_block", "quorum", "response_blocks"])
def test_a_genesis_with_a_zero_market_bound_is_refused(key: str) -> None:
    """A zero budget of re-computations per block would refuse every answer to a render query, and
    the honest worker would be slashed as withholding: a genesis may not set it (nor the other
    bounds a market cannot run without)."""
    with pytest.raises(GenesisError) as info:
        market_genesis(**{key: 0})
    assert (info.value.reason, info.value.detail) == ("bad-genesis", f"market.{key} must be at least 1")
    assert getattr(market_genesis(**{key: 1}).params.market, key) == 1


def test_a_payload_kind_without_a_market_rule() -> None:
    """`apply_transaction` never hands a transfer to the market rules; `apply_market` refuses one
    by itself, naming the kind."""
    chain = market_chain()
    transfer = tx(chain, ALICE, Transfer(account_of(BOB), 1))
    ledger = Ledger(_StateView(Overlay(chain.kv), chain.decoded_accounts, chain.decoded_jobs))
    context = MarketContext(chain.params.market, chain.chain_id, chain.height + 1)
    with pytest.raises(InvalidTransaction) as info:
        apply_market(ledger, context, transfer)
    error = info.value
    assert (error.reason, error.detail, error.expected, error.got, error.kind) == (
        "bad-tx-kind", f"no state rule for kind {Transfer.KIND}", None, None, RejectKind.INVALID)
    assert Transfer.KIND == 1


def test_a_ledger_reads_the_spec_of_a_job_posted_in_its_own_block() -> None:
    """Read-your-writes within a block: a spec posted earlier in the block is seen before the
    store has it (no rule needs one yet: an award comes a block after its post at the earliest)."""
    chain = market_chain()
    ledger = Ledger(_StateView(Overlay(chain.kv), chain.decoded_accounts, chain.decoded_jobs))
    job_id = bytes([7]) * 32
    assert ledger.spec(job_id) is None
    ledger.specs[job_id] = SPEC
    assert ledger.spec(job_id) == SPEC


@pytest.mark.parametrize("lost", ["adjudicator", "spec"])
def test_a_fraud_proof_the_node_cannot_judge_is_the_nodes_fault(art: dict[str, Any], lost: str) -> None:
    """A node without a renderer, or whose store lost the job's spec, cannot judge a fraud proof:
    a StoreError (the node's fault, reported), never a refusal that would blame the sender."""
    chain, job_id = committed_job(art, second="bad1")
    if lost == "adjudicator":
        chain.adjudicator = None
        expected = ("no-adjudicator", "this node cannot re-render items to judge a fraud proof")
    else:
        chain.kv.commit({schema.JOB_SPEC + job_id: None}, sync=False)
        expected = ("store-spec-missing", f"spec of job {job_id.hex()}")
    with pytest.raises(StoreError) as info:
        check_against_tip(chain, tx(chain, DAVE, Challenge(job_id, 1, 5, claim_of(art["bad1"], 1))))
    assert (info.value.reason, info.value.detail) == expected


def test_a_challenge_names_an_item_of_its_shard_from_the_first_to_the_last(art: dict[str, Any]) -> None:
    chain, job_id = committed_job(art)  # shard 1 holds items 4 to 7
    for index in (3, 8):
        assert rejection(chain, tx(chain, DAVE, Challenge(job_id, 1, index, None))) == (
            "item-outside-shard", "", "[4, 8)", index, LOCAL)
    for index in (4, 7):
        step(clone_market_chain(chain), tx(chain, DAVE, Challenge(job_id, 1, index, None)))


def test_a_no_show_is_slashed_from_the_block_after_its_deadline() -> None:
    chain, job_id = awarded_job()
    job = job_of(chain, job_id)
    mine_until(chain, job.deadline - 1)  # the next block is the deadline's: commits are still due
    assert rejection(chain, tx(chain, DAVE, Settle(job_id))) == (
        "nothing-to-settle", "no shard is due for payment, slashing or refund", None, None, RejectKind.STALE)
    step(chain)
    lost = [shard.stake * 2_000 // 10_000 for shard in job.shards]  # devnet: 20% of the stake
    assert block_events(chain, tx(chain, DAVE, Settle(job_id))) == (
        Event("slash", job.shards[0].worker, lost[0], job_id, 0, "no-show"),
        Event("burn", b"", lost[0], job_id, 0, "no-show"),
        Event("slash", job.shards[1].worker, lost[1], job_id, 1, "no-show"),
        Event("burn", b"", lost[1], job_id, 1, "no-show"),
    )


def test_a_challenge_in_the_last_block_of_the_window_is_taken_and_one_block_later_is_late(
        art: dict[str, Any]) -> None:
    chain, job_id = committed_job(art)
    end = job_of(chain, job_id).shards[1].challenge_end
    mine_until(chain, end - 1)  # the next block is the window's last
    at_end = clone_market_chain(chain)
    step(at_end, tx(chain, DAVE, Challenge(job_id, 1, 4, None)))
    assert at_end.height == end
    step(chain)
    assert rejection(chain, tx(chain, DAVE, Challenge(job_id, 1, 4, None))) == (
        "challenge-window-closed", "", f"<= {end}", end + 1, LOCAL)


def test_a_query_may_lock_the_challengers_whole_balance_as_its_bond(art: dict[str, Any]) -> None:
    chain, job_id = committed_job(art)
    bond = chain.params.market.challenge_bond
    exact, short = numbered_seed(700), numbered_seed(701)
    nonce = acct(chain, ALICE).nonce
    step(chain, tx(chain, ALICE, Transfer(account_of(exact), bond + DEFAULT_FEE), nonce=nonce),
         tx(chain, ALICE, Transfer(account_of(short), bond + DEFAULT_FEE - 1), nonce=nonce + 1))
    assert rejection(chain, tx(chain, short, Challenge(job_id, 1, 4, None))) == (
        "insufficient-balance", "a query or dispute locks the challenge bond", f">= {bond}", bond - 1, LOCAL)
    step(chain, tx(chain, exact, Challenge(job_id, 1, 4, None)))
    assert acct(chain, exact).balance == 0


def test_a_ledger_over_a_reader_without_market_state_refuses_market_transactions() -> None:
    """`apply_block` over a reader of accounts only (a light check of transfers) cannot judge a
    market transaction: it says so instead of failing on a missing method."""

    class AccountsOnly:
        def account(self, account_id: bytes) -> None:
            return None

    with pytest.raises(InvalidTransaction) as info:
        Ledger(AccountsOnly()).job(bytes(32))  # type: ignore[arg-type]
    assert (info.value.reason, info.value.detail) == ("bad-tx-kind", "market transactions need a market state reader")


def test_an_inference_job_records_its_images_and_no_seed() -> None:
    chain = market_chain()
    spec = canonical({"images": 5, "model": {"name": "cnn"}, "task": "label"})
    job_id = post(chain, spec=spec, shards=1, service=Service.LABEL)
    job = job_of(chain, job_id)
    assert (job.service, job.items, job.seed) == (Service.LABEL, 5, 0)
