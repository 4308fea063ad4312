"""The market's state transition: one pure rule per transaction kind, each refusal named.

These run inside `chain.state.apply_transaction` after the envelope's nonce and fee (the fee is
already paid when a rule runs). They read and write through the block's `Ledger`, so a block, a
block template and a mempool check all run the same code; a raised `InvalidTransaction` leaves
the caller to discard the ledger (a block) or roll it back (a template).

Token flows, each recorded as an `Event` (DESIGN.md, Market, has the flow):
- JobPost locks ``sum of shard payments at max price`` from the client into the job's escrow.
- JobAward locks each winner's stake: ``payment * stake_per_payment_bp / 10_000`` per shard.
- Settle / Accept pay a shard's awarded payment (less the protocol fee, burned) and unlock its
  stake; when every shard is final the job closes and the escrow left goes back to the client.
- A fraud proof, or a query left unanswered, slashes the shard's stake: ``slash_reward_bp`` to
  the challenger, the rest burned; the shard reopens for a new award until the job's deadline.
- A worker that misses its deadline loses ``no_show_slash_bp`` of the shard's stake (burned).
Supply: balances + escrow + bonded + unbonding = issued - burned, after every block.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from chain.commitments import claim_reaches
from chain.errors import InvalidTransaction, RejectKind, StoreError
from chain.hashing import hash256
from chain.job_spec import JobTerms, job_terms
from chain.jobs import MAX_VOTERS, Event, Job, JobStatus, Shard, ShardStatus, evolve
from chain.listing_rules import LISTING_RULES
from chain.market_types import (
    Accept,
    Challenge,
    JobAward,
    JobPost,
    LeafClaim,
    Release,
    Respond,
    ResultCommit,
    Service,
    Settle,
    Stake,
    Unstake,
    Vote,
)
from chain.params import BASIS_POINTS, MAX_SUPPLY_UNITS, MarketParams
from chain.treasury_rules import TREASURY_RULES

if TYPE_CHECKING:
    from chain.state import Ledger
    from chain.types import Transaction

SPEC_PERSON = b"neuro-spec"
COMMITTEE_PERSON = b"neuro-committee"
# results judged by a drawn committee (a claim-less Challenge disputes them): training runs, whose
# replay is not bit-identical across machines, and labels, which take running a model to check
# (`neurod.market.label_check`); any other claim-less Challenge is a query the worker answers
COMMITTEE_SERVICES = frozenset({Service.TRAIN, Service.LABEL})


class Adjudicator(Protocol):
    """Re-computes one item of a job for a fraud proof: what its leaf's ``check`` must be.

    Declared here, filled by neurod with the worker's deterministic CPU renderer
    (`neurod.adjudicator`): the renderer is consensus code, and a change to what a renderer
    version draws is a consensus change. Must be deterministic and raise nothing but
    `InvalidTransaction` (a spec it cannot render is the poster's fault, never the node's)."""

    def item_check(self, service: int, spec: bytes, index: int) -> bytes: ...


@dataclass(frozen=True, slots=True)
class MarketContext:
    params: MarketParams
    chain_id: bytes
    height: int  # of the block the transaction is in
    adjudicator: Adjudicator | None = None
    treasury: bytes = b""  # genesis names["treasury"]: a listing sale's protocol fee goes there; its key
    # signs vouchers and it alone posts buyback offers (`chain.treasury_rules`)


def spec_hash(spec: bytes) -> bytes:
    return hash256(spec, person=SPEC_PERSON)


def _fail(reason: str, detail: str = "", **kw: object) -> InvalidTransaction:
    return InvalidTransaction(reason, detail, **kw)  # type: ignore[arg-type]


def _bp(amount: int, bp: int) -> int:
    return amount * bp // BASIS_POINTS


def terms_of(job: Job) -> JobTerms:
    return JobTerms(Service(job.service), job.items, job.units, job.seed)


# --------------------------------------------------------------------------- stake


def apply_stake(ledger: Ledger, ctx: MarketContext, tx: Transaction, payload: Stake) -> None:
    sender = tx.sender_account
    account = ledger.get(sender)
    if payload.amount > account.balance:
        raise _fail("insufficient-balance", expected=f">= {payload.amount}", got=account.balance)
    ledger.set(sender, evolve(account, balance=account.balance - payload.amount,
                               bonded=account.bonded + payload.amount))
    ledger.event(Event("bond", sender, payload.amount))


def apply_unstake(ledger: Ledger, ctx: MarketContext, tx: Transaction, payload: Unstake) -> None:
    sender = tx.sender_account
    account = ledger.get(sender)
    if payload.amount > account.free_stake:
        raise _fail("insufficient-free-stake", "locked stake backs awarded shards",
                    expected=f">= {payload.amount}", got=account.free_stake)
    ledger.set(sender, evolve(
        account, bonded=account.bonded - payload.amount, unbonding=account.unbonding + payload.amount,
        release_height=ctx.height + ctx.params.unbonding_blocks,
    ))
    ledger.event(Event("unbond", sender, payload.amount))


def apply_release(ledger: Ledger, ctx: MarketContext, tx: Transaction, payload: Release) -> None:
    sender = tx.sender_account
    account = ledger.get(sender)
    if not account.unbonding:
        raise _fail("nothing-unbonding")
    if ctx.height < account.release_height:
        raise _fail("still-unbonding", expected=f">= {account.release_height}", got=ctx.height)
    ledger.set(sender, evolve(account, balance=account.balance + account.unbonding, unbonding=0, release_height=0))
    ledger.event(Event("release", sender, account.unbonding))


# --------------------------------------------------------------------------- jobs


def apply_post(ledger: Ledger, ctx: MarketContext, tx: Transaction, payload: JobPost) -> None:
    mp = ctx.params
    if payload.shards > mp.max_shards:
        raise _fail("too-many-shards", expected=f"<= {mp.max_shards}", got=payload.shards)
    terms = job_terms(payload.service, payload.spec, mp.max_spec_bytes)
    if terms.service is Service.TRAIN and payload.shards != 1:
        raise _fail("train-job-not-sharded", "a training run is one shard", expected="== 1", got=payload.shards)
    if payload.shards > terms.items:
        raise _fail("more-shards-than-items", expected=f"<= {terms.items}", got=payload.shards)
    if payload.bid_blocks < mp.min_bid_blocks:
        raise _fail("bid-window-too-short", expected=f">= {mp.min_bid_blocks}", got=payload.bid_blocks)
    if payload.deadline_blocks <= payload.bid_blocks:
        raise _fail("deadline-in-bid-window", expected=f"> {payload.bid_blocks}", got=payload.deadline_blocks)
    if payload.deadline_blocks > mp.max_job_blocks or payload.challenge_blocks > mp.max_job_blocks:
        raise _fail("job-too-long", expected=f"<= {mp.max_job_blocks}",
                    got=max(payload.deadline_blocks, payload.challenge_blocks))
    if payload.challenge_blocks < mp.min_challenge_blocks:
        raise _fail("challenge-window-too-short", expected=f">= {mp.min_challenge_blocks}",
                    got=payload.challenge_blocks)
    payments = [terms.payment(k, payload.shards, payload.max_price) for k in range(payload.shards)]
    if min(payments) < 1:
        raise _fail("price-too-low", "a shard would pay nothing at the max price")
    escrow = sum(payments)
    client = tx.sender_account
    account = ledger.get(client)
    if escrow > MAX_SUPPLY_UNITS or escrow > account.balance:
        raise _fail("insufficient-balance", "the escrow is the shards' payments at the max price",
                    expected=f">= {escrow}", got=account.balance)
    ledger.set(client, evolve(account, balance=account.balance - escrow))
    job_id = tx.txid
    h = ctx.height
    ledger.set_job(job_id, Job(
        client=client, service=payload.service, spec_hash=spec_hash(payload.spec), items=terms.items,
        units=terms.units, seed=terms.seed, max_price=payload.max_price, posted=h, bid_end=h + payload.bid_blocks,
        deadline=h + payload.deadline_blocks, challenge_blocks=payload.challenge_blocks, escrow=escrow,
        status=JobStatus.OPEN, shards=(Shard(),) * payload.shards,
    ))
    ledger.specs[job_id] = payload.spec
    ledger.event(Event("lock", client, escrow, job_id, note="escrow"))


def _open_job(ledger: Ledger, job_id: bytes) -> Job:
    job = ledger.job(job_id)
    if job is None:
        raise _fail("unknown-job", job_id.hex(), kind=RejectKind.MISSING)
    if job.status is JobStatus.CLOSED:
        raise _fail("job-closed", kind=RejectKind.STALE)
    return job


def _shard(job: Job, index: int) -> Shard:
    if index >= len(job.shards):
        raise _fail("no-such-shard", expected=f"< {len(job.shards)}", got=index)
    return job.shards[index]


def apply_award(ledger: Ledger, ctx: MarketContext, tx: Transaction, payload: JobAward) -> None:
    mp, h = ctx.params, ctx.height
    job = _open_job(ledger, payload.job_id)
    if tx.sender_account != job.client:
        raise _fail("not-job-client")
    if len(payload.entries) > mp.max_bids_per_award:
        raise _fail("too-many-bids", expected=f"<= {mp.max_bids_per_award}", got=len(payload.entries))
    terms = terms_of(job)
    n = len(job.shards)
    used: dict[bytes, int] = {}
    for shard in job.shards:
        if shard.bid_id:
            used[shard.bid_id] = used.get(shard.bid_id, 0) + 1
    for entry in payload.entries:
        bid = entry.bid
        if bid.chain_id != ctx.chain_id:
            raise _fail("bid-wrong-chain")
        if bid.job_id != payload.job_id:
            raise _fail("bid-wrong-job")
        if bid.expiry < h:
            raise _fail("bid-expired", expected=f">= {h}", got=bid.expiry)
        if bid.unit_price > job.max_price:
            raise _fail("bid-above-max-price", expected=f"<= {job.max_price}", got=bid.unit_price)
        used[bid.bid_id] = used.get(bid.bid_id, 0) + len(entry.shards)
        if used[bid.bid_id] > bid.max_shards:
            raise _fail("bid-over-capacity", expected=f"<= {bid.max_shards}", got=used[bid.bid_id])
        worker = bid.worker_account
        for index in entry.shards:
            shard = _shard(job, index)
            if shard.status is not ShardStatus.OPEN:
                raise _fail("shard-taken", f"shard {index}")
            reopened = shard.deadline != 0  # awarded before and slashed: Job.award_end bounds it
            if not reopened and h > job.bid_end:
                raise _fail("bid-window-closed", expected=f"<= {job.bid_end}", got=h)
            if reopened and h > job.award_end(shard):
                raise _fail("award-too-late", "a reopened shard is awarded within a job's length after its deadline",
                            expected=f"<= {job.award_end(shard)}", got=h)
            payment = terms.payment(index, n, bid.unit_price)
            stake = max(_bp(payment, mp.stake_per_payment_bp), 1)
            account = ledger.get(worker)
            if account.bonded < mp.min_stake:
                raise _fail("worker-stake-below-minimum", expected=f">= {mp.min_stake}", got=account.bonded)
            if account.free_stake < stake:
                raise _fail("insufficient-free-stake", f"worker for shard {index}", expected=f">= {stake}",
                            got=account.free_stake)
            ledger.set(worker, evolve(account, locked=account.locked + stake))
            deadline = h + (job.deadline - job.bid_end) if reopened else job.deadline
            job = job.with_shard(index, Shard(
                ShardStatus.ASSIGNED, worker=worker, price=bid.unit_price, payment=payment, stake=stake,
                bid_id=bid.bid_id, deadline=deadline,
            ))
            ledger.event(Event("lock", worker, stake, payload.job_id, index, note="stake"))
    ledger.set_job(payload.job_id, job)


def apply_commit(ledger: Ledger, ctx: MarketContext, tx: Transaction, payload: ResultCommit) -> None:
    job = _open_job(ledger, payload.job_id)
    shard = _shard(job, payload.shard)
    if shard.status is not ShardStatus.ASSIGNED:
        raise _fail("shard-not-assigned", f"shard {payload.shard} is {shard.status.name.lower()}")
    if tx.sender_account != shard.worker:
        raise _fail("not-shard-worker")
    if ctx.height > shard.deadline:
        raise _fail("commit-too-late", expected=f"<= {shard.deadline}", got=ctx.height)
    if job.service != Service.TRAIN:
        start, stop = terms_of(job).shard_range(payload.shard, len(job.shards))
        if payload.items != stop - start:
            raise _fail("wrong-item-count", expected=f"== {stop - start}", got=payload.items)
    ledger.set_job(payload.job_id, job.with_shard(payload.shard, evolve(
        shard, status=ShardStatus.COMMITTED, root=payload.root, items=payload.items, committed_at=ctx.height,
        challenge_end=ctx.height + job.challenge_blocks,
    )))


def _position(job: Job, shard_index: int, shard: Shard, index: int) -> int:
    """The item's position in the shard's artifact, or a named refusal (a training run is one
    shard of one item: its items are the run's segments, from 0)."""
    start = terms_of(job).shard_range(shard_index, len(job.shards))[0]
    if not start <= index < start + shard.items:
        raise _fail("item-outside-shard", expected=f"[{start}, {start + shard.items})", got=index)
    return index - start


def _check_claim(job: Job, shard_index: int, shard: Shard, index: int, claim: LeafClaim) -> None:
    position = _position(job, shard_index, shard, index)
    if not claim_reaches(claim, shard.root, index, position, shard.items):
        raise _fail("bad-proof-path", "the leaf does not sit at its position under the committed root")


def _recomputed(ledger: Ledger, ctx: MarketContext, job_id: bytes, job: Job, index: int) -> bytes:
    """What the item's ``check`` must be, re-computed by the adjudicator (bounded per block)."""
    ledger.adjudications += 1
    if ledger.adjudications > ctx.params.max_challenges_per_block:
        raise _fail("too-many-challenges", expected=f"<= {ctx.params.max_challenges_per_block} per block",
                    got=ledger.adjudications)
    if ctx.adjudicator is None:
        raise StoreError("no-adjudicator", "this node cannot re-render items to judge a fraud proof")
    spec = ledger.spec(job_id)
    if spec is None:
        raise StoreError("store-spec-missing", f"spec of job {job_id.hex()}")
    return ctx.adjudicator.item_check(job.service, spec, index)


def apply_challenge(ledger: Ledger, ctx: MarketContext, tx: Transaction, payload: Challenge) -> None:
    job = _open_job(ledger, payload.job_id)
    shard = _shard(job, payload.shard)
    if shard.status is ShardStatus.QUERIED:
        raise _fail("shard-already-queried")
    if shard.status is ShardStatus.DISPUTED:
        raise _fail("shard-already-disputed")
    if shard.status is not ShardStatus.COMMITTED:
        raise _fail("shard-not-committed", f"shard {payload.shard} is {shard.status.name.lower()}")
    if ctx.height > shard.challenge_end:
        raise _fail("challenge-window-closed", expected=f"<= {shard.challenge_end}", got=ctx.height)
    challenger = tx.sender_account
    if challenger == shard.worker:
        raise _fail("self-challenge")
    if payload.claim is not None:  # a fraud proof: judged in this block
        if job.service != Service.GENERATE:
            raise _fail("no-fraud-proof-for-service", "only render items are re-computed on chain; a training "
                        "result is disputed before a committee instead (worker/README.md, Training disputes)")
        _check_claim(job, payload.shard, shard, payload.index, payload.claim)
        if _recomputed(ledger, ctx, payload.job_id, job, payload.index) == payload.claim.check:
            raise _fail("challenge-honest-item", "the item re-computes to the committed leaf")
        _slash(ledger, ctx, payload.job_id, job, payload.shard, "fraud", challenger)
        return
    if job.service != Service.TRAIN:  # a training dispute's index names a segment, not an item
        _position(job, payload.shard, shard, payload.index)
    bond = ctx.params.challenge_bond
    account = ledger.get(challenger)
    if bond > account.balance:
        raise _fail("insufficient-balance", "a query or dispute locks the challenge bond", expected=f">= {bond}",
                    got=account.balance)
    ledger.set(challenger, evolve(account, balance=account.balance - bond))
    if job.service in COMMITTEE_SERVICES:
        # a training result or a model's labels cannot be re-run in consensus (worker/README.md,
        # Training disputes): the committee that the next block's hash draws votes until the deadline
        status, deadline = ShardStatus.DISPUTED, ctx.height + 1 + ctx.params.vote_blocks
    else:
        status, deadline = ShardStatus.QUERIED, ctx.height + ctx.params.response_blocks
    ledger.set_job(payload.job_id, job.with_shard(payload.shard, evolve(
        shard, status=status, query_index=payload.index, query_deadline=deadline, challenger=challenger, bond=bond,
    ), escrow=job.escrow + bond))
    ledger.event(Event("lock", challenger, bond, payload.job_id, payload.shard, note="bond"))


def apply_respond(ledger: Ledger, ctx: MarketContext, tx: Transaction, payload: Respond) -> None:
    job = _open_job(ledger, payload.job_id)
    shard = _shard(job, payload.shard)
    if shard.status is not ShardStatus.QUERIED:
        raise _fail("shard-not-queried")
    if tx.sender_account != shard.worker:
        raise _fail("not-shard-worker")
    if ctx.height > shard.query_deadline:
        raise _fail("response-too-late", expected=f"<= {shard.query_deadline}", got=ctx.height)
    _check_claim(job, payload.shard, shard, shard.query_index, payload.claim)
    lied = job.service == Service.GENERATE and (
        _recomputed(ledger, ctx, payload.job_id, job, shard.query_index) != payload.claim.check
    )
    if lied:  # the answer itself proves the fraud
        _slash(ledger, ctx, payload.job_id, job, payload.shard, "fraud", shard.challenger)
        return
    # an honest answer: the challenger's bond pays the worker for the trouble
    ledger.set_job(payload.job_id, _release_bond(ledger, payload.job_id, job, payload.shard, "answered"))


def _release_bond(ledger: Ledger, job_id: bytes, job: Job, index: int, outcome: str) -> Job:
    """Close the shard's open query or dispute: the bond goes to the worker when the challenge
    failed ("answered", "honest"), back to the challenger when nobody decided ("lapsed")."""
    shard = job.shards[index]
    to = shard.challenger if outcome == "lapsed" else shard.worker
    account = ledger.get(to)
    ledger.set(to, evolve(account, balance=account.balance + shard.bond))
    if outcome == "lapsed":
        ledger.event(Event("refund", to, shard.bond, job_id, index, note="bond"))
    else:
        ledger.event(Event("forfeit", shard.challenger, shard.bond, job_id, index, note=outcome))
        ledger.event(Event("pay", to, shard.bond, job_id, index, note="bond"))
    return job.with_shard(index, evolve(
        shard, status=ShardStatus.COMMITTED, query_index=0, query_deadline=0, challenger=b"", bond=0,
        voters=(), fraud_votes=0,
    ), escrow=job.escrow - shard.bond)


# --------------------------------------------------------------------------- training disputes


def committee_draw(beacon: bytes, job_id: bytes, shard: int, account_id: bytes) -> int:
    """An account's draw for one dispute, uniform in [0, 2^256): the hash of the beacon (the
    block after the dispute's, unknown when it was posted), the shard and the account."""
    data = beacon + job_id + shard.to_bytes(4, "big") + account_id
    return int.from_bytes(hash256(data, person=COMMITTEE_PERSON), "big")


def drawn(draw: int, bonded: int, staked: int, committee_size: int) -> bool:
    """Whether a staker with ``bonded`` of the ``staked`` total sits on the committee: with
    probability committee_size x bonded / staked (certain past 1). Each staker checks its own
    draw, and every validator checks a vote's, with no list of stakers in the state; weighting
    by stake makes splitting it into many accounts gain nothing (Algorand's sortition)."""
    return draw * staked < (committee_size * bonded) << 256


def apply_vote(ledger: Ledger, ctx: MarketContext, tx: Transaction, payload: Vote) -> None:
    mp, h = ctx.params, ctx.height
    job = _open_job(ledger, payload.job_id)
    shard = _shard(job, payload.shard)
    if shard.status is not ShardStatus.DISPUTED:
        raise _fail("shard-not-disputed", f"shard {payload.shard} is {shard.status.name.lower()}")
    beacon_height = shard.query_deadline - mp.vote_blocks
    if h <= beacon_height:
        raise _fail("vote-before-beacon", "the committee is drawn by the block after the dispute",
                    expected=f"> {beacon_height}", got=h, kind=RejectKind.MISSING)
    if h > shard.query_deadline:
        raise _fail("vote-too-late", expected=f"<= {shard.query_deadline}", got=h)
    voter = tx.sender_account
    if voter in (shard.worker, shard.challenger, job.client):
        raise _fail("party-cannot-vote", "the worker, the client and the challenger have a stake in the verdict")
    if voter in shard.voters:
        raise _fail("already-voted")
    if len(shard.voters) >= MAX_VOTERS:
        raise _fail("committee-full", expected=f"<= {MAX_VOTERS} votes", got=len(shard.voters) + 1)
    account = ledger.get(voter)
    if account.bonded < mp.min_stake:
        raise _fail("voter-stake-below-minimum", expected=f">= {mp.min_stake}", got=account.bonded)
    beacon = ledger.block_hash(beacon_height)
    if beacon is None:
        raise StoreError("store-corrupt", f"no block at the beacon height {beacon_height} below the tip")
    draw = committee_draw(beacon, payload.job_id, payload.shard, voter)
    if not drawn(draw, account.bonded, ledger.staked_at_block_start(), mp.committee_size):
        raise _fail("not-drawn", "the beacon did not draw this staker for the committee")
    ledger.set_job(payload.job_id, job.with_shard(payload.shard, evolve(
        shard, voters=(*shard.voters, voter), fraud_votes=shard.fraud_votes + payload.fraud,
    )))


def _decide_dispute(ledger: Ledger, ctx: MarketContext, job_id: bytes, job: Job, index: int) -> Job:
    """After the vote window: a quorum's majority for fraud slashes the trainer (the challenger
    rewarded, as for a render fraud proof); for honest, the bond goes to the trainer and the
    shard is paid at once, so a client that disputes honest work cannot keep the pay; a tie or
    too few votes lapse the dispute (bond back; the shard is paid if its window is over)."""
    shard = job.shards[index]
    votes, fraud = len(shard.voters), shard.fraud_votes
    honest = votes - fraud
    if votes >= ctx.params.quorum and fraud > honest:
        _slash(ledger, ctx, job_id, job, index, "fraud", shard.challenger)
        return ledger.job(job_id)  # type: ignore[return-value]
    if votes >= ctx.params.quorum and honest > fraud:
        return _pay(ledger, ctx, job_id, _release_bond(ledger, job_id, job, index, "honest"), index)
    job = _release_bond(ledger, job_id, job, index, "lapsed")
    return _pay(ledger, ctx, job_id, job, index) if ctx.height > shard.challenge_end else job


def _slash(ledger: Ledger, ctx: MarketContext, job_id: bytes, job: Job, index: int, why: str,
           challenger: bytes) -> None:
    """Take the shard's stake from its worker (part to the challenger, the rest burned), give the
    challenger its bond back, and reopen the shard. Every slash has a challenger: a fraud proof's
    sender, or the account whose query or dispute went unanswered or was upheld (a no-show is
    not slashed here: it loses a part of its stake, in `apply_settle`)."""
    shard = job.shards[index]
    worker = ledger.get(shard.worker)
    ledger.set(shard.worker, evolve(worker, bonded=worker.bonded - shard.stake, locked=worker.locked - shard.stake))
    ledger.event(Event("slash", shard.worker, shard.stake, job_id, index, note=why))
    reward = _bp(shard.stake, ctx.params.slash_reward_bp)
    account = ledger.get(challenger)
    ledger.set(challenger, evolve(account, balance=account.balance + reward + shard.bond))
    ledger.event(Event("reward", challenger, reward, job_id, index, note=why))
    if shard.bond:
        ledger.event(Event("refund", challenger, shard.bond, job_id, index, note="bond"))
    ledger.burn(shard.stake - reward, job_id, index, why)
    reopened = Shard(ShardStatus.OPEN, deadline=shard.deadline)  # deadline != 0: awarded before
    ledger.set_job(job_id, job.with_shard(index, reopened, escrow=job.escrow - shard.bond))


def _pay(ledger: Ledger, ctx: MarketContext, job_id: bytes, job: Job, index: int) -> Job:
    shard = job.shards[index]
    fee = _bp(shard.payment, ctx.params.protocol_fee_bp)
    worker = ledger.get(shard.worker)
    ledger.set(shard.worker, evolve(worker, balance=worker.balance + shard.payment - fee,
                                     locked=worker.locked - shard.stake))
    ledger.event(Event("pay", shard.worker, shard.payment - fee, job_id, index))
    if fee:
        ledger.burn(fee, job_id, index, "fee")
    return job.with_shard(index, evolve(shard, status=ShardStatus.PAID), escrow=job.escrow - shard.payment)


def _refund_shard(ledger: Ledger, job_id: bytes, job: Job, index: int) -> Job:
    amount = terms_of(job).payment(index, len(job.shards), job.max_price)
    client = ledger.get(job.client)
    ledger.set(job.client, evolve(client, balance=client.balance + amount))
    ledger.event(Event("refund", job.client, amount, job_id, index))
    return job.with_shard(index, evolve(job.shards[index], status=ShardStatus.REFUNDED), escrow=job.escrow - amount)


def _close_if_final(ledger: Ledger, job_id: bytes, job: Job) -> Job:
    if not all(s.status.final for s in job.shards):
        return job
    if job.escrow:
        client = ledger.get(job.client)
        ledger.set(job.client, evolve(client, balance=client.balance + job.escrow))
        ledger.event(Event("refund", job.client, job.escrow, job_id, note="unspent escrow"))
    return evolve(job, escrow=0, status=JobStatus.CLOSED)


def apply_accept(ledger: Ledger, ctx: MarketContext, tx: Transaction, payload: Accept) -> None:
    job = _open_job(ledger, payload.job_id)
    if tx.sender_account != job.client:
        raise _fail("not-job-client")
    committed = [k for k, s in enumerate(job.shards) if s.status is ShardStatus.COMMITTED]
    if not committed:
        raise _fail("nothing-to-accept", "no shard is committed and unqueried")
    for index in committed:
        job = _pay(ledger, ctx, payload.job_id, job, index)
    ledger.set_job(payload.job_id, _close_if_final(ledger, payload.job_id, job))


def apply_settle(ledger: Ledger, ctx: MarketContext, tx: Transaction, payload: Settle) -> None:
    job = _open_job(ledger, payload.job_id)
    h, changed = ctx.height, False
    for index in range(len(job.shards)):
        shard = job.shards[index]
        if shard.status is ShardStatus.COMMITTED and h > shard.challenge_end:
            job = _pay(ledger, ctx, payload.job_id, job, index)
        elif shard.status is ShardStatus.DISPUTED and h > shard.query_deadline:
            job = _decide_dispute(ledger, ctx, payload.job_id, job, index)
        elif shard.status is ShardStatus.QUERIED and h > shard.query_deadline:
            _slash(ledger, ctx, payload.job_id, job, index, "withheld", shard.challenger)
            job = ledger.job(payload.job_id)  # type: ignore[assignment]
        elif shard.status is ShardStatus.ASSIGNED and h > shard.deadline:
            lost = _bp(shard.stake, ctx.params.no_show_slash_bp)
            worker = ledger.get(shard.worker)
            ledger.set(shard.worker, evolve(worker, bonded=worker.bonded - lost, locked=worker.locked - shard.stake))
            ledger.event(Event("slash", shard.worker, lost, payload.job_id, index, note="no-show"))
            ledger.burn(lost, payload.job_id, index, "no-show")
            job = job.with_shard(index, Shard(ShardStatus.OPEN, deadline=shard.deadline))
        elif shard.status is ShardStatus.OPEN and h > job.award_end(shard):
            job = _refund_shard(ledger, payload.job_id, job, index)
        else:
            continue
        changed = True
    if not changed:
        raise _fail("nothing-to-settle", "no shard is due for payment, slashing or refund", kind=RejectKind.STALE)
    ledger.set_job(payload.job_id, _close_if_final(ledger, payload.job_id, job))


RULES: dict[type, Callable[[Ledger, MarketContext, Transaction, Any], None]] = {
    Stake: apply_stake, Unstake: apply_unstake, Release: apply_release, JobPost: apply_post,
    JobAward: apply_award, ResultCommit: apply_commit, Challenge: apply_challenge, Respond: apply_respond,
    Accept: apply_accept, Settle: apply_settle, Vote: apply_vote, **LISTING_RULES, **TREASURY_RULES,
}


def apply_market(ledger: Ledger, ctx: MarketContext, tx: Transaction) -> None:
    """Apply a market payload (the envelope's nonce and fee are done)."""
    rule = RULES.get(type(tx.payload))
    if rule is None:
        raise _fail("bad-tx-kind", f"no state rule for kind {tx.kind}")
    rule(ledger, ctx, tx, tx.payload)
