"""`neuro devnet up` makes the cluster directory and each node's data dir 0700, as neurod makes
its own: they hold every node's keys and RPC cookie."""

from __future__ import annotations

import stat
from pathlib import Path

from neurod import devnet


def test_devnet_directories_are_private(tmp_path: Path) -> None:
    root = tmp_path / "cluster"
    try:
        entries = devnet.up(root, nodes=1, miners=0, block_interval=1.0)
    finally:
        devnet.down(root)
    dirs = [root, *(Path(entry.datadir) for entry in entries)]
    assert {d.name: stat.S_IMODE(d.stat().st_mode) for d in dirs} == {d.name: 0o700 for d in dirs}
    try:
        devnet.up(root, nodes=1, miners=0, block_interval=1.0, fresh=True)  # a node dir made afresh too
    finally:
        devnet.down(root)
    assert stat.S_IMODE((root / "node0").stat().st_mode) == 0o700
