"""Each devnet gets its own genesis, made when it is created: a fresh time and a sensible target.

The built-in `chain/networks/devnet.json` is the template (funded well-known keys, 2-second blocks).
Its `genesis_time` is fixed in the past, and ASERT is anchored at genesis: a chain started long
after that time is "behind schedule" by months, so its target stays at the (trivial) PoW limit and
a plain `--mine` makes hundreds of blocks a second. A devnet made now is stamped now, and its
anchor target is set from this machine's measured hash rate (a quarter of it, so the first blocks
come a little fast and ASERT tightens from there rather than waiting half-lives to ease).

The genesis is written once, to `<datadir>/genesis.json`, and read from there at every later start,
so the chain id never changes across restarts. A data dir whose chain was made before this file
existed keeps running on the built-in template (its chain id is the template's); nothing is written. `neuro devnet up` makes one
genesis for the whole cluster and gives each node a copy (neurod/devnet.py).
"""

from __future__ import annotations

import json
import time
from importlib import resources
from pathlib import Path
from typing import Any

from chain.files import write_atomic
from chain.pow import bits_to_target, mine, target_to_bits

GENESIS_FILE = "genesis.json"
TEMPLATE = "devnet"
CALIBRATION_NONCES = 100_000  # ~0.05-0.1 s of hashing: enough for a rate within a few percent
RATE_SHARE = 4  # the anchor target asks a quarter of the measured hash rate


def template_doc() -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(resources.files("chain.networks").joinpath(f"{TEMPLATE}.json").read_text())
    return doc


def fresh_doc(template: dict[str, Any], now: int, hashes_per_s: float) -> dict[str, Any]:
    """The template stamped ``now``, its anchor target worth ``target_block_time`` seconds of a
    quarter of ``hashes_per_s`` (never easier than the PoW limit)."""
    limit = bits_to_target(int(template["pow_limit_bits"], 16))
    expected = max(1.0, hashes_per_s / RATE_SHARE * template["target_block_time"])
    target = min(limit, int((1 << 256) / expected))
    return {**template, "genesis_time": int(now), "genesis_bits": f"{target_to_bits(target):08x}"}


def measure_hash_rate(nonces: int = CALIBRATION_NONCES) -> float:
    """Hashes per second of `chain.pow.mine` on this machine (a target nothing meets)."""
    header = bytes(200)
    start = time.perf_counter()
    mine(header, target_to_bits(1), 0, nonces)
    return nonces / max(time.perf_counter() - start, 1e-6)


def write_doc(path: Path, doc: dict[str, Any]) -> None:
    write_atomic(path, (json.dumps(doc, indent=2) + "\n").encode())


def ensure_devnet_genesis(datadir: Path, *, has_chain: bool) -> Path | None:
    """`<datadir>/genesis.json`, made now, fresh, for a new data dir; None for one whose chain
    (``has_chain``) was made on the template, which it keeps (nothing is written for it)."""
    path = datadir / GENESIS_FILE
    if path.exists():
        return path
    if has_chain:
        return None
    write_doc(path, fresh_doc(template_doc(), int(time.time()), measure_hash_rate()))
    return path
