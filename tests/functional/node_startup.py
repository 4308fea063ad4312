"""Start-up problems are one clear line on stderr and exit status 1, never a traceback."""

from __future__ import annotations

import socket
import subprocess
import sys


def neurod(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "neurod", "--network", "devnet", "--listen", "/ip4/127.0.0.1/tcp/0", *args],
        capture_output=True, text=True, timeout=timeout, check=False,
    )


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
