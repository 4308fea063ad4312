"""Builders for p2p socket tests: fast settings and started nodes on 127.0.0.1."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import trio

from p2p.config import P2PConfig
from p2p.node import P2P
from tests.unit.p2p.toychain import ToyChain

LOOPBACK = "/ip4/127.0.0.1/tcp/0"


def fast_config(data_dir: Path, **overrides: Any) -> P2PConfig:
    """Short timers so tests converge quickly; waits in tests are event-driven anyway."""
    settings: dict[str, Any] = {
        "listen": [LOOPBACK],
        "redial_interval": 0.5,
        "status_interval": 0.5,
        "request_timeout": 5.0,
        "handshake_timeout": 5.0,
        "tx_batch_delay": 0.02,
    }
    settings.update(overrides)
    return P2PConfig(data_dir=data_dir, **settings)


async def start_node(
    nursery: trio.Nursery, data_dir: Path, chain: ToyChain | None = None, **overrides: Any
) -> tuple[P2P, ToyChain]:
    chain = chain or ToyChain()
    node = P2P(fast_config(data_dir, **overrides), chain, on_bid=chain.on_bid)
    await nursery.start(node.run)
    return node, chain


async def wait_gossip_mesh(nodes: list[P2P], topic: str = "blocks") -> None:
    """Wait until every node has every other node in its GossipSub mesh for `topic` (with
    D = 6, a handful of nodes all mesh with each other)."""
    for node in nodes:
        others = {n.peer_id for n in nodes if n is not node}
        while not others <= set(node.gossip.mesh_peers(topic)):
            await trio.sleep(0.01)


def run(fn: Any, *args: Any, limit: float = 30.0) -> None:
    """Run an async test body under an upper time bound."""

    async def main() -> None:
        with trio.fail_after(limit):
            await fn(*args)

    trio.run(main)
