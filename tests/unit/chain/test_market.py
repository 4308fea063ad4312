"""The market in consensus: token flows of whole jobs, every named refusal, and reorgs.

Everything goes through real blocks on a devnet chain whose state judges fraud proofs with the
node's adjudicator (the worker's renderer). After every block the supply must balance and the
incremental state root must equal one recomputed from scratch (`assert_supply`). Refusals are
checked on a block carrying the transaction (which must move nothing) and, for a single market
transaction, on the mempool's check too (`refused`).

Tokens of the devnet chain: 1 NTK = 10^9 base units; min_stake 10 NTK, stake 1.5x a shard's
payment, challenge bond 1 NTK, 50% of a fraud slash to the challenger, 20% no-show slash.
"""

from __future__ import annotations

from typing import Any

import pytest

from chain import encoding as enc
from chain import schema
from chain.assembly import check_against_tip
from chain.chainstate import ChainState
from chain.crypto import public_key_of
from chain.errors import DecodeError, InvalidTransaction, RejectKind
from chain.jobs import Event, Job, JobStatus, ShardStatus
from chain.market_types import (
    Accept,
    AwardEntry,
    Bid,
    Challenge,
    JobAward,
    JobPost,
    Release,
    Respond,
    ResultCommit,
    Service,
    Settle,
    Stake,
    Unstake,
)
from chain.state import EMPTY_ACCOUNT, Account
from chain.types import Transaction, Transfer
from tests.support.chain_builders import (
    BRANCH_B_MINER,
    account_of,
    import_all,
    mine_blocks,
    numbered_seed,
)
from tests.support.market import (
    ALICE,
    BAD_SPEC,
    BOB,
    CAROL,
    DAVE,
    MAX_PRICE,
    NTK,
    PRICE,
    SPEC,
    TRAIN_SPEC,
    acct,
    assert_supply,
    award,
    awarded_job,
    bid,
    canonical,
    claim_of,
    clone_market_chain,
    commit,
    committed_job,
    digits_job_spec,
    events,
    job_of,
    market_chain,
    market_chain_on,
    market_genesis,
    mine_until,
    post,
    refusal,
    refused,
    render_shard_artifact,
    snapshot,
    staked,
    statuses,
    step,
    tx,
)
from tests.unit.chain.marketplace_checks import block_events, rejection

# refusals as the mempool's check gives them (`rejection`); a block carrying one is refused alike
INVALID, LOCAL, STALE, MISSING = RejectKind.INVALID, RejectKind.LOCAL, RejectKind.STALE, RejectKind.MISSING
UNKNOWN_JOB = ("unknown-job", bytes(32).hex(), None, None, MISSING)  # the mempool waits for the job
JOB_CLOSED = ("job-closed", "", None, None, STALE)
# STALE ("valid once, useless now") also for a settle that comes too early and would apply later:
# "not yet" is not stale, though both kinds spare the relaying peer
NOTHING_TO_SETTLE = ("nothing-to-settle", "no shard is due for payment, slashing or refund", None, None, STALE)
NOTHING_TO_ACCEPT = ("nothing-to-accept", "no shard is committed and unqueried", None, None, LOCAL)
NOTHING_UNBONDING = ("nothing-unbonding", "", None, None, LOCAL)
NOT_QUERIED = ("shard-not-queried", "", None, None, LOCAL)
SELF_CHALLENGE = ("self-challenge", "", None, None, LOCAL)
BAD_PROOF_PATH = ("bad-proof-path", "the leaf does not sit at its position under the committed root", None, None,
                  INVALID)  # provably false: the relaying peer is penalised
ESCROW = "the escrow is the shards' payments at the max price"


@pytest.fixture(scope="module")
def art(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Artifacts of the two shards of SPEC, honest and rendered from another seed (rendered once)."""
    out = tmp_path_factory.mktemp("market-art")
    return {
        "good0": render_shard_artifact(SPEC, 0, 4, out / "good0"),
        "good1": render_shard_artifact(SPEC, 4, 8, out / "good1"),
        "bad0": render_shard_artifact(BAD_SPEC, 0, 4, out / "bad0"),
        "bad1": render_shard_artifact(BAD_SPEC, 4, 8, out / "bad1"),
    }


# ---- flows -------------------------------------------------------------------------------------


def test_honest_job_is_paid_on_settle_after_the_challenge_window(art: dict[str, Any]) -> None:
    chain, job_id = awarded_job()
    job = job_of(chain, job_id)
    assert job.escrow == 401_408 and job.units == 401_408 and job.items == 8
    assert [s.status for s in job.shards] == [ShardStatus.ASSIGNED] * 2
    assert [(s.payment, s.stake) for s in job.shards] == [(100_352, 150_528)] * 2
    assert acct(chain, BOB).locked == acct(chain, CAROL).locked == 150_528
    assert chain.jobs_of(account_of(ALICE)) == {job_id: {"client"}}
    assert chain.jobs_of(account_of(BOB)) == {job_id: {"worker"}}

    step(chain, commit(chain, job_id, BOB, 0, art["good0"]), commit(chain, job_id, CAROL, 1, art["good1"]))
    end = job_of(chain, job_id).shards[0].challenge_end
    assert end == chain.height + 3
    assert rejection(chain, tx(chain, DAVE, Settle(job_id))) == NOTHING_TO_SETTLE
    mine_until(chain, end - 1)
    assert rejection(chain, tx(chain, DAVE, Settle(job_id))) == NOTHING_TO_SETTLE  # the last block of the window
    step(chain)  # the next block is past it
    alice, bob, carol = acct(chain, ALICE), acct(chain, BOB), acct(chain, CAROL)
    step(chain, tx(chain, DAVE, Settle(job_id)))

    job = job_of(chain, job_id)
    assert job.status is JobStatus.CLOSED and job.escrow == 0
    assert [s.status for s in job.shards] == [ShardStatus.PAID] * 2
    assert acct(chain, BOB) == Account(bob.balance + 100_352, bob.nonce, bob.bonded, 0)
    assert acct(chain, CAROL) == Account(carol.balance + 100_352, carol.nonce, carol.bonded, 0)
    assert acct(chain, ALICE).balance == alice.balance + 401_408 - 2 * 100_352  # the unspent escrow
    assert events(chain, job_id) == [
        ("lock", -1, 401_408, "escrow"), ("lock", 0, 150_528, "stake"), ("lock", 1, 150_528, "stake"),
        ("pay", 0, 100_352, ""), ("pay", 1, 100_352, ""), ("refund", -1, 200_704, "unspent escrow"),
    ]
    assert chain.totals().burned == 0
    # nothing is paid twice
    assert rejection(chain, tx(chain, DAVE, Settle(job_id))) == JOB_CLOSED
    assert rejection(chain, tx(chain, ALICE, Accept(job_id))) == JOB_CLOSED


def test_accept_pays_committed_shards_early_and_only_once(art: dict[str, Any]) -> None:
    chain, job_id = awarded_job()
    assert rejection(chain, tx(chain, ALICE, Accept(job_id))) == NOTHING_TO_ACCEPT
    step(chain, commit(chain, job_id, BOB, 0, art["good0"]))
    assert rejection(chain, tx(chain, BOB, Accept(job_id))) == ("not-job-client", "", None, None, LOCAL)
    bob = acct(chain, BOB)
    early = tx(chain, ALICE, Accept(job_id))  # in the challenge window: the client waives it
    assert block_events(chain, early) == (Event("pay", account_of(BOB), 100_352, job_id, 0),)  # the job stays open
    step(chain, early)
    assert statuses(chain, job_id) == [ShardStatus.PAID, ShardStatus.ASSIGNED]
    assert acct(chain, BOB).balance == bob.balance + 100_352 and acct(chain, BOB).locked == 0
    assert job_of(chain, job_id).escrow == 401_408 - 100_352
    assert rejection(chain, tx(chain, ALICE, Accept(job_id))) == NOTHING_TO_ACCEPT  # shard 0 is paid
    step(chain, commit(chain, job_id, CAROL, 1, art["good1"]))
    alice = acct(chain, ALICE)
    closing = tx(chain, ALICE, Accept(job_id))
    # the accept that makes every shard final closes the job: the unspent escrow's refund names it
    assert block_events(chain, closing) == (
        Event("pay", account_of(CAROL), 100_352, job_id, 1),
        Event("refund", account_of(ALICE), 401_408 - 2 * 100_352, job_id, note="unspent escrow"),
    )
    step(chain, closing)
    job = job_of(chain, job_id)
    assert job.status is JobStatus.CLOSED and job.escrow == 0
    assert acct(chain, ALICE).balance == alice.balance - 10 + 401_408 - 2 * 100_352
    pays = [e for e in events(chain, job_id) if e[0] == "pay"]
    assert pays == [("pay", 0, 100_352, ""), ("pay", 1, 100_352, "")]
    assert rejection(chain, tx(chain, ALICE, Accept(job_id))) == JOB_CLOSED
    assert rejection(chain, tx(chain, CAROL, Settle(job_id))) == JOB_CLOSED


def test_protocol_fee_is_burned_from_each_payment(art: dict[str, Any]) -> None:
    chain, job_id = committed_job(art, chain=market_chain_on(market_genesis(protocol_fee_bp=1_000)))
    bob = acct(chain, BOB)
    step(chain, tx(chain, ALICE, Accept(job_id)))
    fee = 100_352 * 1_000 // 10_000
    assert acct(chain, BOB).balance == bob.balance + 100_352 - fee
    assert chain.totals().burned == 2 * fee
    assert [e for e in events(chain, job_id) if e[0] in ("pay", "burn")] == [
        ("pay", 0, 100_352 - fee, ""), ("burn", 0, fee, "fee"), ("pay", 1, 100_352 - fee, ""), ("burn", 1, fee, "fee"),
    ]
    assert job_of(chain, job_id).status is JobStatus.CLOSED


def test_fraud_proof_slashes_and_the_shard_is_re_awarded_and_paid(art: dict[str, Any]) -> None:
    chain, job_id = committed_job(art, second="bad1")  # carol lies about shard 1
    carol, dave = acct(chain, CAROL), acct(chain, DAVE)
    stake = job_of(chain, job_id).shards[1].stake
    step(chain, tx(chain, DAVE, Challenge(job_id, 1, 5, claim_of(art["bad1"], 1))))
    reward = stake * 5_000 // 10_000
    assert acct(chain, CAROL) == Account(carol.balance, carol.nonce, carol.bonded - stake, 0)
    assert acct(chain, DAVE).balance == dave.balance - 10 + reward
    assert chain.totals().burned == stake - reward
    job = job_of(chain, job_id)
    assert [s.status for s in job.shards] == [ShardStatus.COMMITTED, ShardStatus.OPEN]
    assert job.shards[1].deadline == job.deadline and job.escrow == 401_408
    assert events(chain, job_id)[-3:] == [
        ("slash", 1, stake, "fraud"), ("reward", 1, reward, "fraud"), ("burn", 1, stake - reward, "fraud"),
    ]
    # the same proof again: the shard is open now
    assert rejection(chain, tx(chain, DAVE, Challenge(job_id, 1, 5, claim_of(art["bad1"], 1)))) == (
        "shard-not-committed", "shard 1 is open", None, None, LOCAL)

    # past the bid window the reopened shard is awarded again, to bob, before the job's deadline
    assert chain.height + 1 > job.bid_end
    award(chain, job_id, {BOB: (1,)}, price=PRICE // 2)
    shard = job_of(chain, job_id).shards[1]
    assert shard.status is ShardStatus.ASSIGNED and shard.payment == 50_176
    assert shard.deadline == chain.height + (job.deadline - job.bid_end)
    step(chain, commit(chain, job_id, BOB, 1, art["good1"]))
    mine_until(chain, job_of(chain, job_id).shards[1].challenge_end)
    alice, bob = acct(chain, ALICE), acct(chain, BOB)
    step(chain, tx(chain, DAVE, Settle(job_id)))
    job = job_of(chain, job_id)
    assert job.status is JobStatus.CLOSED and [s.status for s in job.shards] == [ShardStatus.PAID] * 2
    assert acct(chain, BOB).balance == bob.balance + 100_352 + 50_176
    assert acct(chain, BOB).locked == 0
    assert acct(chain, ALICE).balance == alice.balance + 401_408 - 100_352 - 50_176
    assert [e for e in events(chain, job_id) if e[0] == "pay"] == [("pay", 0, 100_352, ""), ("pay", 1, 50_176, "")]


def test_query_answered_honestly_pays_the_bond_to_the_worker(art: dict[str, Any]) -> None:
    chain, job_id = committed_job(art)
    bob, dave = acct(chain, BOB), acct(chain, DAVE)
    step(chain, tx(chain, DAVE, Challenge(job_id, 0, 2, None)))
    job = job_of(chain, job_id)
    assert job.shards[0].status is ShardStatus.QUERIED and job.shards[0].query_index == 2
    assert job.escrow == 401_408 + NTK and acct(chain, DAVE).balance == dave.balance - 10 - NTK
    assert rejection(chain, tx(chain, DAVE, Challenge(job_id, 0, 3, None))) == (
        "shard-already-queried", "", None, None, LOCAL)
    # a lying claim that does not sit under the root is refused; the true leaf answers
    assert rejection(chain, tx(chain, BOB, Respond(job_id, 0, claim_of(art["bad0"], 2)))) == BAD_PROOF_PATH
    assert rejection(chain, tx(chain, DAVE, Respond(job_id, 0, claim_of(art["good0"], 2)))) == (
        "not-shard-worker", "", None, None, LOCAL)
    step(chain, tx(chain, BOB, Respond(job_id, 0, claim_of(art["good0"], 2))))
    job = job_of(chain, job_id)
    assert job.shards[0].status is ShardStatus.COMMITTED and job.shards[0].bond == 0 and job.escrow == 401_408
    assert acct(chain, BOB).balance == bob.balance - 10 + NTK
    assert acct(chain, DAVE).balance == dave.balance - 10 - NTK
    assert events(chain, job_id)[-3:] == [
        ("lock", 0, NTK, "bond"), ("forfeit", 0, NTK, "answered"), ("pay", 0, NTK, "bond"),
    ]
    assert rejection(chain, tx(chain, BOB, Respond(job_id, 0, claim_of(art["good0"], 2)))) == (
        "shard-not-queried", "", None, None, LOCAL)
    mine_until(chain, job.shards[1].challenge_end)
    step(chain, tx(chain, DAVE, Settle(job_id)))
    assert job_of(chain, job_id).status is JobStatus.CLOSED


def test_query_answered_with_a_lying_leaf_slashes(art: dict[str, Any]) -> None:
    chain, job_id = committed_job(art, second="bad1")
    carol, dave = acct(chain, CAROL), acct(chain, DAVE)
    stake = job_of(chain, job_id).shards[1].stake
    step(chain, tx(chain, DAVE, Challenge(job_id, 1, 6, None)))
    step(chain, tx(chain, CAROL, Respond(job_id, 1, claim_of(art["bad1"], 2))))  # under its root, but false
    reward = stake * 5_000 // 10_000
    assert acct(chain, CAROL).bonded == carol.bonded - stake and acct(chain, CAROL).locked == 0
    assert acct(chain, DAVE).balance == dave.balance - 10 + reward  # and the bond back
    job = job_of(chain, job_id)
    assert job.shards[1].status is ShardStatus.OPEN and job.escrow == 401_408
    assert events(chain, job_id)[-4:] == [
        ("slash", 1, stake, "fraud"), ("reward", 1, reward, "fraud"), ("refund", 1, NTK, "bond"),
        ("burn", 1, stake - reward, "fraud"),
    ]


def test_unanswered_query_is_slashed_at_settle_as_withheld(art: dict[str, Any]) -> None:
    chain, job_id = committed_job(art)
    bob, dave = acct(chain, BOB), acct(chain, DAVE)
    stake = job_of(chain, job_id).shards[0].stake
    step(chain, tx(chain, DAVE, Challenge(job_id, 0, 1, None)))
    deadline = job_of(chain, job_id).shards[0].query_deadline
    assert deadline == chain.height + 5
    mine_until(chain, deadline - 1)
    # shard 1's window is over: a settle now pays it, and leaves the queried shard alone
    step(chain, tx(chain, ALICE, Settle(job_id)))
    assert statuses(chain, job_id) == [ShardStatus.QUERIED, ShardStatus.PAID]
    assert rejection(chain, tx(chain, BOB, Respond(job_id, 0, claim_of(art["good0"], 1)))) == (
        "response-too-late", "", f"<= {deadline}", deadline + 1, LOCAL)
    step(chain, tx(chain, ALICE, Settle(job_id)))
    reward = stake * 5_000 // 10_000
    assert acct(chain, BOB) == Account(bob.balance, bob.nonce, bob.bonded - stake, 0)
    assert acct(chain, DAVE).balance == dave.balance - 10 + reward
    job = job_of(chain, job_id)
    assert job.shards[0].status is ShardStatus.OPEN and job.escrow == 401_408 - 100_352
    assert ("slash", 0, stake, "withheld") in events(chain, job_id)
    assert ("refund", 0, NTK, "bond") in events(chain, job_id)
    # the reopened shard is not awarded again: it is refunded once it can no longer be (Job.award_end)
    mine_until(chain, job.award_end(job.shards[0]) - 1)
    assert rejection(chain, tx(chain, ALICE, Settle(job_id))) == NOTHING_TO_SETTLE
    step(chain)
    alice = acct(chain, ALICE)
    step(chain, tx(chain, ALICE, Settle(job_id)))
    job = job_of(chain, job_id)
    assert job.status is JobStatus.CLOSED and job.shards[0].status is ShardStatus.REFUNDED
    assert acct(chain, ALICE).balance == alice.balance - 10 + 401_408 - 100_352


def test_no_show_worker_is_slashed_and_the_shard_refunded_after_the_deadline(art: dict[str, Any]) -> None:
    chain, job_id = awarded_job()
    step(chain, commit(chain, job_id, BOB, 0, art["good0"]))
    job = job_of(chain, job_id)
    stake = job.shards[1].stake
    mine_until(chain, job.deadline)
    late = commit(chain, job_id, CAROL, 1, art["good1"])
    step(chain)  # past the deadline
    assert rejection(chain, late) == ("commit-too-late", "", f"<= {job.deadline}", job.deadline + 2, LOCAL)
    carol = acct(chain, CAROL)
    step(chain, tx(chain, DAVE, Settle(job_id)))  # pays bob, slashes carol
    lost = stake * 2_000 // 10_000
    assert acct(chain, CAROL) == Account(carol.balance, carol.nonce, carol.bonded - lost, 0)
    assert chain.totals().burned == lost
    assert statuses(chain, job_id) == [ShardStatus.PAID, ShardStatus.OPEN]
    assert ("slash", 1, lost, "no-show") in events(chain, job_id)
    assert ("burn", 1, lost, "no-show") in events(chain, job_id)
    # the no-show's shard can be redone, within a job's length of work after its deadline ...
    reopened = job_of(chain, job_id)
    end = reopened.award_end(reopened.shards[1])
    assert end == reopened.shards[1].deadline + (reopened.deadline - reopened.bid_end) - 1 > chain.height
    redo = clone_market_chain(chain)
    step(redo, tx(redo, ALICE, JobAward(job_id, (AwardEntry(bid(redo, BOB, job_id, PRICE), (1,)),))))
    assert statuses(redo, job_id) == [ShardStatus.PAID, ShardStatus.ASSIGNED]
    assert job_of(redo, job_id).shards[1].deadline == redo.height + reopened.deadline - reopened.bid_end
    # ... and no later: the next settle refunds it and closes the job
    mine_until(chain, end)
    entry = AwardEntry(bid(chain, BOB, job_id, PRICE), (1,))
    assert rejection(chain, tx(chain, ALICE, JobAward(job_id, (entry,)))) == (
        "award-too-late", "a reopened shard is awarded within a job's length after its deadline", f"<= {end}", end + 1,
        LOCAL)
    alice = acct(chain, ALICE)
    settle = tx(chain, DAVE, Settle(job_id))
    assert block_events(chain, settle) == (
        Event("refund", account_of(ALICE), 200_704, job_id, 1),  # shard 1 at the max price
        Event("refund", account_of(ALICE), 200_704 - 100_352, job_id, note="unspent escrow"),
    )
    step(chain, settle)
    job = job_of(chain, job_id)
    assert job.status is JobStatus.CLOSED and job.shards[1].status is ShardStatus.REFUNDED
    assert acct(chain, ALICE).balance == alice.balance + 401_408 - 100_352
    assert events(chain, job_id)[-2:] == [("refund", 1, 200_704, ""), ("refund", -1, 200_704 - 100_352, "unspent escrow")]


def test_unawarded_shards_are_refunded_after_the_bid_window() -> None:
    chain = staked()
    job_id = post(chain)
    alice = acct(chain, ALICE)
    mine_until(chain, job_of(chain, job_id).bid_end - 1)
    assert rejection(chain, tx(chain, ALICE, Settle(job_id))) == NOTHING_TO_SETTLE
    step(chain)
    settle = tx(chain, DAVE, Settle(job_id))
    assert block_events(chain, settle) == (  # each shard at the max price; nothing left to refund on closing
        Event("refund", account_of(ALICE), 200_704, job_id, 0), Event("refund", account_of(ALICE), 200_704, job_id, 1),
    )
    step(chain, settle)
    assert statuses(chain, job_id) == [ShardStatus.REFUNDED] * 2
    assert acct(chain, ALICE).balance == alice.balance + 401_408
    assert job_of(chain, job_id).status is JobStatus.CLOSED


def test_locked_stake_cannot_be_unstaked_and_unbonded_stake_is_released_later(art: dict[str, Any]) -> None:
    chain, job_id = awarded_job()
    bob = acct(chain, BOB)
    assert bob.bonded == 1000 * NTK and bob.locked == 150_528
    assert rejection(chain, tx(chain, BOB, Unstake(bob.bonded))) == (
        "insufficient-free-stake", "locked stake backs awarded shards", f">= {bob.bonded}", bob.bonded - bob.locked,
        LOCAL)
    assert rejection(chain, tx(chain, BOB, Release())) == NOTHING_UNBONDING
    free = bob.bonded - bob.locked
    step(chain, tx(chain, BOB, Unstake(free)))
    bob = acct(chain, BOB)
    assert (bob.bonded, bob.locked, bob.unbonding) == (150_528, 150_528, free)
    assert bob.release_height == chain.height + 20
    assert rejection(chain, tx(chain, BOB, Unstake(1))) == (
        "insufficient-free-stake", "locked stake backs awarded shards", ">= 1", 0, LOCAL)
    assert rejection(chain, tx(chain, BOB, Release())) == (
        "still-unbonding", "", f">= {bob.release_height}", chain.height + 1, LOCAL)
    # the locked rest still backs shard 0: bob commits it
    step(chain, commit(chain, job_id, BOB, 0, art["good0"]))
    # below the minimum stake a new bid is not taken
    other = post(chain)
    entry = AwardEntry(bid(chain, BOB, other, PRICE), (0,))
    assert rejection(chain, tx(chain, ALICE, JobAward(other, (entry,)))) == (
        "worker-stake-below-minimum", "", f">= {10 * NTK}", 150_528, LOCAL)
    mine_until(chain, bob.release_height - 2)
    assert rejection(chain, tx(chain, BOB, Release())) == (
        "still-unbonding", "", f">= {bob.release_height}", bob.release_height - 1, LOCAL)
    step(chain)
    balance = acct(chain, BOB).balance
    step(chain, tx(chain, BOB, Release()))
    assert acct(chain, BOB) == Account(balance - 10 + free, bob.nonce + 2, 150_528, 150_528)
    assert rejection(chain, tx(chain, BOB, Release())) == NOTHING_UNBONDING
    step(chain, tx(chain, ALICE, Accept(job_id)))  # bob is paid, the stake unlocked
    assert acct(chain, BOB).locked == 0 and acct(chain, BOB).bonded == 150_528
    step(chain, tx(chain, BOB, Unstake(150_528)))
    assert acct(chain, BOB).bonded == 0


# ---- refusals: posts ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def fresh() -> ChainState:
    """A staked chain that the post refusals share (a refused block moves nothing)."""
    return staked()


def _post(chain: ChainState, spec: bytes = SPEC, shards: int = 2, max_price: int = MAX_PRICE, bid_blocks: int = 3,
          deadline_blocks: int = 20, challenge_blocks: int = 3, service: int = Service.GENERATE,
          client: bytes = ALICE) -> Transaction:
    return tx(chain, client, JobPost(service, spec, shards, max_price, bid_blocks, deadline_blocks, challenge_blocks))


BAD_SPECS = {
    "whitespace": b'{"seed": 7, "spec": {"count": 8, "kind": "digits"}, "task": "render"}',
    "unsorted": b'{"task":"render","seed":7,"spec":{"count":8,"kind":"digits"}}',
    "duplicate-key": b'{"seed":7,"seed":8,"spec":{"count":8,"kind":"digits"},"task":"render"}',
    "nan": b'{"seed":NaN,"spec":{"count":8,"kind":"digits"},"task":"render"}',
    "infinite-float": b'{"seed":1e400,"spec":{"count":8,"kind":"digits"},"task":"render"}',
    "float-count": b'{"seed":7,"spec":{"count":8.5,"kind":"digits"},"task":"render"}',
    "not-ascii": '{"seed":7,"spec":{"count":8,"kind":"d\u00efgits"},"task":"render"}'.encode(),
    "not-json": b'{"seed":7,',
    "array": b'[1,2]',
    "deep-nesting": b'{"a":' + b"[" * 1500 + b"]" * 1500 + b',"seed":7,"spec":{"count":8,"kind":"digits"},"task":"render"}',
    "wrong-task": canonical({"task": "train", "seed": 7, "spec": {"kind": "digits", "count": 8}}),
    "unknown-kind": canonical({"task": "render", "seed": 7, "spec": {"kind": "faces", "count": 8}}),
    "zero-count": canonical({"task": "render", "seed": 7, "spec": {"kind": "digits", "count": 0}}),
    "negative-seed": canonical({"task": "render", "seed": -1, "spec": {"kind": "digits", "count": 8}}),
    "negative-size": canonical({"task": "render", "spec": {"kind": "digits", "count": 8, "size": -28}}),
    # a CNN this deep would keep every validator in the units loop (the worker allows 6)
    "deep-cnn": canonical({"task": "train", "data": {"source": "digits", "spec": {"count": 100}},
                           "train": {"batch_size": 1, "model": {"depth": 10**12, "name": "cnn"}, "steps": 1}}),
    # units past the job record's 128 bits
    "units-overflow": canonical({"task": "train", "data": {"source": "digits", "spec": {"count": 100}},
                                 "train": {"batch_size": 1, "model": {"name": "cnn"}, "steps": 10**40}}),
    "shelf-units-overflow": canonical({"task": "render", "seed": 1, "spec": {
        "kind": "shelf", "count": 10, "width": 10**20, "height": 10**20}}),
}


@pytest.mark.parametrize("name", sorted(BAD_SPECS))
def test_bad_job_spec(fresh: ChainState, name: str) -> None:
    service = Service.TRAIN if "cnn" in name or name == "units-overflow" else Service.GENERATE
    shards = 1 if service is Service.TRAIN else 2
    posting = _post(fresh, BAD_SPECS[name], shards=shards, max_price=1, service=service)
    assert refused(fresh, posting) == "bad-job-spec"


ALICE_AFTER_FEE = 10**15 - 10  # alice's devnet balance less the post's fee: what a rule sees


@pytest.mark.parametrize(("changes", "error"), [
    ({"shards": 65}, ("too-many-shards", "", "<= 64", 65, LOCAL)),
    ({"spec": canonical({"pad": "x" * 5000, "task": "render"})}, ("spec-too-large", "", "<= 4096", 5026, INVALID)),
    ({"spec": TRAIN_SPEC, "service": Service.TRAIN}, ("train-job-not-sharded", "a training run is one shard", "== 1",
                                                      2, LOCAL)),
    ({"spec": digits_job_spec(2), "shards": 3}, ("more-shards-than-items", "", "<= 2", 3, LOCAL)),
    ({"bid_blocks": 1}, ("bid-window-too-short", "", ">= 2", 1, LOCAL)),
    ({"bid_blocks": 3, "deadline_blocks": 3}, ("deadline-in-bid-window", "", "> 3", 3, LOCAL)),
    ({"deadline_blocks": 10_001}, ("job-too-long", "", "<= 10000", 10_001, LOCAL)),
    ({"challenge_blocks": 10_001}, ("job-too-long", "", "<= 10000", 10_001, LOCAL)),
    ({"deadline_blocks": 10_002, "challenge_blocks": 10_001}, ("job-too-long", "", "<= 10000", 10_002, LOCAL)),
    ({"challenge_blocks": 2}, ("challenge-window-too-short", "", ">= 3", 2, LOCAL)),
    # 200,704 units x 4 // 10^6 = 0; the lowest max price that pays (5) is not named
    ({"max_price": 4}, ("price-too-low", "a shard would pay nothing at the max price", None, None, LOCAL)),
    ({"max_price": 10**16}, ("insufficient-balance", ESCROW, f">= {401_408 * 10**10}", ALICE_AFTER_FEE, LOCAL)),
    # past the supply cap (which is not named: the escrow alone is more than can exist)
    ({"max_price": 2**62}, ("insufficient-balance", ESCROW, f">= {2 * (200_704 * 2**62 // 10**6)}", ALICE_AFTER_FEE,
                            LOCAL)),
    # no account at all: not even the fee (`chain.state.check_tx_against_state`, before any market rule)
    ({"client": numbered_seed(99)}, ("insufficient-balance", "", ">= 10", 0, LOCAL)),
])
def test_post_refusals(fresh: ChainState, changes: dict[str, Any], error: tuple[Any, ...]) -> None:
    assert rejection(fresh, _post(fresh, **changes)) == error


def test_train_job_with_one_shard_is_posted(fresh: ChainState) -> None:
    chain = clone_market_chain(fresh)
    job_id = post(chain, spec=TRAIN_SPEC, shards=1, service=Service.TRAIN)
    assert job_of(chain, job_id).units > 0


def test_a_job_of_more_than_2_to_the_64_units_is_posted_and_undone(fresh: ChainState) -> None:
    """A long training run's FLOPs pass msgpack's 64-bit ints (the record keeps 128 bits): its
    post once made every node and miner fail to encode the job record (an OverflowError)."""
    chain = clone_market_chain(fresh)
    spec = canonical({"task": "train", "data": {"source": "digits", "spec": {"count": 100}},
                      "train": {"batch_size": 1, "model": {"name": "cnn"}, "steps": 10**14}})
    posting = _post(chain, spec, shards=1, max_price=1, service=Service.TRAIN)  # 1,152 NTK of escrow
    before = snapshot(chain, posting.txid)
    a, b = _branches(chain, [posting])
    import_all(chain, a)
    job = job_of(chain, posting.txid)
    assert job.units > 2**64 and job.escrow == job.units // 10**9
    assert Job.decode(job.encode()) == job
    assert_supply(chain)
    import_all(chain, b)
    assert chain.job(posting.txid) is None
    _assert_restored(chain, before, (posting.txid,), len(b))


def test_insufficient_balance_for_stake_post_and_query(art: dict[str, Any]) -> None:
    chain, job_id = committed_job(art)
    poor = numbered_seed(1)
    step(chain, tx(chain, ALICE, Transfer(account_of(poor), NTK // 2)))
    assert rejection(chain, tx(chain, poor, Stake(NTK))) == (
        "insufficient-balance", "", f">= {NTK}", NTK // 2 - 10, LOCAL)  # the balance left after the fee
    assert rejection(chain, tx(chain, poor, Challenge(job_id, 0, 1, None))) == (
        "insufficient-balance", "a query or dispute locks the challenge bond", f">= {NTK}", NTK // 2 - 10, LOCAL)
    assert rejection(chain, _post(chain, max_price=10**10, client=poor)) == (
        "insufficient-balance", ESCROW, f">= {401_408 * 10**4}", NTK // 2 - 10, LOCAL)  # 4,014 NTK
    step(chain, tx(chain, poor, Stake(NTK // 4)))
    assert acct(chain, poor).bonded == NTK // 4


# ---- refusals: awards --------------------------------------------------------------------------


def test_award_refusals(art: dict[str, Any]) -> None:
    chain = staked()
    job_id = post(chain)
    other_job = post(chain)

    def refused_award(*entries: AwardEntry, sender: bytes = ALICE, job: bytes = job_id) -> tuple[Any, ...]:
        return rejection(chain, tx(chain, sender, JobAward(job, entries)))

    bob_bid = bid(chain, BOB, job_id, PRICE)
    assert refused_award(AwardEntry(bob_bid, (0,)), job=bytes(32)) == UNKNOWN_JOB
    assert refused_award(AwardEntry(bob_bid, (0,)), sender=BOB) == ("not-job-client", "", None, None, LOCAL)
    assert refused_award(AwardEntry(bob_bid, (2,))) == ("no-such-shard", "", "< 2", 2, LOCAL)
    wrong_chain = Bid(bytes(32), job_id, public_key_of(BOB), PRICE, 4, chain.height + 10).signed(BOB)
    assert refused_award(AwardEntry(wrong_chain, (0,))) == ("bid-wrong-chain", "", None, None, INVALID)
    assert refused_award(AwardEntry(bid(chain, BOB, other_job, PRICE), (0,))) == ("bid-wrong-job", "", None, None,
                                                                                  INVALID)
    assert refused_award(AwardEntry(bid(chain, BOB, job_id, PRICE, expiry=chain.height), (0,))) == (
        "bid-expired", "", f">= {chain.height + 1}", chain.height, LOCAL)
    assert refused_award(AwardEntry(bid(chain, BOB, job_id, MAX_PRICE + 1), (0,))) == (
        "bid-above-max-price", "", f"<= {MAX_PRICE}", MAX_PRICE + 1, INVALID)
    single = bid(chain, BOB, job_id, PRICE, max_shards=1)
    over = ("bid-over-capacity", "", "<= 1", 2, LOCAL)
    assert refused_award(AwardEntry(single, (0, 1))) == over
    assert refused_award(AwardEntry(single, (0,)), AwardEntry(single, (1,))) == over
    assert refused_award(AwardEntry(bob_bid, (0,)), AwardEntry(bid(chain, CAROL, job_id, PRICE), (0,))) == (
        "shard-taken", "shard 0", None, None, LOCAL)
    assert refused_award(AwardEntry(bid(chain, DAVE, job_id, PRICE), (0,))) == (
        "worker-stake-below-minimum", "", f">= {10 * NTK}", 0, LOCAL)
    forged = Bid(chain.chain_id, job_id, public_key_of(BOB), PRICE, 4, chain.height + 10).signed(CAROL)
    error = refusal(chain, tx(chain, ALICE, JobAward(job_id, (AwardEntry(forged, (0,)),))))
    assert (error.reason, error.kind) == ("bad-bid-signature", RejectKind.INVALID)

    # a bid's capacity counts across awards
    step(chain, tx(chain, ALICE, JobAward(job_id, (AwardEntry(single, (0,)),))))
    assert refused_award(AwardEntry(single, (1,))) == over
    assert refused_award(AwardEntry(bob_bid, (0,))) == ("shard-taken", "shard 0", None, None, LOCAL)
    # dave's minimum stake does not back a shard of an expensive job
    step(chain, tx(chain, DAVE, Stake(10 * NTK)))
    dear = post(chain, max_price=10**11)  # a shard pays 20 NTK and locks 30
    assert rejection(chain, tx(chain, ALICE, JobAward(dear, (AwardEntry(bid(chain, DAVE, dear, 10**11), (0,)),)))) \
        == ("insufficient-free-stake", "worker for shard 0", f">= {30 * NTK + 105_600_000}", 10 * NTK, LOCAL)
    step(chain, tx(chain, ALICE, JobAward(dear, (AwardEntry(bid(chain, DAVE, dear, 10**9), (0,)),))))  # locks 0.3
    mine_until(chain, job_of(chain, job_id).bid_end)
    step(chain)
    assert refused_award(AwardEntry(bob_bid, (1,))) == (
        "bid-window-closed", "", f"<= {job_of(chain, job_id).bid_end}", chain.height + 1, LOCAL)
    step(chain, tx(chain, DAVE, Settle(job_id)))  # shard 1 was never awarded: refunded
    assert statuses(chain, job_id) == [ShardStatus.ASSIGNED, ShardStatus.REFUNDED]
    assert refused_award(AwardEntry(bob_bid, (1,))) == ("shard-taken", "shard 1", None, None, LOCAL)


def test_too_many_bids() -> None:
    chain = staked(market_chain_on(market_genesis(max_bids_per_award=1)))
    job_id = post(chain)
    entries = (AwardEntry(bid(chain, BOB, job_id, PRICE), (0,)), AwardEntry(bid(chain, CAROL, job_id, PRICE), (1,)))
    assert rejection(chain, tx(chain, ALICE, JobAward(job_id, entries))) == (
        "too-many-bids", "", "<= 1", 2, LOCAL)
    step(chain, tx(chain, ALICE, JobAward(job_id, entries[:1])))


# ---- refusals: commits, challenges, responses ------------------------------------------------


def test_commit_refusals(art: dict[str, Any]) -> None:
    chain = staked()
    job_id = post(chain)
    assert rejection(chain, commit(chain, job_id, BOB, 0, art["good0"])) == (
        "shard-not-assigned", "shard 0 is open", None, None, LOCAL)
    award(chain, job_id, {BOB: (0,)})
    assert rejection(chain, commit(chain, job_id, BOB, 1, art["good1"])) == (
        "shard-not-assigned", "shard 1 is open", None, None, LOCAL)
    assert rejection(chain, commit(chain, job_id, BOB, 2, art["good1"])) == ("no-such-shard", "", "< 2", 2, LOCAL)
    assert rejection(chain, commit(chain, job_id, CAROL, 0, art["good0"])) == (
        "not-shard-worker", "", None, None, LOCAL)
    short = tx(chain, BOB, ResultCommit(job_id, 0, art["good0"].root, 3))
    assert rejection(chain, short) == ("wrong-item-count", "", "== 4", 3, LOCAL)
    assert rejection(chain, tx(chain, BOB, ResultCommit(bytes(32), 0, art["good0"].root, 4))) == UNKNOWN_JOB
    step(chain, commit(chain, job_id, BOB, 0, art["good0"]))
    assert rejection(chain, commit(chain, job_id, BOB, 0, art["good0"])) == (
        "shard-not-assigned", "shard 0 is committed", None, None, LOCAL)


def test_challenge_refusals(art: dict[str, Any]) -> None:
    chain, job_id = awarded_job()
    good0, bad1 = art["good0"], art["bad1"]
    assert rejection(chain, tx(chain, DAVE, Challenge(job_id, 0, 1, claim_of(good0, 1)))) == (
        "shard-not-committed", "shard 0 is assigned", None, None, LOCAL)
    step(chain, commit(chain, job_id, BOB, 0, good0), commit(chain, job_id, CAROL, 1, bad1))
    assert rejection(chain, tx(chain, DAVE, Challenge(job_id, 2, 1, None))) == ("no-such-shard", "", "< 2", 2, LOCAL)
    assert rejection(chain, tx(chain, DAVE, Challenge(bytes(32), 0, 1, None))) == UNKNOWN_JOB
    assert rejection(chain, tx(chain, BOB, Challenge(job_id, 0, 1, None))) == SELF_CHALLENGE
    assert rejection(chain, tx(chain, CAROL, Challenge(job_id, 1, 5, claim_of(bad1, 1)))) == SELF_CHALLENGE
    # shard 0 holds items 0-3: item 5 is shard 1's, in a query and in a proof
    outside = ("item-outside-shard", "", "[0, 4)", 5, LOCAL)
    assert rejection(chain, tx(chain, DAVE, Challenge(job_id, 0, 5, None))) == outside
    assert rejection(chain, tx(chain, DAVE, Challenge(job_id, 0, 5, claim_of(bad1, 1)))) == outside
    # shard 1's leaf presented as an item of shard 0, and an index that is not the leaf's
    assert rejection(chain, tx(chain, DAVE, Challenge(job_id, 0, 1, claim_of(bad1, 1)))) == BAD_PROOF_PATH
    assert rejection(chain, tx(chain, DAVE, Challenge(job_id, 1, 6, claim_of(bad1, 1)))) == BAD_PROOF_PATH
    assert rejection(chain, tx(chain, DAVE, Challenge(job_id, 0, 1, claim_of(art["bad0"], 1)))) == BAD_PROOF_PATH
    assert rejection(chain, tx(chain, DAVE, Challenge(job_id, 0, 1, claim_of(good0, 1)))) == (
        "challenge-honest-item", "the item re-computes to the committed leaf", None, None, INVALID)
    end = job_of(chain, job_id).shards[1].challenge_end
    mine_until(chain, end)
    late = tx(chain, DAVE, Challenge(job_id, 1, 5, claim_of(bad1, 1)))
    step(chain)
    closed = ("challenge-window-closed", "", f"<= {end}", end + 2, LOCAL)
    assert rejection(chain, late) == closed
    assert rejection(chain, tx(chain, DAVE, Challenge(job_id, 0, 1, None))) == closed


def test_too_many_challenges_in_one_block(art: dict[str, Any]) -> None:
    chain = market_chain_on(market_genesis(max_challenges_per_block=1))
    chain, job_id = committed_job(art, second="bad1", chain=chain, challenge_blocks=10)
    step(chain, tx(chain, DAVE, Challenge(job_id, 0, 2, None)))
    step(chain, tx(chain, BOB, Respond(job_id, 0, claim_of(art["good0"], 2))))  # bob answers honestly
    # a query answer is re-computed too: with a fraud proof in the same block it is one too many
    step(chain, tx(chain, DAVE, Challenge(job_id, 0, 3, None)))
    both = [tx(chain, DAVE, Challenge(job_id, 1, 5, claim_of(art["bad1"], 1))),
            tx(chain, BOB, Respond(job_id, 0, claim_of(art["good0"], 3)))]
    error = refusal(chain, *both)  # in a block only: the mempool checks one transaction at a time
    # got: how many re-computations the block asked for, counting this one
    assert (error.reason, error.detail, error.expected, error.got, error.kind) == (
        "too-many-challenges", f"tx 1 ({both[1].txid.hex()[:16]})", "<= 1 per block", 2, INVALID)
    step(chain, both[0])
    step(chain, both[1])


def test_respond_refusals(art: dict[str, Any]) -> None:
    chain, job_id = committed_job(art)
    good0 = art["good0"]
    assert rejection(chain, tx(chain, BOB, Respond(job_id, 0, claim_of(good0, 1)))) == NOT_QUERIED
    assert rejection(chain, tx(chain, BOB, Respond(job_id, 3, claim_of(good0, 1)))) == ("no-such-shard", "", "< 2", 3, LOCAL)
    step(chain, tx(chain, DAVE, Challenge(job_id, 0, 1, None)))
    assert rejection(chain, tx(chain, CAROL, Respond(job_id, 0, claim_of(good0, 1)))) == (
        "not-shard-worker", "", None, None, LOCAL)
    assert rejection(chain, tx(chain, BOB, Respond(job_id, 0, claim_of(good0, 2)))) == BAD_PROOF_PATH  # another item
    assert rejection(chain, tx(chain, BOB, Respond(job_id, 1, claim_of(art["good1"], 1)))) == NOT_QUERIED
    deadline = job_of(chain, job_id).shards[0].query_deadline
    mine_until(chain, deadline)
    answer = tx(chain, BOB, Respond(job_id, 0, claim_of(good0, 1)))
    step(chain)
    assert rejection(chain, answer) == ("response-too-late", "", f"<= {deadline}", deadline + 2, LOCAL)


def test_a_response_in_the_query_deadline_block_is_taken_and_one_block_later_is_late(art: dict[str, Any]) -> None:
    """The query's deadline is the last height for the answer: a block exactly at it takes the
    answer (the bond to the worker, the shard back as committed, item 2 of the query forgotten);
    one block past it is refused, the deadline and the height named."""
    chain, job_id = committed_job(art)
    committed = job_of(chain, job_id)
    step(chain, tx(chain, DAVE, Challenge(job_id, 0, 2, None)))
    deadline = job_of(chain, job_id).shards[0].query_deadline
    mine_until(chain, deadline - 1)
    answer = tx(chain, BOB, Respond(job_id, 0, claim_of(art["good0"], 2)))
    assert block_events(chain, answer) == (
        Event("forfeit", account_of(DAVE), NTK, job_id, 0, "answered"), Event("pay", account_of(BOB), NTK, job_id, 0, "bond"),
    )
    on_time = clone_market_chain(chain)
    step(on_time, answer)
    assert on_time.height == deadline
    assert job_of(on_time, job_id) == committed  # query_index 0, query_deadline 0, no challenger, bond or voters
    step(chain)
    # the mempool blames nobody for it (`check_against_tip`: a late answer is not provably false)
    assert rejection(chain, answer) == ("response-too-late", "", f"<= {deadline}", deadline + 1, RejectKind.LOCAL)


def test_unknown_job_for_every_job_kind() -> None:
    chain = staked()
    for payload in (Accept(bytes(32)), Settle(bytes(32)), Challenge(bytes(32), 0, 0, None)):
        error = refusal(chain, tx(chain, DAVE, payload))
        assert (error.reason, error.kind) == ("unknown-job", RejectKind.INVALID)  # in a block
        with pytest.raises(InvalidTransaction) as info:  # the mempool waits for the job instead
            check_against_tip(chain, tx(chain, DAVE, payload))
        assert (info.value.reason, info.value.kind) == ("unknown-job", RejectKind.MISSING)


def test_a_closed_job_is_stale_to_the_mempool(art: dict[str, Any]) -> None:
    chain, job_id = committed_job(art)
    step(chain, tx(chain, ALICE, Accept(job_id)))
    for payload in (Accept(job_id), Settle(job_id)):
        with pytest.raises(InvalidTransaction) as info:
            check_against_tip(chain, tx(chain, ALICE, payload))
        assert (info.value.reason, info.value.kind) == ("job-closed", RejectKind.STALE)


# ---- decoding ----------------------------------------------------------------------------------


def _raw_tx(chain: ChainState, kind: int, payload: list[Any]) -> bytes:
    return enc.pack([chain.chain_id, kind, public_key_of(ALICE), 0, 10, payload, bytes(64)])


@pytest.mark.parametrize(("kind", "payload", "reason"), [
    (JobPost.KIND, [9, SPEC, 2, MAX_PRICE, 3, 20, 3], "bad-service"),
    (JobAward.KIND, [bytes(32), []], "bad-award"),
    (JobAward.KIND, "entries with unsorted shards", "bad-award"),
    (JobAward.KIND, "an entry without shards", "bad-award"),
    (JobAward.KIND, "an entry with a shard twice", "bad-award"),
])
def test_decode_errors(kind: int, payload: Any, reason: str) -> None:
    chain = market_chain()
    if isinstance(payload, str):
        some_bid = bid(chain, BOB, bytes(32), PRICE).to_list()
        shards = {"entries with unsorted shards": [1, 0], "an entry without shards": [],
                  "an entry with a shard twice": [1, 1]}[payload]
        payload = [bytes(32), [[some_bid, shards]]]
    with pytest.raises(DecodeError) as info:
        Transaction.decode(_raw_tx(chain, kind, payload))
    assert (info.value.reason, info.value.kind) == (reason, RejectKind.MALFORMED)


# ---- reorgs ------------------------------------------------------------------------------------


def _branches(chain: ChainState, a_txs: list[Transaction], b_length: int = 2) -> tuple[list[Any], list[Any]]:
    """Branch a (one block with ``a_txs``) and a heavier empty branch b, both from the tip."""
    a = mine_blocks(clone_market_chain(chain), 1, a_txs)
    b = mine_blocks(clone_market_chain(chain), b_length, miner=BRANCH_B_MINER)
    return a, b


def _assert_restored(chain: ChainState, before: dict[str, Any], job_ids: tuple[bytes, ...], blocks: int) -> None:
    """After a reorg onto an empty branch of ``blocks`` blocks: everything is as ``before``, but
    for the branch miner's rewards; and it equals a node that only ever saw that branch."""
    after = snapshot(chain, *job_ids)
    reward = sum(chain.params.block_reward(h) for h in range(chain.height - blocks + 1, chain.height + 1))
    miner = after["accounts"].pop(BRANCH_B_MINER)
    assert miner.balance == reward + (before["accounts"].get(BRANCH_B_MINER) or EMPTY_ACCOUNT).balance
    after["account_events"].pop(BRANCH_B_MINER, None)
    after["jobs_of"].pop(BRANCH_B_MINER, None)
    expected = dict(before)
    assert after["totals"].issued == before["totals"].issued + reward
    assert after["totals"].burned == before["totals"].burned
    for key in ("accounts", "jobs", "job_events", "account_events", "jobs_of", "specs"):
        assert after[key] == expected[key], key
    replay = clone_market_chain(chain)
    assert snapshot(replay, *job_ids) == snapshot(chain, *job_ids)
    assert_supply(chain)


def test_reorg_removes_a_job_post() -> None:
    chain = staked()
    posting = _post(chain)
    job_id = posting.txid
    before = snapshot(chain, job_id)
    a, b = _branches(chain, [posting])
    assert all(r.tip_changed for r in import_all(chain, a))
    assert chain.job(job_id) is not None and chain.job_spec(job_id) == SPEC
    assert chain.events(job_id=job_id) and chain.jobs_of(account_of(ALICE)) == {job_id: {"client"}}
    assert_supply(chain)
    results = import_all(chain, b)
    assert results[-1].tip_changed and results[-1].disconnected == tuple(a)
    assert chain.job(job_id) is None and chain.job_spec(job_id) is None
    assert chain.events(job_id=job_id) == [] and chain.jobs_of(account_of(ALICE)) == {}
    _assert_restored(chain, before, (job_id,), len(b))
    # the post is still good on the winning branch
    step(chain, posting)
    assert chain.job(job_id) is not None


def test_reorg_removes_an_award() -> None:
    chain = staked()
    job_id = post(chain)
    entries = (AwardEntry(bid(chain, BOB, job_id, PRICE), (0,)), AwardEntry(bid(chain, CAROL, job_id, PRICE), (1,)))
    awarding = tx(chain, ALICE, JobAward(job_id, entries))
    before = snapshot(chain, job_id)
    a, b = _branches(chain, [awarding])
    import_all(chain, a)
    assert acct(chain, BOB).locked == 150_528 and chain.jobs_of(account_of(BOB)) == {job_id: {"worker"}}
    import_all(chain, b)
    assert acct(chain, BOB).locked == 0 and chain.jobs_of(account_of(BOB)) == {}
    assert statuses(chain, job_id) == [ShardStatus.OPEN] * 2
    _assert_restored(chain, before, (job_id,), len(b))


def test_reorg_removes_a_fraud_slash(art: dict[str, Any]) -> None:
    chain, job_id = committed_job(art, second="bad1")
    proof = tx(chain, DAVE, Challenge(job_id, 1, 5, claim_of(art["bad1"], 1)))
    before = snapshot(chain, job_id)
    a, b = _branches(chain, [proof])
    import_all(chain, a)
    assert statuses(chain, job_id)[1] is ShardStatus.OPEN and chain.totals().burned > 0
    import_all(chain, b)
    assert statuses(chain, job_id)[1] is ShardStatus.COMMITTED and chain.totals().burned == 0
    assert not [e for _, e in chain.events(job_id=job_id) if e.kind in ("slash", "reward", "burn")]
    _assert_restored(chain, before, (job_id,), len(b))
    # and back again: branch a grows heavier, the slash is judged again on reconnecting
    more = mine_blocks(clone_market_chain_at(chain, a), 2)
    import_all(chain, more)
    assert chain.tip_hash == more[-1].hash and statuses(chain, job_id)[1] is ShardStatus.OPEN
    assert_supply(chain)


def clone_market_chain_at(chain: ChainState, branch: list[Any]) -> ChainState:
    """A node that has ``chain``'s blocks up to the fork of ``branch``, then ``branch``."""
    copy = market_chain_on(chain.genesis)
    fork = branch[0].header.height - 1
    for height in range(1, fork + 1):
        block_hash = chain.hash_at(height)
        assert block_hash is not None
        import_all(copy, [chain.block(block_hash)])
    import_all(copy, branch)
    return copy


def test_a_job_is_indexed_once_per_account_and_role(art: dict[str, Any]) -> None:
    """The account index of jobs gets a row when the client posts and when a worker is first
    awarded a shard, not again for every block that touches the job (commits, settles)."""
    chain, job_id = committed_job(art)
    mine_until(chain, job_of(chain, job_id).shards[1].challenge_end)
    step(chain, tx(chain, DAVE, Settle(job_id)))
    assert statuses(chain, job_id) == [ShardStatus.PAID] * 2
    for seed, role in ((ALICE, b"c"), (BOB, b"w"), (CAROL, b"w")):
        rows = list(chain.kv.iterate(schema.JOB_BY_ACCOUNT + account_of(seed)))
        assert [(key[21:53], value) for key, value in rows] == [(job_id, role)]
