"""Bids off chain: the gossiped `BidNotice`, the checks every node runs before relaying one, and
the `BidBook` a node keeps of the bids it has seen, by job.

A bid (`chain.market_types.Bid`) is a worker's signed offer; its signed message names the chain
and the job, so it cannot be replayed to another network or job. It travels on the "bids" gossip
topic inside a `BidNotice`, which adds where the worker's node can be reached (its libp2p peer
id and listen addresses), so the client that awards it can fetch the results from that node.
Those hints are not covered by the bid's signature: they are bound to the gossip message's
author instead (libp2p signs every message with its author's peer key, StrictSign), and
`check_notice` requires ``peer_id`` to be that author, so nobody can re-publish a worker's bid
pointing at their own node.

The checks (`check_notice`) run synchronously inside the gossip validator, staged cheapest first,
each failure a kebab-case reason (p2p/README.md, "Bids"):

1. decode (in `NodeBackend.check_bid`): not a canonical notice -> reject, malformed
2. ``bid-wrong-chain``: signed for another network -> reject
3. ``bid-wrong-peer``: the notice names a peer other than its gossip author -> reject
4. ``bid-expired``: an award in the next block could no longer carry it -> ignore
5. ``bid-unknown-job``: no such job on our chain (its post may still be in flight) -> ignore
6. ``bid-job-closed``: closed, or no shard left that an award in the next block could take -> ignore
7. ``bid-above-max-price``: the job's max price is fixed at its post: any award would refuse it -> reject
8. ``bid-unstaked``: the worker's bonded stake is below the genesis ``min_stake`` -> reject (the
   peer is penalised: an honest relay runs the same check and never forwards it); while the
   worker has transactions in our mempool (its Stake may be in the block we are importing)
   it is ``bid-stake-pending`` -> ignore
9. ``bid-no-free-stake``: all its stake is locked by awards; that changes as shards settle -> ignore
10. ``bad-bid-signature`` -> reject

then, in the backend: ``bid-known`` (a bid id already in the book) -> ignore, and
``bid-worker-rate``: over the per-worker-account token bucket -> ignore. The worker rate is an
ignore, not a rejection: nodes see a worker's bids at different times, so an honest relay may be
under the limit where we are over it. Flooding is penalised by the per-peer gossip limit
(`p2p.config`, "bids"); the per-worker limit stops a staked worker from filling every node's book
through many peers. The rate is taken last, after the signature, so that forged bids in a staked
worker's name cannot spend its allowance.

Unstaked-ness is a state question, so two honest nodes one block apart can disagree about it.
The mempool rule above covers the usual case (the Stake transaction was gossiped before its
block); a worker agent should still bid only once its stake is confirmed.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from chain import encoding as enc
from chain.crypto import verify
from chain.errors import ChainError, DecodeError, RejectKind
from chain.jobs import Job, JobStatus, ShardStatus
from chain.market_types import Bid
from chain.params import MarketParams
from chain.state import Account
from p2p.backend import Verdict
from p2p.scoring import Rate, TokenBucket

MAX_NOTICE_BYTES = 4096  # a bid is at most 256 bytes; the rest is addresses
MAX_PEER_ID_CHARS = 128  # base58 of a multihash of an Ed25519 key is 52
MAX_ADDRS = 8
MAX_ADDR_CHARS = 256

DEFAULT_MAX_JOBS = 1024  # jobs with bids in the book; the oldest job's bids fall out first
DEFAULT_MAX_BIDS_PER_JOB = 256  # one per worker; past it the dearest bid falls out
DEFAULT_MAX_WORKERS = 8192  # rate buckets kept; idle (refilled) ones are dropped first
# A worker bids once per job and re-bids when its floor moves: a few per second is plenty.
DEFAULT_WORKER_RATE = Rate(per_second=2.0, burst=64.0)


class BidRejected(ChainError):
    """A local bid (RPC, worker agent) that fails the checks a relay would run on it."""

    reason = "bad-bid"


def _text(value: Any, field: str, max_chars: int) -> str:
    """A non-empty printable ASCII string of at most ``max_chars`` (ids and multiaddrs are)."""
    if type(value) is not str:
        raise DecodeError("bad-encoding", f"{field}: expected str, got {type(value).__name__}")
    if not 0 < len(value) <= max_chars:
        raise DecodeError("bad-encoding", f"{field}: wrong length", expected=f"[1, {max_chars}]", got=len(value))
    if not (value.isascii() and value.isprintable()):
        raise DecodeError("bad-encoding", f"{field}: not printable ASCII")
    return value


@dataclass(frozen=True, slots=True)
class BidNotice:
    """The bids topic's message: a signed bid and where its worker's node can be reached."""

    bid: Bid
    peer_id: str  # the worker node's libp2p peer id (base58): the gossip author, checked
    addrs: tuple[str, ...]  # its listen multiaddrs, a hint for dialing it (may be empty)

    def to_list(self) -> list[Any]:
        return [self.bid.to_list(), self.peer_id, list(self.addrs)]

    def encode(self) -> bytes:
        return enc.pack(self.to_list())

    @property
    def bid_id(self) -> bytes:
        return self.bid.bid_id

    @classmethod
    def from_list(cls, value: Any) -> BidNotice:
        bid, peer_id, addrs = enc.fields(value, "bid_notice", 3)
        items = enc.as_list(addrs, "bid_notice.addrs", max_len=MAX_ADDRS)
        return cls(
            Bid.from_list(bid),
            _text(peer_id, "bid_notice.peer_id", MAX_PEER_ID_CHARS),
            tuple(_text(a, "bid_notice.addrs[]", MAX_ADDR_CHARS) for a in items),
        )

    @classmethod
    def decode(cls, data: bytes) -> BidNotice:
        return cls.from_list(enc.unpack(data, what="bid_notice", max_size=MAX_NOTICE_BYTES))


# ---- the checks --------------------------------------------------------------------------------


class BidChain(Protocol):
    """What the checks read of the chain (`chain.chainstate.ChainState` is one)."""

    @property
    def chain_id(self) -> bytes: ...

    @property
    def height(self) -> int: ...

    def job(self, job_id: bytes) -> Job | None: ...

    def account(self, account_id: bytes) -> Account | None: ...


def biddable(job: Job, height: int) -> bool:
    """Whether an award in the block after ``height`` could take a shard of ``job``: a shard never
    awarded within the bid window, or one reopened after a slash before the job's deadline (the
    rules of `chain.market_rules.apply_award`)."""
    if job.status is not JobStatus.OPEN:
        return False
    award_height = height + 1
    for shard in job.shards:
        if shard.status is not ShardStatus.OPEN:
            continue
        if award_height <= job.award_end(shard):
            return True
    return False


def check_notice(
    notice: BidNotice, author: str, chain: BidChain, params: MarketParams, has_pending: Callable[[bytes], bool]
) -> Verdict:
    """Stages 2-10 of the module docstring over a decoded notice published by ``author``;
    ``has_pending(account_id)``: whether the account has transactions in our mempool."""
    bid = notice.bid
    if bid.chain_id != chain.chain_id:
        return Verdict.reject("bid-wrong-chain")
    if notice.peer_id != author:
        return Verdict.reject("bid-wrong-peer")
    height = chain.height
    if bid.expiry < height + 1:
        return Verdict.ignore("bid-expired", RejectKind.STALE)
    job = chain.job(bid.job_id)
    if job is None:
        return Verdict.ignore("bid-unknown-job", RejectKind.MISSING)
    if not biddable(job, height):
        return Verdict.ignore("bid-job-closed", RejectKind.STALE)
    if bid.unit_price > job.max_price:
        return Verdict.reject("bid-above-max-price")
    worker = bid.worker_account
    account = chain.account(worker)
    bonded = account.bonded if account is not None else 0
    if bonded < params.min_stake:
        if has_pending(worker):
            return Verdict.ignore("bid-stake-pending", RejectKind.MISSING)
        return Verdict.reject("bid-unstaked")
    if account is None or account.free_stake <= 0:
        return Verdict.ignore("bid-no-free-stake", RejectKind.STALE)
    if not verify(bid.worker, bid.signing_message(), bid.signature):
        return Verdict.reject("bad-bid-signature")
    return Verdict.accept()


# ---- the book ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BookLimits:
    max_jobs: int = DEFAULT_MAX_JOBS
    max_bids_per_job: int = DEFAULT_MAX_BIDS_PER_JOB
    max_workers: int = DEFAULT_MAX_WORKERS
    worker_rate: Rate = DEFAULT_WORKER_RATE


class BidBook:
    """The bids a node has seen and checked, by job: the newest per (job, worker account), in
    memory only (bids are short-lived and re-gossiped by workers that still mean them).

    Memory is bounded: at most ``max_jobs`` jobs (a new one pushes out the job first seen
    earliest) and ``max_bids_per_job`` bids per job (a new bid pushes out the dearest, if it is
    cheaper: a client buys the cheapest pool). `prune` drops what no award can carry any more;
    the node calls it when its tip moves. Times (``now``) are passed in: monotonic seconds."""

    def __init__(self, limits: BookLimits | None = None) -> None:
        self.limits = limits or BookLimits()
        self._jobs: OrderedDict[bytes, dict[bytes, BidNotice]] = OrderedDict()  # job -> worker -> notice
        self._ids: dict[bytes, tuple[bytes, bytes]] = {}  # bid id -> (job, worker)
        self._buckets: dict[bytes, TokenBucket] = {}  # worker account -> its bid allowance

    def __len__(self) -> int:
        return len(self._ids)

    def knows(self, bid_id: bytes) -> bool:
        return bid_id in self._ids

    def jobs(self) -> list[bytes]:
        return list(self._jobs)

    def for_job(self, job_id: bytes) -> list[BidNotice]:
        """The job's bids, cheapest first (ties by bid id, so every node lists them alike)."""
        notices = self._jobs.get(job_id, {}).values()
        return sorted(notices, key=lambda n: (n.bid.unit_price, n.bid_id))

    def allow_worker(self, worker: bytes, now: float) -> bool:
        """Spend one of the worker account's tokens; False when it is over its rate."""
        bucket = self._buckets.get(worker)
        if bucket is None:
            if len(self._buckets) >= self.limits.max_workers:
                self.forget_idle(now)
                if len(self._buckets) >= self.limits.max_workers:
                    return False
            rate = self.limits.worker_rate
            bucket = self._buckets[worker] = TokenBucket(rate.per_second, rate.burst)
        return bucket.take(now)

    def forget_idle(self, now: float) -> None:
        """Drop the buckets that have refilled: forgetting them changes nothing."""
        for worker, bucket in list(self._buckets.items()):
            if bucket.tokens + (now - bucket.at) * bucket.rate >= bucket.burst:
                del self._buckets[worker]

    def add(self, notice: BidNotice) -> bool:
        """Keep a checked notice; it replaces the worker's earlier bid for the job. False when it
        is known already, or the job's bids are full and it is no cheaper than the dearest."""
        bid = notice.bid
        if bid.bid_id in self._ids:
            return False
        job_id, worker = bid.job_id, bid.worker_account
        bids = self._jobs.get(job_id)
        if bids is None:
            while len(self._jobs) >= self.limits.max_jobs:
                self._drop_job(next(iter(self._jobs)))
            bids = self._jobs[job_id] = {}
        if worker not in bids and len(bids) >= self.limits.max_bids_per_job:
            dearest = max(bids.values(), key=lambda n: (n.bid.unit_price, n.bid_id))
            if (bid.unit_price, bid.bid_id) >= (dearest.bid.unit_price, dearest.bid_id):
                return False
            self._drop(job_id, dearest.bid.worker_account)
        if worker in bids:
            self._drop(job_id, worker)
        bids[worker] = notice
        self._ids[bid.bid_id] = (job_id, worker)
        return True

    def prune(self, height: int, still_biddable: Callable[[bytes], bool]) -> int:
        """Drop the bids an award in the block after ``height`` could not carry (expired), and
        every bid of a job that ``still_biddable(job_id)`` says is closed or taken; returns how
        many bids were dropped."""
        before = len(self._ids)
        for job_id in list(self._jobs):
            if not still_biddable(job_id):
                self._drop_job(job_id)
                continue
            for worker, notice in list(self._jobs[job_id].items()):
                if notice.bid.expiry < height + 1:
                    self._drop(job_id, worker)
        return before - len(self._ids)

    def _drop(self, job_id: bytes, worker: bytes) -> None:
        bids = self._jobs[job_id]
        notice = bids.pop(worker)
        del self._ids[notice.bid_id]
        if not bids:
            del self._jobs[job_id]

    def _drop_job(self, job_id: bytes) -> None:
        for notice in self._jobs.pop(job_id).values():
            del self._ids[notice.bid_id]
