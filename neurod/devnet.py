"""A local devnet: several `neurod` processes on 127.0.0.1 with the devnet genesis.

The cluster is described by `<dir>/devnet.json` (node data dirs, pids); each node writes its own
`node.json` (RPC URL, p2p address) once it is up. Nodes are started detached (their own session),
so `neuro devnet up` returns and `neuro devnet down` stops them later from another shell.
Node i bootstraps to every earlier node, so the peer graph is connected from the start.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from neurod.datadir import make_private_dir

CLUSTER_FILE = "devnet.json"
START_TIMEOUT = 60.0


class DevnetError(Exception):
    reason = "devnet-error"


@dataclass
class NodeEntry:
    name: str
    datadir: str
    pid: int
    mining: bool

    def info(self) -> dict[str, Any] | None:
        try:
            info: dict[str, Any] = json.loads((Path(self.datadir) / "node.json").read_text())
        except (OSError, ValueError):
            return None
        return info if info.get("pid") == self.pid else None

    def alive(self) -> bool:
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True


def default_dir() -> Path:
    return Path(os.environ.get("NEURO_HOME", Path.home() / ".neuro")) / "devnet-cluster"


def load_cluster(root: Path) -> list[NodeEntry]:
    try:
        doc = json.loads((root / CLUSTER_FILE).read_text())
        return [NodeEntry(**entry) for entry in doc["nodes"]]
    except FileNotFoundError:
        raise DevnetError(f"no devnet in {root}: run `neuro devnet up` first") from None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise DevnetError(f"{root / CLUSTER_FILE} is unreadable: {exc}") from None


def _save(root: Path, nodes: list[NodeEntry]) -> None:
    tmp = root / (CLUSTER_FILE + ".tmp")
    tmp.write_text(json.dumps({"nodes": [asdict(n) for n in nodes]}, indent=2))
    os.replace(tmp, root / CLUSTER_FILE)


def up(root: Path, nodes: int, miners: int, block_interval: float, *, fresh: bool = False,
       extra: Sequence[Sequence[str]] = ()) -> list[NodeEntry]:
    """Start ``nodes`` daemons (the first ``miners`` mine) and wait until each has a peer;
    ``extra[i]`` are more flags for node i (its market agent, say)."""
    if nodes < 1 or not 0 <= miners <= nodes:
        raise DevnetError("need nodes >= 1 and 0 <= miners <= nodes")
    make_private_dir(root)  # 0700, as neurod makes its own: it holds every node's keys and cookie
    if (root / CLUSTER_FILE).exists() and any(n.alive() for n in load_cluster(root)):
        raise DevnetError(f"a devnet is already running in {root}: `neuro devnet down` first")
    entries: list[NodeEntry] = []
    bootstrap: list[str] = []
    try:
        for index in range(nodes):
            name = f"node{index}"
            datadir = root / name
            if fresh and datadir.exists():
                shutil.rmtree(datadir)
            make_private_dir(datadir)
            cmd = [
                sys.executable, "-m", "neurod", "--network", "devnet", "--datadir", str(datadir),
                "--listen", "/ip4/127.0.0.1/tcp/0", "--rpc-port", "0",
                "--status-interval", "2", "--redial-interval", "2",
            ]
            for addr in bootstrap:
                cmd += ["--bootstrap", addr]
            if index < miners:
                cmd += ["--mine", "--block-interval", str(block_interval)]
            if index < len(extra):
                cmd += list(extra[index])
            with open(datadir / "stdout.log", "ab") as log:
                proc = subprocess.Popen(
                    cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                    start_new_session=True,
                )
            entry = NodeEntry(name, str(datadir), proc.pid, index < miners)
            entries.append(entry)
            _save(root, entries)
            info = _wait(entry.info, f"{name} to start", proc)
            bootstrap.append(info["p2p_addrs"][0])
        if nodes > 1:
            for entry in entries:
                _wait(lambda e=entry: _peers(e) >= 1, f"{entry.name} to find a peer")
    except BaseException:
        down(root)
        raise
    return entries


def _wait(predicate: Any, what: str, proc: subprocess.Popen[bytes] | None = None) -> Any:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise DevnetError(f"neurod exited while waiting for {what} (status {proc.returncode})")
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise DevnetError(f"timed out waiting for {what}")


def _peers(entry: NodeEntry) -> int:
    status = call(entry, "node_status")
    return int(status["peers"]) if status else 0


def call(entry: NodeEntry, method: str, **params: Any) -> Any:
    """One JSON-RPC call to a devnet node; None when it does not answer."""
    from cli.config import RpcTarget
    from cli.output import CliError
    from cli.rpc import RpcClient

    info = entry.info()
    if info is None:
        return None
    target = RpcTarget(info["rpc_url"], Path(entry.datadir) / ".cookie", "devnet")
    try:
        return RpcClient(target, timeout=10).call(method, **params)
    except CliError:
        return None


def status(root: Path) -> list[dict[str, Any]]:
    rows = []
    for entry in load_cluster(root):
        node_status = call(entry, "node_status") if entry.alive() else None
        info = entry.info() or {}
        rows.append({
            "name": entry.name, "pid": entry.pid, "up": node_status is not None, "mining": entry.mining,
            "height": node_status["height"] if node_status else None,
            "tip": node_status["tip"][:16] if node_status else None,
            "peers": node_status["peers"] if node_status else None,
            "mempool": node_status["mempool"] if node_status else None,
            "rpc_url": info.get("rpc_url"), "datadir": entry.datadir,
        })
    return rows


def down(root: Path, timeout: float = 20.0) -> int:
    """SIGTERM every node, wait for them, SIGKILL stragglers; returns how many were running."""
    try:
        entries = load_cluster(root)
    except DevnetError:
        return 0
    running = [e for e in entries if e.alive()]
    for entry in running:
        try:
            os.kill(entry.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + timeout
    for entry in running:
        while entry.alive() and time.monotonic() < deadline:
            _reap(entry.pid)
            time.sleep(0.1)
        if entry.alive():
            os.kill(entry.pid, signal.SIGKILL)
        _reap(entry.pid)
    return len(running)


def _reap(pid: int) -> None:
    """Collect a child's exit status (when `up` ran in this process) so it stops being a zombie."""
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass
