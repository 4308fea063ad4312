"""`neuro devnet up/status/down`: real processes, peered before `up` returns (its `--json` with the
funded well-known accounts), all stopped by `down`."""

from __future__ import annotations

import json
import subprocess
import sys

from chain.amounts import format_ntk
from chain.devnet_keys import devnet_address


def neuro(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "cli.main", *args], capture_output=True, text=True, timeout=180, check=False)


def test_devnet_up_status_down(tmp_path):
    root = str(tmp_path / "cluster")
    started = neuro("devnet", "up", "--nodes", "3", "--miners", "1", "--block-interval", "0.3", "--dir", root, "--json")
    try:
        assert started.returncode == 0, started.stderr
        shown = json.loads(started.stdout)
        rows = shown["nodes"]
        funded = {a["name"]: a for a in shown["accounts"]}  # what the text output lists too
        assert {"treasury", "alice", "bob", "carol", "dave"} <= set(funded)
        assert funded["alice"]["address"] == devnet_address("alice")
        assert funded["alice"]["genesis_balance_ntk"] == format_ntk(funded["alice"]["genesis_balance"]) != "0"
        assert [r["name"] for r in rows] == ["node0", "node1", "node2"]
        assert all(r["up"] and r["peers"] >= 1 and r["rpc_url"].startswith("http://127.0.0.1:") for r in rows)
        again = neuro("devnet", "up", "--dir", root)
        assert again.returncode != 0 and "already running" in again.stderr
        status = json.loads(neuro("devnet", "status", "--dir", root, "--json").stdout)
        assert len(status) == 3 and all(r["up"] for r in status)
    finally:
        stopped = neuro("devnet", "down", "--dir", root)
    assert stopped.returncode == 0 and "stopped 3 node(s)" in stopped.stderr
    after = json.loads(neuro("devnet", "status", "--dir", root, "--json").stdout)
    assert not any(r["up"] for r in after)
    assert neuro("devnet", "status", "--dir", str(tmp_path / "none")).returncode == 1
