"""A mempool squatted by gapped transactions still admits and mines an honest one (issue 17).

Four funded devnet accounts submit 250 transactions each over RPC, every one behind a nonce gap
(nonce 0 never sent): they can never be mined, and never pay their fee. The node's mempool holds
1,000 transactions (config.toml), which they once filled, so that a min-fee transaction of a fifth
account got `mempool-full`. Now they go to the queue, 16 a sender and 20 in all (2% of 1,000),
the rest refused by name; a restart brings the queue back as it was; the honest transaction is
admitted and, with the node mining, confirmed, while the queued ones stay unminable.
"""

from __future__ import annotations

import logging
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Any

from tests.support.daemons import Daemon, wait_until
from tests.support.txs import transfer_hex

log = logging.getLogger(__name__)

MAX_TXS = 1_000
QUEUE_CAP = 20  # MempoolLimits.scaled: 2% of MAX_TXS
ATTACKERS = ("treasury", "alice", "bob", "carol")
GAPPED = [transfer_hex(sender, "dave", 1, nonce, fee=50_000) for sender in ATTACKERS for nonce in range(1, 251)]
HONEST, HONEST_TXID = transfer_hex("dave", "alice", 1_000, 0, fee=1_000)  # the node's min fee


def metrics(node: Daemon) -> str:
    with urllib.request.urlopen(node.rpc_url + "metrics", timeout=10) as response:
        return str(response.read().decode())


def info(node: Daemon) -> dict[str, Any]:
    return dict(node.rpc("mempool_info"))


def test_a_gap_flood_cannot_squat_the_mempool(daemons: Any, tmp_path: Path) -> None:
    (tmp_path / "node").mkdir()
    (tmp_path / "node" / "config.toml").write_text(f"mempool_max_txs = {MAX_TXS}\n")
    node = daemons("node")
    assert (info(node)["max_txs"], info(node)["max_queued"]) == (MAX_TXS, QUEUE_CAP)

    log.info("flooding %d gapped transactions from %d senders", len(GAPPED), len(ATTACKERS))
    results = node.rpc("tx_submit_many", txs=[tx for tx, _ in GAPPED])
    reasons = Counter(result.get("reason", "ok") for result in results)
    assert set(reasons) == {"ok", "sender-queue-full", "queue-full"}, reasons
    squat = info(node)
    assert (squat["count"], squat["pending"], squat["queued"]) == (QUEUE_CAP, 0, QUEUE_CAP), squat
    queued = sorted(node.rpc("mempool_list", limit=1_000)["txs"])
    text = metrics(node)
    assert f'neuro_mempool_kind_txs{{kind="queued"}} {QUEUE_CAP}.0' in text
    assert 'neuro_mempool_evictions_total{kind="queued",reason="queue-full"}' in text

    log.info("restart: the queue comes back as it was")
    assert node.stop() == 0
    node.start()
    assert info(node) == squat
    assert sorted(node.rpc("mempool_list", limit=1_000)["txs"]) == queued
    assert f"{QUEUE_CAP} of {QUEUE_CAP} saved transactions restored" in node.log_lines("mempool: ")

    log.info("an honest min-fee transaction from a new sender")
    assert node.rpc("tx_submit", tx=HONEST)["txid"] == HONEST_TXID
    assert (info(node)["pending"], info(node)["queued"]) == (1, QUEUE_CAP)

    log.info("mining: the honest transaction is confirmed, the queued ones never")
    assert node.stop() == 0
    node.mine = True
    node.start()
    wait_until(lambda: node.tx_status(HONEST_TXID) == "confirmed", 60, "the honest transaction mined")
    height = node.height()
    wait_until(lambda: node.height() >= height + 2, 60, "two more blocks")
    left = info(node)
    assert (left["pending"], left["queued"]) == (0, QUEUE_CAP), left
    assert all(node.tx_status(txid) == "pending" for txid in queued[:3])  # in the mempool, unmined
