"""The fate of a 5 MB gossip message sent to a real daemon (issue 17, finding 5, settled):

- published by a py-libp2p peer (`EvilPeer.publish`), it never leaves the sender: py-libp2p drops
  any RPC over its 1 MiB cap on the sending side, silently, so the daemon sees nothing and blames
  nobody;
- written as a raw pubsub RPC (`publish_raw_rpc`: another implementation, or a hostile one), the
  daemon's library refuses it on its length prefix, before any validator, and the daemon
  penalises the sender as `oversize` (60 points; the second one bans it);
- a message over a topic's cap but under 1 MiB is dropped by the validator with the same penalty
  (tests/functional/node_evil_peer.py, "oversized").
Our own node never sends one: `Gossip.publish` refuses a message over its topic's cap
(`gossip-oversize`; tests/unit/p2p/test_p2p_gossip_size.py, as no RPC method publishes raw
gossip). The honest peer is served throughout.
"""

from __future__ import annotations

import urllib.request

import trio

from p2p.backend import ChainStatus
from tests.support.daemons import Daemon, wait_converged, wait_until
from tests.support.evil_peer import EvilPeer, publish_raw_rpc
from tests.support.txs import DEVNET, transfer_hex

FIVE_MB = 5 * 2**20


def penalties(daemon: Daemon) -> dict[str, float]:
    with urllib.request.urlopen(daemon.rpc_url + "metrics", timeout=10) as response:
        page = response.read().decode()
    prefix = 'neuro_peer_penalties_total{reason="'
    return {
        line[len(prefix):].split('"', 1)[0]: float(line.rsplit(" ", 1)[1])
        for line in page.splitlines() if line.startswith(prefix)
    }


def test_five_mb_gossip_is_dropped_by_the_sender_or_penalised(daemons, tmp_path):
    target = daemons("target", mine=True, block_interval=0.3)
    honest = daemons("honest", bootstrap=[target.p2p_addr])
    wait_converged([target, honest], min_height=2)
    evil = EvilPeer(tmp_path / "evil", ChainStatus(DEVNET.chain_id, 0, DEVNET.chain_id, 0))
    banned: list[bool] = []

    async def attack() -> None:
        async with trio.open_nursery() as nursery:
            await nursery.start(evil.run)
            peer = await evil.connect(target.p2p_addr, timeout=30)
            await evil.wait_subscribed(peer, "txs", timeout=30)
            await evil.publish("txs", b"\x05" * FIVE_MB)  # dropped by the evil peer's own library
            print("5 MB through py-libp2p's publish: sent nothing")
            await publish_raw_rpc(evil, peer, "txs", b"\x06" * FIVE_MB)
            try:
                await trio.to_thread.run_sync(
                    lambda: wait_until(lambda: penalties(target).get("oversize", 0) >= 1, 60, "one oversize penalty")
                )
            except AssertionError:  # say what the target made of the evil peer, then fail
                print(f"penalties {penalties(target)}; target on the evil peer:\n{target.log_lines(evil.peer_id)}")
                raise
            assert penalties(target)["oversize"] == 1
            print("5 MB as a raw RPC: refused by the daemon's library, penalised as oversize")
            await publish_raw_rpc(evil, peer, "txs", b"\x07" * FIVE_MB)
            banned.append(await evil.banned_by(target.p2p_addr, timeout=30))
            nursery.cancel_scope.cancel()

    async def bounded() -> None:
        with trio.fail_after(120):
            await attack()

    trio.run(bounded)
    assert banned == [True], target.log_lines(evil.peer_id)
    assert "pubsub: rpc-too-large" in target.log_lines(evil.peer_id)
    # the honest peer is still served: its transaction gossips to the miner and is mined
    tx, txid = transfer_hex("alice", "bob", 555, nonce=0)
    honest.rpc("tx_submit", tx=tx)
    wait_until(lambda: target.tx_status(txid) == "confirmed", 60, "the honest transaction mined")
    wait_converged([target, honest])
