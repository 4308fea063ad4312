"""The README's main command, `neuro devnet demo` (`make demo`), as a user runs it: four real
daemons, a shelves dataset bought from three worker daemons, and a round of the digits loop on the
market (a generate job, then one train job per architecture on the digits it bought, named by
their roots), then a new client who redeems a voucher and buys the kept model from the worker that
trained it. Checked on what the user receives: the delivered dataset re-renders item for item, the
kept model loads and scores on real MNIST, and the bought model's files on the client hash to the
root listed on chain and score as printed. The devnet is kept up (`--keep`) to read the chain."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from chain.devnet_keys import devnet_address
from neurod import devnet
from neurod.artifact_store import store_of
from worker.artifact import ArtifactMismatch, verify_files
from worker.verify import verify_output


def test_the_demo_buys_verifies_and_pays(tmp_path: Path) -> None:
    out, cluster = tmp_path / "out", tmp_path / "cluster"
    try:
        ran = subprocess.run([sys.executable, "-m", "cli.main", "devnet", "demo", "--rounds", "1", "--dir",
                              str(cluster), "--out", str(out), "--keep"],
                             capture_output=True, text=True, timeout=540, check=False)
        assert ran.returncode == 0, ran.stderr[-3000:]
        said = ran.stderr + ran.stdout
        for shown in ("bids and clearing prices", "who earned what", "accuracy per round",
                      "the seller's claim and the client's re-evaluation"):
            assert shown in said, shown
        summary = json.loads((out / "summary.json").read_text())
        check_the_sale(summary, said, devnet.load_cluster(cluster))
    finally:
        devnet.down(cluster)

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
    flip_a_byte(png)
    with pytest.raises(ArtifactMismatch, match=png.name):
        verify_output(shards[0], b"a beacon of the test's own", 6)
    assert (out / "loop" / "accuracy.png").is_file()


def check_the_sale(summary: dict[str, Any], said: str, nodes: list[Any]) -> None:
    """The last act, read back from the chain and the client's disk: the voucher paid a fresh
    account, the worker that trained the kept model listed it, the client bought it, and the
    model's files it holds are the listed root's and score as printed."""
    from worker.active.loop import accuracy
    from worker.realdata import load_split
    from worker.train.weights import load_weights

    sale = summary["sale"]
    alice, rpc = devnet.client_of(nodes[0]), devnet.client_of(nodes[-1])  # the loop's client; the new client's
    assert alice is not None and rpc is not None
    (kept,) = summary["loop"]
    (trained,) = alice.call("job_status", job=kept["train_job"])["views"]

    redeemed = rpc.call("voucher_status", voucher=sale["voucher"])
    assert redeemed["redeemed"] and redeemed["account"] == sale["buyer"]
    assert sale["balance_before"] == 0 < sale["balance_after"] == int(redeemed["amount"]) - int(redeemed["fee"])
    listing = rpc.call("listing_get", listing=sale["listing"])
    assert listing["kind"] == "model" and listing["root"] == trained["root"] == sale["root"]
    assert listing["seller"] == trained["worker"] == sale["seller"]
    assert sale["seller"] in {devnet_address(n) for n in ("bob", "carol", "dave")}
    assert float(listing["claim"]["metrics"]["accuracy"]) == float(sale["claimed_accuracy"])  # millionths on chain
    assert [(p["purchase"], p["buyer"]) for p in listing["purchases"]] == [(sale["purchase"], sale["buyer"])]
    paid = int(rpc.call("account_get", address=sale["buyer"])["balance"])
    assert paid < sale["balance_after"] - listing["price"]  # the price and the fee left the account

    # the files the client holds: its daemon's store re-hashed, and the copy in --out checked
    # against the root on chain, not against the demo's word
    root = bytes.fromhex(listing["root"])
    store_of(Path(nodes[-1].datadir)).verify(root)
    model = Path(sale["model"])
    verify_files(model, expected_root=root)
    weights, _ = load_weights(model / "model.safetensors")
    heldout = accuracy(weights, load_split().heldout)
    assert heldout == pytest.approx(sale["heldout_accuracy"]) and 0.5 < heldout <= 1.0
    assert f"{heldout:.4f}" in said and sale["claimed_accuracy"] in said
    flip_a_byte(model / "model.safetensors")
    with pytest.raises(ArtifactMismatch, match="model.safetensors"):
        verify_files(model, expected_root=root)


def flip_a_byte(path: Path) -> None:
    """What a tampered copy looks like: one byte in the middle changed."""
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
