"""A small market of real daemons for functional tests: a mining client with a market agent and
worker daemons with bonded stake, and the job they trade (tests/functional/node_market.py and the
dashboard's browser test share it)."""

from __future__ import annotations

from functools import partial
from typing import Any

from chain.devnet_keys import devnet_address
from tests.support.daemons import Daemon, wait_converged, wait_until

SPEC = {"task": "render", "seed": 7, "spec": {"kind": "shelf", "count": 8}}
BLOCK = 0.3  # seconds between the client's blocks


def worker_flags(name: str, floor: int, *extra: str) -> list[str]:
    return ["--agent-key", f"devnet:{name}", "--worker", "--worker-stake", "100", "--worker-floor-min", str(floor),
            "--worker-floor-max", str(floor * 4), *extra]


def market(daemons: Any, workers: dict[str, list[str]], block: float = BLOCK) -> tuple[Daemon, dict[str, Daemon]]:
    """A mining client daemon (alice's agent, a block every ``block`` s) and a worker daemon per
    name, converged, with every worker's stake bonded."""
    client = daemons("client", mine=True, block_interval=block, extra=["--agent-key", "devnet:alice"])
    started = {name: daemons(name, bootstrap=[client.p2p_addr], extra=flags) for name, flags in workers.items()}
    wait_converged([client, *started.values()], min_height=1)
    for name in started:
        wait_until(partial(bonded, client, name), 90, f"{name}'s stake bonded")
    return client, started


def staked(daemon: Daemon, name: str) -> float:
    return float(daemon.rpc("stake_get", address=devnet_address(name))["bonded_ntk"])


def bonded(daemon: Daemon, name: str) -> bool:
    """Whether ``name``'s worker stake (100 NTK, `worker_flags`) is bonded on ``daemon``'s chain."""
    return staked(daemon, name) >= 100


def submit(client: Daemon, **params: Any) -> str:
    params = {"service": "generate", "spec": SPEC, "shards": 2, "max_price": 1000, "bid_blocks": 6,
              "deadline_blocks": 40, "challenge_blocks": 12, **params}
    return str(client.rpc("job_submit", **params)["job"])
