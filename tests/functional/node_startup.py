"""Start-up problems are one clear line on stderr and exit status 1, never a traceback, and a
start that fails changes nothing the data dir stores."""

from __future__ import annotations

import json
import os
import shutil
import socket
import stat
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from chain.store import LevelKV
from tests.support.daemons import Daemon, wait_until

# Root passes every permission check: without these two capabilities it meets the owner's mode
# bits like anyone else, so the permission faults below are real for it too.
AS_ROOT_WITHOUT_OVERRIDE = ["setpriv", "--bounding-set", "-dac_override,-dac_read_search"]
BANNED_PEER = "12D3KooWBannedPeerOfTheStoredNodeXXXXXXXXXXXXXXXXXXX"
# written afresh by every start (or by the test harness): not what a data dir "stores"
VOLATILE_FILES = {"neurod.log", "stdout.log", ".lock", ".cookie", "node.json"}


def neurod(*args: str, timeout: float = 60, prefix: list[str] | None = None) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "neurod", "--network", "devnet", "--listen", "/ip4/127.0.0.1/tcp/0", *args]
    return subprocess.run([*(prefix or []), *command], capture_output=True, text=True, timeout=timeout, check=False)


def assert_one_line_error(result: subprocess.CompletedProcess[str], needle: str) -> None:
    assert result.returncode == 1, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("neurod:")]
    assert len(lines) == 1 and needle in lines[0], result.stderr
    assert "Traceback" not in result.stderr


def test_rpc_port_taken(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = neurod("--datadir", str(tmp_path / "n"), "--rpc-port", str(port))
    assert_one_line_error(result, "port already in use")


def test_datadir_in_use(daemons, tmp_path):
    running = daemons("busy")
    result = neurod("--datadir", str(running.datadir), "--rpc-port", "0")
    assert_one_line_error(result, "in use by another neurod")
    assert running.rpc("chain_supply")["supply"] > 0


def test_bad_config_and_genesis(tmp_path):
    (tmp_path / "cfg").mkdir()
    (tmp_path / "cfg" / "config.toml").write_text("rpc_prot = 5\n")
    assert_one_line_error(neurod("--datadir", str(tmp_path / "cfg")), "unknown setting 'rpc_prot'")
    (tmp_path / "cfg" / "config.toml").write_text("verify_threads = 2\n")
    assert_one_line_error(
        neurod("--datadir", str(tmp_path / "cfg")), "unknown setting 'verify_threads' (renamed to 'verify_workers')"
    )
    broken = tmp_path / "genesis.json"
    broken.write_text('{"network": "x"')
    assert_one_line_error(neurod("--datadir", str(tmp_path / "g"), "--genesis", str(broken)), "not JSON")


def test_datadir_of_another_network_is_refused(daemons, tmp_path):
    node = daemons("devnet-node")
    node.stop()
    result = neurod("--datadir", str(node.datadir), "--network", "main", "--rpc-port", "0")
    assert_one_line_error(result, "wrong-network")


# ---- every bad entry of a data dir that a node has used ---------------------------------------


@pytest.fixture(scope="module")
def stored_node(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data dir a real node mined into and was stopped in: a chain, both keys, a ban list and a
    config file. Each fault below damages a copy of it."""
    node = Daemon(tmp_path_factory.mktemp("stored") / "node", mine=True, block_interval=0.2).start()
    try:
        wait_until(lambda: node.height() >= 3, 60, "three blocks")
    finally:
        node.stop()
    (node.datadir / "p2p_bans.json").write_text(json.dumps({"bans": {BANNED_PEER: 4e9}}))
    (node.datadir / "config.toml").write_text('log_level = "info"\n')
    return node.datadir


def _write(data: bytes) -> Callable[[Path], None]:
    return lambda path: path.write_bytes(data)


def _as_directory(path: Path) -> None:
    path.unlink(missing_ok=True)
    path.mkdir()


def _as_file(path: Path) -> None:
    """Put a file where a directory was, keeping the directory's contents beside it."""
    path.rename(path.with_name(path.name + ".kept"))
    path.write_bytes(b"not a directory")


def _as_dangling_link(path: Path) -> None:
    """A link to a disk that is not mounted: the directory's contents are kept beside it."""
    path.rename(path.with_name(path.name + ".kept"))
    path.symlink_to(path.parent / "unmounted" / path.name)


def _mode(mode: int) -> Callable[[Path], None]:
    return lambda path: path.chmod(mode)


# fault -> (the entry it damages, "" for the data dir itself; how; whether it is a permission)
FAULTS: dict[str, tuple[str, Callable[[Path], None], bool]] = {
    "node-key-short": ("node_key", _write(b"12345"), False),
    "node-key-empty": ("node_key", _write(b""), False),
    "node-key-directory": ("node_key", _as_directory, False),
    "node-key-unreadable": ("node_key", _mode(0o200), True),
    "p2p-key-garbage": ("p2p_key", _write(b"garbage\n"), False),
    "p2p-key-empty": ("p2p_key", _write(b""), False),
    "p2p-key-directory": ("p2p_key", _as_directory, False),
    "bans-directory": ("p2p_bans.json", _as_directory, False),
    "bans-unreadable": ("p2p_bans.json", _mode(0o200), True),
    "cookie-directory": (".cookie", _as_directory, False),
    "node-info-directory": ("node.json", _as_directory, False),
    "lock-directory": (".lock", _as_directory, False),
    "log-directory": ("neurod.log", _as_directory, False),
    "log-read-only": ("neurod.log", _mode(0o400), True),
    "config-directory": ("config.toml", _as_directory, False),
    "config-not-utf8": ("config.toml", _write(b"\xff\xfe log_level"), False),
    "config-unreadable": ("config.toml", _mode(0o200), True),
    "chain-file": ("chain", _as_file, False),
    "chain-dangling-link": ("chain", _as_dangling_link, False),
    "chain-read-only": ("chain", _mode(0o500), True),
    "datadir-file": ("", _as_file, False),
    "datadir-read-only": ("", _mode(0o500), True),
}


def stored(path: Path) -> object:
    """What `path` stores: a file's bytes, a link's target, a LevelDB store's key/value pairs, a
    directory's entries (volatile files left out), with each one's permission bits."""
    info = path.lstat()
    mode = stat.S_IMODE(info.st_mode)
    if stat.S_ISLNK(info.st_mode):
        return ("link", os.readlink(path))
    if stat.S_ISREG(info.st_mode):
        return ("file", mode, path.read_bytes())
    if (path / "CURRENT").is_file():
        kv = LevelKV(path)
        try:
            return ("store", mode, dict(kv.iterate(b"")))
        finally:
            kv.close()
    entries = {
        child.name: stored(child) for child in path.iterdir()
        if not (child.name in VOLATILE_FILES and child.is_file() and not child.is_symlink())
    }
    return ("directory", mode, entries)


def _privileges() -> list[str]:
    if os.geteuid() != 0:
        return []
    if shutil.which("setpriv") is None:
        pytest.skip("running as root without setpriv: root passes every permission check")
    return AS_ROOT_WITHOUT_OVERRIDE


@pytest.mark.parametrize("fault", list(FAULTS))
def test_bad_datadir_entry_is_one_line_and_loses_nothing(stored_node: Path, tmp_path: Path, fault: str) -> None:
    name, damage, is_permission = FAULTS[fault]
    datadir = tmp_path / "node"
    shutil.copytree(stored_node, datadir, symlinks=True)
    target = datadir / name if name else datadir
    prefix = _privileges() if is_permission else []
    if is_permission:  # read while it still can be; the mode is put back before comparing
        before, mode = stored(tmp_path), stat.S_IMODE(target.stat().st_mode)
        damage(target)
        try:
            result = neurod("--datadir", str(datadir), "--rpc-port", "0", prefix=prefix)
        finally:
            target.chmod(mode)
    else:
        damage(target)
        before = stored(tmp_path)
        result = neurod("--datadir", str(datadir), "--rpc-port", "0")
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr + result.stdout, result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("neurod: ") and f"{target}: " in lines[0], result.stderr
    assert stored(tmp_path) == before


@pytest.mark.parametrize("content", [b"{not json", b'{"bans": [1, 2]}', b"[1, 2]", b'{"bans": {"x": "soon"}}'])
def test_bad_ban_file_is_set_aside_with_one_warning(stored_node: Path, tmp_path: Path, content: bytes) -> None:
    datadir = tmp_path / "node"
    shutil.copytree(stored_node, datadir, symlinks=True)
    (datadir / "p2p_bans.json").write_bytes(content)
    chain = stored(datadir / "chain")
    node = Daemon(datadir).start()
    try:
        assert node.height() >= 3
        warnings = node.log_lines("p2p_bans.json").splitlines()
        assert len(warnings) == 1 and "set aside as p2p_bans.json.bad" in warnings[0], warnings
    finally:
        node.stop()
    assert "Traceback" not in node.log_tail(10_000)
    assert (datadir / "p2p_bans.json.bad").read_bytes() == content
    assert json.loads((datadir / "p2p_bans.json").read_text()) == {"bans": {}}
    assert stored(datadir / "chain") == chain
