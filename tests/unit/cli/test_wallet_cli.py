"""`neuro wallet` and `neuro tx` without a daemon: keys, export/import, offline signing, --json."""

from __future__ import annotations

import json
import stat
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from chain.devnet_keys import devnet_address, devnet_seed
from chain.genesis import load_genesis
from chain.types import Transaction
from cli.main import app

PASSWORD = "pw for tests"


class Neuro:
    """Runs `neuro` in-process against a private NEURO_HOME, devnet, light KDF."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.env: dict[str, str | None] = {
            "NEURO_HOME": str(home),
            "NEURO_NETWORK": "devnet",
            "NEURO_KEYSTORE_LIGHT_KDF": "1",
            "NEURO_PASSWORD": PASSWORD,
            "NEURO_DATADIR": None,
            "NEURO_KEYSTORE": None,
            "NEURO_RPC": None,
            "NEURO_RPC_COOKIE": None,
            "NEURO_NEW_PASSWORD": None,
        }

    def __call__(self, *args: str, input: str | None = None, **env: str | None) -> Result:
        return CliRunner(env={**self.env, **env}).invoke(app, list(args), input=input)

    def ok(self, *args: str, **env: str | None) -> Result:
        result = self(*args, **env)
        assert result.exit_code == 0, result.output
        return result

    def json(self, *args: str) -> Any:
        return json.loads(self.ok(*args, "--json").stdout)

    @property
    def keystore(self) -> Path:
        return self.home / "keystore" / "devnet"


@pytest.fixture
def neuro(tmp_path: Path) -> Neuro:
    return Neuro(tmp_path / "home")


def test_new_list_show(neuro: Neuro) -> None:
    alice = neuro.json("wallet", "new", "alice")
    bob = neuro.json("wallet", "new", "bob")
    assert alice["address"].startswith("tntk1") and alice["default"] and not bob["default"]
    assert alice["kdf"]["n"] == 2**10  # light only because the test asked for it
    listed = neuro.json("wallet", "list")
    assert [k["name"] for k in listed] == ["alice", "bob"]
    assert neuro.json("wallet", "show", "bob") == bob
    assert neuro.json("wallet", "show")["name"] == "alice"
    table = neuro.ok("wallet", "list").stdout
    assert "alice" in table and alice["address"] in table
    assert stat.S_IMODE((neuro.keystore / "alice.json").stat().st_mode) == 0o600
    assert "test-only weak KDF" in neuro("wallet", "new", "carol").stderr


def test_default_and_rename(neuro: Neuro) -> None:
    neuro.ok("wallet", "new", "alice")
    neuro.ok("wallet", "new", "bob")
    assert neuro.json("wallet", "default") == {"default": "alice"}
    neuro.ok("wallet", "default", "bob")
    assert neuro.json("wallet", "default") == {"default": "bob"}
    neuro.ok("wallet", "rename", "bob", "robert")
    assert neuro.json("wallet", "default") == {"default": "robert"}
    assert [k["name"] for k in neuro.json("wallet", "list")] == ["alice", "robert"]


def test_export_file_and_import_it_into_another_keystore(neuro: Neuro, tmp_path: Path) -> None:
    alice = neuro.json("wallet", "new", "alice")
    backup = tmp_path / "alice.json"
    neuro.ok("wallet", "export", "alice", "--out", str(backup))
    assert json.loads(backup.read_text())["address"] == alice["address"]
    assert stat.S_IMODE(backup.stat().st_mode) == 0o600
    other = str(tmp_path / "other-keystore")
    imported = neuro.json("wallet", "import", "savings", "--file", str(backup), "--keystore", other)
    assert imported["address"] == alice["address"] and imported["name"] == "savings"
    exported = neuro("wallet", "export", "alice", "--out", str(backup))
    assert exported.exit_code == 1 and "exists" in exported.stderr


def test_raw_seed_import_and_export_warn(neuro: Neuro, tmp_path: Path) -> None:
    seed_file = tmp_path / "seed.hex"
    seed_file.write_text(devnet_seed("treasury").hex() + "\n")
    imported = neuro("wallet", "import", "treasury", "--raw-file", str(seed_file), "--json")
    assert imported.exit_code == 0, imported.output
    assert json.loads(imported.stdout)["address"] == devnet_address("treasury")
    assert "raw seed" in imported.stderr
    refused = neuro("wallet", "export", "treasury", "--raw")
    assert (
        refused.exit_code == 1
        and "--yes" in refused.stderr
        and devnet_seed("treasury").hex() not in refused.output
    )
    exported = neuro.ok("wallet", "export", "treasury", "--raw", "--yes")
    assert exported.stdout.strip() == devnet_seed("treasury").hex()
    assert "never share" in exported.stderr
    from_stdin = neuro(
        "wallet", "import", "again", "--raw-file", "-", input=devnet_seed("alice").hex()
    )
    assert from_stdin.exit_code == 0, from_stdin.output


def test_password_file_and_passwd(neuro: Neuro, tmp_path: Path) -> None:
    old, new = tmp_path / "old.txt", tmp_path / "new.txt"
    old.write_text("first\n")
    new.write_text("second\n")
    neuro.ok("wallet", "new", "alice", "--password-file", str(old), NEURO_PASSWORD=None)
    neuro.ok(
        "wallet", "passwd", "alice", "--password-file", str(old), "--new-password-file", str(new)
    )
    wrong = neuro("wallet", "export", "alice", "--raw", "--yes", "--password-file", str(old))
    assert wrong.exit_code == 1 and "wrong password" in wrong.stderr
    neuro.ok("wallet", "export", "alice", "--raw", "--yes", "--password-file", str(new))


def test_offline_build_sign_show(neuro: Neuro, tmp_path: Path) -> None:
    seed_file = tmp_path / "seed.hex"
    seed_file.write_text(devnet_seed("alice").hex())
    neuro.ok("wallet", "import", "alice", "--raw-file", str(seed_file))
    unsigned, signed = tmp_path / "unsigned.json", tmp_path / "signed.json"
    neuro.ok(
        "tx",
        "build",
        devnet_address("bob"),
        "3.000000001",
        "--from",
        "alice",
        "--nonce",
        "4",
        "--fee",
        "0.001",
        "--chain",
        "devnet",
        "--out",
        str(unsigned),
    )
    assert json.loads(unsigned.read_text())["amount"] == "3.000000001"
    neuro.ok("tx", "sign", str(unsigned), "--out", str(signed))
    doc = json.loads(signed.read_text())
    tx = Transaction.decode(bytes.fromhex(doc["tx"]))
    assert tx.txid.hex() == doc["txid"] and tx.nonce == 4 and tx.fee == 10**6
    assert tx.payload.amount == 3_000_000_001
    assert tx.chain_id == load_genesis("devnet").chain_id
    shown = neuro.json("tx", "show", str(signed))
    assert (
        shown["signed"]
        and shown["from"] == devnet_address("alice")
        and shown["amount"] == "3.000000001"
    )


def test_wallet_send_offline_writes_a_signed_file(neuro: Neuro, tmp_path: Path) -> None:
    neuro.ok("wallet", "new", "alice")
    neuro.ok("wallet", "new", "bob")
    out = tmp_path / "signed.json"
    neuro.ok("wallet", "send", "bob", "1.5", "--nonce", "0", "--out", str(out))
    doc = json.loads(out.read_text())
    assert doc["to"] == neuro.json("wallet", "show", "bob")["address"] and doc["amount"] == "1.5"
