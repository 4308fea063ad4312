"""NodeMetrics: the peer policy's penalties and bans reach `/metrics`, labelled by offence; the
mempool's evictions and expiries, by reason and kind."""

from __future__ import annotations

from pathlib import Path

import trio

from chain.errors import RejectKind
from neurod.metrics import NodeMetrics
from p2p.node import P2P
from p2p.scoring import Offence
from tests.unit.p2p.nodes import fast_config
from tests.unit.p2p.toychain import ToyChain

PEER = "12D3KooWMisbehavingPeerXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX"


def test_peer_penalties_and_bans_are_counted_by_offence(tmp_path: Path) -> None:
    metrics = NodeMetrics()
    node = P2P(fast_config(tmp_path, observer=metrics), ToyChain())

    async def body() -> None:
        node.penalise(PEER, Offence.RATE_LIMIT, "txs gossip over rate")
        node.penalise(PEER, RejectKind.INVALID, "blocks: bad-version")
        node.penalise(PEER, RejectKind.INVALID, "blocks: bad-version")  # 130 points: banned

    trio.run(body)
    text = metrics.render().decode()
    assert 'neuro_peer_penalties_total{reason="rate-limit"} 1.0' in text
    assert 'neuro_peer_penalties_total{reason="invalid"} 2.0' in text
    assert 'neuro_peer_bans_total{reason="invalid"} 1.0' in text
    assert 'neuro_peer_bans_total{reason="rate-limit"}' not in text


def test_mempool_evictions_and_expiries_are_counted_by_reason_and_kind() -> None:
    metrics = NodeMetrics()
    metrics.mempool_evicted("queue-full", "queued")
    metrics.mempool_evicted("queue-full", "queued")
    metrics.mempool_evicted("mempool-full", "pending")
    metrics.mempool_expired("queued")
    text = metrics.render().decode()
    assert 'neuro_mempool_evictions_total{kind="queued",reason="queue-full"} 2.0' in text
    assert 'neuro_mempool_evictions_total{kind="pending",reason="mempool-full"} 1.0' in text
    assert 'neuro_mempool_expired_total{kind="queued"} 1.0' in text
