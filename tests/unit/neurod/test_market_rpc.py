"""The market's RPC reads (`job_get`, `job_list`, `stake_get`, `market_events`) and market txs in
tx objects, over a chain that mined a real market flow (tests/support/market.py)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import trio

from chain.crypto import public_key_of
from chain.devnet_keys import devnet_address
from chain.jobs import EVENT_KINDS, Event
from chain.market_types import (
    Accept,
    AwardEntry,
    Challenge,
    JobAward,
    JobPost,
    ResultCommit,
    Service,
    Settle,
    Stake,
    Unstake,
)
from neurod.account_history import EVENT_DIRECTIONS, event_direction
from neurod.mempool import Mempool
from neurod.rpc import RpcApp
from neurod.rpc_methods import RpcMethods
from tests.support.market import (
    ALICE,
    BOB,
    CAROL,
    DAVE,
    NTK,
    bid,
    claim_of,
    digits_job_spec,
    market_chain,
    mine,
    mine_empty,
    render_shard_artifact,
    tx,
)

COOKIE = "__cookie__:secret"
ADDR = {name: devnet_address(name) for name in ("alice", "bob", "carol", "dave")}


class StubNode:
    """What the read methods need of a Node: the chain and a mempool."""

    def __init__(self, chain: Any) -> None:
        self.chain = chain
        self.mempool = Mempool(chain, chain.chain_id)


@dataclass
class Flow:
    app: RpcApp
    fraud_job: str  # two shards: bob's paid, carol's slashed for fraud and reopened
    queried_job: str  # one shard: bob's commit queried by dave, unanswered yet
    closed_job: str  # one shard: bob's commit accepted early by alice
    post_txid: str
    spec: bytes


@pytest.fixture(scope="module")
def flow(tmp_path_factory: pytest.TempPathFactory) -> Flow:
    tmp: Path = tmp_path_factory.mktemp("market")
    chain = market_chain()
    mine(chain, tx(chain, BOB, Stake(1000 * NTK)), tx(chain, CAROL, Stake(1000 * NTK)),
         tx(chain, DAVE, Stake(50 * NTK)))
    mine(chain, tx(chain, DAVE, Unstake(20 * NTK)))
    spec, small = digits_job_spec(8), digits_job_spec(4, seed=9)
    posts = [tx(chain, ALICE, JobPost(Service.GENERATE, spec, 2, 10**6, 3, 20, 3)),
             tx(chain, ALICE, JobPost(Service.GENERATE, small, 1, 10**6, 3, 20, 3), nonce=1),
             tx(chain, ALICE, JobPost(Service.GENERATE, small, 1, 10**6, 3, 20, 3), nonce=2)]
    mine(chain, *posts)
    fraud, queried, closed = (p.txid for p in posts)
    b1, b2 = bid(chain, BOB, fraud, 5 * 10**5, 1), bid(chain, CAROL, fraud, 6 * 10**5, 1)
    bq, bc = bid(chain, BOB, queried, 5 * 10**5, 1), bid(chain, BOB, closed, 5 * 10**5, 1)
    mine(chain, tx(chain, ALICE, JobAward(fraud, (AwardEntry(b1, (0,)), AwardEntry(b2, (1,))))),
         tx(chain, ALICE, JobAward(queried, (AwardEntry(bq, (0,)),)), nonce=4),
         tx(chain, ALICE, JobAward(closed, (AwardEntry(bc, (0,)),)), nonce=5))
    m0 = render_shard_artifact(spec, 0, 4, tmp / "s0")
    bad = render_shard_artifact(digits_job_spec(8, seed=8), 4, 8, tmp / "bad")
    ms = render_shard_artifact(small, 0, 4, tmp / "small")
    mine(chain, tx(chain, BOB, ResultCommit(fraud, 0, m0.root, 4)), tx(chain, CAROL, ResultCommit(fraud, 1, bad.root, 4)),
         tx(chain, BOB, ResultCommit(queried, 0, ms.root, 4), nonce=2),
         tx(chain, BOB, ResultCommit(closed, 0, ms.root, 4), nonce=3))
    mine(chain, tx(chain, DAVE, Challenge(fraud, 1, 5, claim_of(bad, 1))),
         tx(chain, DAVE, Challenge(queried, 0, 2, None), nonce=3),
         tx(chain, ALICE, Accept(closed)))
    mine_empty(chain, 3)
    mine(chain, tx(chain, CAROL, Settle(fraud)))
    app = RpcApp(RpcMethods(StubNode(chain)).table(), COOKIE, lambda: b"")  # type: ignore[arg-type]
    return Flow(app, fraud.hex(), queried.hex(), closed.hex(), posts[0].txid.hex(), spec)


def call(flow: Flow, method: str, **params: Any) -> Any:
    body = {"jsonrpc": "2.0", "id": 1, "method": method, "params": params}
    reply = json.loads(trio.run(flow.app.handle, json.dumps(body).encode()))
    assert "error" not in reply, reply
    return reply["result"]


def error(flow: Flow, method: str, **params: Any) -> dict[str, Any]:
    body = {"jsonrpc": "2.0", "id": 1, "method": method, "params": params}
    reply = json.loads(trio.run(flow.app.handle, json.dumps(body).encode()))
    assert "error" in reply, reply
    return dict(reply["error"])


def test_job_get_shows_terms_spec_and_every_shard(flow: Flow) -> None:
    job = call(flow, "job_get", job=flow.fraud_job)
    assert job["job"] == flow.fraud_job and job["client"] == ADDR["alice"]
    assert job["service"] == "generate" and job["quote_unit"] == "megapixel" and job["quote_units"] == 10**6
    assert job["spec"] == json.loads(flow.spec) and len(job["spec_hash"]) == 64
    assert job["items"] == 8 and job["units"] > 0 and job["max_price"] == 10**6
    assert job["status"] == "open" and job["shard_count"] == 2
    assert job["deadline"] - job["posted"] == 20 and job["bid_end"] - job["posted"] == 3
    assert job["challenge_blocks"] == 3 and job["bidding"] is False
    paid, reopened = job["shards"]
    assert paid["status"] == "paid" and paid["final"] and paid["worker"] == ADDR["bob"]
    assert (paid["start"], paid["stop"], paid["items"]) == (0, 4, 4) and len(paid["root"]) == 64
    assert paid["payment"] > 0 and paid["payment_ntk"] and paid["committed_at"] and paid["challenge_end"]
    assert paid["query"] is None and paid["price"] == 5 * 10**5
    assert reopened["status"] == "open" and reopened["worker"] is None and reopened["root"] is None
    assert (reopened["start"], reopened["stop"]) == (4, 8)
    # the escrow locked every shard at the max price; only bob's payment has left it
    assert job["escrow"] == job["units"] * job["max_price"] // job["quote_units"] - paid["payment"]
    assert job["shard_status"]["paid"] == 1 and job["shard_status"]["open"] == 1


def test_a_queried_shard_shows_its_query(flow: Flow) -> None:
    shard = call(flow, "job_get", job=flow.queried_job)["shards"][0]
    assert shard["status"] == "queried"
    query = shard["query"]
    assert query["index"] == 2 and query["challenger"] == ADDR["dave"] and query["bond"] == NTK
    assert query["bond_ntk"] == "1" and query["deadline"] > shard["committed_at"]


def test_job_list_filters_by_client_worker_and_status(flow: Flow) -> None:
    every = call(flow, "job_list")
    assert {j["job"] for j in every} == {flow.fraud_job, flow.queried_job, flow.closed_job}
    assert all("shards" not in j and j["shard_count"] >= 1 for j in every)
    assert {j["job"] for j in call(flow, "job_list", client=ADDR["alice"])} == {j["job"] for j in every}
    assert call(flow, "job_list", client=ADDR["bob"]) == []
    assert [j["job"] for j in call(flow, "job_list", worker=ADDR["carol"])] == [flow.fraud_job]
    assert len(call(flow, "job_list", worker=ADDR["bob"], client=ADDR["alice"])) == 3
    assert [j["job"] for j in call(flow, "job_list", status="closed")] == [flow.closed_job]
    assert {j["job"] for j in call(flow, "job_list", status="open")} == {flow.fraud_job, flow.queried_job}
    assert len(call(flow, "job_list", limit=1)) == 1


def test_stake_get(flow: Flow) -> None:
    bob = call(flow, "stake_get", address=ADDR["bob"])
    assert bob["bonded"] == 1000 * NTK and bob["bonded_ntk"] == "1000"
    assert bob["locked"] > 0 and bob["free"] == bob["bonded"] - bob["locked"]
    assert bob["meets_min_stake"] and bob["min_stake_ntk"] == "10" and bob["unbonding"] == 0
    assert bob["release_height"] is None and bob["releasable"] is False
    dave = call(flow, "stake_get", address=ADDR["dave"])
    assert (dave["bonded"], dave["unbonding"]) == (30 * NTK, 20 * NTK) and dave["release_height"] > dave["height"]
    assert dave["releasable"] is False and dave["meets_min_stake"]
    alice = call(flow, "stake_get", address=ADDR["alice"])
    assert alice["bonded"] == 0 and not alice["meets_min_stake"] and alice["balance"] > 0
    account = call(flow, "account_get", address=ADDR["dave"])
    assert account["bonded"] == 30 * NTK and account["unbonding_ntk"] == "20" and account["locked"] == 0


def test_market_events_by_account_and_by_job(flow: Flow) -> None:
    carol = call(flow, "market_events", address=ADDR["carol"])
    kinds = [(e["kind"], e["note"]) for e in carol]
    assert ("slash", "fraud") in kinds and ("bond", "") in kinds
    assert all(e["account"] == ADDR["carol"] and isinstance(e["amount"], int) for e in carol)
    heights = [e["height"] for e in carol]
    assert heights == sorted(heights, reverse=True)
    job = call(flow, "market_events", job=flow.fraud_job)
    assert {"lock", "pay", "slash", "burn", "reward"} <= {e["kind"] for e in job}
    burn = next(e for e in job if e["kind"] == "burn")
    assert burn["account"] is None and burn["job"] == flow.fraud_job and burn["shard"] == 1
    escrow = next(e for e in job if e["note"] == "escrow")
    assert escrow["account"] == ADDR["alice"] and escrow["shard"] is None
    assert len(call(flow, "market_events", job=flow.fraud_job, limit=2)) == 2


def test_account_history_gives_market_events_a_direction(flow: Flow) -> None:
    """Escrow locked and refunded, payments received, slashes, rewards: in or out of the account
    (balance and stake together); a move inside it is `-` (neurod/account_history.py)."""
    def market(name: str) -> set[tuple[str, str, str]]:
        rows = call(flow, "account_history", address=ADDR[name], limit=100)
        return {(r["event"], r["note"], r["direction"]) for r in rows if r["kind"] == "market"}

    assert {("lock", "escrow", "out"), ("refund", "unspent escrow", "in")} <= market("alice")
    assert {("bond", "", "-"), ("lock", "stake", "-"), ("pay", "", "in")} <= market("bob")
    assert ("slash", "fraud", "out") in market("carol")
    assert {("lock", "bond", "out"), ("reward", "fraud", "in"), ("unbond", "", "-")} <= market("dave")


def test_every_event_an_account_sees_has_a_direction() -> None:
    assert set(EVENT_KINDS) - set(EVENT_DIRECTIONS) == {"burn"}  # a burn names no account
    assert event_direction(Event("pay", b"b", 5, note="purchase")) == "out"  # the buyer's side of a sale
    assert event_direction(Event("pay", b"s", 4, note="sale")) == "in"


def test_market_txs_are_tx_objects_of_their_kind(flow: Flow) -> None:
    found = call(flow, "chain_tx", txid=flow.post_txid)["tx"]
    assert found["kind"] == "job-post" and found["from"] == ADDR["alice"]
    assert found["spec"] == json.loads(flow.spec) and found["service"] == "generate" and found["shards"] == 2
    history = call(flow, "account_history", address=ADDR["dave"])
    assert {row["kind"] for row in history} >= {"stake", "unstake", "challenge"}
    stake = next(row for row in history if row["kind"] == "stake")
    assert stake["amount"] == 50 * NTK and stake["amount_ntk"] == "50"
    award = next(r for r in call(flow, "account_history", address=ADDR["alice"]) if r["kind"] == "job-award")
    first = award["entries"][0]
    assert first["bid"]["worker"] == public_key_of(BOB).hex() and first["bid"]["address"] == ADDR["bob"]
    assert first["shards"] == [0] and len(first["bid"]["bid_id"]) == 64


@pytest.mark.parametrize(
    "method, params, code, reason",
    [
        ("job_get", {"job": "00" * 32}, -32011, "unknown-job"),
        ("job_get", {"job": "zz"}, -32602, None),
        ("job_get", {"job": "00" * 31}, -32602, None),
        ("job_list", {"status": "pending"}, -32602, None),
        ("job_list", {"limit": 0}, -32602, None),
        ("job_list", {"client": "tntk1nope"}, -32012, "bad-address"),
        ("stake_get", {"address": "ntk1qqqq"}, -32012, "bad-address"),
        ("market_events", {}, -32602, None),
        ("market_events", {"address": ADDR["bob"], "job": "00" * 32}, -32602, None),
        ("market_events", {"job": "00" * 32, "limit": 10**6}, -32602, None),
    ],
)
def test_bad_params_and_unknown_jobs(flow: Flow, method: str, params: dict[str, Any], code: int,
                                     reason: str | None) -> None:
    err = error(flow, method, **params)
    assert err["code"] == code
    if reason is not None:
        assert err["data"]["reason"] == reason


def test_unknown_job_has_no_events(flow: Flow) -> None:
    assert call(flow, "market_events", job="11" * 32) == []
