"""Prometheus metrics of one node (its own registry, so several nodes can share a process in tests)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest


class NodeMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.height = Gauge("neuro_chain_height", "Height of the main chain's tip", registry=r)
        self.peers = Gauge("neuro_peers", "Peers that completed the chain handshake", registry=r)
        self.mempool = Gauge("neuro_mempool_txs", "Transactions in the mempool", registry=r)
        self.hashrate = Gauge("neuro_miner_hashes_per_second", "Local mining hash rate", registry=r)
        self.blocks_imported = Counter("neuro_blocks_imported", "Blocks that extended a known chain", registry=r)
        self.reorgs = Counter("neuro_reorgs", "Main-chain switches to a heavier branch", registry=r)
        self.blocks_rejected = Counter(
            "neuro_blocks_rejected", "Blocks rejected, by reason", ["reason"], registry=r
        )
        self.txs_accepted = Counter("neuro_txs_accepted", "Transactions admitted to the mempool", registry=r)
        self.txs_rejected = Counter(
            "neuro_txs_rejected", "Transactions refused by the mempool, by reason", ["reason"], registry=r
        )
        self.mempool_kind = Gauge(
            "neuro_mempool_kind_txs",
            "Transactions in the mempool by kind (pending: minable now; queued: behind a nonce gap)", ["kind"],
            registry=r,
        )
        self.mempool_bytes = Gauge(
            "neuro_mempool_bytes", "Encoded size of the mempool's transactions, by kind", ["kind"], registry=r
        )
        self.mempool_evictions = Counter(
            "neuro_mempool_evictions",
            "Transactions the mempool evicted to make room, by reason and by the evicted one's kind",
            ["reason", "kind"], registry=r,
        )
        self.mempool_expiries = Counter(
            "neuro_mempool_expired", "Transactions dropped from the mempool for age, by kind", ["kind"], registry=r
        )
        self.sync_events = Gauge(
            "neuro_sync_events",
            "Sync since start, by event: rounds run, stalls (a helper's block batch moved to another peer), "
            "rotations (a peer rotated out for bringing no new work)", ["event"], registry=r,
        )
        self.bids_accepted = Counter("neuro_bids_accepted", "Market bids that passed the bid checks", registry=r)
        self.bids_rejected = Counter(
            "neuro_bids_rejected", "Market bids refused or ignored by the bid checks, by reason", ["reason"],
            registry=r,
        )
        self.peer_penalties = Counter(
            "neuro_peer_penalties", "Misbehaviour penalties given to peers, by offence", ["reason"], registry=r
        )
        self.peer_bans = Counter(
            "neuro_peer_bans", "Peers banned, by the offence that crossed the threshold (or manual)", ["reason"],
            registry=r,
        )
        self.connection_refusals = Counter(
            "neuro_connection_refusals",
            "Inbound connections refused, by reason (pending-full, pending-per-ip, per-ip, banned, inbound-full), and "
            "inbound connections closed to make room (evicted; per-identity: replaced by a newer one of the same peer)",
            ["reason"], registry=r,
        )
        self.connections = Gauge(
            "neuro_connections", "Open libp2p connections by direction (pending: inbound, still in handshakes)",
            ["direction"], registry=r,
        )
        self.rpc_auth_failures = Counter(
            "neuro_rpc_auth_failures", "Failed RPC authentications, by outcome (refused: 401, throttled: 429)",
            ["outcome"], registry=r,
        )
        self.store_faults = Counter(
            "neuro_store_read_errors", "Stored values unreadable or not matching their hash, by reason",
            ["reason"], registry=r,
        )
        self.store_check_blocks = Gauge(
            "neuro_store_check_blocks", "Main-chain blocks verified by the start-up store check", registry=r
        )
        self.store_check_seconds = Gauge(
            "neuro_store_check_seconds", "Duration of the start-up store check", registry=r
        )

    # the p2p layer's PolicyObserver: p2p reports its verdicts here without importing neurod
    def peer_penalised(self, reason: str) -> None:
        self.peer_penalties.labels(reason).inc()

    def peer_banned(self, reason: str) -> None:
        self.peer_bans.labels(reason).inc()

    # the p2p layer's ConnectionObserver
    def connection_refused(self, reason: str) -> None:
        self.connection_refusals.labels(reason).inc()

    # the mempool's MempoolObserver
    def mempool_evicted(self, reason: str, kind: str) -> None:
        self.mempool_evictions.labels(reason, kind).inc()

    def mempool_expired(self, kind: str) -> None:
        self.mempool_expiries.labels(kind).inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)
