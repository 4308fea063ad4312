"""Real `neurod` processes for functional tests: start, call over JSON-RPC, kill, restart.

Every daemon binds 127.0.0.1 only, on ports the OS picks; it runs the devnet genesis with short
status/redial intervals so that tests wait on events (a height, a peer count), never on sleeps.
"""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any

START_TIMEOUT = 60.0
DEVNET_TEMPLATE = str(resources.files("chain.networks").joinpath("devnet.json"))


class RpcCallError(Exception):
    def __init__(self, code: int, message: str, reason: str | None) -> None:
        super().__init__(f"{code} {message} ({reason})")
        self.code, self.message, self.reason = code, message, reason


def wait_until(predicate: Callable[[], Any], timeout: float, what: str, interval: float = 0.1) -> Any:
    """Poll ``predicate`` until truthy; the timeout is an upper bound, not an expectation."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


class Daemon:
    def __init__(
        self,
        datadir: Path,
        *,
        mine: bool = False,
        block_interval: float = 0.5,
        bootstrap: list[str] | None = None,
        genesis: str | None = None,
        port: int = 0,
        extra: list[str] | None = None,
    ) -> None:
        self.datadir = Path(datadir)
        self.mine = mine
        self.block_interval = block_interval
        self.bootstrap = list(bootstrap or [])
        self.genesis = genesis
        self.port = port
        self.extra = list(extra or [])
        self.proc: subprocess.Popen[bytes] | None = None
        self.info: dict[str, Any] = {}

    # ---- life cycle ----------------------------------------------------------------------

    def command(self) -> list[str]:
        cmd = [
            sys.executable, "-m", "neurod", "--network", "devnet", "--datadir", str(self.datadir),
            "--listen", f"/ip4/127.0.0.1/tcp/{self.port}", "--rpc-port", "0",
            "--status-interval", "1", "--redial-interval", "1", "--log-level", "info",
        ]
        # the built-in devnet genesis, fixed: tests sign with its chain id (`tests.support.txs`); a
        # plain `--network devnet` data dir would get a fresh one of its own (neurod/devnet_genesis.py)
        cmd += ["--genesis", self.genesis or DEVNET_TEMPLATE]
        if self.mine:
            cmd += ["--mine", "--block-interval", str(self.block_interval)]
        for addr in self.bootstrap:
            cmd += ["--bootstrap", addr]
        return cmd + self.extra

    def start(self) -> Daemon:
        self.datadir.mkdir(parents=True, exist_ok=True)
        info_path = self.datadir / "node.json"
        info_path.unlink(missing_ok=True)
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        with open(self.datadir / "stdout.log", "ab") as log:  # the child keeps its own copy
            self.proc = subprocess.Popen(self.command(), stdout=log, stderr=subprocess.STDOUT, env=env)

        def ready() -> bool:
            if self.proc is not None and self.proc.poll() is not None:
                raise AssertionError(f"neurod exited with {self.proc.returncode}:\n{self.log_tail()}")
            try:
                info = json.loads(info_path.read_text())
            except (OSError, ValueError):
                return False
            if info.get("pid") != self.proc.pid:  # type: ignore[union-attr]
                return False
            self.info = info
            return True

        wait_until(ready, START_TIMEOUT, f"neurod in {self.datadir} to start")
        # keep the same port across restarts so that peers' bootstrap addresses stay valid
        self.port = int(self.p2p_addr.split("/tcp/")[1].split("/")[0])
        return self

    def stop(self, timeout: float = 20.0) -> int:
        if self.proc is None:
            return 0
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
            self.proc = None

    def kill(self) -> None:
        if self.proc is not None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()
            self.proc = None

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self._log()[-lines:])

    def log_lines(self, needle: str, limit: int = 40) -> str:
        """The last `limit` lines of the daemon's log that mention `needle` (a peer id, say)."""
        return "\n".join([line for line in self._log() if needle in line][-limit:])

    def _log(self) -> list[str]:
        try:
            return (self.datadir / "stdout.log").read_text().splitlines()
        except OSError:
            return []

    # ---- access --------------------------------------------------------------------------

    @property
    def p2p_addr(self) -> str:
        return str(self.info["p2p_addrs"][0])

    @property
    def peer_id(self) -> str:
        return str(self.info["peer_id"])

    @property
    def rpc_url(self) -> str:
        return str(self.info["rpc_url"])

    def cookie(self) -> str:
        return (self.datadir / ".cookie").read_text().strip()

    def http(self, body: bytes, *, auth: str | None = "cookie") -> tuple[int, bytes]:
        request = urllib.request.Request(self.rpc_url, data=body, method="POST")
        request.add_header("content-type", "application/json")
        if auth == "cookie":
            auth = self.cookie()
        if auth is not None:
            request.add_header("authorization", "Basic " + base64.b64encode(auth.encode()).decode())
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()

    def rpc(self, method: str, **params: Any) -> Any:
        body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}).encode()
        status, reply = self.http(body)
        if status != 200:
            raise AssertionError(f"HTTP {status}: {reply[:200]!r}")
        doc = json.loads(reply)
        if "error" in doc:
            error = doc["error"]
            raise RpcCallError(error["code"], error["message"], (error.get("data") or {}).get("reason"))
        return doc["result"]

    def height(self) -> int:
        return int(self.rpc("chain_head")["height"])

    def tip(self) -> str:
        return str(self.rpc("chain_head")["hash"])

    def tx_status(self, txid: str) -> str | None:
        """"confirmed", "pending", or None when the node has not seen the transaction."""
        try:
            return str(self.rpc("chain_tx", txid=txid)["status"])
        except RpcCallError as exc:
            if exc.reason == "unknown-tx":
                return None
            raise

    def connect(self, addr: str, timeout: float = 60.0) -> str:
        """`node_connect`, retried: under load libp2p's own dial handshake can time out."""

        def attempt() -> str | None:
            try:
                return str(self.rpc("node_connect", addr=addr)["peer_id"])
            except RpcCallError as exc:
                if exc.code != -32013:
                    raise
                return None

        return str(wait_until(attempt, timeout, f"a connection to {addr}", 1.0))

    def peers(self) -> int:
        return int(self.rpc("node_status")["peers"])

    def peer_ids(self) -> set[str]:
        """The peers that passed this daemon's chain handshake (`node_peers`)."""
        return {str(p["peer_id"]) for p in self.rpc("node_peers")}


def wait_converged(daemons: list[Daemon], timeout: float = 60.0, min_height: int = 0) -> str:
    """Wait until every daemon reports the same tip at or above ``min_height``; returns it."""

    def same_tip() -> str | None:
        heads = [d.rpc("chain_head") for d in daemons]
        tips = {h["hash"] for h in heads}
        if len(tips) == 1 and heads[0]["height"] >= min_height:
            return heads[0]["hash"]
        return None

    return str(wait_until(same_tip, timeout, f"{len(daemons)} nodes to converge at >= {min_height}", 0.2))
