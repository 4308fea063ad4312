"""Idle daemon memory: RSS of a running, peered `neurod` (not mining) after it settles, with torch
never imported. Reference, same run: the RSS of a bare interpreter that only imports libp2p (the
floor any py-libp2p daemon pays). Goal: <= 150 MB.

    python bench/idle_rss.py [--settle 10]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from net_common import funded_network  # noqa: F401  (puts the repo on sys.path)

from tests.support.daemons import Daemon, wait_until


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def modules_loaded(pid: int) -> bool:
    """True when torch's shared library is mapped into the process."""
    return any("libtorch" in line for line in Path(f"/proc/{pid}/maps").read_text().splitlines())


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--settle", type=float, default=10.0)
    args = parser.parse_args()
    probe = subprocess.Popen([sys.executable, "-c", "import libp2p, time; time.sleep(30)"])
    with tempfile.TemporaryDirectory() as tmp:
        a = Daemon(Path(tmp) / "a").start()
        b = Daemon(Path(tmp) / "b", bootstrap=[a.p2p_addr]).start()
        try:
            wait_until(lambda: a.peers() >= 1, 60, "peering")
            time.sleep(args.settle)
            assert a.proc is not None
            daemon = rss_mb(a.proc.pid)
            torch_loaded = modules_loaded(a.proc.pid)
            floor = rss_mb(probe.pid)
        finally:
            b.stop()
            a.stop()
            probe.kill()
    print(f"idle neurod RSS (peered, not mining, after {args.settle:.0f} s): {daemon:.0f} MB; torch loaded: {torch_loaded}")
    print(f"reference, bare `import libp2p` interpreter: {floor:.0f} MB; ratio {daemon / floor:.2f}")
    print(f"goal <= 150 MB -> {'met' if daemon <= 150 else 'NOT met'}")


if __name__ == "__main__":
    main()
