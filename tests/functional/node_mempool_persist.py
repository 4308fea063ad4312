"""Transactions a node accepted over RPC survive its SIGKILL or clean stop, and then get mined.

A non-mining node (so nothing leaves its mempool) takes transactions through `tx_submit` and
`tx_submit_many`, is killed (they live in mempool.journal) or stopped (its shutdown wrote them to
mempool.dat and emptied the journal), and restarts with every one of them back in the mempool,
re-validated. Restarted once more as a miner, it confirms them all.

A transaction a node accepted while no peer heard it (submitted alone, or restored after a kill
that beat its gossip batch) is announced again when a peer comes, and mined there.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from chain.genesis import load_genesis
from neurod.mempool_format import JOURNAL_MAGIC, SNAPSHOT_MAGIC, parse
from tests.support.daemons import Daemon, wait_until
from tests.support.txs import transfer_hex

CHAIN_ID = load_genesis("devnet").chain_id
SINGLES = [transfer_hex("alice", "bob", 1_000 + nonce, nonce) for nonce in range(5)]
BULK = [transfer_hex("carol", "dave", 2_000 + nonce, nonce) for nonce in range(200)]
ALL_TXIDS = sorted(txid for _, txid in SINGLES + BULK)


def mempool(node: Daemon) -> list[str]:
    listed = node.rpc("mempool_list", limit=1_000)
    assert listed["count"] == len(listed["txs"])
    return sorted(listed["txs"])


def saved_entries(datadir: Path, name: str, magic: bytes) -> int:
    read = parse((datadir / name).read_bytes(), magic, CHAIN_ID)
    assert read.damage is None
    return len(read.entries)


@pytest.mark.parametrize("stop", ["sigkill", "sigterm"])
def test_accepted_transactions_survive_a_restart_and_get_mined(daemons, stop: str) -> None:
    node = daemons("node")
    for tx, txid in SINGLES:
        assert node.rpc("tx_submit", tx=tx)["txid"] == txid
    replies = node.rpc("tx_submit_many", txs=[tx for tx, _ in BULK])
    assert [reply.get("txid") for reply in replies] == [txid for _, txid in BULK]
    assert mempool(node) == ALL_TXIDS

    if stop == "sigkill":
        node.kill()
        assert saved_entries(node.datadir, "mempool.journal", JOURNAL_MAGIC) == len(ALL_TXIDS)
    else:
        assert node.stop() == 0
        assert saved_entries(node.datadir, "mempool.dat", SNAPSHOT_MAGIC) == len(ALL_TXIDS)
        assert saved_entries(node.datadir, "mempool.journal", JOURNAL_MAGIC) == 0
    node.start()
    assert mempool(node) == ALL_TXIDS
    restored = f"{len(ALL_TXIDS)} of {len(ALL_TXIDS)} saved transactions restored, 0 no longer valid"
    assert restored in node.log_lines("mempool: "), node.log_lines("mempool: ")

    assert node.stop() == 0
    node.mine = True
    node.start()
    wait_until(
        lambda: all(node.tx_status(txid) == "confirmed" for txid in ALL_TXIDS), 120, "every transaction mined"
    )
    assert mempool(node) == []


@pytest.mark.parametrize("how", ["submitted alone", "restored"])
def test_a_transaction_nobody_heard_is_announced_again_when_a_peer_comes(daemons, how: str) -> None:
    node = daemons("node")
    tx, txid = SINGLES[0]
    assert node.rpc("tx_submit", tx=tx)["txid"] == txid  # no peer: the first announcement reaches nobody
    if how == "restored":
        node.kill()
        node.start()
        assert mempool(node) == [txid]
    miner = daemons("miner", mine=True, bootstrap=[node.p2p_addr])
    wait_until(lambda: miner.tx_status(txid) == "confirmed", 90, "the miner to hear the transaction and mine it")
    wait_until(lambda: mempool(node) == [], 90, "the node to see it mined")
