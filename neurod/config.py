"""Node configuration: defaults per network, `<datadir>/config.toml`, then command-line flags.

Later sources win. Unknown keys in config.toml are an error (a typo must not silently fall back to a
default), and every value is type-checked with a message naming the key.
"""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

DEFAULT_PORTS = {"main": (7760, 7761), "devnet": (17760, 17761)}  # (p2p, rpc)
CONFIG_FILE = "config.toml"


class ConfigError(Exception):
    """A configuration problem, explained in one line."""

    reason = "bad-config"


@dataclass(frozen=True)
class NodeConfig:
    datadir: Path
    network: str = "main"  # a built-in network name, or "custom" with `genesis` set
    genesis: str | None = None  # path to a genesis file (overrides the built-in one)
    listen: tuple[str, ...] = ()  # libp2p multiaddrs; default: all interfaces on the p2p port
    bootstrap: tuple[str, ...] = ()
    rpc_host: str = "127.0.0.1"
    rpc_port: int | None = None  # None: the network's default; 0: any free port
    mine: bool = False
    miner_address: str | None = None  # default: the node key's address
    mining_processes: int = 1
    block_interval: float = 0.0  # minimum seconds between our blocks (devnet pacing); 0 = none
    verify_workers: int = 2  # processes checking block and tx-batch signatures
    log_level: str = "info"
    log_format: str = "text"  # text | json
    status_interval: float = 15.0
    redial_interval: float = 10.0
    # inbound connection caps (p2p/limits.py); tests on 127.0.0.1 raise the per-IP ones
    max_inbound: int = 100
    max_inbound_per_ip: int = 8
    max_pending_inbound: int = 16  # inbound connections in their handshakes at once
    max_pending_per_ip: int = 4
    mempool_max_txs: int = 50_000
    min_fee: int = 1_000
    check_blocks: int = 6  # main-chain blocks read back and undone in a scratch overlay at start
    verify_checksums: bool = True  # LevelDB verifies its block checksums on every read
    artifact_budget_mb: int = 20 << 10  # the artifact store's size; least recently used evicted
    artifact_serve: bool = True  # serve stored artifacts to peers (neurod/artifact_backend.py)
    # market agents (neurod/market/): the account they act for, and what the worker sells
    agent_key: str | None = None  # a wallet key file, or on a devnet "devnet:<name>"
    agent_password_file: str | None = None  # else the NEURO_AGENT_PASSWORD variable
    worker: bool = False  # sell compute: bid on jobs, run awarded shards
    worker_services: tuple[str, ...] = ("generate",)  # generate | train | label
    worker_floor_min: int = 1  # bounds of the adaptive price floor, base units per quote unit
    worker_floor_max: int = 10**6
    worker_slots: int = 1  # shards run at once on the CPU, one child process each (no GPU in use)
    worker_devices: str = "auto"  # auto (one slot per CUDA GPU, else worker_slots CPU slots) | cpu | cuda:0,cuda:1,...
    worker_stake: str = "0"  # NTK kept bonded (staked at start when the balance allows)
    worker_fault: str | None = None  # test only, devnet only: "corrupt-item" | "skip-training" | "random-labels" (a dishonest worker)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def genesis_source(self) -> str:
        return self.genesis or self.network

    def resolved_listen(self) -> list[str]:
        if self.listen:
            return list(self.listen)
        port = DEFAULT_PORTS.get(self.network, DEFAULT_PORTS["main"])[0]
        return [f"/ip4/0.0.0.0/tcp/{port}"]

    def resolved_rpc_port(self) -> int:
        if self.rpc_port is not None:
            return self.rpc_port
        return DEFAULT_PORTS.get(self.network, DEFAULT_PORTS["main"])[1]


def default_datadir(network: str) -> Path:
    return Path(os.environ.get("NEURO_HOME", Path.home() / ".neuro")) / network


_TYPES: dict[str, type | tuple[type, ...]] = {
    "network": str, "genesis": str, "listen": list, "bootstrap": list, "rpc_host": str,
    "rpc_port": int, "mine": bool, "miner_address": str, "mining_processes": int,
    "block_interval": (int, float), "verify_workers": int, "log_level": str, "log_format": str,
    "status_interval": (int, float), "redial_interval": (int, float), "mempool_max_txs": int,
    "max_inbound": int, "max_inbound_per_ip": int, "max_pending_inbound": int, "max_pending_per_ip": int,
    "min_fee": int, "check_blocks": int, "verify_checksums": bool,
    "artifact_budget_mb": int, "artifact_serve": bool,
    "agent_key": str, "agent_password_file": str, "worker": bool, "worker_services": list,
    "worker_floor_min": int, "worker_floor_max": int, "worker_slots": int, "worker_stake": str, "worker_fault": str,
    "worker_devices": str,
}


_RENAMED = {"verify_threads": "verify_workers"}  # old name -> new: say so rather than just "unknown"


def _check(key: str, value: Any, where: str) -> Any:
    if key not in _TYPES:
        hint = f" (renamed to {_RENAMED[key]!r})" if key in _RENAMED else ""
        raise ConfigError(f"{where}: unknown setting {key!r}{hint}")
    kind = _TYPES[key]
    if isinstance(value, bool) and kind is not bool or not isinstance(value, kind):
        raise ConfigError(f"{where}: {key!r} has the wrong type ({type(value).__name__})")
    if isinstance(value, list):
        if not all(isinstance(v, str) for v in value):
            raise ConfigError(f"{where}: {key!r} must be a list of strings")
        return tuple(value)
    return value


WORKER_SERVICES = ("generate", "train", "label")
WORKER_FAULTS = ("corrupt-item", "skip-training", "random-labels")


def _check_worker(settings: dict[str, Any]) -> None:
    from chain.amounts import AmountError, parse_ntk

    unknown = set(settings.get("worker_services", ())) - set(WORKER_SERVICES)
    if unknown:
        raise ConfigError(f"worker_services: unknown {', '.join(sorted(unknown))} (offer {', '.join(WORKER_SERVICES)})")
    low, high = settings.get("worker_floor_min", 1), settings.get("worker_floor_max", 10**6)
    if not 1 <= low <= high:
        raise ConfigError(f"worker floor bounds must satisfy 1 <= worker_floor_min <= worker_floor_max, got {low}, {high}")
    if settings.get("worker_slots", 1) < 1:
        raise ConfigError("worker_slots must be 1 or more")
    devices = settings.get("worker_devices", "auto")
    if devices not in ("auto", "cpu") and not re.fullmatch(r"cuda:\d+(,cuda:\d+)*", devices):
        raise ConfigError(f"worker_devices must be auto, cpu or a list like cuda:0,cuda:1; got {devices!r}")
    try:
        parse_ntk(settings.get("worker_stake", "0"))
    except AmountError as exc:
        raise ConfigError(f"worker_stake: {exc}") from None
    fault = settings.get("worker_fault")
    if fault is not None and (fault not in WORKER_FAULTS or settings.get("network") != "devnet"):
        raise ConfigError(f"worker_fault {fault!r} is a devnet test switch ({', '.join(WORKER_FAULTS)})")
    if settings.get("worker") and not settings.get("agent_key"):
        raise ConfigError("worker = true needs agent_key: the account that bids, stakes and is paid")


def load_config(datadir: Path, overrides: dict[str, Any]) -> NodeConfig:
    """Defaults <- `<datadir>/config.toml` <- ``overrides`` (flags given on the command line)."""
    settings: dict[str, Any] = {}
    path = datadir / CONFIG_FILE
    if path.exists():
        try:
            doc = tomllib.loads(path.read_text())
        except OSError as exc:
            raise ConfigError(f"{path}: cannot be read ({(exc.strerror or str(exc)).lower()})") from None
        except ValueError as exc:  # TOML syntax, or bytes that are not UTF-8
            raise ConfigError(f"{path}: {exc}") from None
        settings.update({k: _check(k, v, str(path)) for k, v in doc.items()})
    settings.update({k: _check(k, v, "command line") for k, v in overrides.items() if v is not None})
    if settings.get("check_blocks", 0) < 0:
        raise ConfigError(f"check_blocks must be 0 or more, got {settings['check_blocks']}")
    for cap in ("max_inbound", "max_inbound_per_ip", "max_pending_inbound", "max_pending_per_ip"):
        if settings.get(cap, 1) < 1:
            raise ConfigError(f"{cap} must be 1 or more, got {settings[cap]}")
    if settings.get("artifact_budget_mb", 1) < 1:
        raise ConfigError(f"artifact_budget_mb must be 1 or more, got {settings['artifact_budget_mb']}")
    if settings.get("log_format", "text") not in ("text", "json"):
        raise ConfigError("log_format must be 'text' or 'json'")
    _check_worker(settings)
    names = {f.name for f in fields(NodeConfig)}
    return replace(NodeConfig(datadir=datadir), **{k: v for k, v in settings.items() if k in names})
