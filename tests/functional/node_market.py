"""The market at work between real daemons: a client daemon buys a generate job from worker
daemons, which bid, render, deliver peer to peer and get paid; a dishonest worker is caught by
the client's sampled re-renders and slashed, and an honest one redoes its shards; a worker killed
mid-job is replaced; workers are paid by Settle when the client vanishes; a job nobody bids on
says why. Everything runs through the daemons' market agents (`neurod/market/`), on devnet
blocks every 0.3 s.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from chain.devnet_keys import devnet_address
from tests.support.daemons import Daemon, wait_converged, wait_until
from tests.support.market_daemons import BLOCK, market, staked, submit, worker_flags
from worker.verify import verify_output

log = logging.getLogger("tests.node_market")
FINAL = ("done", "uncovered", "failed")


def finished(client: Daemon, job: str, timeout: float = 240) -> dict[str, Any]:
    status: dict[str, Any] = wait_until(
        lambda: (s := client.rpc("job_status", job=job))["state"] in FINAL and s, timeout, f"job {job[:12]} to end")
    return status


def paid_to(client: Daemon, job: str) -> dict[str, int]:
    """Tokens the job paid to each address, from the chain's events."""
    paid: dict[str, int] = {}
    for event in client.rpc("market_events", job=job, limit=1000):
        if event["kind"] == "pay" and event["note"] == "":
            paid[event["account"]] = paid.get(event["account"], 0) + int(event["amount"])
    return paid


def assert_delivered(status: dict[str, Any]) -> None:
    """What the buyer holds is correct: each shard folder verifies against its committed root."""
    for view in status["views"]:
        assert view["state"] == "paid", status
        verdict = verify_output(Path(view["output"]), b"any beacon", 8, expected_root=bytes.fromhex(view["root"]))
        assert verdict.ok, verdict


def test_a_generate_job_is_bid_on_rendered_verified_and_paid(daemons):
    client, _ = market(daemons, {"bob": worker_flags("bob", 50), "carol": worker_flags("carol", 80)})
    job = submit(client)
    status = finished(client, job)
    assert status["state"] == "done", status
    assert status["bids"], "the bids the client saw are shown"
    assert_delivered(status)
    paid = paid_to(client, job)
    assert set(paid) <= {devnet_address("bob"), devnet_address("carol")} and sum(paid.values()) == status["paid"]
    assert client.rpc("job_get", job=job)["status"] == "closed"


def test_a_dishonest_worker_is_caught_slashed_and_its_shards_redone(daemons):
    client, _ = market(daemons, {
        "bob": worker_flags("bob", 50, "--worker-fault", "corrupt-item"),  # cheapest: wins, then cheats
        "carol": worker_flags("carol", 80),
    })
    job = submit(client)
    status = finished(client, job)
    assert status["state"] == "done", "\n".join(status["events"]) + status["message"]
    assert status["convicted"] == [devnet_address("bob")], "\n".join(status["events"])
    assert any("fraud proof" in e for e in status["events"]), status["events"]
    slashes = [e for e in client.rpc("market_events", job=job, limit=1000) if e["kind"] == "slash"]
    assert slashes and all(e["account"] == devnet_address("bob") and e["note"] == "fraud" for e in slashes)
    assert set(paid_to(client, job)) == {devnet_address("carol")}  # the cheat is never paid
    assert_delivered(status)


def test_a_worker_killed_mid_job_is_replaced_and_the_job_completes(daemons):
    two = ("--worker-slots", "2")  # bob, the cheaper, can take the whole job
    client, workers = market(daemons, {"bob": worker_flags("bob", 50, *two), "carol": worker_flags("carol", 80, *two)})
    job = submit(client, deadline_blocks=30)
    wait_until(lambda: any(v["state"] == "awarded" for v in client.rpc("job_status", job=job)["views"]), 90,
               "the award")
    awarded = {v["worker"] for v in client.rpc("job_status", job=job)["views"] if v["worker"]}
    assert awarded == {devnet_address("bob")}  # the cheaper
    workers["bob"].kill()
    status = finished(client, job, timeout=300)
    assert status["state"] == "done", status
    assert set(paid_to(client, job)) == {devnet_address("carol")}
    slashes = [e for e in client.rpc("market_events", job=job, limit=1000) if e["kind"] == "slash"]
    assert slashes and all(e["note"] == "no-show" for e in slashes)
    assert_delivered(status)


def test_workers_are_paid_by_settle_when_the_client_vanishes(daemons):
    client = daemons("client", mine=True, block_interval=BLOCK, extra=["--agent-key", "devnet:alice"])
    miner = daemons("miner", mine=True, block_interval=BLOCK, bootstrap=[client.p2p_addr])  # the chain goes on
    bob = daemons("bob", bootstrap=[client.p2p_addr, miner.p2p_addr], extra=worker_flags("bob", 50, "--worker-slots", "2"))
    wait_converged([client, miner, bob], min_height=1)
    wait_until(lambda: staked(client, "bob") >= 100, 90, "bob's stake bonded")
    job = submit(client)
    wait_until(lambda: any(v["state"] == "awarded" for v in client.rpc("job_status", job=job)["views"]), 90,
               "the award")
    client.stop()  # the client is gone for good: nobody accepts
    wait_until(lambda: bob.rpc("job_get", job=job)["status"] == "closed", 240, "bob's Settle to close the job")
    paid = paid_to(bob, job)
    assert set(paid) == {devnet_address("bob")} and paid[devnet_address("bob")] > 0


def test_a_job_no_worker_will_take_says_why_and_is_refunded(daemons):
    client, _ = market(daemons, {"bob": worker_flags("bob", 500)})
    before = int(client.rpc("account_get", address=devnet_address("alice"))["balance"])
    job = submit(client, max_price=100)  # under bob's floor: he does not bid
    status = finished(client, job)
    assert status["state"] == "uncovered" and "no bids" in status["message"] and "max price" in status["message"]
    wait_until(lambda: client.rpc("job_get", job=job)["status"] == "closed", 90, "the refund")
    after = int(client.rpc("account_get", address=devnet_address("alice"))["balance"])
    assert before - after < 10**7  # fees only: the escrow came back


def test_a_worker_restarted_mid_job_runs_its_shards_again_and_is_paid(daemons):
    """Nothing a worker needs is lost with its process: the chain says which shards are its own,
    and the spec is deterministic, so after a kill it renders them again and is paid."""
    two = ("--worker-slots", "2")
    client, workers = market(daemons, {"bob": worker_flags("bob", 50, *two)})
    job = submit(client, deadline_blocks=200)  # a restart and a render on a loaded machine fit in it
    wait_until(lambda: any(v["state"] == "awarded" for v in client.rpc("job_status", job=job)["views"]), 90,
               "the award")
    bob = workers["bob"]
    bob.kill()
    bob.start()
    status = finished(client, job)
    assert status["state"] == "done", status["events"]
    assert set(paid_to(client, job)) == {devnet_address("bob")}
    assert_delivered(status)
