"""The README's main command, `neuro devnet demo` (`make demo`), as a user runs it: four real
daemons, a shelves dataset bought from three worker daemons, and a round of the digits loop on the
market (a generate job, then one train job per architecture on the digits it bought, named by
their roots). Checked on what the user receives: the delivered dataset re-renders item for item,
and the kept model loads and scores on real MNIST."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from worker.artifact import ArtifactMismatch
from worker.verify import verify_output


def test_the_demo_buys_verifies_and_pays(tmp_path: Path) -> None:
    out = tmp_path / "out"
    ran = subprocess.run([sys.executable, "-m", "cli.main", "devnet", "demo", "--rounds", "1", "--dir",
                          str(tmp_path / "cluster"), "--out", str(out)],
                         capture_output=True, text=True, timeout=540, check=False)
    assert ran.returncode == 0, ran.stderr[-3000:]
    said = ran.stderr + ran.stdout
    for shown in ("bids and clearing prices", "who earned what", "accuracy per round", "devnet stopped"):
        assert shown in said, shown

    summary = json.loads((out / "summary.json").read_text())
    (kept,) = summary["loop"]
    assert [a["model"] for a in kept["architectures"]] == ["cnn w16 d3 s28", "cnn w8 d2 s28"]
    assert kept["tuning_accuracy"] == max(a["tuning_accuracy"] for a in kept["architectures"])
    assert kept["train_job"] in {a["job"] for a in kept["architectures"]}
    assert 0.5 < kept["heldout_accuracy"] <= 1.0  # far above chance (0.1) on real digits
    assert kept["cost"] > 0

    shards = sorted((out / "shelves").iterdir())
    assert len(shards) >= 2
    for shard in shards:
        verdict = verify_output(shard, b"a beacon of the test's own", 6)
        assert verdict.ok, verdict

    # a buyer who tampers with what it received is told: the check reads the delivered files
    png = next(shards[0].rglob("*.png"))
    data = bytearray(png.read_bytes())
    data[len(data) // 2] ^= 0xFF
    png.write_bytes(bytes(data))
    with pytest.raises(ArtifactMismatch, match=png.name):
        verify_output(shards[0], b"a beacon of the test's own", 6)
    assert (out / "loop" / "accuracy.png").is_file()
