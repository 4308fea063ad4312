"""The data dir checks: each wrong kind of entry is one `DataDirError` naming it, a node key is
made atomically and never replaced, and neurod's directories are private."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from neurod.datadir import (
    LAYOUT,
    NODE_KEY,
    DataDirError,
    load_or_create_node_key,
    lock_datadir,
    make_private_dir,
    prepare_datadir,
)


def test_data_dir_and_its_missing_parents_are_made_private(tmp_path: Path) -> None:
    datadir = tmp_path / "home" / "devnet"
    prepare_datadir(datadir)
    assert stat.S_IMODE(datadir.stat().st_mode) == 0o700
    assert list(datadir.iterdir()) == []  # checking creates nothing inside
    make_private_dir(datadir)  # an existing directory is fine
    prepare_datadir(datadir)


@pytest.mark.parametrize("entry", LAYOUT, ids=lambda e: e.name)
def test_each_entry_of_the_wrong_kind_is_one_error_naming_it(tmp_path: Path, entry) -> None:
    path = tmp_path / entry.name
    if entry.is_dir:
        path.write_bytes(b"x")
    else:
        path.mkdir()
    with pytest.raises(DataDirError) as err:
        prepare_datadir(tmp_path)
    assert err.value.path == path and entry.holds in err.value.problem
    assert err.value.remedy == entry.remedy and "\n" not in str(err.value)
    assert path.exists()  # reported, never removed


def test_a_link_to_nothing_is_named_with_its_target(tmp_path: Path) -> None:
    (tmp_path / "chain").symlink_to(tmp_path / "unmounted" / "chain")
    with pytest.raises(DataDirError, match="unmounted/chain, which does not exist"):
        prepare_datadir(tmp_path)
    os.unlink(tmp_path / "chain")
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "chain").symlink_to(tmp_path / "elsewhere")  # a link to a directory is fine
    prepare_datadir(tmp_path)


def test_a_data_dir_that_is_a_file_or_below_one(tmp_path: Path) -> None:
    (tmp_path / "file").write_bytes(b"x")
    with pytest.raises(DataDirError, match="is a regular file, but the data dir must be a directory"):
        prepare_datadir(tmp_path / "file")
    with pytest.raises(DataDirError) as err:
        prepare_datadir(tmp_path / "file" / "below")
    assert err.value.path == tmp_path / "file" / "below"


def test_node_key_is_made_once_and_a_short_one_is_never_replaced(tmp_path: Path) -> None:
    path = tmp_path / "node_key"
    key = load_or_create_node_key(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and path.read_bytes() == key.seed
    assert load_or_create_node_key(path) == key
    assert [p.name for p in tmp_path.iterdir()] == ["node_key"]  # no temp file left
    path.write_bytes(b"12345")
    with pytest.raises(DataDirError) as err:
        load_or_create_node_key(path)
    assert "is 5 bytes" in err.value.problem and err.value.remedy == NODE_KEY.remedy
    assert path.read_bytes() == b"12345"


def test_second_lock_names_the_holder(tmp_path: Path) -> None:
    held = lock_datadir(tmp_path)
    try:
        with pytest.raises(DataDirError, match=f"in use by another neurod \\(pid {os.getpid()}\\)"):
            lock_datadir(tmp_path)
    finally:
        os.close(held)
