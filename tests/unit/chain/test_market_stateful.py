"""A stateful property test of the market: two miners, every market transaction, forks, reorgs.

As in `test_chain_stateful.py`, each miner is a chain state that mines on its own tip and the node
under test receives every block either makes, so it follows both branches and reorgs whenever the
other pulls ahead; a sync merges them again. Rules queue market transactions built against a
miner's tip (stake, unstake, release, post, award with signed bids, honest and lying commits,
fraud proofs, queries, answers, training disputes and committee votes, accept, settle); a block keeps those that still apply
(``strict=False``), signed at consecutive nonces so that one refusal does not strand its sender's
later transactions. Render artifacts are rendered once, at import, for the few fixed specs.

After every step the node must hold: the supply balances and the incremental state root equals one
from scratch; every job's escrow is exactly what its shards still owe (never negative); every
worker's locked stake is exactly what its live shards lock; no shard is paid twice along the main
chain; and a miner on the same tip agrees on accounts, jobs, totals and events.
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from chain.assembly import assemble_block
from chain.crypto import public_key_of
from chain.jobs import JobStatus, ShardStatus
from chain.market_rules import terms_of
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
    Vote,
)
from chain.types import Transaction
from tests.support.chain_builders import account_of, import_block, main_chain, make_block
from tests.support.market import (
    ALICE,
    BOB,
    CAROL,
    DAVE,
    NTK,
    TRAIN_SPEC,
    assert_supply,
    claim_of,
    digits_job_spec,
    market_chain,
    market_chain_on,
    render_shard_artifact,
)

ITEMS = 6
SPEC = digits_job_spec(ITEMS, seed=11)
LIE = digits_job_spec(ITEMS, seed=12)  # what a lying worker commits
MAX_PRICE = 10**6

_OUT = Path(tempfile.mkdtemp(prefix="market-stateful-"))
atexit.register(shutil.rmtree, _OUT, ignore_errors=True)
# (shards, shard, honest) -> manifest, for 1-3 shards of SPEC: 12 small renders, once
ARTIFACTS: dict[tuple[int, int, bool], Any] = {}
for _n in (1, 2, 3):
    for _k in range(_n):
        _start, _stop = _k * ITEMS // _n, (_k + 1) * ITEMS // _n
        for _honest, _spec in ((True, SPEC), (False, LIE)):
            ARTIFACTS[_n, _k, _honest] = render_shard_artifact(_spec, _start, _stop, _OUT / f"{_n}-{_k}-{_honest}")
BY_ROOT = {manifest.root: manifest for manifest in ARTIFACTS.values()}

SEEDS = {account_of(seed): seed for seed in (ALICE, BOB, CAROL, DAVE)}
WORKERS = [BOB, CAROL]
STAKERS = [BOB, CAROL, DAVE]
PICK = st.integers(0, 1_000)
MINER = st.integers(0, 1)
NOW = st.booleans()  # mine the miner's queue at once: jobs keep moving within their windows
MINERS = [account_of(b"\x01" * 32), account_of(b"\x02" * 32)]
LIVE = (ShardStatus.ASSIGNED, ShardStatus.COMMITTED, ShardStatus.QUERIED, ShardStatus.DISPUTED)
TRAINED = {True: bytes(32), False: b"\xff" * 32}  # a training result's root: the chain never opens it


class MarketMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.node = market_chain()
        self.miners = [market_chain_on(self.node.genesis), market_chain_on(self.node.genesis)]
        self.pending: list[list[tuple[bytes, Any]]] = [[], []]  # (signer's seed, payload) per miner
        # bob and carol start staked, so that awards apply from the first block on
        for seed in WORKERS:
            self.queue(0, seed, Stake(20 * NTK))
        self.mine(0, 1)
        self.sync(0)

    # ---- helpers ----------------------------------------------------------------------------

    def queue(self, miner: int, seed: bytes, payload: Any, now: bool = False) -> None:
        self.pending[miner].append((seed, payload))
        if now:
            self.mine(miner, 1)

    def candidates(self, miner: int) -> list[Transaction]:
        """The miner's queue signed at consecutive nonces from the tip, dropping what its rules
        refuse first: a refused transaction does not leave a nonce gap behind it (a wallet
        re-signs), so one refused settle does not take its sender's other transactions along."""
        chain = self.miners[miner]
        queue = self.pending[miner]
        while True:
            nonces: dict[bytes, int] = {}
            txs = []
            for seed, payload in queue:
                sender = account_of(seed)
                if sender not in nonces:
                    account = chain.account(sender)
                    nonces[sender] = account.nonce if account else 0
                txs.append(Transaction(chain.chain_id, public_key_of(seed), nonces[sender], 10, payload).signed(seed))
                nonces[sender] += 1
            refused = {t.txid for t, error in assemble_block(chain, txs, MINERS[miner], 0).skipped
                       if error.reason != "nonce-gap"}
            if not refused:
                return txs
            queue = [item for item, t in zip(queue, txs) if t.txid not in refused]

    def shards_in(self, miner: int, wanted: ShardStatus) -> list[tuple[bytes, Any, int]]:
        """(job id, job, shard index) of every open job's shards in status ``wanted`` that the
        next block can still act on (a sensible client, worker and challenger: what a late one
        is refused with, test_market.py checks)."""
        chain = self.miners[miner]
        h = chain.height + 1
        found = []
        for job_id, job in chain.jobs():
            if job.status is not JobStatus.OPEN:
                continue
            for k, shard in enumerate(job.shards):
                if shard.status is not wanted:
                    continue
                if wanted is ShardStatus.OPEN and h > job.award_end(shard):
                    continue
                if wanted is ShardStatus.ASSIGNED and h > shard.deadline:
                    continue
                if wanted is ShardStatus.COMMITTED and h > shard.challenge_end:
                    continue
                if wanted is ShardStatus.DISPUTED and h > shard.query_deadline:
                    continue
                found.append((job_id, job, k))
        return found

    def open_jobs(self, miner: int) -> list[bytes]:
        return [job_id for job_id, job in self.miners[miner].jobs() if job.status is JobStatus.OPEN]

    def on(self, miner: int, found: Any) -> int | None:
        """The miner to act on: ``miner`` if ``found(miner)`` has something, else the other one."""
        for m in (miner, 1 - miner):
            if found(m):
                return m
        return None

    # ---- stake ------------------------------------------------------------------------------

    @rule(now=NOW, miner=MINER, who=st.sampled_from(STAKERS), op=st.sampled_from(["stake", "unstake", "release"]),
          amount=st.sampled_from([10 * NTK, 25 * NTK, NTK]), half=st.booleans())
    def stake_op(self, now: bool, miner: int, who: bytes, op: str, amount: int, half: bool) -> None:
        if op == "stake":
            self.queue(miner, who, Stake(amount), now)
        elif op == "unstake":
            account = self.miners[miner].account(account_of(who))
            free = account.free_stake if account else 0
            self.queue(miner, who, Unstake(max(1, free // 2) if half else NTK), now)
        else:
            self.queue(miner, who, Release(), now)

    # ---- jobs -------------------------------------------------------------------------------

    @rule(now=NOW, miner=MINER, shards=st.integers(1, 3), bid_blocks=st.integers(2, 5), extra=st.integers(1, 10),
          challenge=st.integers(3, 5), price=st.sampled_from([MAX_PRICE, 3 * 10**5]), train=st.booleans())
    def post(self, now: bool, miner: int, shards: int, bid_blocks: int, extra: int, challenge: int, price: int,
             train: bool) -> None:
        if len(self.open_jobs(miner)) >= 3:
            return
        service, spec, shards = (Service.TRAIN, TRAIN_SPEC, 1) if train else (Service.GENERATE, SPEC, shards)
        self.queue(miner, ALICE, JobPost(service, spec, shards, price, bid_blocks, bid_blocks + extra, challenge), now)

    @precondition(lambda self: self.on(0, lambda m: self.shards_in(m, ShardStatus.OPEN)) is not None)
    @rule(now=NOW, miner=MINER, pick=PICK, to_bob=st.lists(st.booleans(), min_size=3, max_size=3), cheap=st.booleans())
    def award(self, now: bool, miner: int, pick: int, to_bob: list[bool], cheap: bool) -> None:
        m = self.on(miner, lambda m: self.shards_in(m, ShardStatus.OPEN))
        assert m is not None
        open_shards = self.shards_in(m, ShardStatus.OPEN)
        job_id, job, _ = open_shards[pick % len(open_shards)]
        chain = self.miners[m]
        shares: dict[bytes, list[int]] = {}
        for k, shard in enumerate(job.shards):
            if shard.status is ShardStatus.OPEN:
                shares.setdefault(BOB if to_bob[k] else CAROL, []).append(k)
        price = job.max_price // 2 if cheap else job.max_price
        entries = tuple(
            AwardEntry(Bid(chain.chain_id, job_id, public_key_of(seed), price, 3, chain.height + 4).signed(seed),
                       tuple(shards))
            for seed, shards in shares.items()
        )
        self.queue(m, ALICE, JobAward(job_id, entries), now)

    @precondition(lambda self: self.on(0, lambda m: self.shards_in(m, ShardStatus.ASSIGNED)) is not None)
    @rule(now=NOW, miner=MINER, pick=PICK, honest=st.booleans())
    def commit(self, now: bool, miner: int, pick: int, honest: bool) -> None:
        m = self.on(miner, lambda m: self.shards_in(m, ShardStatus.ASSIGNED))
        assert m is not None
        assigned = self.shards_in(m, ShardStatus.ASSIGNED)
        job_id, job, k = assigned[pick % len(assigned)]
        if job.service == Service.TRAIN:
            commit = ResultCommit(job_id, k, TRAINED[honest], 1)
        else:
            manifest = ARTIFACTS[len(job.shards), k, honest]
            commit = ResultCommit(job_id, k, manifest.root, len(manifest.items))
        self.queue(m, SEEDS[job.shards[k].worker], commit, now)

    @precondition(lambda self: self.on(0, lambda m: self.shards_in(m, ShardStatus.COMMITTED)) is not None)
    @rule(now=NOW, miner=MINER, pick=PICK, fraud=st.booleans(), position=PICK, challenger=st.sampled_from([DAVE, ALICE]))
    def challenge(self, now: bool, miner: int, pick: int, fraud: bool, position: int, challenger: bytes) -> None:
        m = self.on(miner, lambda m: self.shards_in(m, ShardStatus.COMMITTED))
        assert m is not None
        committed = self.shards_in(m, ShardStatus.COMMITTED)
        job_id, job, k = committed[pick % len(committed)]
        if job.service == Service.TRAIN:  # a dispute for the committee (a fraud proof is refused)
            self.queue(m, challenger, Challenge(job_id, k, position, None), now)
            return
        manifest = BY_ROOT[job.shards[k].root]
        start = terms_of(job).shard_range(k, len(job.shards))[0]
        p = position % len(manifest.items)
        # a fraud proof of an honest item is refused (challenge-honest-item) and skipped
        self.queue(m, challenger, Challenge(job_id, k, start + p, claim_of(manifest, p) if fraud else None), now)

    @precondition(lambda self: self.on(0, lambda m: self.shards_in(m, ShardStatus.QUERIED)) is not None)
    @rule(now=NOW, miner=MINER, pick=PICK)
    def respond(self, now: bool, miner: int, pick: int) -> None:
        m = self.on(miner, lambda m: self.shards_in(m, ShardStatus.QUERIED))
        assert m is not None
        queried = self.shards_in(m, ShardStatus.QUERIED)
        job_id, job, k = queried[pick % len(queried)]
        shard = job.shards[k]
        manifest = BY_ROOT[shard.root]
        start = terms_of(job).shard_range(k, len(job.shards))[0]
        # the leaf under its root: honest, or the liar's own leaf, which proves the fraud
        self.queue(m, SEEDS[shard.worker], Respond(job_id, k, claim_of(manifest, shard.query_index - start)), now)

    @precondition(lambda self: self.on(0, lambda m: self.shards_in(m, ShardStatus.DISPUTED)) is not None)
    @rule(now=NOW, miner=MINER, pick=PICK, voter=st.sampled_from(STAKERS), fraud=st.booleans())
    def vote(self, now: bool, miner: int, pick: int, voter: bytes, fraud: bool) -> None:
        m = self.on(miner, lambda m: self.shards_in(m, ShardStatus.DISPUTED))
        assert m is not None
        disputed = self.shards_in(m, ShardStatus.DISPUTED)
        job_id, _, k = disputed[pick % len(disputed)]
        # a party to the dispute, a second vote, an undrawn staker or one too early are refused and skipped
        self.queue(m, voter, Vote(job_id, k, fraud), now)

    @precondition(lambda self: self.on(0, self.open_jobs) is not None)
    @rule(now=NOW, miner=MINER, pick=PICK, accept=st.booleans(), who=st.sampled_from([ALICE, DAVE, BOB]))
    def close(self, now: bool, miner: int, pick: int, accept: bool, who: bytes) -> None:
        m = self.on(miner, self.open_jobs)
        assert m is not None
        jobs = self.open_jobs(m)
        job_id = jobs[pick % len(jobs)]
        self.queue(m, ALICE if accept else who, Accept(job_id) if accept else Settle(job_id), now)

    # ---- blocks -----------------------------------------------------------------------------

    @rule(miner=MINER, count=st.integers(1, 3))
    def mine(self, miner: int, count: int) -> None:
        chain = self.miners[miner]
        for _ in range(count):
            block = make_block(chain, self.candidates(miner), miner=MINERS[miner], strict=False)
            self.pending[miner] = []
            assert import_block(chain, block).tip_changed
            import_block(self.node, block)

    @rule(source=MINER)
    def sync(self, source: int) -> None:
        target = self.miners[1 - source]
        for block in main_chain(self.miners[source]):
            if not target.has_block(block.hash):
                import_block(target, block)

    # ---- invariants -------------------------------------------------------------------------

    @invariant()
    def supply_balances_and_roots_agree(self) -> None:
        assert_supply(self.node)

    @invariant()
    def escrow_is_what_the_shards_still_owe(self) -> None:
        for _, job in self.node.jobs():
            assert job.escrow >= 0
            if job.status is JobStatus.CLOSED:
                assert job.escrow == 0 and all(s.status.final for s in job.shards)
                continue
            terms, n = terms_of(job), len(job.shards)
            owed = 0
            for k, shard in enumerate(job.shards):
                if shard.status is ShardStatus.REFUNDED:
                    continue
                owed += terms.payment(k, n, job.max_price) + shard.bond
                if shard.status is ShardStatus.PAID:
                    owed -= shard.payment
            assert job.escrow == owed

    @invariant()
    def locked_stake_is_what_live_shards_lock(self) -> None:
        locked: dict[bytes, int] = {}
        for _, job in self.node.jobs():
            for shard in job.shards:
                if shard.status in LIVE:
                    locked[shard.worker] = locked.get(shard.worker, 0) + shard.stake
        for account_id, account in self.node.accounts():
            assert 0 <= account.locked <= account.bonded
            assert account.locked == locked.get(account_id, 0)

    @invariant()
    def no_shard_is_paid_twice(self) -> None:
        for job_id, job in self.node.jobs():
            pays: dict[int, int] = {}
            for _, event in self.node.events(job_id=job_id, limit=10**6):
                if event.kind == "pay" and event.note == "":
                    pays[event.shard] = pays.get(event.shard, 0) + 1
            assert all(count == 1 for count in pays.values()), pays
            assert set(pays) == {k for k, s in enumerate(job.shards) if s.status is ShardStatus.PAID}

    @invariant()
    def node_agrees_with_a_miner_on_the_same_tip(self) -> None:
        node = self.node
        for miner in self.miners:
            if miner.tip_hash != node.tip_hash:
                continue
            assert dict(miner.accounts()) == dict(node.accounts())
            jobs = dict(node.jobs())
            assert dict(miner.jobs()) == jobs
            assert miner.totals() == node.totals()
            for job_id in jobs:
                assert miner.events(job_id=job_id, limit=10**6) == node.events(job_id=job_id, limit=10**6)
                assert miner.job_spec(job_id) == node.job_spec(job_id)
            for account_id in SEEDS:
                assert miner.jobs_of(account_id) == node.jobs_of(account_id)


MarketMachine.TestCase.settings = settings(max_examples=60, stateful_step_count=100, deadline=None)
test_market_machine = MarketMachine.TestCase
