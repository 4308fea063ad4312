"""The p2p identity key in the data dir: made atomically, and a damaged one is a clear error that
leaves the file alone (the peer id is how other nodes' bootstrap addresses find this node)."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from p2p.errors import ConfigError
from p2p.host import load_or_create_key


def test_key_is_made_once_with_mode_0600(tmp_path: Path) -> None:
    path = tmp_path / "p2p_key"
    made = load_or_create_key(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_or_create_key(path).private_key.to_bytes() == made.private_key.to_bytes()
    assert [p.name for p in tmp_path.iterdir()] == ["p2p_key"]  # no temp file left


@pytest.mark.parametrize(("content", "problem"), [(b"", "is empty"), (b"garbage\n", "not a libp2p private key")])
def test_damaged_key_is_one_line_naming_the_file(tmp_path: Path, content: bytes, problem: str) -> None:
    path = tmp_path / "p2p_key"
    path.write_bytes(content)
    with pytest.raises(ConfigError) as err:
        load_or_create_key(path)
    assert err.value.reason == "bad-p2p-key"
    assert f"{path}: {problem}" in str(err.value) and "\n" not in str(err.value)
    assert "delete it to start under a new peer id" in str(err.value)
    assert path.read_bytes() == content


def test_unreadable_key_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "p2p_key").mkdir()
    with pytest.raises(ConfigError, match="p2p_key: cannot be read"):
        load_or_create_key(tmp_path / "p2p_key")
