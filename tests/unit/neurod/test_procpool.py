"""Worker processes of the daemon's pools (mining, signature checks) exit when it is SIGKILLed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
PARENT = """
import os, sys
from chain.crypto import verify_many
from chain.sigpool import SignaturePool
from neurod.procpool import process_pool
miners = process_pool(2)
pids = {miners.submit(os.getpid).result() for _ in range(8)}
checkers = SignaturePool(2)
verify_many([(bytes(32), b"", bytes(64))] * 128, checkers)
pids |= {worker.process.pid for worker in checkers._workers}
print(" ".join(str(pid) for pid in pids), flush=True)
sys.stdin.read()
"""


def _alive(pid: int) -> bool:
    """Running and not a zombie (a reaper may be slow to collect an exited orphan)."""
    try:
        status = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return status.rsplit(")", 1)[1].split()[0] != "Z"


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc")
def test_workers_exit_after_the_parent_is_killed() -> None:
    parent = subprocess.Popen(
        [sys.executable, "-c", PARENT],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        text=True,
    )
    try:
        workers = [int(pid) for pid in parent.stdout.readline().split()]  # type: ignore[union-attr]
        assert len(workers) >= 3 and all(_alive(pid) for pid in workers)
    finally:
        parent.send_signal(signal.SIGKILL)
        parent.wait()
    deadline = time.monotonic() + 30  # an upper bound: they poll their parent once a second
    while any(_alive(pid) for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(_alive(pid) for pid in workers)
