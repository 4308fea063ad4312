"""Sync under attack: a fresh daemon catches up 500 blocks from an honest daemon while hostile
peers try to hold it back, each setting reported as a ratio to the clean run (same machine, same
chain, same run).

Settings (the hostile peers attach to the fresh daemon first, then it connects to the honest one;
the clock runs from that connect until its tip is the honest tip):
- clean: the honest daemon only;
- slow helper: a peer claiming the honest chain that answers block requests after 25 s (it is
  picked as a block-fetch helper, and has a round of its own);
- alternating peer: a peer claiming far more work that answers headers alternately with [1] and
  [1, 2] (once froze sync at height 2);
- 200 held connections: 200 libp2p identities dial in, answer the handshake, claim no work and
  sit idle (`tests.support.peer_crowd`); the daemon admits what its inbound caps allow.
Goal: each ratio <= 2.

    python bench/net_adversarial.py [--blocks 500] [--txs 5]
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import trio
from net_common import funded_network, presigned

from p2p.backend import ChainStatus
from tests.support.chain_builders import prebuilt_chain
from tests.support.daemons import Daemon, wait_until
from tests.support.evil_peer import MirrorPeer
from tests.support.peer_crowd import PeerCrowd

GOAL = 2.0
HELD = 200
LOOPBACK = {"max_inbound_per_ip": 1000, "max_pending_per_ip": 1000}
Attack = Callable[[Daemon, trio.Nursery], Awaitable[Any]]


def timed_sync(work: Path, name: str, genesis_path: Path, honest: Daemon, attack: Attack | None) -> float:
    """Seconds for a fresh daemon to reach the honest tip once it connects to the honest daemon,
    with ``attack`` attached to it first."""
    # every peer here is on 127.0.0.1: the per-IP caps are raised as if each had its own address
    (work / name).mkdir(parents=True, exist_ok=True)
    (work / name / "config.toml").write_text("".join(f"{k} = {v}\n" for k, v in LOOPBACK.items()))
    fresh = Daemon(work / name, genesis=str(genesis_path)).start()
    try:
        async def run() -> float:
            async with trio.open_nursery() as nursery:
                if attack is not None:
                    await attack(fresh, nursery)
                started = time.perf_counter()
                await trio.to_thread.run_sync(lambda: fresh.connect(honest.p2p_addr))
                await trio.to_thread.run_sync(lambda: wait_until(lambda: fresh.tip() == honest.tip(), 600,
                                                                 f"{name}: sync", 0.02))
                elapsed = time.perf_counter() - started
                nursery.cancel_scope.cancel()
            return elapsed

        return trio.run(run)
    finally:
        fresh.stop()
        shutil.rmtree(work / name, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--blocks", type=int, default=500)
    parser.add_argument("--txs", type=int, default=5, help="transfers per block")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        genesis, genesis_path, seeds = funded_network(work, 100)
        txs = presigned(genesis, seeds, -(-args.blocks * args.txs // len(seeds))) if args.txs else []
        blocks, status = prebuilt_chain(genesis, work / "honest", args.blocks, txs, args.txs)
        honest = Daemon(work / "honest", genesis=str(genesis_path)).start()
        counter = iter(range(10**6))

        async def slow_helper(fresh: Daemon, nursery: trio.Nursery) -> None:
            mirror = MirrorPeer(work / f"slow-{next(counter)}", blocks, status, block_delay=25.0)
            await nursery.start(mirror.run)
            await mirror.connect(fresh.p2p_addr, timeout=30)
            await trio.to_thread.run_sync(lambda: wait_until(lambda: mirror.block_requests >= 1, 30, "its round"))

        async def alternating(fresh: Daemon, nursery: trio.Nursery) -> None:
            mirror = MirrorPeer(work / f"alt-{next(counter)}", blocks, status, alternate=True)
            await nursery.start(mirror.run)
            await mirror.connect(fresh.p2p_addr, timeout=30)
            await trio.to_thread.run_sync(lambda: wait_until(lambda: mirror.header_requests >= 1, 30, "its round"))

        async def held_connections(fresh: Daemon, nursery: trio.Nursery) -> None:
            # they hold connections and claim no work (a false claim is the alternating setting's)
            crowd = PeerCrowd(HELD, ChainStatus(status.genesis, 0, status.genesis, 0))
            await nursery.start(crowd.run)
            admitted = await crowd.connect_all(fresh.p2p_addr)
            print(f"  ({admitted} of {HELD} hostile connections admitted; the inbound cap "
                  "keeps slots for outbound dials and evicts for peers that bring blocks)")

        try:
            settings: list[tuple[str, Attack | None]] = [
                ("clean", None), ("slow helper", slow_helper), ("alternating peer", alternating),
                (f"{HELD} held connections", held_connections),
            ]
            times = {}
            for label, attack in settings:
                times[label] = timed_sync(work, label.replace(" ", "-"), genesis_path, honest, attack)
                print(f"sync of {args.blocks} blocks, {label}: {times[label]:.2f} s")
        finally:
            honest.stop()
    clean = times["clean"]
    for label, seconds in times.items():
        if label == "clean":
            continue
        ratio = seconds / clean

        print(f"{label}: ratio {ratio:.2f} to clean   goal <= {GOAL} -> {'met' if ratio <= GOAL else 'NOT met'}")
    print(f"(clean: {clean:.2f} s for {args.blocks} blocks of {args.txs} transfers, connect to synced tip)")


if __name__ == "__main__":
    main()
