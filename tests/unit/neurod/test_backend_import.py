"""The node's sync entry point: one fetched batch per call, one verdict per block it tried."""

from __future__ import annotations

from pathlib import Path

import trio

from neurod.config import NodeConfig
from neurod.node import Node
from p2p.backend import Outcome
from tests.support.chain_builders import mine_blocks, new_chain


def test_a_sync_batch_gets_one_verdict_per_block_tried(tmp_path: Path) -> None:
    blocks = mine_blocks(new_chain(), 4)
    encoded = [block.encode() for block in blocks]
    node = Node(NodeConfig(datadir=tmp_path, network="devnet", listen=("/ip4/127.0.0.1/tcp/0",)))
    verdicts: list[list[Outcome]] = []

    async def sync() -> None:
        # a block that does not decode ends the batch; the blocks before it are imported
        tried = await node.backend.import_blocks([*encoded[:2], b"\xc1 not a block", *encoded[2:]], "peer")
        verdicts.append([verdict.outcome for verdict in tried])
        tried = await node.backend.import_blocks(encoded, "peer")  # the first two are known
        verdicts.append([verdict.outcome for verdict in tried])

    try:
        trio.run(sync)
    finally:
        node.kv.close()
    assert verdicts == [
        [Outcome.ACCEPT, Outcome.ACCEPT, Outcome.REJECT],
        [Outcome.IGNORE, Outcome.IGNORE, Outcome.ACCEPT, Outcome.ACCEPT],
    ]
    assert node.chain.tip_hash == blocks[-1].hash
    assert "neuro_blocks_imported_total 4.0" in node.metrics.render().decode()
