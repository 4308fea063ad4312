"""Bids off chain (neurod/market/bids.py): the gossiped notice's strict encoding, the checks a
node runs before relaying a bid (one test per reason), the book's replacement, expiry, bounds and
per-worker rate, and the backend and RPC around them, over real devnet chains."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import pytest
import trio
from hypothesis import given
from hypothesis import strategies as st

from chain import encoding as enc
from chain.crypto import public_key_of
from chain.errors import DecodeError, RejectKind
from chain.jobs import Job, Shard, ShardStatus, evolve
from chain.market_types import Bid
from chain.state import Account
from neurod.backend import NodeBackend
from neurod.market.bids import (
    MAX_ADDRS,
    MAX_NOTICE_BYTES,
    BidBook,
    BidNotice,
    BookLimits,
    biddable,
    check_notice,
)
from neurod.mempool import Mempool
from neurod.metrics import NodeMetrics
from neurod.node import Node
from neurod.rpc import RpcApp
from neurod.rpc_methods import RpcMethods
from p2p.backend import Outcome, Verdict
from p2p.scoring import Rate
from tests.support.market import (
    BOB,
    CAROL,
    DAVE,
    MAX_PRICE,
    PRICE,
    award,
    bid,
    job_of,
    mine_until,
    post,
    staked,
)

PEER = "12D3KooWQYhTNQdmr3ArTeUHRYzFg94BKyTkoWBDWez9kSCVe2Xo"
ADDRS = ("/ip4/127.0.0.1/tcp/4001/p2p/" + PEER,)


def notice(b: Bid, peer: str = PEER, addrs: tuple[str, ...] = ADDRS) -> BidNotice:
    return BidNotice(b, peer, addrs)


def never_pending(_: bytes) -> bool:
    return False


@pytest.fixture(scope="module")
def market() -> tuple[Any, bytes]:
    """Bob and carol staked; alice's two-shard job posted, its bid window open."""
    chain = staked()
    return chain, post(chain)


# ---- the notice's encoding ---------------------------------------------------------------------


def test_a_notice_round_trips(market: tuple[Any, bytes]) -> None:
    chain, job_id = market
    original = notice(bid(chain, BOB, job_id, PRICE))
    data = original.encode()
    decoded = BidNotice.decode(data)
    assert decoded == original and decoded.encode() == data
    assert decoded.bid_id == original.bid.bid_id and decoded.bid.signature == original.bid.signature


@given(peer=st.text(st.characters(min_codepoint=33, max_codepoint=126), min_size=1, max_size=128),
       addrs=st.lists(st.text(st.characters(min_codepoint=32, max_codepoint=126), min_size=1, max_size=256),
                      max_size=MAX_ADDRS),
       price=st.integers(1, 2**63 - 1), shards=st.integers(1, 4096), expiry=st.integers(0, 2**63 - 1))
def test_any_notice_within_bounds_round_trips(peer: str, addrs: list[str], price: int, shards: int,
                                              expiry: int) -> None:
    b = Bid(b"\1" * 32, b"\2" * 32, public_key_of(BOB), price, shards, expiry).signed(BOB)
    original = BidNotice(b, peer, tuple(addrs))
    assert BidNotice.decode(original.encode()) == original


def _bad_notices(good: BidNotice) -> dict[str, bytes]:
    fields = good.to_list()
    return {
        "not a list": enc.pack("bid"),
        "two fields": enc.pack(fields[:2]),
        "four fields": enc.pack([*fields, 1]),
        "bid not a list": enc.pack([b"x", fields[1], fields[2]]),
        "short signature": enc.pack([[*fields[0][:6], b"\0" * 63], fields[1], fields[2]]),
        "zero price": enc.pack([[*fields[0][:3], 0, *fields[0][4:]], fields[1], fields[2]]),
        "peer id bytes": enc.pack([fields[0], PEER.encode(), fields[2]]),
        "empty peer id": enc.pack([fields[0], "", fields[2]]),
        "long peer id": enc.pack([fields[0], "x" * 129, fields[2]]),
        "non-ascii peer id": enc.pack([fields[0], "pé", fields[2]]),
        "control char": enc.pack([fields[0], "a\nb", fields[2]]),
        "addrs not a list": enc.pack([fields[0], PEER, "x"]),
        "too many addrs": enc.pack([fields[0], PEER, ["/ip4/1.2.3.4/tcp/1"] * (MAX_ADDRS + 1)]),
        "empty addr": enc.pack([fields[0], PEER, [""]]),
        "long addr": enc.pack([fields[0], PEER, ["a" * 257]]),
        "addr bytes": enc.pack([fields[0], PEER, [b"/ip4"]]),
        "trailing bytes": good.encode() + b"\0",
        "not msgpack": b"\xc1\xc1",
        "oversized": enc.pack([fields[0], PEER, ["a" * 256] * 8]) + b"\0" * MAX_NOTICE_BYTES,
    }


def test_anything_off_the_encoding_is_a_decode_error(market: tuple[Any, bytes]) -> None:
    chain, job_id = market
    good = notice(bid(chain, BOB, job_id, PRICE))
    for name, data in _bad_notices(good).items():
        with pytest.raises(DecodeError):
            BidNotice.decode(data)
        assert name  # each case named for the failure report


def test_a_non_canonical_notice_is_refused(market: tuple[Any, bytes]) -> None:
    chain, job_id = market
    good = notice(bid(chain, BOB, job_id, PRICE))
    # the same value with the outer array header in its 16-bit form
    data = b"\xdc\x00\x03" + good.encode()[1:]
    with pytest.raises(DecodeError) as caught:
        BidNotice.decode(data)
    assert caught.value.reason == "non-canonical"


# ---- the checks --------------------------------------------------------------------------------


@dataclass
class ChainView:
    """A chain with some accounts overridden (states that take many blocks to reach)."""

    chain: Any
    accounts: dict[bytes, Account] = field(default_factory=dict)

    @property
    def chain_id(self) -> bytes:
        return bytes(self.chain.chain_id)

    @property
    def height(self) -> int:
        return int(self.chain.height)

    def job(self, job_id: bytes) -> Job | None:
        return self.chain.job(job_id)  # type: ignore[no-any-return]

    def account(self, account_id: bytes) -> Account | None:
        if account_id in self.accounts:
            return self.accounts[account_id]
        return self.chain.account(account_id)  # type: ignore[no-any-return]


def judge(chain: Any, n: BidNotice, author: str = PEER, pending: Any = never_pending) -> Verdict:
    return check_notice(n, author, chain, chain.chain.params.market if isinstance(chain, ChainView)
                        else chain.params.market, pending)


def test_a_staked_workers_bid_for_an_open_job_is_accepted(market: tuple[Any, bytes]) -> None:
    chain, job_id = market
    assert judge(chain, notice(bid(chain, BOB, job_id, PRICE))) == Verdict.accept()
    assert judge(chain, notice(bid(chain, CAROL, job_id, MAX_PRICE, expiry=chain.height + 1))).accepted


def _verdict(outcome: Outcome, reason: str, kind: RejectKind) -> Verdict:
    return Verdict(outcome, reason, kind)


def test_each_failed_check_has_its_reason_and_outcome(market: tuple[Any, bytes]) -> None:
    chain, job_id = market
    good = bid(chain, BOB, job_id, PRICE)
    other_chain = Bid(b"\x09" * 32, job_id, public_key_of(BOB), PRICE, 64, chain.height + 10).signed(BOB)
    forged = Bid(good.chain_id, job_id, good.worker, PRICE, 64, good.expiry, bytes(64))
    reject, ignore = Outcome.REJECT, Outcome.IGNORE
    cases = {
        "wrong chain": (notice(other_chain), PEER, _verdict(reject, "bid-wrong-chain", RejectKind.INVALID)),
        "wrong peer": (notice(good), "12D3KooWOther", _verdict(reject, "bid-wrong-peer", RejectKind.INVALID)),
        "expired": (notice(bid(chain, BOB, job_id, PRICE, expiry=chain.height)), PEER,
                    _verdict(ignore, "bid-expired", RejectKind.STALE)),
        "unknown job": (notice(bid(chain, BOB, b"\7" * 32, PRICE)), PEER,
                        _verdict(ignore, "bid-unknown-job", RejectKind.MISSING)),
        "too dear": (notice(bid(chain, BOB, job_id, MAX_PRICE + 1)), PEER,
                     _verdict(reject, "bid-above-max-price", RejectKind.INVALID)),
        "unstaked": (notice(bid(chain, DAVE, job_id, PRICE)), PEER,
                     _verdict(reject, "bid-unstaked", RejectKind.INVALID)),
        "never seen": (notice(bid(chain, b"\5" * 32, job_id, PRICE)), PEER,
                       _verdict(reject, "bid-unstaked", RejectKind.INVALID)),
        "bad signature": (notice(forged), PEER, _verdict(reject, "bad-bid-signature", RejectKind.INVALID)),
        "signed by another key": (notice(Bid(good.chain_id, job_id, good.worker, PRICE, 64, good.expiry,
                                             bid(chain, CAROL, job_id, PRICE).signature)), PEER,
                                  _verdict(reject, "bad-bid-signature", RejectKind.INVALID)),
    }
    got = {name: judge(chain, n, author) for name, (n, author, _) in cases.items()}
    assert got == {name: want for name, (_, _, want) in cases.items()}


def test_a_bid_replayed_to_another_job_fails_its_signature() -> None:
    chain = staked()
    job_id, other = post(chain), post(chain)
    good = bid(chain, BOB, job_id, PRICE)
    replayed = Bid(good.chain_id, other, good.worker, good.unit_price, good.max_shards, good.expiry, good.signature)
    assert judge(chain, notice(replayed)) == Verdict.reject("bad-bid-signature")


def test_an_unstaked_worker_with_pending_txs_is_only_ignored(market: tuple[Any, bytes]) -> None:
    chain, job_id = market
    verdict = judge(chain, notice(bid(chain, DAVE, job_id, PRICE)), pending=lambda account: True)
    assert verdict == Verdict.ignore("bid-stake-pending", RejectKind.MISSING)


def test_below_min_stake_is_unstaked_and_all_locked_is_ignored(market: tuple[Any, bytes]) -> None:
    chain, job_id = market
    min_stake = chain.params.market.min_stake
    bob = bid(chain, BOB, job_id, PRICE)
    below = ChainView(chain, {bob.worker_account: Account(balance=10**12, bonded=min_stake - 1)})
    assert judge(below, notice(bob)) == Verdict.reject("bid-unstaked")
    locked = ChainView(chain, {bob.worker_account: Account(bonded=min_stake, locked=min_stake)})
    assert judge(locked, notice(bob)) == Verdict.ignore("bid-no-free-stake", RejectKind.STALE)
    exact = ChainView(chain, {bob.worker_account: Account(bonded=min_stake, locked=min_stake - 1)})
    assert judge(exact, notice(bob)).accepted


def test_a_job_past_its_window_or_fully_awarded_takes_no_bids() -> None:
    chain = staked()
    job_id = post(chain)  # bid window: 3 blocks from its post
    late = bid(chain, BOB, job_id, PRICE, expiry=chain.height + 50)
    mine_until(chain, job_of(chain, job_id).bid_end - 1)
    assert judge(chain, notice(late)).accepted  # an award in the next block is the window's last
    mine_until(chain, job_of(chain, job_id).bid_end)
    assert judge(chain, notice(late)) == Verdict.ignore("bid-job-closed", RejectKind.STALE)

    taken = post(chain)
    award(chain, taken, {BOB: (0,), CAROL: (1,)})
    assert judge(chain, notice(bid(chain, BOB, taken, PRICE))) == Verdict.ignore("bid-job-closed", RejectKind.STALE)


def test_biddable_follows_the_award_rules(market: tuple[Any, bytes]) -> None:
    chain, job_id = market
    job = job_of(chain, job_id)
    assert biddable(job, job.bid_end - 1) and not biddable(job, job.bid_end)
    assigned = Shard(ShardStatus.ASSIGNED, deadline=job.deadline)
    reopened = Shard(ShardStatus.OPEN, deadline=job.deadline)  # awarded once, slashed, open again
    job = evolve(job, shards=(assigned, reopened))
    end = job.award_end(reopened)  # a job's length of work after its last deadline (Job.award_end)
    assert end > job.deadline
    assert biddable(job, end - 1) and not biddable(job, end)
    assert not biddable(evolve(job, shards=(assigned, assigned)), job.bid_end - 1)


# ---- the book ----------------------------------------------------------------------------------


def test_the_newest_bid_per_job_and_worker_replaces_the_older(market: tuple[Any, bytes]) -> None:
    chain, job_id = market
    book = BidBook()
    first, second = bid(chain, BOB, job_id, PRICE), bid(chain, BOB, job_id, PRICE - 1)
    carol = bid(chain, CAROL, job_id, PRICE + 1)
    assert book.add(notice(first)) and book.add(notice(carol))
    assert not book.add(notice(first))  # known
    assert book.add(notice(second))
    assert [n.bid for n in book.for_job(job_id)] == [second, carol]  # cheapest first
    assert not book.knows(first.bid_id) and book.knows(second.bid_id) and len(book) == 2
    assert book.for_job(b"\0" * 32) == []


def test_expired_bids_and_closed_jobs_are_pruned(market: tuple[Any, bytes]) -> None:
    chain, job_id = market
    other = b"\3" * 32
    h = chain.height
    book = BidBook()
    soon, later = bid(chain, BOB, job_id, PRICE, expiry=h + 1), bid(chain, CAROL, job_id, PRICE, expiry=h + 5)
    gone = bid(chain, BOB, other, PRICE, expiry=h + 5)
    for b in (soon, later, gone):
        book.add(notice(b))
    assert book.prune(h, lambda j: True) == 0  # an award in block h + 1 can still carry `soon`
    assert book.prune(h + 1, lambda j: j != other) == 2
    assert [n.bid for n in book.for_job(job_id)] == [later] and book.jobs() == [job_id]
    assert book.prune(h + 5, lambda j: True) == 1 and len(book) == 0 and book.jobs() == []


def _bids(chain: Any, job_id: bytes, count: int, price: int = PRICE) -> list[Bid]:
    seeds = [bytes([k]) * 32 for k in range(1, count + 1)]
    return [bid(chain, seed, job_id, price + k) for k, seed in enumerate(seeds)]


def test_a_full_job_keeps_the_cheapest_bids(market: tuple[Any, bytes]) -> None:
    chain, job_id = market
    book = BidBook(BookLimits(max_bids_per_job=3))
    bids = _bids(chain, job_id, 3)  # prices PRICE, PRICE+1, PRICE+2
    for b in bids:
        assert book.add(notice(b))
    dear = bid(chain, BOB, job_id, PRICE + 5)
    assert not book.add(notice(dear)) and not book.knows(dear.bid_id)
    cheap = bid(chain, BOB, job_id, PRICE - 1)
    assert book.add(notice(cheap))
    assert [n.bid for n in book.for_job(job_id)] == [cheap, bids[0], bids[1]]
    assert not book.knows(bids[2].bid_id) and len(book) == 3
    # a worker already in the book replaces its own bid even when the job is full
    again = bid(chain, bytes([1]) * 32, job_id, PRICE + 9)
    assert book.add(notice(again)) and len(book) == 3


def test_the_book_holds_at_most_max_jobs(market: tuple[Any, bytes]) -> None:
    chain, _ = market
    book = BidBook(BookLimits(max_jobs=2))
    jobs = [bytes([k]) * 32 for k in (1, 2, 3)]
    for job_id in jobs:
        book.add(notice(bid(chain, BOB, job_id, PRICE)))
    assert book.jobs() == jobs[1:] and len(book) == 2  # the job seen first fell out


def test_each_worker_account_is_rate_limited() -> None:
    book = BidBook(BookLimits(worker_rate=Rate(per_second=1.0, burst=3.0), max_workers=2))
    bob, carol, dave = b"b" * 20, b"c" * 20, b"d" * 20
    assert [book.allow_worker(bob, 0.0) for _ in range(4)] == [True, True, True, False]
    assert not book.allow_worker(bob, 0.5) and book.allow_worker(bob, 1.0)
    assert book.allow_worker(carol, 1.0)  # its own allowance
    assert not book.allow_worker(dave, 1.0)  # two buckets in use, neither refilled
    assert book.allow_worker(dave, 10.0)  # refilled buckets are forgotten to make room


# ---- the backend and the RPC -------------------------------------------------------------------


class StubP2P:
    peer_id = PEER

    def __init__(self) -> None:
        self.published: list[bytes] = []

    def listen_addrs(self) -> list[str]:
        return list(ADDRS)

    async def publish_bid(self, data: bytes) -> None:
        self.published.append(data)


class StubNode:
    """What the bid code needs of a Node: chain, mempool, book, metrics, p2p."""

    submit_bid = Node.submit_bid
    notice_of = Node.notice_of

    def __init__(self, chain: Any, limits: BookLimits | None = None) -> None:
        self.chain = chain
        self.mempool = Mempool(chain, chain.chain_id)
        self.bids = BidBook(limits)
        self.metrics = NodeMetrics()
        self.p2p = StubP2P()
        self.backend = NodeBackend(self)  # type: ignore[arg-type]


def test_the_backend_decodes_judges_books_and_counts(market: tuple[Any, bytes]) -> None:
    chain, job_id = market
    node = StubNode(chain, BookLimits(worker_rate=Rate(per_second=0.001, burst=2.0)))
    backend = node.backend
    assert backend.check_bid(b"\xc1 junk", PEER) == Verdict.reject("bad-encoding", RejectKind.MALFORMED)
    first = notice(bid(chain, BOB, job_id, PRICE)).encode()
    assert backend.check_bid(first, PEER).accepted
    trio.run(backend.accept_bid, first, "someone")
    assert [n.encode() for n in node.bids.for_job(job_id)] == [first]
    assert backend.check_bid(first, PEER) == Verdict.ignore("bid-known", RejectKind.STALE)
    assert backend.check_bid(notice(bid(chain, BOB, job_id, PRICE - 1)).encode(), PEER).accepted
    over = backend.check_bid(notice(bid(chain, BOB, job_id, PRICE - 2)).encode(), PEER)
    assert over == Verdict.ignore("bid-worker-rate", RejectKind.LOCAL)
    assert backend.check_bid(notice(bid(chain, DAVE, job_id, PRICE)).encode(), PEER) == Verdict.reject("bid-unstaked")
    text = node.metrics.render().decode()
    assert "neuro_bids_accepted_total 2.0" in text
    for reason in ("bad-encoding", "bid-known", "bid-worker-rate", "bid-unstaked"):
        assert f'neuro_bids_rejected_total{{reason="{reason}"}} 1.0' in text


def _rpc(app: RpcApp, method: str, **params: Any) -> dict[str, Any]:
    body = {"jsonrpc": "2.0", "id": 1, "method": method, "params": params}
    return dict(json.loads(trio.run(app.handle, json.dumps(body).encode())))


def test_bid_submit_and_bid_list_over_rpc(market: tuple[Any, bytes]) -> None:
    chain, job_id = market
    node = StubNode(chain)
    app = RpcApp(RpcMethods(node).table(), "__cookie__:x", lambda: b"")  # type: ignore[arg-type]
    bare = bid(chain, BOB, job_id, PRICE)
    full = notice(bid(chain, CAROL, job_id, PRICE - 7), addrs=())
    assert _rpc(app, "bid_submit", bid=bare.encode().hex())["result"] == {"bid_id": bare.bid_id.hex()}
    assert _rpc(app, "bid_submit", bid=full.encode().hex())["result"] == {"bid_id": full.bid_id.hex()}
    assert node.p2p.published == [notice(bare).encode(), full.encode()]  # the bare bid got our id and addrs
    rows = _rpc(app, "bid_list", job=job_id.hex())["result"]
    assert [r["bid_id"] for r in rows] == [full.bid_id.hex(), bare.bid_id.hex()]
    row = rows[1]
    assert row["worker"].startswith("tntk1") and row["unit_price"] == PRICE and row["max_shards"] == 64
    assert row["expiry"] == bare.expiry and row["peer_id"] == PEER and row["addrs"] == list(ADDRS)
    assert Bid.decode(bytes.fromhex(row["bid"])) == bare

    refusals = {
        "bid-unstaked": bid(chain, DAVE, job_id, PRICE).encode().hex(),
        "bid-known": bare.encode().hex(),
        "bid-wrong-peer": notice(bid(chain, BOB, job_id, 3), peer="12D3KooWSomeoneElse").encode().hex(),
        "bad-encoding": "c1c1",
    }
    for reason, data in refusals.items():
        error = _rpc(app, "bid_submit", bid=data)["error"]
        assert (error["code"], error["data"]["reason"]) == (-32014, reason), error
    assert len(node.p2p.published) == 2
    assert _rpc(app, "bid_submit", bid="zz")["error"]["code"] == -32602
    assert _rpc(app, "bid_list", job="00")["error"]["code"] == -32602
    assert _rpc(app, "bid_list", job=(b"\0" * 32).hex())["result"] == []
