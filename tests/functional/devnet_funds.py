"""A new user's devnet, as issue 16 found it: `neuro devnet up` shows the funded accounts, the
faucet pays a new key, keys live outside the nodes and survive `--fresh`, ids are taken by prefix,
a miner's history shows its rewards, units everywhere, and `status` after `down` reads right.

Every `neuro` call is a real process against real daemons started by `neuro devnet up`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from chain.devnet_keys import devnet_address
from chain.genesis import load_genesis

ROOT = Path(__file__).resolve().parents[2]
WAIT = "60"


class Neuro:
    def __init__(self, home: Path, cluster: Path) -> None:
        self.cluster = cluster
        self.env = {**os.environ, "NEURO_HOME": str(home), "NEURO_NETWORK": "devnet",
                    "NEURO_DATADIR": str(cluster / "node0"), "NEURO_KEYSTORE_LIGHT_KDF": "1",
                    "NEURO_PASSWORD": "pw", "NEURO_DEVNET_DIR": str(cluster)}
        for name in ("NEURO_RPC", "NEURO_RPC_COOKIE", "NEURO_KEYSTORE"):
            self.env.pop(name, None)

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "cli.main", *args], cwd=ROOT, env=self.env,
                              capture_output=True, text=True, timeout=240, check=False)

    def ok(self, *args: str) -> subprocess.CompletedProcess[str]:
        done = self.run(*args)
        assert done.returncode == 0, f"neuro {' '.join(args)}: {done.stderr}"
        return done

    def json(self, *args: str) -> Any:
        return json.loads(self.ok(*args, "--json").stdout)

    def fails(self, reason: str, *args: str) -> str:
        done = self.run(*args)
        lines = done.stderr.strip().splitlines()
        assert done.returncode == 1 and len(lines) == 1 and lines[0].startswith(f"error ({reason}): "), done.stderr
        return lines[0]


def test_devnet_funds_keys_ids_history_and_status(tmp_path: Path) -> None:
    cluster = tmp_path / "cluster"
    neuro = Neuro(tmp_path / "home", cluster)
    started = neuro.ok("devnet", "up", "--nodes", "2", "--miners", "1", "--block-interval", "0.3")
    try:
        # finding 1: the funded accounts and how to get funds
        assert devnet_address("alice") in started.stdout and "neuro devnet faucet" in started.stderr
        neuro.ok("wallet", "new", "me")
        neuro.ok("wallet", "new", "friend")
        keystore = tmp_path / "home" / "keystore" / "devnet"
        assert (keystore / "me.json").exists() and not (cluster / "node0" / "keystore").exists()
        me = neuro.json("wallet", "show", "me")["address"]
        paid = neuro.json("devnet", "faucet", "me", "12.5", "--wait", WAIT)
        assert (paid["status"], paid["to"], paid["amount"]) == ("confirmed", me, "12.5")
        assert neuro.json("wallet", "balance", "me")["balance_ntk"] == "12.5"

        # finding 8: key names where an address is taken, and a send to self is said
        built = tmp_path / "unsigned.json"
        neuro.ok("tx", "build", "friend", "2", "--from", "me", "--out", str(built))
        assert json.loads(built.read_text())["to"] == neuro.json("wallet", "show", "friend")["address"]
        shown = neuro.ok("tx", "show", str(built)).stdout  # finding 7: amounts with their unit
        assert "2 NTK" in shown and "0.00001 NTK" in shown
        to_self = neuro.ok("wallet", "send", "me", "1", "--wait", WAIT)
        assert "sending to yourself" in to_self.stderr
        # finding 7: the fee error in NTK, as --fee takes it
        low = neuro.fails("fee-too-low", "wallet", "send", "friend", "1", "--fee", "0")
        assert "0.000001 NTK" in low and "--fee" in low

        # finding 4: what tables print is taken back; --json has whole ids
        txid = paid["txid"]
        assert neuro.json("chain", "tx", txid[:10])["tx"]["txid"] == txid
        assert txid[:16] in neuro.ok("wallet", "history", "me").stdout
        block = neuro.json("chain", "block", str(paid["height"]))
        assert neuro.json("chain", "block", block["hash"][:12])["height"] == paid["height"]
        assert "unknown-tx" in neuro.fails("unknown-tx", "chain", "tx", "0000000000")
        rows = neuro.json("devnet", "status")
        assert all(len(r["tip"]) == 64 for r in rows)

        # finding 5: the miner's history shows its rewards
        miner = neuro.json("chain", "head")["miner"]
        history = neuro.json("wallet", "history", miner, "--limit", "5")
        assert history and all(r["kind"] == "reward" and r["direction"] == "in" for r in history)
        assert history[0]["amount_ntk"].startswith("50")
    finally:
        neuro.ok("devnet", "down")

    # finding 6: a stopped devnet reads as stopped, and the advice is to start it again
    down = neuro.ok("devnet", "status")
    assert "None" not in down.stdout and "yes" not in down.stdout
    assert "neuro devnet up" in down.stderr
    assert not any(r["mining"] or r["up"] for r in neuro.json("devnet", "status"))
    assert "neuro devnet up" in neuro.fails("daemon-not-running", "chain", "head")

    # finding 2: --fresh says what it removes and keeps every key
    chain_id = load_genesis(cluster / "genesis.json").chain_id
    legacy = cluster / "node0" / "keystore" / "old.json"
    legacy.parent.mkdir()
    legacy.write_text("{}")
    node_key = (cluster / "node0" / "node_key").read_bytes()
    fresh = neuro.ok("devnet", "up", "--fresh", "--nodes", "2", "--miners", "0")
    try:
        assert "--fresh removes" in fresh.stderr and "node0/chain" in fresh.stderr and "keys are kept" in fresh.stderr
        assert legacy.exists() and (keystore / "me.json").exists()
        assert (cluster / "node0" / "node_key").read_bytes() == node_key
        assert load_genesis(cluster / "genesis.json").chain_id != chain_id  # a new chain, a new genesis
    finally:
        neuro.ok("devnet", "down")
