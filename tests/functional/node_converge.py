"""Several daemons converge on one tip; a transaction sent to one is mined and seen by all."""

from __future__ import annotations

from chain.devnet_keys import devnet_address
from tests.support.daemons import wait_converged, wait_until
from tests.support.txs import transfer_hex


def test_nodes_converge_and_relay_a_transfer(daemons):
    miner = daemons("miner", mine=True, block_interval=0.3)
    others = [daemons(f"n{i}", bootstrap=[miner.p2p_addr]) for i in range(3)]
    nodes = [miner, *others]
    for node in others:
        wait_until(lambda n=node: n.peers() >= 1, 30, "peering")
    wait_converged(nodes, min_height=3)

    bob_before = others[1].rpc("account_get", address=devnet_address("bob"))["balance"]
    tx, txid = transfer_hex("alice", "bob", 12_345, nonce=0)
    assert others[0].rpc("tx_submit", tx=tx)["txid"] == txid
    # relayed to the miner's mempool, mined, and the block reaches everyone
    for node in nodes:
        wait_until(lambda n=node: n.tx_status(txid) == "confirmed", 60, "tx on all nodes")
    balances = {n.rpc("account_get", address=devnet_address("bob"))["balance"] for n in nodes}
    assert balances == {bob_before + 12_345}
    alice = others[2].rpc("account_get", address=devnet_address("alice"))
    assert alice["nonce"] == 1
    wait_converged(nodes)
