"""A daemon on another chain id (a different genesis) does not peer with the devnet."""

from __future__ import annotations

import json

from tests.support.chain_builders import genesis_doc, numbered_seed
from tests.support.daemons import wait_until


def test_daemons_of_different_genesis_do_not_peer(daemons, tmp_path):
    other_genesis = tmp_path / "other.json"
    other_genesis.write_text(json.dumps(genesis_doc([numbered_seed(1)], network="othernet")))
    devnet_node = daemons("devnet")
    honest = daemons("honest", bootstrap=[devnet_node.p2p_addr])
    stranger = daemons("stranger", genesis=str(other_genesis), bootstrap=[devnet_node.p2p_addr])
    wait_until(lambda: honest.peers() >= 1, 30, "the devnet peer")
    assert stranger.rpc("node_status")["chain_id"] != devnet_node.rpc("node_status")["chain_id"]
    # the stranger dials (its bootstrap) and the chain handshake fails on its side...
    log = stranger.datadir / "neurod.log"
    wait_until(lambda: f"handshake with {devnet_node.peer_id} failed" in log.read_text(), 30, "a failed handshake")
    # ...and neither side counts the other as a peer, while the honest peer stays
    assert stranger.rpc("node_status")["peers"] == 0
    assert {p["peer_id"] for p in devnet_node.rpc("node_peers")} == {honest.peer_id}
