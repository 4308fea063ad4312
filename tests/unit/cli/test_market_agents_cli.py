"""`neuro stake add|remove`, `neuro market prices`, `neuro worker floor|earnings` and `neuro job
fetch|cancel` against the real RPC methods (`RpcMethods`, `neurod.market.rpc`) over market chains
built with tests/support/market.py, answered in-process (no daemon); the agents are the real
`ClientAgent` and `WorkerAgent` objects, not running, over a stub node."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import trio
import typer
from typer.testing import CliRunner, Result

from chain.amounts import format_ntk
from chain.crypto import public_key_of
from chain.devnet_keys import devnet_address, devnet_seed
from chain.jobs import JobStatus
from chain.market_types import (
    Accept,
    AwardEntry,
    JobAward,
    ResultCommit,
    Service,
    Settle,
    Stake,
    Unstake,
)
from chain.types import Transaction
from cli.market import market_app
from neurod.market.account import AgentAccount
from neurod.market.client_agent import ClientAgent, ClientJob, ShardView
from neurod.market.floor import AdaptiveFloor
from neurod.market.worker_agent import WorkerAgent, WorkerSettings
from neurod.rpc import RpcApp
from neurod.rpc_methods import RpcMethods
from tests.support.market import (
    ALICE,
    BOB,
    CAROL,
    MAX_PRICE,
    NTK,
    PRICE,
    TRAIN_SPEC,
    awarded_job,
    bid,
    job_of,
    mine_until,
    post,
    staked,
    step,
    tx,
)
from tests.unit.cli.test_market_cli import Neuro, StubNode
from wallet.keys import Key
from wallet.node_client import RpcClient, RpcError

FEE = 1_000


class NoBids:
    def for_job(self, job_id: bytes) -> list[Any]:
        return []


class AgentNode(StubNode):
    """`StubNode` with a data dir, the agents' slots, an empty bid book, and the txs it was sent."""

    def __init__(self, chain: Any, datadir: Path) -> None:
        super().__init__(chain)
        self.datadir = datadir
        self.agents = SimpleNamespace(client=None, worker=None)
        self.bids = NoBids()
        self.sent: list[Transaction] = []

    async def submit_transaction(self, tx: Transaction, encoded: bytes) -> bytes:
        txid = await super().submit_transaction(tx, encoded)
        self.sent.append(tx)
        return txid


def serve(monkeypatch: pytest.MonkeyPatch, node: AgentNode) -> None:
    """Every RPC call of the CLI answered by `RpcMethods` over ``node``."""
    rpc_app = RpcApp(RpcMethods(node).table(), "__cookie__:x", lambda: b"")  # type: ignore[arg-type]

    def call(self: RpcClient, method: str, **params: Any) -> Any:
        body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}).encode()
        return self._result(method, trio.run(rpc_app.handle, body))

    monkeypatch.setattr(RpcClient, "call", call)


@pytest.fixture
def neuro(tmp_path: Path) -> Neuro:
    runner = Neuro(tmp_path / "home")
    for name in ("alice", "bob", "carol"):
        seed = tmp_path / f"{name}.hex"
        seed.write_text(devnet_seed(name).hex())
        runner.ok("wallet", "import", name, "--raw-file", str(seed))
    return runner


def market(neuro: Neuro, *args: str) -> Result:
    """`neuro market ...`: `cli.market.market_app` under a root of its own, as `cli.main` mounts it
    (a one-command Typer invoked alone would take no command name)."""
    root = typer.Typer()
    root.add_typer(market_app, name="market")
    return CliRunner(env=neuro.env).invoke(root, ["market", *args])


def node_on(chain: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AgentNode:
    datadir = tmp_path / "datadir"
    datadir.mkdir(exist_ok=True)
    node = AgentNode(chain, datadir)
    serve(monkeypatch, node)
    return node


# ---- stake add | remove -------------------------------------------------------------------------


def test_stake_add_signs_and_sends_a_stake(neuro: Neuro, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    chain = staked()
    node = node_on(chain, tmp_path, monkeypatch)
    sent = neuro.json("stake", "add", "5", "--from", "carol")
    assert sent["status"] == "pending" and sent["kind"] == "stake" and sent["amount"] == "5"
    [stake] = node.sent
    assert stake.payload == Stake(5 * NTK) and stake.sender == public_key_of(CAROL)
    assert stake.chain_id == chain.chain_id and stake.txid.hex() == sent["txid"]
    assert stake.nonce == chain.account(stake.sender_account).nonce  # type: ignore[union-attr]
    again = neuro.json("stake", "add", "1.5", "--from", "carol", "--fee", "0.001")
    assert node.sent[1].nonce == stake.nonce + 1 and node.sent[1].fee == 10**6 and again["amount"] == "1.5"
    removed = neuro.json("stake", "remove", "2.5", "--from", "bob")
    assert node.sent[2].payload == Unstake(2_500_000_000) and removed["kind"] == "unstake"
    shown = neuro.ok("stake", "add", "1", "--from", "alice").stdout
    assert "stake" in shown and sent["txid"] not in shown and node.sent[3].sender == public_key_of(ALICE)


def test_stake_errors_are_one_line_and_send_nothing(neuro: Neuro, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    chain, _ = awarded_job()  # bob's and carol's stake partly locked by a shard each
    node = node_on(chain, tmp_path, monkeypatch)
    neuro.fails("bad-amount", "stake", "add", "0", "--from", "carol")
    neuro.fails("bad-amount", "stake", "add", "lots", "--from", "carol")
    neuro.fails("bad-amount", "stake", "add", "1", "--fee", "-1", "--from", "carol")
    assert "NTK" in neuro.fails("insufficient-balance", "stake", "add", "100000000", "--from", "carol")
    locked = neuro.fails("insufficient-free-stake", "stake", "remove", "1000", "--from", "bob")
    assert "locked" in locked
    neuro.fails("insufficient-free-stake", "stake", "remove", "1", "--from", "alice")  # never staked
    neuro.fails("unknown-key", "stake", "add", "1", "--from", "nobody")
    neuro.env["NEURO_PASSWORD"] = "wrong"
    neuro.fails("wrong-password", "stake", "add", "1", "--from", "carol")
    neuro.env["NEURO_NETWORK"] = "main"
    neuro.env["NEURO_KEYSTORE"] = str(neuro.home / "keystore" / "devnet")
    neuro.fails("wrong-network", "stake", "add", "1", "--from", "carol")
    assert node.sent == []


# ---- market prices ------------------------------------------------------------------------------


def priced_chain() -> tuple[Any, dict[str, bytes]]:
    """Three awarded jobs (generate at PRICE, generate at two prices, train), one never awarded."""
    chain = staked()
    first = post(chain)
    step(chain, tx(chain, ALICE, JobAward(first, (AwardEntry(bid(chain, BOB, first, PRICE), (0, 1)),))))
    second = post(chain)
    entries = (AwardEntry(bid(chain, BOB, second, 300_000), (0,)), AwardEntry(bid(chain, CAROL, second, 900_000), (1,)))
    step(chain, tx(chain, ALICE, JobAward(second, entries)))
    train = post(chain, spec=TRAIN_SPEC, shards=1, service=Service.TRAIN, max_price=10**9)
    step(chain, tx(chain, ALICE, JobAward(train, (AwardEntry(bid(chain, CAROL, train, 7_000), (0,)),))))
    unawarded = post(chain)
    return chain, {"first": first, "second": second, "train": train, "unawarded": unawarded}


def test_market_prices_from_the_awards_on_chain(neuro: Neuro, tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    chain, jobs = priced_chain()
    node_on(chain, tmp_path, monkeypatch)  # no agent: prices need none
    result = market(neuro, "prices", "--json")
    assert result.exit_code == 0, result.output
    found = json.loads(result.stdout)
    assert found["height"] == chain.height and found["last"] == 50
    assert [j["job"] for j in found["jobs"]] == [jobs["train"].hex(), jobs["second"].hex(), jobs["first"].hex()]
    second = found["jobs"][1]
    assert second["prices"] == [300_000, 900_000] and (second["low"], second["median"], second["high"]) == (
        300_000, 600_000, 900_000)
    assert second["posted"] == job_of(chain, jobs["second"]).posted and second["bid_end"] > second["posted"]
    assert second["awarded"] == second["shards"] == 2 and second["client"] == devnet_address("alice")
    generate = found["services"]["generate"]
    assert (generate["jobs"], generate["shards"], generate["quote_unit"]) == (2, 4, "megapixel")
    assert (generate["low"], generate["median"], generate["high"]) == (300_000, PRICE, 900_000)
    assert found["services"]["train"] == {"service": "train", "quote_unit": "gflop", "jobs": 1, "shards": 1,
                                          "low": 7_000, "median": 7_000, "high": 7_000}

    newest = json.loads(market(neuro, "prices", "--service", "generate", "--last", "1", "--json").stdout)
    assert [j["job"] for j in newest["jobs"]] == [jobs["second"].hex()] and list(newest["services"]) == ["generate"]
    assert newest["services"]["generate"]["median"] == 600_000
    shown = market(neuro, "prices")
    assert shown.exit_code == 0 and "megapixel" in shown.stdout and jobs["first"].hex()[:16] in shown.stdout
    assert "900,000" in shown.stdout


def test_market_prices_errors_and_an_empty_market(neuro: Neuro, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    chain = staked()
    post(chain)  # posted, never awarded: no price cleared
    node_on(chain, tmp_path, monkeypatch)
    assert json.loads(market(neuro, "prices", "--json").stdout)["jobs"] == []
    empty = market(neuro, "prices")
    assert empty.exit_code == 0 and "no awarded jobs" in empty.stderr
    bad = market(neuro, "prices", "--service", "mine")
    assert bad.exit_code == 1 and bad.stderr.startswith("error (bad-service): ")
    assert market(neuro, "prices", "--last", "0").exit_code == 2  # typer's range check
    rpc = RpcClient.__new__(RpcClient)
    with pytest.raises(RpcError, match="last must be an integer") as caught:
        rpc.call("market_prices", last=0)
    assert caught.value.code == -32602
    with pytest.raises(RpcError, match="service must be one of"):
        rpc.call("market_prices", service="mine")


# ---- worker floor | earnings --------------------------------------------------------------------


def earned_chain() -> tuple[Any, bytes]:
    """Bob paid for shard 0 (committed, accepted); carol slashed for shard 1 (never committed)."""
    chain, job_id = awarded_job()
    step(chain, tx(chain, BOB, ResultCommit(job_id, 0, b"\x09" * 32, 4)))
    step(chain, tx(chain, ALICE, Accept(job_id)))
    mine_until(chain, job_of(chain, job_id).deadline)
    step(chain, tx(chain, ALICE, Settle(job_id)))
    return chain, job_id


def test_worker_floor_and_earnings(neuro: Neuro, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    chain, job_id = earned_chain()
    node = node_on(chain, tmp_path, monkeypatch)
    account = AgentAccount(node, Key(BOB), FEE)  # type: ignore[arg-type]
    worker = WorkerAgent(node, account, WorkerSettings(services=(Service.GENERATE, Service.TRAIN),  # type: ignore[arg-type]
                                                       floor_min=10, floor_max=10_000))
    worker.floors[Service.GENERATE] = AdaptiveFloor(10, 10_000).update([float(i) for i in range(
        len(AdaptiveFloor(10, 10_000).levels))])
    node.agents.worker = worker
    floors = neuro.json("worker", "floor")
    assert floors["address"] == devnet_address("bob") and set(floors["floors"]) == {"generate", "train"}
    generate = floors["floors"]["generate"]
    learned = worker.floors[Service.GENERATE]
    assert (generate["floor"], generate["min_floor"], generate["max_floor"], generate["rounds"]) == (
        learned.floor, 10, 10_000, 1)
    assert generate["mean_floor"] == round(learned.mean_floor(), 3) and floors["floors"]["train"]["rounds"] == 0
    assert "10,000" in neuro.ok("worker", "floor").stdout

    earned = neuro.json("worker", "earnings")
    payment = job_of(chain, job_id).shards[0].payment
    assert earned["address"] == devnet_address("bob") and earned["slashed"] == 0 and 0 < earned["paid"] <= payment
    assert earned["net"] == earned["paid"] and earned["paid_ntk"] == format_ntk(earned["paid"])
    assert [(j["job"], j["shards"]) for j in earned["jobs"]] == [(job_id.hex(), [0])]
    carol = neuro.json("worker", "earnings", "--address", "carol")
    assert carol["paid"] == 0 and carol["slashed"] > 0 and carol["net"] == -carol["slashed"]
    assert carol["net_ntk"].startswith("-") and carol["jobs"][0]["notes"] == ["no-show"]
    shown = neuro.ok("worker", "earnings", "--address", devnet_address("carol")).stdout
    assert "no-show" in shown and job_id.hex()[:16] in shown
    assert neuro.json("worker", "earnings", "--address", "alice")["jobs"] == []  # a client earns nothing


def test_worker_reads_without_an_agent(neuro: Neuro, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    chain, _ = earned_chain()
    node_on(chain, tmp_path, monkeypatch)
    neuro.fails("no-worker", "worker", "floor")
    neuro.fails("no-agent", "worker", "earnings")
    assert neuro.json("worker", "earnings", "--address", "bob")["paid"] > 0  # an address needs no agent
    neuro.fails("bad-address", "worker", "earnings", "--address", "tntk1qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqq")


# ---- job cancel | fetch -------------------------------------------------------------------------


def client_on(node: AgentNode) -> ClientAgent:
    agent = ClientAgent(node, AgentAccount(node, Key(ALICE), FEE))  # type: ignore[arg-type]
    node.agents.client = agent
    return agent


def bought(agent: ClientAgent, job_id: bytes, shards: int = 2, state: str = "posted") -> ClientJob:
    record = ClientJob(job_id.hex(), "generate", shards, MAX_PRICE, state=state,
                       views=[ShardView() for _ in range(shards)])
    agent.jobs[job_id] = record
    return record


async def step_agent(agent: ClientAgent, job_id: bytes) -> None:
    async with trio.open_nursery() as nursery:
        await agent.step(nursery, job_id, agent.jobs[job_id])


def test_cancel_before_the_award_settles_for_the_refund(neuro: Neuro, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    chain = staked()
    job_id = post(chain)
    node = node_on(chain, tmp_path, monkeypatch)
    agent = client_on(node)
    record = bought(agent, job_id)
    cancelled = neuro.json("job", "cancel", job_id.hex())
    assert cancelled["state"] == "cancelled" and "Settle" in cancelled["message"]
    assert "cancelled" in neuro.ok("job", "cancel", job_id.hex()).stderr  # again: nothing changes
    escrow = job_of(chain, job_id).escrow
    mine_until(chain, job_of(chain, job_id).bid_end - 2)  # the agent would award in the window's last blocks
    trio.run(step_agent, agent, job_id)
    assert node.sent == [] and record.state == "cancelled"
    mine_until(chain, job_of(chain, job_id).bid_end)
    trio.run(step_agent, agent, job_id)
    assert [t.payload for t in node.sent] == [Settle(job_id)]
    step(chain, *node.sent)
    assert job_of(chain, job_id).status is JobStatus.CLOSED
    refunds = [e for _, e in chain.events(job_id=job_id) if e.kind == "refund"]
    assert sum(e.amount for e in refunds) == escrow
    trio.run(step_agent, agent, job_id)
    assert record.state == "failed" and "cancelled" in record.message
    line = neuro.fails("job-not-done", "job", "fetch", job_id.hex(), str(tmp_path / "out"))
    assert "failed" in line and "cancelled" in line
    neuro.fails("job-finished", "job", "cancel", job_id.hex())


def test_cancel_after_the_award_is_refused(neuro: Neuro, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    chain, job_id = awarded_job()
    node = node_on(chain, tmp_path, monkeypatch)
    agent = client_on(node)
    record = bought(agent, job_id, state="awarded")
    assert "under way" in neuro.fails("job-under-way", "job", "cancel", job_id.hex())
    record.state = "bidding"  # the agent lost track: the chain still says awarded
    neuro.fails("job-under-way", "job", "cancel", job_id.hex())
    assert record.state == "bidding"
    neuro.fails("unknown-job", "job", "cancel", "00" * 32)
    neuro.fails("bad-job-id", "job", "cancel", "xyz")
    node.agents.client = None
    neuro.fails("no-agent", "job", "cancel", job_id.hex())


def test_fetch_copies_the_verified_shards(neuro: Neuro, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    chain, job_id = awarded_job()
    node = node_on(chain, tmp_path, monkeypatch)
    agent = client_on(node)
    record = bought(agent, job_id, state="awarded")
    out = tmp_path / "out"
    assert "awarded" in neuro.fails("job-not-done", "job", "fetch", job_id.hex(), str(out))
    for k in range(2):
        shard = tmp_path / "datadir" / "market" / "jobs" / job_id.hex()[:16] / f"shard-{k}"
        (shard / "items").mkdir(parents=True)
        (shard / "items" / f"{k}.png").write_bytes(b"png")
        (shard / "manifest.json").write_text("{}")
        record.views[k].output, record.views[k].state = str(shard), "paid"
    record.state = "done"
    copied = neuro.json("job", "fetch", job_id.hex(), str(out))
    assert [c["shard"] for c in copied["shards"]] == [0, 1] and copied["skipped"] == []
    assert (out / "shard-1" / "items" / "1.png").read_bytes() == b"png" and copied["shards"][0]["files"] == 2
    assert "shard-0" in neuro.fails("file-exists", "job", "fetch", job_id.hex(), str(out))
    record.views[1].output = ""  # not delivered: the rest is still copied
    partial = neuro.ok("job", "fetch", job_id.hex(), str(tmp_path / "partial"))
    assert (tmp_path / "partial" / "shard-0").is_dir() and not (tmp_path / "partial" / "shard-1").exists()
    assert "not copied" in partial.stderr
    record.views[0].output = str(tmp_path / "gone")
    neuro.fails("output-missing", "job", "fetch", job_id.hex(), str(tmp_path / "other"))
    record.views[0].output = ""
    neuro.fails("no-outputs", "job", "fetch", job_id.hex(), str(tmp_path / "other"))
    neuro.fails("unknown-job", "job", "fetch", "00" * 32, str(out))
