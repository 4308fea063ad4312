"""Label disputes in consensus: the same committee rule as training disputes.

A label shard cannot be re-labelled by validators (that takes running a model), so a claim-less
challenge of one opens a committee dispute, as for training (`COMMITTEE_SERVICES`): the next
block's hash draws voters, a quorum's majority for fraud slashes the labeler and reopens the
shard, and a majority for honest pays it and forfeits the challenger's bond. No fraud proof is
taken for labels, and a labeler's shard is never a withholding query.
"""

from __future__ import annotations

from chain.chainstate import ChainState
from chain.errors import RejectKind
from chain.jobs import ShardStatus
from chain.market_types import (
    AwardEntry,
    Challenge,
    JobAward,
    JobPost,
    LeafClaim,
    ResultCommit,
    Service,
)
from tests.support.market import (
    ALICE,
    BOB,
    acct,
    bid,
    canonical,
    events,
    job_of,
    statuses,
    step,
    tx,
)
from tests.unit.chain.marketplace_checks import rejection
from tests.unit.chain.test_training_disputes import (
    BOND,
    NO_FRAUD_PROOF,
    ROOT,
    VOTERS,
    committee_chain,
    settle_after_votes,
    vote,
)

IMAGES = 40
LABEL_SPEC = canonical({"task": "label", "images": IMAGES, "model": {"name": "cnn", "image_size": 16, "width": 4,
                                                                     "depth": 1},
                        "images_root": "00" * 32, "weights_root": "11" * 32})
PRICE = 10**9  # base units per GFLOP


def labelled_job(chain: ChainState, *, challenge_blocks: int = 3) -> bytes:
    """A label job of alice's in 2 shards, shard 0 (images 0..19) awarded to bob and committed."""
    posting = tx(chain, ALICE, JobPost(Service.LABEL, LABEL_SPEC, 2, 4 * PRICE, 3, 20, challenge_blocks))
    step(chain, posting)
    job_id = posting.txid
    step(chain, tx(chain, ALICE, JobAward(job_id, (AwardEntry(bid(chain, BOB, job_id, PRICE), (0,)),))))
    step(chain, tx(chain, BOB, ResultCommit(job_id, 0, ROOT, IMAGES // 2)))
    return job_id


def dispute(chain: ChainState, job_id: bytes, index: int = 5) -> None:
    step(chain, tx(chain, ALICE, Challenge(job_id, 0, index, None)))
    step(chain)  # the beacon


def test_a_claimless_challenge_of_labels_opens_a_committee_dispute_not_a_query() -> None:
    chain = committee_chain()
    job_id = labelled_job(chain)
    dispute(chain, job_id)
    shard = job_of(chain, job_id).shards[0]
    assert shard.status is ShardStatus.DISPUTED and shard.query_index == 5 and shard.bond == BOND


def test_a_fraud_majority_slashes_the_labeler_and_reopens_its_shard() -> None:
    chain = committee_chain()
    job_id = labelled_job(chain)
    stake = job_of(chain, job_id).shards[0].stake
    bonded = acct(chain, BOB).bonded
    dispute(chain, job_id)
    step(chain, *[vote(chain, v, job_id, fraud) for v, fraud in zip(VOTERS, (True, True, False), strict=False)])
    settle_after_votes(chain, job_id)
    assert acct(chain, BOB).bonded == bonded - stake
    assert statuses(chain, job_id)[0] is ShardStatus.OPEN
    assert ("slash", 0, stake, "fraud") in events(chain, job_id)


def test_an_honest_majority_pays_the_labeler_and_forfeits_the_bond() -> None:
    chain = committee_chain()
    job_id = labelled_job(chain, challenge_blocks=50)
    shard = job_of(chain, job_id).shards[0]
    bob = acct(chain, BOB).balance
    dispute(chain, job_id)
    step(chain, *[vote(chain, v, job_id, fraud) for v, fraud in zip(VOTERS, (False, False, True), strict=False)])
    settle_after_votes(chain, job_id)
    assert acct(chain, BOB).balance == bob + BOND + shard.payment
    assert statuses(chain, job_id)[0] is ShardStatus.PAID
    assert ("forfeit", 0, BOND, "honest") in events(chain, job_id)


def test_labels_take_no_fraud_proof_and_a_dispute_names_an_image_of_the_shard() -> None:
    chain = committee_chain()
    job_id = labelled_job(chain)
    claim = LeafClaim(b"", bytes(32), (), (), bytes(32), bytes(32))
    # the detail speaks of a training result for labels too
    assert rejection(chain, tx(chain, ALICE, Challenge(job_id, 0, 0, claim))) == NO_FRAUD_PROOF
    assert rejection(chain, tx(chain, ALICE, Challenge(job_id, 0, IMAGES // 2, None))) == (
        "item-outside-shard", "", f"[0, {IMAGES // 2})", IMAGES // 2, RejectKind.LOCAL)
