"""Sync that a hostile peer cannot freeze or slow to a crawl, between real daemons and custom
libp2p peers speaking the real sync protocol (`tests.support.evil_peer.MirrorPeer`):
- a peer claiming more work that answers headers alternately with [1] and [1, 2] (it once held a
  node at height 2 for a minute, unpunished, at 50 requests a second) is rotated out with a
  penalty, while the node syncs from an honest peer;
- a peer that never answers block requests does not hold sync: the node syncs from the honest
  peer, and the staller is penalised (for its own round's timeouts, or for stalling as a helper).
  How long a stalling helper holds a batch (the hedge delay, not the request timeout) is pinned
  on a virtual clock in tests/unit/p2p/test_p2p_syncdriver.py; bench/net_adversarial.py times it."""

from __future__ import annotations

import urllib.request
from pathlib import Path
from typing import Any

import trio

from tests.support.chain_builders import devnet, prebuilt_chain
from tests.support.daemons import Daemon, wait_until
from tests.support.evil_peer import MirrorPeer

BLOCKS = 300


def metrics(daemon: Daemon) -> str:
    with urllib.request.urlopen(daemon.rpc_url + "metrics", timeout=10) as response:
        return response.read().decode()


def metric(daemon: Daemon, name: str) -> float:
    """A sample's value from the daemon's metrics (0 when absent)."""
    for line in metrics(daemon).splitlines():
        if line.startswith(name + " "):
            return float(line.split()[-1])
    return 0.0


def honest_source(daemons: Any, tmp_path: Path) -> tuple[Daemon, list[bytes], Any]:
    blocks, status = prebuilt_chain(devnet(), tmp_path / "honest", BLOCKS)
    return daemons("honest"), blocks, status


async def attach(mirror: MirrorPeer, victim: Daemon, nursery: trio.Nursery) -> None:
    """Start ``mirror`` and have it connect to ``victim`` (the victim then asks its status)."""
    await nursery.start(mirror.run)
    await mirror.connect(victim.p2p_addr, timeout=30)


def attack_then_sync(victim: Daemon, honest: Daemon, mirror: MirrorPeer, engaged: Any, penalised: Any) -> None:
    """``mirror`` attaches to ``victim`` first and waits until ``engaged()`` (the victim is busy
    with it); then the victim connects to ``honest``, must reach its tip, and ``penalised()``."""

    async def body() -> None:
        async with trio.open_nursery() as nursery:
            await attach(mirror, victim, nursery)
            await trio.to_thread.run_sync(lambda: wait_until(engaged, 30, "the victim to engage the hostile peer"))
            await trio.to_thread.run_sync(lambda: victim.connect(honest.p2p_addr))
            await trio.to_thread.run_sync(lambda: wait_until(
                lambda: victim.tip() == honest.tip(), 120, "the victim to sync from the honest daemon"))
            await trio.to_thread.run_sync(lambda: wait_until(penalised, 30, "the hostile peer's penalty"))
            nursery.cancel_scope.cancel()

    trio.run(body)


def test_an_alternating_peer_cannot_freeze_sync(daemons, tmp_path):
    honest, blocks, status = honest_source(daemons, tmp_path)
    victim = daemons("victim")
    alternator = MirrorPeer(tmp_path / "alternator", blocks, status, alternate=True)
    attack_then_sync(victim, honest, alternator, lambda: alternator.header_requests >= 1,  # its claim: a round at once
                     lambda: metric(victim, 'neuro_peer_penalties_total{reason="false-work"}') >= 1)
    assert victim.height() == BLOCKS
    assert metric(victim, 'neuro_sync_events{event="rotation"}') >= 1
    # rotated out and resting: a few answers per round it got, not a request storm
    assert alternator.header_requests < 20, alternator.header_requests


def test_a_stalling_helper_is_penalised_and_its_share_moves_to_the_honest_peer(daemons, tmp_path):
    honest, blocks, status = honest_source(daemons, tmp_path)
    victim = daemons("victim")
    staller = MirrorPeer(tmp_path / "staller", blocks, status, block_delay=None)  # never answers blocks
    attack_then_sync(victim, honest, staller, lambda: staller.block_requests >= 1,
                     lambda: metric(victim, 'neuro_peer_penalties_total{reason="stalling"}')
                     + metric(victim, 'neuro_peer_penalties_total{reason="timeout"}') >= 1)
    assert staller.blocks_served == 0 and victim.height() == BLOCKS
