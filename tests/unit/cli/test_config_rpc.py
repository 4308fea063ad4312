"""Picking the daemon (option > env > node.json) and reading JSON-RPC errors into reasons."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cli.config import Where
from cli.output import CliError
from wallet.node_client import RpcClient, RpcError


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("NEURO_RPC_COOKIE", "NEURO_KEYSTORE_LIGHT_KDF"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NEURO_HOME", str(tmp_path / "home"))


def test_directories_default_under_neuro_home(tmp_path: Path) -> None:
    where = Where("devnet")
    assert where.datadir == tmp_path / "home" / "devnet"
    assert where.keystore().path == tmp_path / "home" / "keystore" / "devnet"  # outside the data dir
    assert where.hrp == "tntk" and Where("main").hrp == "ntk"
    assert where.keystore().kdf.n == 2**17  # the standard cost unless a test asks for less
    custom = Where("main", tmp_path / "dd", tmp_path / "ks")
    assert custom.datadir == tmp_path / "dd" and custom.keystore().path == tmp_path / "ks"


def test_daemon_from_node_file_then_option_then_cookie_env(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    datadir = tmp_path / "dd"
    datadir.mkdir()
    with pytest.raises(CliError) as missing:
        Where("devnet", datadir).rpc()
    assert missing.value.reason == "daemon-not-running"
    (datadir / "node.json").write_text(json.dumps({"rpc_url": "http://127.0.0.1:7/", "pid": 1}))
    target = Where("devnet", datadir).rpc()
    assert (target.url, target.cookie) == ("http://127.0.0.1:7/", datadir / ".cookie")
    assert (
        Where("devnet", datadir, rpc_option="http://127.0.0.1:9/").rpc().url
        == "http://127.0.0.1:9/"
    )
    monkeypatch.setenv("NEURO_RPC_COOKIE", str(tmp_path / "c"))
    assert Where("devnet", datadir).rpc().cookie == tmp_path / "c"


@pytest.mark.parametrize(
    "error, reason",
    [
        (
            {"code": -32010, "message": "rejected", "data": {"reason": "nonce-too-low"}},
            "nonce-too-low",
        ),
        ({"code": -32011, "message": "unknown block"}, "not-found"),
        ({"code": -32601, "message": "no such method"}, "method-not-found"),
        ({"code": -1, "message": "odd"}, "rpc-error"),
    ],
)
def test_rpc_errors_carry_the_daemons_reason(error: dict[str, object], reason: str) -> None:
    found = RpcClient._error_of({"jsonrpc": "2.0", "id": 1, "error": error})
    assert isinstance(found, RpcError)
    assert (found.reason, found.code, str(found)) == (reason, error["code"], error["message"])
