"""The process `test_mempool_crash.py` kills: a `Node` over a data dir, built as neurod builds it.

    mempool_crash_child.py DATADIR close|kill [TX_HEX ...]

Prints the txids its mempool holds once started (one JSON list), then admits each transaction as
one `tx_submit` call would (a local transaction, journaled in one write) and prints
`accepted <txid>` after each, as the call would reply; then shuts down cleanly (`close`, which
snapshots the mempool) or SIGKILLs itself (`kill`). `NEURO_FAILPOINT` may kill it anywhere.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
from pathlib import Path

from chain.types import Transaction
from neurod.config import NodeConfig
from neurod.node import Node


def main() -> None:
    datadir, ending, *txs = sys.argv[1:]
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    node = Node(NodeConfig(datadir=Path(datadir), network="devnet", listen=("/ip4/127.0.0.1/tcp/0",)))
    print(json.dumps(sorted(txid.hex() for txid in node.mempool.txids())), flush=True)
    for item in txs:
        raw = bytes.fromhex(item)
        txid = node.add_transaction(Transaction.decode(raw), encoded=raw, local=True)
        print("accepted", txid.hex(), flush=True)
    if ending == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
    node.close()


if __name__ == "__main__":
    main()
