"""Settings of the p2p layer, with the defaults a daemon runs with; tests shorten the intervals."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from p2p.limits import ConnectionLimits, ConnectionObserver, Uncounted
from p2p.scoring import DEFAULT_HALF_LIFE, DEFAULT_THRESHOLD, PolicyObserver, Rate, Unobserved
from p2p.wire import DEFAULT_MAX_RESPONSE_BYTES

KEY_FILE = "p2p_key"  # libp2p protobuf-serialized Ed25519 private key, mode 0600
BAN_FILE = "p2p_bans.json"


def default_rates() -> dict[str, Rate]:
    """Per-peer allowances. Generous: they stop floods, not busy honest peers."""
    return {
        "blocks": Rate(per_second=20.0, burst=200.0),
        "txs": Rate(per_second=200.0, burst=2000.0),
        "bids": Rate(per_second=50.0, burst=500.0),
        "requests": Rate(per_second=100.0, burst=400.0),
        # artifact requests (streams): a dataset is thousands of small files, each a piece-list
        # and a read request; fetchers pace themselves at 4/5 of this (p2p.artifact_fetch)
        "artifacts": Rate(per_second=200.0, burst=800.0),
    }


@dataclass(slots=True)
class P2PConfig:
    """Everything `p2p.node.P2P` needs besides the chain backend."""

    data_dir: Path  # holds the node key and the ban list
    listen: list[str] = field(default_factory=lambda: ["/ip4/0.0.0.0/tcp/0"])
    bootstrap: list[str] = field(default_factory=list)  # /ip4/H/tcp/P/p2p/ID multiaddrs
    redial_interval: float = 10.0  # seconds between re-dials of disconnected bootstrap peers
    status_interval: float = 15.0  # seconds between status polls of every peer (sync driver)
    request_timeout: float = 10.0  # seconds for one sync request, connect to last byte
    handshake_timeout: float = 5.0
    max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES
    max_block_gossip_bytes: int = 1_000_000  # libp2p's pubsub RPC cap is 1 MiB
    max_tx_batch_bytes: int = 512 * 1024
    tx_batch_size: int = 512  # transactions per gossip message at most
    tx_batch_delay: float = 0.03  # seconds a lone tx waits for company before publishing
    ban_seconds: float = 24 * 3600.0
    ban_threshold: float = DEFAULT_THRESHOLD
    score_half_life: float = DEFAULT_HALF_LIFE
    rates: dict[str, Rate] = field(default_factory=default_rates)
    # our own sync requests to one peer: half the "requests" allowance peers grant by default
    request_pace: Rate = field(default_factory=lambda: Rate(per_second=50.0, burst=200.0))
    blocks_per_request: int = 64  # get_blocks batch size during sync (<= wire.MAX_BLOCKS)
    headers_per_request: int = 2000
    artifact_streams: int = 8  # concurrent artifact streams we serve one peer
    # artifact bytes we serve one peer per second, and the burst; our loopback copy runs ~200 MB/s
    artifact_rate: Rate = field(default_factory=lambda: Rate(per_second=256.0 * 2**20, burst=64.0 * 2**20))
    artifact_timeout: float = 30.0  # seconds for a manifest or piece-list answer; 3x for a read
    observer: PolicyObserver = field(default_factory=Unobserved)  # told of every penalty and ban
    limits: ConnectionLimits = field(default_factory=ConnectionLimits)  # inbound caps (p2p.limits)
    connection_observer: ConnectionObserver = field(default_factory=Uncounted)  # told of refusals
