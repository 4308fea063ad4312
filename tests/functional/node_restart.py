"""A node killed with SIGKILL and restarted keeps its identity and chain and catches up; a fresh
node joining late syncs the whole chain."""

from __future__ import annotations

from tests.support.daemons import wait_converged, wait_until


def test_sigkill_and_restart_keeps_identity_and_chain(daemons):
    miner = daemons("miner", mine=True, block_interval=0.2)
    follower = daemons("follower", bootstrap=[miner.p2p_addr])
    wait_converged([miner, follower], min_height=5)
    identity, height_before = follower.peer_id, follower.height()

    follower.kill()
    wait_until(lambda: miner.height() >= height_before + 5, 60, "the miner to move on")
    follower.start()
    assert follower.peer_id == identity
    assert follower.height() >= height_before  # the chain survived the kill
    wait_until(lambda: follower.peers() >= 1, 30, "re-peering")
    wait_converged([miner, follower], min_height=height_before + 5)


def test_fresh_node_joining_late_syncs_the_whole_chain(daemons):
    miner = daemons("miner", mine=True, block_interval=0.05)
    wait_until(lambda: miner.height() >= 60, 120, "a chain of 60 blocks")
    late = daemons("late", bootstrap=[miner.p2p_addr])
    tip = wait_converged([miner, late], timeout=90, min_height=60)
    assert late.rpc("chain_block", id=tip)["main_chain"]
    for height in (1, 30, 60):
        assert late.rpc("chain_block", id=height)["hash"] == miner.rpc("chain_block", id=height)["hash"]
