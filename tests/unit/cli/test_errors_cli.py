"""Every failure of `neuro` is one line on stderr and exit code 1: never a traceback."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import typer
from typer.testing import Result

from chain.devnet_keys import devnet_address
from cli.output import guarded
from tests.unit.cli.test_wallet_cli import Neuro

BOB = devnet_address("bob")


@pytest.fixture
def neuro(tmp_path: Path) -> Neuro:
    runner = Neuro(tmp_path / "home")
    runner.ok("wallet", "new", "alice")
    return runner


def one_line_error(result: Result, reason: str, *words: str) -> str:
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    line = result.stderr.strip().splitlines()[-1]
    assert line.startswith(f"error ({reason}): "), result.stderr
    for word in words:
        assert word in line, line
    return line


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.parametrize(
    "to, reason, words",
    [
        (BOB[:-1] + ("q" if BOB[-1] != "q" else "p"), "bad-address", ("mistyped",)),
        (BOB.replace("tntk1", "ntk1"), "bad-address", ()),
        ("tntk1notanaddress", "bad-address", ()),
        ("carol", "unknown-key", ("no key named 'carol'",)),
    ],
)
def test_bad_recipient(neuro: Neuro, to: str, reason: str, words: tuple[str, ...]) -> None:
    one_line_error(neuro("wallet", "send", to, "1"), reason, *words)


@pytest.mark.parametrize("amount", ["1.0000000001", "-3", "abc", "1e30", "0"])
def test_bad_amount(neuro: Neuro, amount: str) -> None:
    one_line_error(neuro("wallet", "send", "--", BOB, amount), "bad-amount")


def test_wrong_password(neuro: Neuro) -> None:
    result = neuro(
        "wallet", "send", BOB, "1", "--nonce", "0", "--out", "x.json", NEURO_PASSWORD="nope"
    )
    one_line_error(result, "wrong-password", "wrong password for key 'alice'")
    one_line_error(
        neuro("wallet", "rename", "alice", "bob", NEURO_PASSWORD="nope"), "wrong-password"
    )


def test_daemon_not_running_without_node_file(neuro: Neuro) -> None:
    one_line_error(
        neuro("wallet", "balance"), "daemon-not-running", "neurod --network devnet", "node.json"
    )


def test_daemon_not_running_connection_refused(neuro: Neuro) -> None:
    url = f"http://127.0.0.1:{closed_port()}/"
    for args in (("wallet", "send", BOB, "1"), ("chain", "head"), ("node", "status", "--json")):
        one_line_error(
            neuro(*args, "--rpc", url), "daemon-not-running", url, "connection refused", "start it"
        )
    datadir = neuro.home / "devnet"
    datadir.mkdir(parents=True, exist_ok=True)  # the keystore is not in it: nothing else made it
    (datadir / "node.json").write_text(json.dumps({"rpc_url": url, "pid": 1}))
    one_line_error(neuro("chain", "supply"), "daemon-not-running", url)
    (datadir / "node.json").write_text("{broken")
    one_line_error(neuro("chain", "supply"), "bad-node-file")


def test_no_password_without_a_terminal(neuro: Neuro) -> None:
    one_line_error(
        neuro("wallet", "new", "bob", NEURO_PASSWORD=None), "no-password", "--password-file"
    )


def test_bad_ids_and_network(neuro: Neuro) -> None:
    one_line_error(neuro("chain", "block", "12ab"), "bad-block-id")
    one_line_error(neuro("chain", "tx", "xyz"), "bad-txid")
    one_line_error(neuro("wallet", "list", "--network", "moon"), "bad-network", "moon")
    one_line_error(neuro("wallet", "show", "nobody"), "unknown-key", "alice")
    one_line_error(neuro("wallet", "new", "alice"), "key-exists")
    one_line_error(neuro("wallet", "new", "bad/name"), "bad-key-name")


def test_bad_transaction_files(neuro: Neuro, tmp_path: Path) -> None:
    broken = tmp_path / "broken.json"
    broken.write_text("{")
    one_line_error(neuro("tx", "sign", str(broken)), "bad-tx-file", "not JSON")
    broken.write_text(json.dumps({"type": "neuro-signed-tx", "tx": "00ff"}))
    one_line_error(neuro("tx", "send", str(broken)), "bad-tx-file")
    one_line_error(neuro("tx", "sign", str(tmp_path / "missing.json")), "io-error", "missing.json")


def test_corrupt_key_file(neuro: Neuro) -> None:
    (neuro.keystore / "alice.json").write_text('{"version": 1}')
    one_line_error(neuro("wallet", "list"), "bad-keyfile", "alice.json")


def test_unexpected_errors_are_one_line_too(capsys: pytest.CaptureFixture[str]) -> None:
    @guarded
    def explode() -> None:
        raise ZeroDivisionError("boom [bold]")

    with pytest.raises(typer.Exit) as caught:
        explode()
    assert caught.value.exit_code == 1
    err = capsys.readouterr().err
    assert err.strip() == "error (internal-error): unexpected ZeroDivisionError: boom [bold]"


def test_installed_entry_point_fails_cleanly_in_a_real_process(tmp_path: Path) -> None:
    env = {"NEURO_HOME": str(tmp_path), "PATH": "/usr/bin:/bin"}
    result = subprocess.run(
        [sys.executable, "-m", "cli.main", "wallet", "send", BOB, "1", "--network", "devnet"],
        check=False,
        capture_output=True,
        text=True,
        env=env,
        cwd=Path(__file__).resolve().parents[3],
    )
    assert result.returncode == 1 and result.stdout == ""
    expected = (
        f"error (no-default-key): no default key in {tmp_path}/keystore/devnet: pass a key name "
        "or create one with `neuro wallet new`"
    )
    assert result.stderr.strip().splitlines() == [expected]


def test_a_block_id_of_digits_is_a_height_until_it_is_long_enough_to_be_a_hash_prefix() -> None:
    from cli.chain_cmds import block_id

    assert block_id("1234567") == 1234567
    assert block_id("00000357") == "00000357"  # proof of work: hashes start with digits
    assert block_id("0x1234567a") == "1234567a"
