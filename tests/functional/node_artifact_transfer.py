"""Artifact transfer between real daemons: a fetch from an honest daemon and a lying peer (the
liar is penalised and dropped, the fetch completes and verifies), and a 200 MB fetch whose
fetching daemon is SIGKILLed midway and resumes from its verified pieces after a restart."""

from __future__ import annotations

import subprocess
import sys
import urllib.request

import pytest
import trio

from neurod.artifact_store import store_of
from tests.support.artifacts import MB
from tests.support.artifacts import random_artifact as make_artifact
from tests.support.daemons import Daemon, wait_until
from tests.support.evil_peer import EvilPeer


def _progress(daemon: Daemon, root: str) -> dict:  # type: ignore[type-arg]
    return daemon.rpc("artifact_progress", root=root)  # type: ignore[no-any-return]


def _finished(daemon: Daemon, root: str) -> dict | None:  # type: ignore[type-arg]
    found = _progress(daemon, root)
    return found if found["state"] in ("done", "failed") else None


def fetch_from(daemon: Daemon, root: str, sources: list[str]) -> dict:  # type: ignore[type-arg]
    """Start a fetch naming ``sources`` and wait for its end; its final progress."""
    daemon.rpc("artifact_fetch", root=root, **{"from": sources})
    return wait_until(lambda: _finished(daemon, root), 120, "the fetch to end")  # type: ignore[no-any-return]


def test_fetch_with_a_lying_source_penalises_it_and_completes(daemons, tmp_path):
    root = make_artifact(tmp_path / "art", [12 * MB + 777, 3 * MB, 1000])
    honest = daemons("honest")
    fetcher = daemons("fetcher", bootstrap=[honest.p2p_addr])
    store_of(honest.datadir).put(tmp_path / "art")
    wait_until(lambda: fetcher.peers() >= 1, 60, "the fetcher to peer with the honest daemon")
    chain_id = fetcher.rpc("node_status")["chain_id"]

    async def body() -> dict:  # type: ignore[type-arg]
        async with trio.open_nursery() as nursery:
            evil = EvilPeer(tmp_path / "evil", chain_id=chain_id)
            evil.serve_bad_artifact(tmp_path / "art")
            await nursery.start(evil.run)
            await evil.connect(fetcher.p2p_addr, timeout=30)
            # named by peer id, the liar must be one of the fetcher's peers: its connect returns
            # once it has answered the fetcher's status, before the fetcher has checked that answer
            await trio.to_thread.run_sync(
                lambda: wait_until(lambda: evil.peer_id in fetcher.peer_ids(), 30, "the fetcher to accept the liar")
            )
            # the liar alone first: which source a piece goes to is the fetcher's scheduling, so
            # only a fetch with no other source proves the liar is sent reads, and what it does
            liar_only = await trio.to_thread.run_sync(lambda: fetch_from(fetcher, root.hex(), [evil.peer_id]))
            assert evil.bad_pieces_served > 0 and liar_only["state"] == "failed", liar_only
            assert "bad-artifact" in liar_only["dropped"].get(evil.peer_id, ""), liar_only
            # then both: the liar (penalised, and refused or dropped at once) and the honest daemon
            found = await trio.to_thread.run_sync(
                lambda: fetch_from(fetcher, root.hex(), [evil.peer_id, honest.peer_id]))
            nursery.cancel_scope.cancel()
        return found  # type: ignore[no-any-return]

    found = trio.run(body)
    assert found["state"] == "done", found
    assert found["bytes_done"] == found["bytes_total"] == 15 * MB + 1777
    assert honest.peer_id not in found["dropped"]
    with urllib.request.urlopen(fetcher.rpc_url + "metrics", timeout=10) as response:
        metrics = response.read().decode()
    assert 'neuro_peer_penalties_total{reason="bad-artifact"}' in metrics
    # the CLI's view: stored and every file hashes to its manifest entry
    verify = _neuro("artifact", "verify", root.hex(), "--datadir", str(fetcher.datadir), "--network", "devnet")
    assert verify.returncode == 0, verify.stdout + verify.stderr


def _neuro(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cli.main", *args], check=False, capture_output=True, text=True, timeout=timeout
    )


@pytest.mark.slow
def test_200mb_fetch_survives_a_sigkill_of_the_fetcher_and_resumes(daemons, tmp_path):
    sizes = [50 * MB] * 4
    root = make_artifact(tmp_path / "art", sizes)
    honest = daemons("honest")
    store_of(honest.datadir).put(tmp_path / "art")
    fetcher = daemons("fetcher", bootstrap=[honest.p2p_addr])
    wait_until(lambda: fetcher.peers() >= 1, 60, "the fetcher to peer with the honest daemon")

    fetcher.rpc("artifact_fetch", root=root.hex(), **{"from": [honest.p2p_addr]})
    # kill once a fifth is verified (the poll is an event wait; the bound is generous)
    cut = wait_until(
        lambda: (p := _progress(fetcher, root.hex()))["bytes_done"] >= sum(sizes) // 5 and p, 120,
        "a fifth of the artifact", interval=0.02,
    )
    assert cut["state"] == "fetching", cut
    fetcher.kill()
    fetcher.start()
    wait_until(lambda: fetcher.peers() >= 1, 60, "re-peering after the restart")

    result = _neuro(
        "artifact", "fetch", root.hex(), "--from", honest.p2p_addr, "--datadir", str(fetcher.datadir),
        "--network", "devnet", "--json",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    import json

    found = json.loads(result.stdout)
    assert found["state"] == "done" and found["bytes_total"] == sum(sizes)
    assert found["bytes_resumed"] > 0, found  # pieces verified before the kill were kept
    store = store_of(fetcher.datadir)
    store.verify(root)
    assert not any((store.path / "partial").iterdir())
