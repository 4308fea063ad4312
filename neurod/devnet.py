"""A local devnet: several `neurod` processes on 127.0.0.1 with one devnet genesis of their own.

The cluster is described by `<dir>/devnet.json` (node data dirs, pids); each node writes its own
`node.json` (RPC URL, p2p address) once it is up. Nodes are started detached (their own session),
so `neuro devnet up` returns and `neuro devnet down` stops them later from another shell.
Node i bootstraps to every earlier node, so the peer graph is connected from the start.

The cluster's genesis (`<dir>/genesis.json`) is made when the cluster is, with a fresh time
(neurod/devnet_genesis.py), and copied into each node's data dir, where neurod reads it at every
start. `--fresh` removes the nodes' chains and makes a new genesis, but never a key: `node_key`,
`p2p_key`, `config.toml` and any `keystore/` stay.
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

from neurod.config import CONFIG_FILE
from neurod.datadir import CHAIN_DIR, NODE_KEY_FILE, make_private_dir
from neurod.devnet_genesis import (
    GENESIS_FILE,
    fresh_doc,
    measure_hash_rate,
    template_doc,
    write_doc,
)
from p2p.config import KEY_FILE as P2P_KEY_FILE
from wallet.node_client import NodeClientError, RpcClient, RpcTarget

CLUSTER_FILE = "devnet.json"
START_TIMEOUT = 60.0
KEEP_ON_FRESH = frozenset({NODE_KEY_FILE, P2P_KEY_FILE, CONFIG_FILE, "keystore"})  # keys are never deleted


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


def fresh_removals(root: Path, nodes: int) -> list[Path]:
    """What `up --fresh` removes: the cluster's genesis and each node's chain data, never a key."""
    found = [root / GENESIS_FILE] if (root / GENESIS_FILE).exists() else []
    for index in range(nodes):
        datadir = root / f"node{index}"
        if datadir.is_dir():
            found += sorted(p for p in datadir.iterdir() if p.name not in KEEP_ON_FRESH)
    return found


def remove(paths: Sequence[Path]) -> None:
    for path in paths:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)


def cluster_genesis(root: Path, nodes: int) -> dict[str, Any]:
    """The cluster's genesis: the one it has; else a node's (a cluster made before `<dir>/genesis.json`
    was kept); else the template, when a node already has a chain made on it; else a fresh one."""
    datadirs = [root / f"node{index}" for index in range(nodes)]
    for path in [root / GENESIS_FILE] + [d / GENESIS_FILE for d in datadirs]:
        if path.exists():
            doc: dict[str, Any] = json.loads(path.read_text())
            return doc
    if any((d / CHAIN_DIR).is_dir() and any((d / CHAIN_DIR).iterdir()) for d in datadirs):
        return template_doc()
    return fresh_doc(template_doc(), int(time.time()), measure_hash_rate())


def up(root: Path, nodes: int, miners: int, block_interval: float, *, fresh: bool = False,
       extra: Sequence[Sequence[str]] = ()) -> list[NodeEntry]:
    """Start ``nodes`` daemons (the first ``miners`` mine) and wait until each has a peer;
    ``extra[i]`` are more flags for node i (its market agent, say). ``fresh`` first removes what
    `fresh_removals` lists."""
    if nodes < 1 or not 0 <= miners <= nodes:
        raise DevnetError("need nodes >= 1 and 0 <= miners <= nodes")
    make_private_dir(root)  # 0700, as neurod makes its own: it holds every node's keys and cookie
    if (root / CLUSTER_FILE).exists() and any(n.alive() for n in load_cluster(root)):
        raise DevnetError(f"a devnet is already running in {root}: `neuro devnet down` first")
    if fresh:
        remove(fresh_removals(root, nodes))
    genesis = cluster_genesis(root, nodes)
    write_doc(root / GENESIS_FILE, genesis)
    entries: list[NodeEntry] = []
    bootstrap: list[str] = []
    try:
        for index in range(nodes):
            name = f"node{index}"
            datadir = root / name
            make_private_dir(datadir)
            if not (datadir / GENESIS_FILE).exists():
                write_doc(datadir / GENESIS_FILE, genesis)
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


def client_of(entry: NodeEntry, timeout: float = 10.0) -> RpcClient | None:
    """An RPC client of a devnet node; None while it has not written its `node.json`."""
    info = entry.info()
    if info is None:
        return None
    target = RpcTarget(info["rpc_url"], Path(entry.datadir) / ".cookie", "devnet", "neuro devnet up")
    return RpcClient(target, timeout=timeout)


def call(entry: NodeEntry, method: str, **params: Any) -> Any:
    """One JSON-RPC call to a devnet node; None when it does not answer."""
    client = client_of(entry)
    if client is None:
        return None
    try:
        return client.call(method, **params)
    except NodeClientError:
        return None


def status(root: Path) -> list[dict[str, Any]]:
    """One row per node. A node that does not answer is down, whatever it was started as: its
    live fields are None (`neuro devnet status` shows "-") and it is not mining."""
    rows = []
    for entry in load_cluster(root):
        found = call(entry, "node_status") if entry.alive() else None
        live: dict[str, Any] = found if found is not None else {}
        rows.append({
            "name": entry.name, "pid": entry.pid if found else None, "up": found is not None,
            "mining": bool(live.get("mining", False)), "miner": entry.mining,
            "height": live.get("height"), "tip": live.get("tip"), "peers": live.get("peers"),
            "mempool": live.get("mempool"),
            "rpc_url": (entry.info() or {}).get("rpc_url") if found else None, "datadir": entry.datadir,
        })
    return rows


def funded_accounts(root: Path) -> list[dict[str, Any]]:
    """The well-known accounts the devnet's genesis funds (their seeds are public,
    chain/devnet_keys.py), in genesis order: name, address and genesis balance (base units and NTK)."""
    from chain.amounts import format_ntk
    from chain.crypto import encode_address
    from chain.genesis import load_genesis

    genesis = load_genesis(root / GENESIS_FILE)
    funded = dict(genesis.allocations)
    return [{"name": name, "address": encode_address(account, genesis.params.hrp),
             "genesis_balance": funded[account], "genesis_balance_ntk": format_ntk(funded[account])}
            for name, account in genesis.names.items() if funded.get(account)]


def first_up(root: Path) -> NodeEntry:
    """The first node of the devnet that answers (the faucet and the CLI talk to it)."""
    for entry in load_cluster(root):
        if entry.alive() and call(entry, "node_status") is not None:
            return entry
    raise DevnetError(f"the devnet in {root} is down: start it with `neuro devnet up`")


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
