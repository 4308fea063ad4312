"""`node_status` latency while other clients flood the RPC with junk transactions.

One devnet `neurod` on 127.0.0.1 (not mining, temporary data dir). Reference, same run: the
p50/p99 latency of `node_status` on the idle daemon. Then flood senders, each its own process (so
that their JSON work does not share the measuring process's GIL), send for a few rounds: a ~4 MB
batch of 100 `tx_submit_many` calls of 5,000 junk transactions each, then one `tx_submit_many` of
5,000 well-formed but badly signed transfers; meanwhile `node_status` is asked every few
milliseconds. Before the fix the batch ran 3.1 s and a `node_status` waited 3.04 s behind it.
Goal: p99 during the flood < 100 ms.

    python bench/rpc_flood.py [--senders 2] [--rounds 2] [--samples 300] [--max-seconds 180]
"""

from __future__ import annotations

import argparse
import base64
import http.client
import json
import multiprocessing
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from net_common import funded_network  # noqa: F401  (puts the repo on sys.path)

from chain.types import Transaction
from tests.support.daemons import Daemon
from tests.support.txs import transfer_hex

GOAL_P99_MS = 100.0
BATCH_CALLS = 100
TXS_PER_CALL = 5_000
SAMPLE_GAP = 0.005  # seconds between two node_status probes


class RpcClient:
    """One keep-alive HTTP connection to the daemon, with its cookie."""

    def __init__(self, url: str, cookie: str, timeout: float = 300.0) -> None:
        parts = urlsplit(url)
        self.conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)
        self.headers = {
            "content-type": "application/json",
            "authorization": "Basic " + base64.b64encode(cookie.encode()).decode(),
        }

    def post(self, body: bytes) -> bytes:
        self.conn.request("POST", "/", body, self.headers)
        response = self.conn.getresponse()
        reply = response.read()
        if response.status != 200:
            raise RuntimeError(f"HTTP {response.status}: {reply[:200]!r}")
        return reply


def request(method: str, params: dict[str, object], request_id: int = 1) -> dict[str, object]:
    return {"jsonrpc": "2.0", "id": request_id, "method": method, "params": params}


def junk_batch() -> bytes:
    """~4 MB: 100 tx_submit_many calls of 5,000 two-byte junk transactions each."""
    junk = [f"{i % 256:02x}{i // 256 % 256:02x}" for i in range(TXS_PER_CALL)]
    return json.dumps([request("tx_submit_many", {"txs": junk}, i) for i in range(BATCH_CALLS)]).encode()


def badly_signed_call() -> bytes:
    """One tx_submit_many of 5,000 transfers that decode but whose signatures do not verify: one
    signature reused over 5,000 nonces."""
    signed = Transaction.decode(bytes.fromhex(transfer_hex("alice", "bob", 1, nonce=0)[0]))
    txs = [
        Transaction(signed.chain_id, signed.sender, nonce, signed.fee, signed.payload, signed.signature).encode().hex()
        for nonce in range(1, TXS_PER_CALL + 1)
    ]
    return json.dumps(request("tx_submit_many", {"txs": txs})).encode()


def flood(url: str, cookie: str, rounds: int, ready: Any) -> None:
    """A flood sender's process: build the bodies, wait for the go, send them ``rounds`` times."""
    bodies = [junk_batch(), badly_signed_call()]
    client = RpcClient(url, cookie)
    ready.wait()
    for _ in range(rounds):
        for body in bodies:
            client.post(body)


def probe(client: RpcClient) -> float:
    """Milliseconds for one node_status round trip."""
    body = json.dumps(request("node_status", {})).encode()
    started = time.perf_counter()
    reply = json.loads(client.post(body))
    elapsed = (time.perf_counter() - started) * 1000
    assert "result" in reply, reply
    return elapsed


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q / 100 * len(ordered)))]


def latencies_alone(client: RpcClient, samples: int) -> list[float]:
    values = []
    for _ in range(samples):
        values.append(probe(client))
        time.sleep(SAMPLE_GAP)
    return values


def latencies_during_flood(client: RpcClient, node: Daemon, args: argparse.Namespace) -> tuple[list[float], float]:
    """Probe node_status until every sender is done (or ``--max-seconds``); the samples and the
    flood's duration."""
    context = multiprocessing.get_context("spawn")
    go = context.Event()
    senders = [
        context.Process(target=flood, args=(node.rpc_url, node.cookie(), args.rounds, go), daemon=True)
        for _ in range(args.senders)
    ]
    for sender in senders:
        sender.start()
    time.sleep(3)  # the senders build their bodies (a spawned interpreter, ~1 s) before the go
    values: list[float] = []
    started = time.perf_counter()
    go.set()
    deadline = started + args.max_seconds
    while any(s.is_alive() for s in senders) and time.perf_counter() < deadline:
        values.append(probe(client))
        time.sleep(SAMPLE_GAP)
    duration = time.perf_counter() - started
    for sender in senders:
        if sender.is_alive():
            sender.terminate()
        sender.join()
        if sender.exitcode != 0:
            raise SystemExit(f"a flood sender failed (exit {sender.exitcode}); is the daemon alive?")
    return values, duration


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--senders", type=int, default=2, help="flood client processes")
    parser.add_argument("--rounds", type=int, default=2, help="rounds of (junk batch, badly signed call) per sender")
    parser.add_argument("--samples", type=int, default=300, help="node_status probes on the idle daemon")
    parser.add_argument("--max-seconds", type=float, default=180.0, help="stop the flood after this long")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        node = Daemon(Path(tmp) / "node").start()
        try:
            client = RpcClient(node.rpc_url, node.cookie())
            alone = latencies_alone(client, args.samples)
            during, duration = latencies_during_flood(client, node, args)
            status = node.rpc("node_status")
        finally:
            node.stop()
    batch_mb = len(junk_batch()) / 1e6
    print(f"neurod devnet on 127.0.0.1; flood: {args.senders} sender processes x {args.rounds} rounds of a "
          f"{batch_mb:.1f} MB batch ({BATCH_CALLS} tx_submit_many x {TXS_PER_CALL:,} junk txs) "
          f"+ one tx_submit_many of {TXS_PER_CALL:,} badly signed txs; mempool after: {status['mempool']}")
    p50_alone, p99_alone = percentile(alone, 50), percentile(alone, 99)
    p50_flood, p99_flood = percentile(during, 50), percentile(during, 99)
    print(f"reference, node_status alone ({len(alone)} samples): p50 {p50_alone:.1f} ms, p99 {p99_alone:.1f} ms")
    print(f"node_status during the flood ({len(during)} samples over {duration:.1f} s): "
          f"p50 {p50_flood:.1f} ms, p99 {p99_flood:.1f} ms, max {max(during):.1f} ms")
    print(f"ratio during / alone: p50 {p50_flood / p50_alone:.1f}x, p99 {p99_flood / p99_alone:.1f}x   "
          f"goal: p99 < {GOAL_P99_MS:.0f} ms -> {'met' if p99_flood < GOAL_P99_MS else 'NOT met'}")


if __name__ == "__main__":
    main()
