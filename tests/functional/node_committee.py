"""Training disputes decided by the committee, between real daemons: a trainer that delivers a
model whose proof-of-learning log claims work it never did (`--worker-fault skip-training`) is
disputed by the client's replay, the staked worker daemons the beacon draws replay it too and
vote fraud, and the trainer is slashed; a client that disputes an honest model loses its bond
to the trainer, who is paid on the verdict.

The devnet's committee of 3 over three equal stakes of 100 NTK draws every staker with
probability min(1, 3 x 100 / 300) = 1 (`chain.market_rules.drawn`; tests/unit/neurod/
test_committee.py checks it with the real draw), so both non-party workers sit on each
committee, whatever services they sell. The vote window is the devnet's 4 blocks: blocks here
come every 3 s (jittered 1.5-4.5 s), far more than a member's fetch and replay of this tiny model
(its child process is warmed when the dispute appears); one vote is a quorum.
"""

from __future__ import annotations

import logging
from typing import Any

from chain.devnet_keys import devnet_address
from chain.market_types import Challenge
from tests.support.daemons import Daemon, RpcCallError, wait_converged, wait_until
from tests.support.market_daemons import market, staked, worker_flags
from tests.support.training import TRAIN
from tests.support.txs import DEVNET, FEE, devnet_key

log = logging.getLogger("tests.node_committee")
BLOCK = 3.0
FLOOR = 10**9  # base units per GFLOP: the tiny model's shard pays ~0.006 NTK, far above any fee
JOB = {"service": "train", "spec": TRAIN, "shards": 1, "max_price": 4 * FLOOR, "bid_blocks": 4,
       "deadline_blocks": 40, "challenge_blocks": 12}
MEMBERS = ("carol", "dave")  # staked workers selling renders only: they still sit on committees


def trainer_flags(*extra: str) -> list[str]:
    return worker_flags("bob", FLOOR, "--worker-services", "train", *extra)


def events(daemon: Daemon, job: str) -> list[dict[str, Any]]:
    return list(daemon.rpc("market_events", job=job, limit=1000))


def wealth(daemon: Daemon, name: str) -> int:
    account = daemon.rpc("account_get", address=devnet_address(name))
    return int(account["balance"]) + int(account["bonded"]) + int(account["unbonding"])


def shard(daemon: Daemon, job: str) -> dict[str, Any]:
    """The job's only shard on ``daemon``'s chain (an empty one until the post is mined)."""
    try:
        return dict(daemon.rpc("job_get", job=job)["shards"][0])
    except RpcCallError as exc:
        if exc.reason != "unknown-job":
            raise
        return {"status": None}


def votes(members: dict[str, Daemon], job: str) -> dict[str, list[dict[str, Any]]]:
    """Each member's votes on the job (`worker_status`)."""
    return {name: [v for v in d.rpc("worker_status")["votes"] if v["job"] == job] for name, d in members.items()}


def test_a_trainer_that_skipped_training_is_voted_fraud_and_slashed(daemons):
    client, workers = market(daemons, {"bob": trainer_flags("--worker-fault", "skip-training"),
                                       **{name: worker_flags(name, 50) for name in MEMBERS}}, block=BLOCK)
    before = wealth(client, "bob")
    job = str(client.rpc("job_submit", **JOB)["job"])
    log.info("train job %s posted; bob trains dishonestly", job[:12])

    slashes = wait_until(lambda: [e for e in events(client, job) if e["kind"] == "slash"], 300,
                         "the committee's verdict to slash the trainer")
    assert [(e["account"], e["note"]) for e in slashes] == [(devnet_address("bob"), "fraud")]
    record = client.rpc("job_status", job=job)
    assert any("disputed" in e for e in record["events"]), record["events"]
    cast = votes({n: workers[n] for n in MEMBERS}, job)
    log.info("votes: %s", cast)
    voted = [v for member in cast.values() for v in member if v["state"] == "voted"]
    assert voted and all(v["fraud"] for v in voted), cast
    assert not any(v["fraud"] is False for member in cast.values() for v in member), cast
    # the stake is gone for good (bob's agent may bond afresh from his balance, never more than he had)
    assert wealth(client, "bob") <= before - int(slashes[0]["amount"])
    kinds = [(e["kind"], e["account"]) for e in events(client, job)]
    assert ("reward", devnet_address("alice")) in kinds and ("refund", devnet_address("alice")) in kinds
    wait_until(lambda: client.rpc("job_status", job=job)["convicted"] == [devnet_address("bob")], 60,
               "the client to count bob convicted (never awarded again)")


def test_a_client_that_disputes_honest_training_loses_its_bond_and_the_trainer_is_paid(daemons):
    miner = daemons("miner", mine=True, block_interval=BLOCK)
    client = daemons("client", bootstrap=[miner.p2p_addr], extra=["--agent-key", "devnet:alice"])
    bob = daemons("bob", bootstrap=[miner.p2p_addr], extra=trainer_flags())
    # with the client gone, only the trainer holds the model: the members are its peers
    members = {name: daemons(name, bootstrap=[miner.p2p_addr, bob.p2p_addr], extra=worker_flags(name, 50))
               for name in MEMBERS}
    wait_converged([miner, client, bob, *members.values()], min_height=1)
    for name in ("bob", *MEMBERS):
        wait_until(lambda n=name: staked(miner, n) >= 100, 90, f"{name}'s stake bonded")
    job = str(client.rpc("job_submit", **JOB)["job"])
    wait_until(lambda: shard(miner, job)["status"] == "assigned", 120, "the award")
    client.stop()  # from here on, alice is the test: she never accepts, she disputes
    committed = wait_until(lambda: (s := shard(miner, job))["status"] == "committed" and s, 120, "bob's honest result")
    bob_before = wealth(miner, "bob")
    nonce = int(miner.rpc("account_get", address=devnet_address("alice"))["pending_nonce"])
    dispute = devnet_key("alice").transaction(DEVNET.chain_id, nonce, FEE, Challenge(bytes.fromhex(job), 0, 0, None))
    miner.rpc("tx_submit", tx=dispute.encode().hex())
    log.info("alice disputes bob's honest model (root %s)", committed["root"][:16])

    wait_until(lambda: miner.rpc("job_get", job=job)["status"] == "closed", 240,
               "the verdict, and bob's Settle after the vote window")
    notes = [(e["kind"], e["account"], e["note"], int(e["amount"])) for e in events(miner, job)]
    bond = DEVNET.params.market.challenge_bond
    assert ("forfeit", devnet_address("alice"), "honest", bond) in notes, notes
    assert ("pay", devnet_address("bob"), "bond", bond) in notes, notes
    assert ("pay", devnet_address("bob"), "", int(committed["payment"])) in notes, notes  # no protocol fee on devnet
    assert not any(kind == "slash" for kind, *_ in notes), notes
    assert wealth(miner, "bob") > bob_before + int(committed["payment"])  # paid and the bond, less a Settle's fee
    cast = votes(members, job)
    log.info("votes: %s", cast)
    voted = [v for member in cast.values() for v in member if v["state"] == "voted"]
    assert voted and not any(v["fraud"] for member in cast.values() for v in member if v["fraud"] is not None), cast
