"""Keys live outside node data dirs (issue 16, finding 2): `$NEURO_HOME/keystore/<network>` whatever
`--datadir` says, unless the flag, NEURO_KEYSTORE or the CLI's config file names another; keys an
older version kept in `<datadir>/keystore` are copied over, never moved or deleted."""

from __future__ import annotations

import json
from pathlib import Path

from tests.unit.cli.test_wallet_cli import PASSWORD, Neuro
from wallet.keyfile import KdfParams
from wallet.keystore import Keystore


def test_the_keystore_is_outside_every_data_dir(tmp_path: Path) -> None:
    neuro = Neuro(tmp_path / "home")
    node0 = tmp_path / "cluster" / "node0"
    created = json.loads(neuro.ok("wallet", "new", "alice", "--json", NEURO_DATADIR=str(node0)).stdout)
    assert (tmp_path / "home" / "keystore" / "devnet" / "alice.json").exists()
    assert not node0.exists()
    listed = json.loads(neuro.ok("wallet", "list", "--json", NEURO_DATADIR=str(tmp_path / "elsewhere")).stdout)
    assert [k["address"] for k in listed] == [created["address"]]


def test_keys_in_an_old_data_dir_keystore_are_copied_with_a_note(tmp_path: Path) -> None:
    neuro = Neuro(tmp_path / "home")
    datadir = tmp_path / "cluster" / "node0"
    legacy = Keystore(datadir / "keystore", "tntk", KdfParams.light())
    old = legacy.create("saved", PASSWORD)
    first = neuro("wallet", "list", "--json", NEURO_DATADIR=str(datadir))
    assert first.exit_code == 0, first.output
    assert "copied saved" in first.stderr and str(datadir / "keystore") in first.stderr
    assert (datadir / "keystore" / "saved.json").exists()  # nothing deleted
    assert neuro.json("wallet", "show", "saved")["address"] == old.address  # found without --datadir now
    again = neuro("wallet", "list", NEURO_DATADIR=str(datadir))
    assert "copied" not in again.stderr  # said once


def test_the_config_file_sets_the_keystore_below_the_flag_and_the_environment(tmp_path: Path) -> None:
    """flag > NEURO_KEYSTORE > `$NEURO_HOME/neuro.toml` (a network's table over the top level) >
    `$NEURO_HOME/keystore/<network>`."""
    neuro = Neuro(tmp_path / "home")
    neuro.home.mkdir()
    config = neuro.home / "neuro.toml"
    config.write_text('keystore = "~/all-networks"\n[devnet]\nkeystore = "devnet-keys"\n')

    def created_in(*args: str, **env: str | None) -> list[Path]:
        name = f"k{len(list(tmp_path.rglob('k*.json')))}"
        neuro.ok("wallet", "new", name, *args, HOME=str(tmp_path / "user"), **env)
        return [p.parent for p in tmp_path.rglob(f"{name}.json")]

    assert created_in() == [neuro.home / "devnet-keys"]  # relative to the file; the network's table wins
    assert created_in(NEURO_KEYSTORE=str(tmp_path / "env")) == [tmp_path / "env"]
    assert created_in("--keystore", str(tmp_path / "flag"), NEURO_KEYSTORE=str(tmp_path / "env")) == [tmp_path / "flag"]
    config.write_text('keystore = "~/all-networks"\n[main]\nkeystore = "main-keys"\n')
    assert created_in() == [tmp_path / "user" / "all-networks"]
    listed = json.loads(neuro.ok("wallet", "list", "--json", HOME=str(tmp_path / "user")).stdout)
    assert [k["name"] for k in listed] == ["k3"]
    config.unlink()
    assert created_in() == [neuro.keystore]


def test_a_bad_config_file_is_one_line_with_a_reason(tmp_path: Path) -> None:
    neuro = Neuro(tmp_path / "home")
    neuro.home.mkdir()
    for text in ("keystore = \n", "keystore = 3\n", "devnet = 1\n"):
        (neuro.home / "neuro.toml").write_text(text)
        failed = neuro("wallet", "list")
        assert failed.exit_code == 1 and failed.stderr.startswith("error (bad-config): "), failed.output
        assert len(failed.stderr.strip().splitlines()) == 1 and "neuro.toml" in failed.stderr
    assert neuro("wallet", "list", "--keystore", str(tmp_path / "k")).exit_code == 0  # a flag needs no config
