"""Bids on the gossip topic, three real daemons in a line (worker - relay - far): a staked
worker's bid submitted over RPC reaches every node's bid book through the relay, while bid spam
from an unstaked peer connected to the relay is not relayed and gets that peer banned."""

from __future__ import annotations

import logging
import urllib.request
from typing import Any

import trio

from chain.market_types import Bid, JobPost, Service, Stake
from neurod.market.bids import BidNotice
from tests.support.daemons import Daemon, wait_converged, wait_until
from tests.support.evil_peer import EvilPeer
from tests.support.market import MAX_PRICE, NTK, PRICE, digits_job_spec
from tests.support.txs import DEVNET, FEE, devnet_key

log = logging.getLogger("tests.node_bids")
BID_BLOCKS = 400  # 0.3-second blocks: two minutes of bid window, more than the test needs


def _submit(daemon: Daemon, name: str, payload: Any, nonce: int = 0) -> str:
    tx = devnet_key(name).transaction(DEVNET.chain_id, nonce, FEE, payload)
    return str(daemon.rpc("tx_submit", tx=tx.encode().hex())["txid"])


def _bid(name: str, job_id: bytes, price: int, expiry: int) -> Bid:
    key = devnet_key(name)
    return Bid(DEVNET.chain_id, job_id, key.public_key, price, 2, expiry).signed(key.seed)


def _listed(daemon: Daemon, job: str) -> set[str]:
    return {row["bid_id"] for row in daemon.rpc("bid_list", job=job)}


def _metrics(daemon: Daemon) -> str:
    with urllib.request.urlopen(daemon.rpc_url + "metrics", timeout=10) as response:
        return str(response.read().decode())


def test_bids_reach_every_node_and_unstaked_spam_is_not_relayed(daemons, tmp_path):
    worker = daemons("worker", mine=True, block_interval=0.3)
    relay = daemons("relay", bootstrap=[worker.p2p_addr])
    far = daemons("far", bootstrap=[relay.p2p_addr])
    wait_converged([worker, relay, far], min_height=1)

    log.info("bob and carol stake, alice posts a job")
    stakes = [_submit(worker, name, Stake(100 * NTK)) for name in ("bob", "carol")]
    job = _submit(worker, "alice", JobPost(Service.GENERATE, digits_job_spec(8), 2, MAX_PRICE, BID_BLOCKS,
                                           BID_BLOCKS + 100, 3))
    for txid in [*stakes, job]:
        wait_until(lambda txid=txid: worker.tx_status(txid) == "confirmed", 60, f"{txid[:16]} mined")
    wait_converged([worker, relay, far], min_height=worker.height())
    job_id = bytes.fromhex(job)
    expiry = worker.height() + BID_BLOCKS

    log.info("(a) bob's bid, submitted to the worker's daemon, reaches the far node through the relay")
    bob = _bid("bob", job_id, PRICE, expiry)
    assert worker.rpc("bid_submit", bid=bob.encode().hex()) == {"bid_id": bob.bid_id.hex()}
    for daemon in (relay, far):
        wait_until(lambda d=daemon: bob.bid_id.hex() in _listed(d, job), 60, f"bob's bid on {daemon.datadir.name}")
    row = far.rpc("bid_list", job=job)[0]
    assert row["peer_id"] == worker.peer_id and row["unit_price"] == PRICE and row["expiry"] == expiry
    assert row["addrs"] and all(a.endswith("/p2p/" + worker.peer_id) for a in row["addrs"])
    assert Bid.decode(bytes.fromhex(row["bid"])) == bob

    log.info("(b) an unstaked peer connected to the relay spams bids in dave's name")
    spam: list[bytes] = []
    state: dict[str, Any] = {}

    async def attack() -> None:
        evil = EvilPeer(tmp_path / "evil", chain_id=DEVNET.chain_id.hex())
        with trio.fail_after(150):  # upper bound on a loaded machine
            await spam_from(evil)

    async def spam_from(evil: EvilPeer) -> None:
        async with trio.open_nursery() as nursery:
            await nursery.start(evil.run)
            peer = await evil.connect(relay.p2p_addr, timeout=30)
            await evil.wait_subscribed(peer, "bids", timeout=30)
            for round_ in range(3):  # a payload lost with a re-opened pubsub stream is resent
                for k in range(4):
                    bid = _bid("dave", job_id, PRICE + 10 * round_ + k, expiry)
                    spam.append(bid.bid_id)
                    try:
                        await evil.publish("bids", BidNotice(bid, evil.peer_id, ()).encode())
                    except Exception:  # noqa: BLE001
                        break  # the relay hung up on us: that is the point
                if await evil.dropped_by(peer, timeout=10):
                    break
            state["banned"] = await evil.banned_by(relay.p2p_addr, timeout=30)
            state["link"] = evil.link_state(peer, "bids")
            nursery.cancel_scope.cancel()

    trio.run(attack)
    assert state["banned"], f"the relay kept the spammer: {state['link']}\n{relay.log_lines('bid')}"
    metrics = _metrics(relay)
    assert 'neuro_bids_rejected_total{reason="bid-unstaked"}' in metrics, metrics
    assert 'neuro_peer_bans_total{reason="invalid"}' in metrics

    log.info("carol's honest bid, submitted after the spam, reaches the far node: the spam did not")
    carol = _bid("carol", job_id, PRICE - 1, expiry)
    relay.rpc("bid_submit", bid=carol.encode().hex())
    for daemon in (worker, far):
        wait_until(lambda d=daemon: carol.bid_id.hex() in _listed(d, job), 60, f"carol's bid on {daemon.datadir.name}")
    for daemon in (worker, relay, far):
        listed = _listed(daemon, job)
        assert listed == {bob.bid_id.hex(), carol.bid_id.hex()}, (daemon.datadir.name, listed)
        assert not {s.hex() for s in spam} & listed
    assert 'reason="bid-unstaked"' not in _metrics(far)  # nobody relayed it to the far node
    assert far.rpc("bid_list", job=job)[0]["peer_id"] == relay.peer_id  # cheapest first: carol's
