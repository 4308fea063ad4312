"""Training disputes in consensus: a committee drawn by the beacon votes, a quorum's majority decides.

A training result cannot be re-run by validators (worker/README.md, Training disputes), so a
claim-less challenge of a training shard opens a dispute: the block after it is the beacon that
draws stakers (in proportion to stake) to replay the work off chain and vote. The two properties
the issue asks for are checked with real training at the end: a trainer that skipped work is
slashed, and a client that disputes honest work loses its bond and cannot keep the pay.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest

from chain import schema
from chain.assembly import check_against_tip
from chain.chainstate import ChainState
from chain.errors import DecodeError, RejectKind, StoreError
from chain.jobs import Event, JobStatus, Shard, ShardStatus, evolve
from chain.market_rules import committee_draw, drawn
from chain.market_types import (
    AwardEntry,
    Challenge,
    JobAward,
    JobPost,
    LeafClaim,
    ResultCommit,
    Service,
    Settle,
    Stake,
    Vote,
)
from chain.types import Transaction, Transfer
from tests.support.chain_builders import (
    BRANCH_B_MINER,
    DEFAULT_FEE,
    account_of,
    import_all,
    mine_blocks,
    numbered_seed,
)
from tests.support.market import (
    ALICE,
    BOB,
    CAROL,
    NTK,
    PRICE,
    TRAIN_SPEC,
    acct,
    bid,
    clone_market_chain,
    events,
    job_of,
    market_chain_on,
    market_genesis,
    mine_until,
    snapshot,
    statuses,
    step,
    tx,
)
from tests.unit.chain.marketplace_checks import block_events, rejection

VOTERS = [numbered_seed(900 + i) for i in range(5)]
ROOT = bytes(range(32))  # the trainer's committed artifact root (the chain never opens it)
BOND = NTK  # the devnet challenge bond
# the refusal of a fraud proof for a committee-judged result (training, labels); not provably
# false (the mempool blames nobody), though no later state makes it valid either
NO_FRAUD_PROOF = ("no-fraud-proof-for-service", ("only render items are re-computed on chain; a training result is "
                  "disputed before a committee instead (worker/README.md, Training disputes)"), None, None,
                  RejectKind.LOCAL)
EVERYONE = {"committee_size": 10_000, "quorum": 2}  # every staker drawn: votes are the test's choice


def committee_chain(voters: int = 3, stake: int = 20 * NTK, **market: Any) -> ChainState:
    """A devnet chain (market rules changed by ``market``) where bob trains and ``voters`` other
    accounts are funded by alice and staked."""
    chain = market_chain_on(market_genesis(**{**EVERYONE, **market}))
    step(chain, tx(chain, BOB, Stake(1000 * NTK)),
         *[tx(chain, ALICE, Transfer(account_of(v), stake + NTK), nonce=acct(chain, ALICE).nonce + i)
           for i, v in enumerate(VOTERS[:voters])])
    step(chain, *[tx(chain, v, Stake(stake)) for v in VOTERS[:voters]])
    return chain


def trained_job(chain: ChainState, *, challenge_blocks: int = 3) -> bytes:
    """A training job of alice's, awarded to bob, its result committed."""
    posting = tx(chain, ALICE, JobPost(Service.TRAIN, TRAIN_SPEC, 1, 10**6, 3, 20, challenge_blocks))
    step(chain, posting)
    job_id = posting.txid
    step(chain, tx(chain, ALICE, JobAward(job_id, (AwardEntry(bid(chain, BOB, job_id, PRICE), (0,)),))))
    step(chain, tx(chain, BOB, ResultCommit(job_id, 0, ROOT, 1)))
    return job_id


def disputed(chain: ChainState, job_id: bytes, by: bytes = ALICE, segment: int = 3) -> int:
    """``by`` disputes the result; returns the beacon height (the dispute's block + 1), mined."""
    step(chain, tx(chain, by, Challenge(job_id, 0, segment, None)))
    beacon = chain.height + 1
    step(chain)
    return beacon


def vote(chain: ChainState, seed: bytes, job_id: bytes, fraud: bool) -> Transaction:
    return tx(chain, seed, Vote(job_id, 0, fraud))


def settle_after_votes(chain: ChainState, job_id: bytes) -> None:
    mine_until(chain, job_of(chain, job_id).shards[0].query_deadline)
    step(chain, tx(chain, CAROL, Settle(job_id)))


# ---- verdicts ----------------------------------------------------------------------------------


def test_dispute_locks_the_bond_and_records_votes() -> None:
    chain = committee_chain()
    job_id = trained_job(chain)
    alice = acct(chain, ALICE).balance
    disputed(chain, job_id, segment=3)
    shard = job_of(chain, job_id).shards[0]
    assert shard.status is ShardStatus.DISPUTED and shard.query_index == 3 and shard.bond == BOND
    assert acct(chain, ALICE).balance == alice - BOND - DEFAULT_FEE
    step(chain, vote(chain, VOTERS[0], job_id, True), vote(chain, VOTERS[1], job_id, False))
    shard = job_of(chain, job_id).shards[0]
    assert shard.voters == (account_of(VOTERS[0]), account_of(VOTERS[1])) and shard.fraud_votes == 1


def test_fraud_majority_slashes_the_trainer_and_rewards_the_challenger() -> None:
    chain = committee_chain()
    job_id = trained_job(chain)
    stake = job_of(chain, job_id).shards[0].stake
    bob_bonded = acct(chain, BOB).bonded
    disputed(chain, job_id)
    step(chain, *[vote(chain, v, job_id, fraud) for v, fraud in zip(VOTERS, (True, True, False), strict=False)])
    alice = acct(chain, ALICE).balance
    settle_after_votes(chain, job_id)
    assert acct(chain, BOB).bonded == bob_bonded - stake
    assert acct(chain, ALICE).balance == alice + stake // 2 + BOND  # half the slash, and the bond back
    assert statuses(chain, job_id) == [ShardStatus.OPEN]  # reopened for another trainer
    assert [e[0] for e in events(chain, job_id)][-4:] == ["slash", "reward", "refund", "burn"]


def test_honest_majority_pays_the_trainer_at_once_and_forfeits_the_bond() -> None:
    """A client that disputes honest work loses the bond and cannot keep the pay: the verdict pays."""
    chain = committee_chain()
    job_id = trained_job(chain, challenge_blocks=50)  # long window: only the verdict can pay now
    shard = job_of(chain, job_id).shards[0]
    bob = acct(chain, BOB).balance
    disputed(chain, job_id)
    step(chain, *[vote(chain, v, job_id, fraud) for v, fraud in zip(VOTERS, (False, False, True), strict=False)])
    settle_after_votes(chain, job_id)
    assert acct(chain, BOB).balance == bob + BOND + shard.payment
    assert job_of(chain, job_id).status is JobStatus.CLOSED
    assert ("forfeit", 0, BOND, "honest") in events(chain, job_id)


@pytest.mark.parametrize("votes", [(), (True,), (True, False)], ids=["none", "below-quorum", "tie"])
def test_a_dispute_without_a_majority_of_a_quorum_lapses(votes: tuple[bool, ...]) -> None:
    chain = committee_chain()
    job_id = trained_job(chain)
    alice = acct(chain, ALICE).balance
    disputed(chain, job_id)
    if votes:
        step(chain, *[vote(chain, v, job_id, fraud) for v, fraud in zip(VOTERS, votes, strict=False)])
    settle_after_votes(chain, job_id)
    assert statuses(chain, job_id) == [ShardStatus.PAID]  # lapsed, then paid: its window had ended
    assert ("refund", 0, BOND, "bond") in events(chain, job_id)
    unspent = [amount for kind, _, amount, note in events(chain, job_id) if note == "unspent escrow"]
    # the dispute's fee spent, the bond back, and the escrow above the awarded price refunded
    assert acct(chain, ALICE).balance == alice - DEFAULT_FEE + sum(unspent)


def test_an_honest_verdict_by_exactly_a_quorum_pays_at_once_and_events_name_everyone() -> None:
    """A quorum is enough: two honest votes of a quorum of two decide (and pay, the window still
    open); each event names its account and the job, and the shard keeps no trace of the dispute."""
    chain = committee_chain()
    job_id = trained_job(chain, challenge_blocks=50)
    job = job_of(chain, job_id)
    committed = job.shards[0]
    disputed(chain, job_id)
    step(chain, *[vote(chain, v, job_id, False) for v in VOTERS[:2]])
    mine_until(chain, job_of(chain, job_id).shards[0].query_deadline)
    settle = tx(chain, CAROL, Settle(job_id))
    alice, bob = account_of(ALICE), account_of(BOB)
    assert block_events(chain, settle) == (
        Event("forfeit", alice, BOND, job_id, 0, "honest"), Event("pay", bob, BOND, job_id, 0, "bond"),
        Event("pay", bob, committed.payment, job_id, 0),
        Event("refund", alice, job.escrow - committed.payment, job_id, note="unspent escrow"),
    )
    step(chain, settle)
    assert job_of(chain, job_id) == evolve(job, escrow=0, status=JobStatus.CLOSED,
                                           shards=(evolve(committed, status=ShardStatus.PAID),))


def test_a_fraud_verdict_by_exactly_a_quorum_slashes() -> None:
    """Two fraud votes of a quorum of two decide: the trainer is slashed, the challenger rewarded
    and refunded its bond, the shard reopened."""
    chain = committee_chain()
    job_id = trained_job(chain)
    job = job_of(chain, job_id)
    stake = job.shards[0].stake
    disputed(chain, job_id)
    step(chain, *[vote(chain, v, job_id, True) for v in VOTERS[:2]])
    mine_until(chain, job_of(chain, job_id).shards[0].query_deadline)
    settle = tx(chain, CAROL, Settle(job_id))
    alice, bob = account_of(ALICE), account_of(BOB)
    assert block_events(chain, settle) == (
        Event("slash", bob, stake, job_id, 0, "fraud"), Event("reward", alice, stake // 2, job_id, 0, "fraud"),
        Event("refund", alice, BOND, job_id, 0, "bond"), Event("burn", b"", stake - stake // 2, job_id, 0, "fraud"),
    )
    step(chain, settle)
    assert job_of(chain, job_id) == evolve(job, shards=(Shard(ShardStatus.OPEN, deadline=job.shards[0].deadline),))


@pytest.mark.parametrize("after_end", [-1, 0, 1], ids=["before-window-end", "at-window-end", "after-window-end"])
def test_a_lapsed_dispute_pays_the_shard_only_once_its_challenge_window_is_over(after_end: int) -> None:
    """A tie lapses the dispute: the bond goes back to the challenger and the shard is as it was
    committed, voters and all forgotten; it is paid in the same settle only when that settle's
    block is past the shard's challenge_end (the window a lapsed dispute must not cut short)."""
    chain = committee_chain()
    job_id = trained_job(chain, challenge_blocks=10)
    job = job_of(chain, job_id)
    committed = job.shards[0]
    disputed(chain, job_id)
    step(chain, vote(chain, VOTERS[0], job_id, True), vote(chain, VOTERS[1], job_id, False))
    assert job_of(chain, job_id).shards[0].query_deadline < committed.challenge_end - 1  # the votes are in
    mine_until(chain, committed.challenge_end + after_end - 1)
    settle = tx(chain, CAROL, Settle(job_id))
    alice, bob = account_of(ALICE), account_of(BOB)
    refund = Event("refund", alice, BOND, job_id, 0, "bond")
    if after_end <= 0:
        assert block_events(chain, settle) == (refund,)
        step(chain, settle)
        assert job_of(chain, job_id) == job  # committed, unpaid: the window is still open
        return
    assert block_events(chain, settle) == (
        refund, Event("pay", bob, committed.payment, job_id, 0),
        Event("refund", alice, job.escrow - committed.payment, job_id, note="unspent escrow"),
    )
    step(chain, settle)
    assert job_of(chain, job_id) == evolve(job, escrow=0, status=JobStatus.CLOSED,
                                           shards=(evolve(committed, status=ShardStatus.PAID),))


# ---- refusals ----------------------------------------------------------------------------------


PARTY = ("party-cannot-vote", "the worker, the client and the challenger have a stake in the verdict", None, None,
         RejectKind.LOCAL)


def test_vote_refusals() -> None:
    chain = committee_chain(voters=4)
    job_id = trained_job(chain, challenge_blocks=50)
    assert rejection(chain, vote(chain, VOTERS[0], job_id, True)) == (
        "shard-not-disputed", "shard 0 is committed", None, None, RejectKind.LOCAL)
    step(chain, tx(chain, ALICE, Challenge(job_id, 0, 0, None)))
    dispute_height = chain.height
    assert rejection(chain, tx(chain, CAROL, Challenge(job_id, 0, 1, None))) == (
        "shard-already-disputed", "", None, None, RejectKind.LOCAL)
    # the vote would sit in the beacon block itself: the mempool waits for it (MISSING, no blame)
    assert rejection(chain, vote(chain, VOTERS[0], job_id, True)) == (
        "vote-before-beacon", "the committee is drawn by the block after the dispute", f"> {dispute_height + 1}",
        dispute_height + 1, RejectKind.MISSING)
    step(chain)  # the beacon
    for party in (BOB, ALICE):
        assert rejection(chain, vote(chain, party, job_id, False)) == PARTY
    assert rejection(chain, vote(chain, CAROL, job_id, True)) == (
        "voter-stake-below-minimum", "", f">= {10 * NTK}", 0, RejectKind.LOCAL)
    step(chain, vote(chain, VOTERS[0], job_id, True))
    assert rejection(chain, vote(chain, VOTERS[0], job_id, False)) == ("already-voted", "", None, None, RejectKind.LOCAL)
    deadline = job_of(chain, job_id).shards[0].query_deadline
    mine_until(chain, deadline - 1)
    assert rejection(chain, tx(chain, BOB, Settle(job_id))) == (  # votes still open
        "nothing-to-settle", "no shard is due for payment, slashing or refund", None, None, RejectKind.STALE)
    step(chain, vote(chain, VOTERS[1], job_id, True))  # in the window's last block
    assert chain.height == deadline
    assert rejection(chain, vote(chain, VOTERS[2], job_id, True)) == (
        "vote-too-late", "", f"<= {deadline}", deadline + 1, RejectKind.LOCAL)
    step(chain, tx(chain, BOB, Settle(job_id)))  # two votes, a quorum, both fraud
    assert statuses(chain, job_id) == [ShardStatus.OPEN]


def test_a_staker_the_beacon_did_not_draw_cannot_vote() -> None:
    chain = committee_chain(voters=5, committee_size=1, quorum=1)
    job_id = trained_job(chain)
    beacon_height = disputed(chain, job_id)
    beacon = chain.hash_at(beacon_height)
    staked_total = chain.totals().staked
    assert staked_total == 1000 * NTK + 5 * 20 * NTK

    def member(seed: bytes) -> bool:
        return drawn(committee_draw(beacon, job_id, 0, account_of(seed)), 20 * NTK, staked_total, 1)

    outsiders = [v for v in VOTERS if not member(v)]
    assert outsiders, "with 5 of 6 equal-odds stakers at 2% each, one is left out"
    assert rejection(chain, vote(chain, outsiders[0], job_id, True)) == (
        "not-drawn", "the beacon did not draw this staker for the committee", None, None, RejectKind.LOCAL)


def test_committee_draw_is_stake_weighted_with_an_exact_boundary() -> None:
    staked = 1024
    # drawn iff draw x staked < size x bonded x 2^256: the boundary itself is out
    edge = (3 * 10 << 256) // staked  # exact: 1024 divides 2^256
    assert drawn(edge - 1, 10, staked, 3) and not drawn(edge, 10, staked, 3)
    assert drawn(2**256 - 1, staked, staked, 1)  # all the stake: always drawn
    assert not drawn(0, 0, staked, 3)  # no stake: never
    # over many beacons a staker sits on the committee about size x bonded / staked of the time
    account = account_of(VOTERS[0])
    hits = sum(drawn(committee_draw(i.to_bytes(32, "big"), bytes(32), 0, account), 100, staked, 3)
               for i in range(4000))
    assert 0.25 < hits / 4000 < 0.35


def test_a_training_result_has_no_fraud_proof_only_a_dispute() -> None:
    chain = committee_chain()
    job_id = trained_job(chain)
    claim = LeafClaim(bytes(32), b"", (), (), bytes(32), bytes(32))
    assert rejection(chain, tx(chain, ALICE, Challenge(job_id, 0, 0, claim))) == NO_FRAUD_PROOF


def test_vote_decoding_wants_a_boolean_verdict() -> None:
    with pytest.raises(DecodeError):
        Vote.from_list([bytes(32), 0, 1])
    assert Vote.from_list([bytes(32), 0, True]) == Vote(bytes(32), 0, True)


def test_reorg_removes_a_dispute_and_its_votes() -> None:
    chain = committee_chain()
    job_id = trained_job(chain)
    rival = clone_market_chain(chain)
    before = snapshot(chain, job_id)
    disputed(chain, job_id)
    step(chain, vote(chain, VOTERS[0], job_id, True))
    branch = mine_blocks(rival, 4, miner=BRANCH_B_MINER)
    import_all(chain, branch)
    assert chain.tip_hash == rival.tip_hash
    after = snapshot(chain, job_id)
    assert after["jobs"] == before["jobs"]
    for seed in (ALICE, BOB, *VOTERS[:3]):
        assert after["accounts"][account_of(seed)] == before["accounts"][account_of(seed)]


# ---- the committee at work: real training, replayed by the members -------------------------------


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tests.support.training import TRAIN
    from worker.runner import run_task

    out = tmp_path_factory.mktemp("dispute") / "cnn"
    run_task("train", TRAIN, out, timeout_s=240)
    return out


def committee_verdicts(chain: ChainState, job_id: bytes, beacon_height: int, delivered: Path) -> list[bool]:
    """Each member replays what the trainer delivered, with the segments the beacon samples, and
    votes fraud when the replay fails (worker.verify: the calibrated tolerance)."""
    from worker.verify import verify_output

    beacon = chain.hash_at(beacon_height)
    assert beacon is not None
    return [not verify_output(delivered, beacon, 2).ok for _member in range(3)]


def test_committee_slashes_a_trainer_whose_work_does_not_replay(trained: Path, tmp_path: Path) -> None:
    import shutil

    from tests.support.training import forge_log, reverse_batches

    forged = tmp_path / "forged"
    shutil.copytree(trained, forged)
    forge_log(forged, reverse_batches)  # claims batches it never trained on, re-signed and re-sealed
    chain = committee_chain()
    job_id = trained_job(chain)
    bonded = acct(chain, BOB).bonded
    beacon_height = disputed(chain, job_id)
    verdicts = committee_verdicts(chain, job_id, beacon_height, forged)
    assert verdicts == [True, True, True]
    step(chain, *[vote(chain, v, job_id, fraud) for v, fraud in zip(VOTERS, verdicts, strict=False)])
    settle_after_votes(chain, job_id)
    assert acct(chain, BOB).bonded < bonded and statuses(chain, job_id) == [ShardStatus.OPEN]


def test_committee_pays_an_honest_trainer_against_a_lying_client(trained: Path) -> None:
    chain = committee_chain()
    job_id = trained_job(chain, challenge_blocks=50)
    bob = acct(chain, BOB).balance
    payment = job_of(chain, job_id).shards[0].payment
    beacon_height = disputed(chain, job_id)  # the client claims fraud to keep its money
    verdicts = committee_verdicts(chain, job_id, beacon_height, trained)
    assert verdicts == [False, False, False]
    step(chain, *[vote(chain, v, job_id, fraud) for v, fraud in zip(VOTERS, verdicts, strict=False)])
    settle_after_votes(chain, job_id)
    assert acct(chain, BOB).balance == bob + payment + BOND
    assert job_of(chain, job_id).status is JobStatus.CLOSED



def test_committee_draw_hashes_the_beacon_the_job_the_shard_and_the_account() -> None:
    """The draw every validator and voter computes alike: blake2b-256 personalised
    "neuro-committee" over beacon, job id, shard (4 bytes, big-endian) and account, read big-endian."""
    beacon, job_id, account = bytes([1]) * 32, bytes([2]) * 32, bytes([3]) * 20
    digest = hashlib.blake2b(beacon + job_id + bytes([0, 0, 1, 7]) + account, digest_size=32,
                             person=b"neuro-committee").digest()
    assert committee_draw(beacon, job_id, 263, account) == int.from_bytes(digest, "big")


def test_a_staker_with_exactly_the_minimum_stake_may_vote() -> None:
    chain = committee_chain(stake=10 * NTK)  # devnet's min_stake
    job_id = trained_job(chain)
    disputed(chain, job_id)
    assert acct(chain, VOTERS[0]).bonded == 10 * NTK
    step(chain, vote(chain, VOTERS[0], job_id, True))
    assert len(job_of(chain, job_id).shards[0].voters) == 1


def test_a_vote_whose_beacon_block_the_store_lost_is_a_store_fault() -> None:
    """The beacon is read from the height index; a store missing it is our disk's fault, never
    the voter's: the node reports it (`--reindex`) instead of refusing the vote."""
    chain = committee_chain()
    job_id = trained_job(chain)
    beacon_height = disputed(chain, job_id)
    chain.kv.commit({schema.height_key(beacon_height): None}, sync=False)
    with pytest.raises(StoreError) as info:
        check_against_tip(chain, vote(chain, VOTERS[0], job_id, True))
    assert (info.value.reason, info.value.detail) == (
        "store-corrupt", f"no block at the beacon height {beacon_height} below the tip")
