"""Two clients compete for the same workers: alice's agent on one daemon and dave's on another
each post a generate job at the same moment, and the same two worker daemons (bob and carol, one
slot each) bid on both. Both jobs must finish done with every shard paid, and the chain's payments
for each job must go to those workers and add up to what the client says it paid. How the
workers queue more shards than slots is their business: only completion and payment are checked.
Devnet blocks every 0.3 s; every timeout is an upper bound.
"""

from __future__ import annotations

import logging
from typing import Any

import pytest

from chain.devnet_keys import devnet_address
from tests.functional.node_market import (
    BLOCK,
    assert_delivered,
    finished,
    paid_to,
    staked,
    submit,
    worker_flags,
)
from tests.support.daemons import wait_converged, wait_until

log = logging.getLogger("tests.node_market_compete")
WORKERS = ("bob", "carol")


@pytest.mark.timeout(720)  # an upper bound: startup, then two jobs waited on one after the other
def test_two_clients_buying_from_the_same_workers_both_finish_and_pay(daemons: Any) -> None:
    alice = daemons("alice", mine=True, block_interval=BLOCK, extra=["--agent-key", "devnet:alice"])
    dave = daemons("dave", bootstrap=[alice.p2p_addr], extra=["--agent-key", "devnet:dave"])
    workers = {name: daemons(name, bootstrap=[alice.p2p_addr, dave.p2p_addr],
                             extra=worker_flags(name, 50, "--worker-slots", "1")) for name in WORKERS}
    wait_converged([alice, dave, *workers.values()], min_height=1)
    for name in WORKERS:
        wait_until(lambda n=name: staked(alice, n) >= 100, 90, f"{name}'s stake bonded")
    log.info("both clients submit at height %d", alice.rpc("node_status")["height"])

    windows: dict[str, Any] = {"deadline_blocks": 120, "challenge_blocks": 12}  # two shards queue per slot
    jobs = {"alice": (alice, submit(alice, **windows)), "dave": (dave, submit(dave, **windows))}
    log.info("jobs: %s", {name: job[:12] for name, (_, job) in jobs.items()})

    statuses = {name: finished(client, job, timeout=300) for name, (client, job) in jobs.items()}
    worker_addresses = {devnet_address(name) for name in WORKERS}
    for name, (client, job) in jobs.items():
        status = statuses[name]
        events = "\n".join(status["events"])
        assert status["state"] == "done", f"{name}'s job ended {status['state']}: {status['message']}\n{events}"
        assert all(view["state"] == "paid" for view in status["views"]), f"{name}: {status['views']}\n{events}"
        assert_delivered(status)
        wait_until(lambda c=client, j=job: c.rpc("job_get", job=j)["status"] == "closed", 60, f"{name}'s job closed")
        paid = paid_to(client, job)
        log.info("%s's job %s paid %s", name, job[:12], paid)
        assert paid and set(paid) <= worker_addresses, (name, paid)
        assert sum(paid.values()) == status["paid"] > 0, (name, paid, status["paid"])
        shards = client.rpc("job_get", job=job)["shards"]
        assert all(s["status"] == "paid" and s["worker"] in worker_addresses for s in shards), shards
