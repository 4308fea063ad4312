"""`neuro` against a real mining devnet daemon: fund a wallet from the treasury, send, follow the
transaction into a block, read balances and history; every error path exits 1 with one line.

Every `neuro` call is a real process, found by the daemon's `node.json` in NEURO_DATADIR.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from chain.devnet_keys import devnet_seed
from tests.support.daemons import Daemon, wait_until

ROOT = Path(__file__).resolve().parents[2]
INCLUSION_TIMEOUT_S = 60.0
FEE = "0.00001"


class Neuro:
    def __init__(self, datadir: Path, keystore: Path) -> None:
        self.env = {
            **os.environ,
            "NEURO_DATADIR": str(datadir),
            "NEURO_NETWORK": "devnet",
            "NEURO_KEYSTORE": str(keystore),
            "NEURO_KEYSTORE_LIGHT_KDF": "1",
            "NEURO_PASSWORD": "pw",
        }
        for name in ("NEURO_RPC", "NEURO_RPC_COOKIE", "NEURO_HOME"):
            self.env.pop(name, None)

    def run(
        self, *args: str, stdin: str | None = None, **env: str
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "cli.main", *args],
            cwd=ROOT,
            env={**self.env, **env},
            input=stdin,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    def ok(self, *args: str, stdin: str | None = None) -> str:
        done = self.run(*args, stdin=stdin)
        assert done.returncode == 0, f"neuro {' '.join(args)}: {done.stderr}"
        return done.stdout

    def json(self, *args: str) -> Any:
        return json.loads(self.ok(*args, "--json"))

    def fails(self, reason: str, *args: str, **env: str) -> str:
        """Run a command that must fail with ``reason``: exit 1, one line on stderr, no traceback."""
        done = self.run(*args, **env)
        assert done.returncode == 1, (
            f"neuro {' '.join(args)} exited {done.returncode}: {done.stderr}"
        )
        assert "Traceback" not in done.stderr
        lines = done.stderr.strip().splitlines()
        assert lines and lines[-1].startswith(f"error ({reason}): "), done.stderr
        return lines[-1]

    def wait_confirmed(self, txid: str) -> dict[str, Any]:
        def confirmed() -> dict[str, Any] | None:
            found = self.json("chain", "tx", txid)
            return found if found["status"] == "confirmed" else None

        return dict(wait_until(confirmed, INCLUSION_TIMEOUT_S, f"{txid} in a block", interval=0.3))


@pytest.fixture
def node(daemons: Callable[..., Daemon]) -> Daemon:
    return daemons("node", mine=True, block_interval=0.3)


@pytest.fixture
def neuro(node: Daemon, tmp_path: Path) -> Neuro:
    runner = Neuro(node.datadir, tmp_path / "keystore")
    runner.ok(
        "wallet", "import", "treasury", "--raw-file", "-", stdin=devnet_seed("treasury").hex()
    )
    runner.ok("wallet", "new", "alice")
    runner.ok("wallet", "new", "bob")
    return runner


def address(neuro: Neuro, name: str) -> str:
    return str(neuro.json("wallet", "show", name)["address"])


def test_fund_send_and_follow_into_a_block(neuro: Neuro, node: Daemon) -> None:
    alice, bob = address(neuro, "alice"), address(neuro, "bob")
    start = neuro.json("wallet", "balance", "treasury")
    assert start["balance_ntk"] == "1000000000" and start["nonce"] == 0

    funded = neuro.json("wallet", "send", alice, "100", "--from", "treasury")
    assert funded["status"] == "pending" and funded["amount"] == "100"
    found = neuro.wait_confirmed(funded["txid"])
    assert found["tx"]["to"] == alice and found["confirmations"] >= 1
    assert neuro.json("wallet", "balance", "alice")["balance_ntk"] == "100"
    assert neuro.json("wallet", "balance", "treasury")["balance_ntk"] == "999999899.99999"

    paid = neuro.json(
        "wallet", "send", "bob", "25.5", "--from", "alice", "--fee", "0.001", "--wait", "60"
    )
    assert paid["status"] == "confirmed" and paid["to"] == bob
    assert neuro.json("wallet", "balance", "bob")["balance_ntk"] == "25.5"
    after = neuro.json("wallet", "balance", "alice")
    assert (after["balance_ntk"], after["nonce"]) == ("74.499", 1)

    history = neuro.json("wallet", "history", "alice")
    assert [(h["direction"], h["amount_ntk"], h["txid"]) for h in history] == [
        ("out", "25.5", paid["txid"]),
        ("in", "100", funded["txid"]),
    ]
    assert "25.5 NTK" in neuro.ok("wallet", "history", "alice")

    block = neuro.json("chain", "block", str(paid["height"]))
    assert paid["txid"] in [tx["txid"] for tx in block["txs"]]
    assert neuro.json("chain", "block", block["hash"])["height"] == paid["height"]
    assert neuro.json("chain", "head")["height"] >= paid["height"]
    assert int(neuro.json("chain", "supply")["supply"]) >= 10**18
    status = neuro.json("node", "status")
    assert status["network"] == "devnet" and status["mining"] is True
    assert neuro.json("node", "peers") == []
    for people in (("chain", "head"), ("node", "status"), ("chain", "tx", paid["txid"])):
        assert neuro.ok(*people).strip()


def test_offline_signed_file_then_broadcast(neuro: Neuro, tmp_path: Path) -> None:
    alice = address(neuro, "alice")
    nonce = neuro.json("wallet", "balance", "treasury")["pending_nonce"]
    unsigned, signed = tmp_path / "unsigned.json", tmp_path / "signed.json"
    neuro.ok(
        "tx",
        "build",
        alice,
        "7.25",
        "--from",
        "treasury",
        "--nonce",
        str(nonce),
        "--chain",
        "devnet",
        "--fee",
        FEE,
        "--out",
        str(unsigned),
    )
    neuro.ok("tx", "sign", str(unsigned), "--out", str(signed))
    sent = neuro.json("tx", "send", str(signed), "--wait", "60")
    assert sent["status"] == "confirmed" and sent["txid"] == json.loads(signed.read_text())["txid"]
    assert neuro.json("wallet", "balance", "alice")["balance_ntk"] == "7.25"

    # the same signed bytes again: a replay, refused by the daemon's nonce rule
    line = neuro.fails("nonce-too-low", "tx", "send", str(signed))
    assert "already used" in line


def test_error_paths_are_one_line(neuro: Neuro, node: Daemon, tmp_path: Path) -> None:
    alice = address(neuro, "alice")
    # insufficient balance: caught before signing, and by the daemon for a pre-signed file
    neuro.fails("insufficient-balance", "wallet", "send", alice, "5", "--from", "bob")
    presigned = tmp_path / "too-much.json"
    neuro.ok("wallet", "send", alice, "5", "--from", "bob", "--nonce", "0", "--out", str(presigned))
    neuro.fails("insufficient-balance", "tx", "send", str(presigned))

    neuro.fails("unknown-block", "chain", "block", "999999")
    neuro.fails("unknown-block", "chain", "block", "ab" * 32)
    neuro.fails("unknown-tx", "chain", "tx", "00" * 32)
    typo = alice[:-1] + ("q" if alice[-1] != "q" else "p")
    assert "mistyped" in neuro.fails(
        "bad-address", "wallet", "send", typo, "1", "--from", "treasury"
    )
    neuro.fails("bad-address", "wallet", "balance", alice.replace("tntk1", "ntk1"))
    neuro.fails("bad-amount", "wallet", "send", alice, "0.0000000001", "--from", "treasury")
    neuro.fails(
        "wrong-password", "wallet", "send", alice, "1", "--from", "treasury", NEURO_PASSWORD="nope"
    )
    neuro.fails(
        "wrong-network", "tx", "send", str(presigned), "--network", "main", "--rpc", node.rpc_url
    )

    bad_cookie = tmp_path / "cookie"
    bad_cookie.write_text("__cookie__:" + "0" * 64)
    assert node.rpc_url in neuro.fails(
        "bad-cookie", "chain", "head", NEURO_RPC_COOKIE=str(bad_cookie)
    )

    url = node.rpc_url
    node.stop()
    assert "neurod --network devnet" in neuro.fails("daemon-not-running", "chain", "head")
    assert url in neuro.fails("daemon-not-running", "wallet", "balance", "alice", "--rpc", url)
