"""The boundary in neurod.main: an operator's fault is one line wherever it surfaces, a bug is
one line pointing at the traceback in the log file."""

from __future__ import annotations

import errno
import logging
from pathlib import Path

import pytest

from chain.errors import StoreError
from neurod.config import ConfigError, load_config
from neurod.datadir import DataDirError
from neurod.main import crash_line, operator_fault
from p2p.errors import ConfigError as P2PConfigError


def test_a_fault_deep_in_nursery_groups_is_found() -> None:
    fault = DataDirError(Path("/d/.cookie"), "is a directory", "delete it")
    nested = ExceptionGroup("node", [ExceptionGroup("p2p", [KeyError("bug"), fault])])
    assert operator_fault(nested) == "/d/.cookie: is a directory; delete it"
    assert operator_fault(ExceptionGroup("node", [KeyError("bug")])) is None


@pytest.mark.parametrize(
    ("exc", "line"),
    [
        (ConfigError("/d/config.toml: unknown setting 'x'"), "/d/config.toml: unknown setting 'x'"),
        (P2PConfigError("bad-p2p-key", "/d/p2p_key: is empty"), "bad-p2p-key: /d/p2p_key: is empty"),
        (StoreError("store-damaged", "/d/chain: no CURRENT"), "store-damaged: /d/chain: no CURRENT"),
        (OSError(errno.EADDRINUSE, "address in use"), "port already in use ([Errno 98] address in use)"),
        (OSError(errno.ENOSPC, "No space left on device", "/d/.cookie.tmp"),
         "/d/.cookie.tmp: no space left on the device; free some space"),
        (IsADirectoryError(errno.EISDIR, "Is a directory", "/d/node.tmp"),
         "/d/node.tmp: is a directory; check the disk, and the owner and mode of the file"),
    ],
)
def test_known_faults_are_their_own_line(exc: Exception, line: str) -> None:
    assert operator_fault(exc) == line


def test_a_bug_leaves_its_traceback_in_the_log_file_only(tmp_path: Path) -> None:
    handler = logging.FileHandler(tmp_path / "neurod.log")
    logging.getLogger().addHandler(handler)
    try:
        try:
            {}["missing"]
        except KeyError as exc:
            line = crash_line(exc)
    finally:
        logging.getLogger().removeHandler(handler)
        handler.close()
    assert line == f"unexpected KeyError: 'missing' (the traceback is in {tmp_path / 'neurod.log'})"
    assert "Traceback" in (tmp_path / "neurod.log").read_text()


def test_config_that_is_not_utf8_is_a_config_error(tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_bytes(b"\xff\xfe log_level")
    with pytest.raises(ConfigError, match="config.toml: 'utf-8' codec can't decode"):
        load_config(tmp_path, {})
