"""A node killed at each mempool fail point loses no transaction it accepted from a local client.

`mempool_crash_child.py` runs a real `Node` in a child process that dies exactly at the point
named by `NEURO_FAILPOINT`: half-way through a journal record, half-way through writing
mempool.dat's temp file, or just before renaming it, in the snapshot of a clean shutdown or in the
one every start writes. A restart must then hold what a node that never crashed holds: every
transaction whose call was answered (and none of a call cut off mid-write), with no temp file
left behind and nothing set aside as damaged.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

from chain import failpoints
from tests.support.txs import transfer_hex

CHILD = Path(__file__).with_name("mempool_crash_child.py")
TXS = [transfer_hex("alice", "bob", 1_000 + nonce, nonce) for nonce in range(6)]
ALL_TXIDS = sorted(txid for _, txid in TXS)


@dataclass(frozen=True)
class Run:
    returncode: int
    restored: list[str] | None  # the mempool's txids once the node started (None: died first)
    accepted: list[str]  # txids whose admission was answered
    stderr: str


def run_node(datadir: Path, ending: str, txs: Sequence[tuple[str, str]] = (), failpoint: str = "") -> Run:
    datadir.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        [sys.executable, str(CHILD), str(datadir), ending, *(tx for tx, _ in txs)],
        env={**os.environ, failpoints.ENV: failpoint}, capture_output=True, text=True, timeout=120, check=False,
    )
    lines = done.stdout.splitlines()
    restored = json.loads(lines[0]) if lines else None
    accepted = [line.split()[1] for line in lines[1:]]
    return Run(done.returncode, restored, accepted, done.stderr)


def restart(datadir: Path) -> list[str]:
    """The mempool a clean restart finds; the data dir must hold no litter from the crash."""
    run = run_node(datadir, "close")
    assert run.returncode == 0, run.stderr
    assert not list(datadir.glob("*.tmp")), "a temp file of the crashed write was left behind"
    assert not list(datadir.glob("*.bad")), "the crash was taken for damage"
    assert "WARNING" not in run.stderr, run.stderr
    assert run.restored is not None
    return run.restored


@pytest.fixture(scope="module")
def uncrashed(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    """What a node that accepted TXS and never crashed holds after a restart."""
    datadir = tmp_path_factory.mktemp("uncrashed")
    run = run_node(datadir, "close", TXS)
    assert run.returncode == 0, run.stderr
    return restart(datadir)


def test_the_uncrashed_node_restores_every_transaction(uncrashed: list[str]) -> None:
    assert uncrashed == ALL_TXIDS


@pytest.mark.parametrize("point", ["mempool-save-partial", "mempool-save-before-rename"])
def test_a_crash_in_the_shutdown_snapshot_loses_nothing(tmp_path: Path, point: str, uncrashed: list[str]) -> None:
    # hit 1 is the snapshot every start writes, hit 2 the one of the shutdown
    crashed = run_node(tmp_path, "close", TXS, f"{point}@2")
    assert crashed.returncode == -signal.SIGKILL, f"did not die at {point}: {crashed.stderr}"
    assert crashed.accepted == [txid for _, txid in TXS]
    assert (tmp_path / "mempool.dat.tmp").exists()  # it died inside the snapshot write
    assert restart(tmp_path) == uncrashed


@pytest.mark.parametrize("point", ["mempool-save-partial", "mempool-save-before-rename"])
def test_a_crash_in_the_start_up_snapshot_loses_nothing(tmp_path: Path, point: str, uncrashed: list[str]) -> None:
    killed = run_node(tmp_path, "kill", TXS)  # only the journal holds the transactions
    assert killed.returncode == -signal.SIGKILL
    crashed = run_node(tmp_path, "close", [], f"{point}@1")
    assert crashed.returncode == -signal.SIGKILL, f"did not die at {point}: {crashed.stderr}"
    assert crashed.restored is None  # it died inside the start-up, before serving anything
    assert (tmp_path / "mempool.dat.tmp").exists()
    assert restart(tmp_path) == uncrashed


def test_a_crash_inside_a_journal_write_keeps_every_answered_call(tmp_path: Path) -> None:
    crashed = run_node(tmp_path, "close", TXS, "mempool-journal-partial@4")
    assert crashed.returncode == -signal.SIGKILL, crashed.stderr
    assert crashed.accepted == [txid for _, txid in TXS[:3]]  # the fourth call never replied
    restored = restart(tmp_path)
    assert restored == sorted(crashed.accepted)
    # exactly what a node that accepted those three and never crashed holds
    reference = tmp_path.parent / f"{tmp_path.name}-reference"
    assert run_node(reference, "close", TXS[:3]).returncode == 0
    assert restart(reference) == restored


def test_damaged_mempool_files_do_not_stop_the_node(tmp_path: Path) -> None:
    """A garbage snapshot is set aside with one warning; the journal's transactions still return."""
    killed = run_node(tmp_path, "kill", TXS[:3])
    assert killed.returncode == -signal.SIGKILL
    (tmp_path / "mempool.dat").write_bytes(b"\x00" * 100)
    started = run_node(tmp_path, "close")
    assert started.returncode == 0, started.stderr
    assert started.restored == sorted(killed.accepted)
    warnings = [line for line in started.stderr.splitlines() if line.startswith("WARNING")]
    assert warnings == [
        "WARNING neuro.mempool: mempool: mempool.dat is damaged (bad-magic: not a mempool file of this kind); "
        + "set aside as mempool.dat.bad, 0 transactions read from it"
    ]
    assert (tmp_path / "mempool.dat.bad").read_bytes() == b"\x00" * 100
