"""Keys live outside node data dirs (issue 16, finding 2): `$NEURO_HOME/keystore/<network>` whatever
`--datadir` says, and keys an older version kept in `<datadir>/keystore` are copied over, never moved
or deleted."""

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
