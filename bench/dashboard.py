"""Dashboard first page load on a node with a long chain: the time for a logged-in browser's
first visit (`GET /ui` on a new connection, then its stylesheet and script) on a real `neurod`
whose LevelDB holds 10,000 blocks (2 transfers each), built before it starts. Goal: < 200 ms.
Reference, same run and node: a bare JSON-RPC call (`node_status`) on a new connection. Also
shown: one live refresh (`GET /ui/live`, what the page polls every 2 s).

    python bench/dashboard.py [--blocks 10000] [--runs 20]
"""

from __future__ import annotations

import argparse
import base64
import http.client
import json
import statistics
import tempfile
import time
import urllib.parse
from pathlib import Path

from net_common import funded_network, presigned  # also puts the repo on sys.path

from tests.support.chain_builders import prebuilt_chain
from tests.support.daemons import Daemon

GOAL_MS = 200.0
TXS_PER_BLOCK = 2


def timed_get(url: urllib.parse.SplitResult, paths: list[str], headers: dict[str, str]) -> tuple[float, int]:
    """Milliseconds to fetch ``paths`` in turn on one new connection, and the bytes read."""
    started = time.perf_counter()
    connection = http.client.HTTPConnection(url.hostname or "127.0.0.1", url.port, timeout=60)
    size = 0
    for path in paths:
        connection.request("GET", path, headers=headers)
        reply = connection.getresponse()
        body = reply.read()
        if reply.status != 200:
            raise SystemExit(f"GET {path}: HTTP {reply.status}")
        size += len(body)
    connection.close()
    return (time.perf_counter() - started) * 1000, size


def timed_rpc(url: urllib.parse.SplitResult, cookie: str) -> float:
    started = time.perf_counter()
    connection = http.client.HTTPConnection(url.hostname or "127.0.0.1", url.port, timeout=60)
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "node_status"})
    connection.request("POST", "/", body=body, headers={
        "authorization": "Basic " + base64.b64encode(cookie.encode()).decode(), "content-type": "application/json"})
    reply = connection.getresponse()
    reply.read()
    connection.close()
    return (time.perf_counter() - started) * 1000


def session_of(node: Daemon, url: urllib.parse.SplitResult) -> str:
    """A dashboard session, by the one-time link of `ui_login` (what `neuro ui` prints)."""
    link = urllib.parse.urlsplit(node.rpc("ui_login")["url"])
    connection = http.client.HTTPConnection(url.hostname or "127.0.0.1", url.port, timeout=60)
    connection.request("GET", f"{link.path}?{link.query}")
    reply = connection.getresponse()
    reply.read()
    connection.close()
    return str(reply.headers["set-cookie"]).split(";")[0]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--blocks", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        genesis, genesis_path, seeds = funded_network(work, 100)
        txs = presigned(genesis, seeds, -(-args.blocks * TXS_PER_BLOCK // len(seeds)))
        started = time.perf_counter()
        prebuilt_chain(genesis, work / "node", args.blocks, txs, TXS_PER_BLOCK)
        built = time.perf_counter() - started
        node = Daemon(work / "node", genesis=str(genesis_path)).start()
        try:
            assert node.height() == args.blocks, node.height()
            url = urllib.parse.urlsplit(node.rpc_url)
            session = {"cookie": session_of(node, url)}
            first, size = timed_get(url, ["/ui", "/ui/static/ui.css", "/ui/static/ui.js"], session)
            loads = [timed_get(url, ["/ui", "/ui/static/ui.css", "/ui/static/ui.js"], session)[0]
                     for _ in range(args.runs)]
            lives = [timed_get(url, ["/ui/live"], session)[0] for _ in range(args.runs)]
            rpcs = [timed_rpc(url, node.cookie()) for _ in range(args.runs)]
        finally:
            node.stop()
    load, live, rpc = statistics.median(loads), statistics.median(lives), statistics.median(rpcs)
    print(f"chain of {args.blocks:,} blocks ({TXS_PER_BLOCK} transfers each) built in {built:.1f} s")
    print(f"dashboard first page load (/ui + css + js, {size:,} bytes, new connection): first {first:.1f} ms, "
          f"median of {args.runs} {load:.1f} ms")
    print(f"live refresh (/ui/live): median {live:.1f} ms")
    print(f"reference, bare JSON-RPC node_status on a new connection: median {rpc:.1f} ms; "
          f"ratio page / rpc {load / rpc:.1f}")
    worst = max(first, load)
    print(f"goal < {GOAL_MS:.0f} ms -> {'met' if worst < GOAL_MS else 'NOT met'} ({worst:.1f} ms)")


if __name__ == "__main__":
    main()
