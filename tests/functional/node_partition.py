"""Partition and heal: two groups mine separately, reconnect, and all end on the heavier chain with
equal state roots; a double spend made across the two branches ends with exactly one spend."""

from __future__ import annotations

from chain.devnet_keys import devnet_address
from tests.support.daemons import wait_converged, wait_until
from tests.support.txs import transfer_hex


def test_partition_heals_onto_the_heavier_branch(daemons):
    a_miner = daemons("a-miner", mine=True, block_interval=0.2)
    a_peer = daemons("a-peer", bootstrap=[a_miner.p2p_addr])
    b_miner = daemons("b-miner", mine=True, block_interval=1.0)
    b_peer = daemons("b-peer", bootstrap=[b_miner.p2p_addr])
    group_a, group_b = [a_miner, a_peer], [b_miner, b_peer]
    wait_until(lambda: a_peer.peers() >= 1 and b_peer.peers() >= 1, 30, "groups to peer")

    # the same nonce of alice spent twice, once on each side of the partition
    to_bob, bob_txid = transfer_hex("alice", "bob", 1_000_000, nonce=0)
    to_carol, carol_txid = transfer_hex("alice", "carol", 2_000_000, nonce=0)
    carol_before = b_peer.rpc("account_get", address=devnet_address("carol"))["balance"]
    a_peer.rpc("tx_submit", tx=to_bob)
    b_peer.rpc("tx_submit", tx=to_carol)
    wait_until(lambda: a_peer.tx_status(bob_txid) == "confirmed", 60, "spend on side A")
    wait_until(lambda: b_peer.tx_status(carol_txid) == "confirmed", 60, "spend on side B")
    assert a_peer.tx_status(carol_txid) is None and b_peer.tx_status(bob_txid) is None

    # side A mines faster: let it get clearly heavier before healing
    wait_until(lambda: a_miner.height() >= b_miner.height() + 5, 90, "side A to pull ahead")
    b_peer.connect(a_peer.p2p_addr)

    tip = wait_converged(group_a + group_b, timeout=90)
    roots = {d.rpc("chain_block", id=tip)["header"]["state_root"] for d in group_a + group_b}
    assert len(roots) == 1
    for node in group_a + group_b:
        assert node.tx_status(bob_txid) == "confirmed"
        # the losing spend is gone from the chain and cannot come back: its nonce is used
        assert node.tx_status(carol_txid) is None
        assert node.rpc("account_get", address=devnet_address("alice"))["nonce"] == 1
        assert node.rpc("account_get", address=devnet_address("carol"))["balance"] == carol_before
