"""`neurod --network devnet --datadir D --mine`, the README's first command, with no pacing flag:
the data dir gets a genesis of its own stamped now, ASERT sets the pace instead of a flood of
blocks at the PoW limit, and a restart keeps the same chain (issue 16, finding 3)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

from chain.genesis import load_genesis
from chain.pow import bits_to_target
from tests.support.daemons import wait_until

FLOOD = 200  # blocks in the first seconds: the template's genesis made about 450 a second


def start(datadir: Path) -> subprocess.Popen[bytes]:
    (datadir / "node.json").unlink(missing_ok=True)
    log = open(datadir.parent / f"{datadir.name}.log", "ab")  # noqa: SIM115 - the child keeps it
    proc = subprocess.Popen(
        [sys.executable, "-m", "neurod", "--network", "devnet", "--datadir", str(datadir), "--mine",
         "--listen", "/ip4/127.0.0.1/tcp/0", "--rpc-port", "0"], stdout=log, stderr=subprocess.STDOUT)
    wait_until(lambda: (datadir / "node.json").exists() or proc.poll() is not None, 60, "neurod to start")
    assert proc.poll() is None, (datadir.parent / f"{datadir.name}.log").read_text()
    return proc


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGTERM)
    proc.wait(30)


def rpc(datadir: Path, method: str, **params: object) -> object:
    from wallet.node_client import RpcClient, RpcTarget

    url = json.loads((datadir / "node.json").read_text())["rpc_url"]
    return RpcClient(RpcTarget(url, datadir / ".cookie", "devnet")).call(method, **params)


def test_a_plain_mining_devnet_node_is_paced_by_its_own_genesis(tmp_path: Path) -> None:
    datadir = tmp_path / "d"
    datadir.mkdir()
    before = int(time.time())
    proc = start(datadir)
    try:
        genesis = load_genesis(datadir / "genesis.json")
        assert genesis.params.genesis_time >= before - 1  # stamped when the devnet was made
        limit = bits_to_target(genesis.params.pow_limit_bits)
        assert bits_to_target(genesis.params.genesis_bits) < limit // 1000  # a real target, not the limit
        started = time.monotonic()
        wait_until(lambda: rpc(datadir, "chain_head")["height"] >= 3, 120, "three blocks")  # type: ignore[index]
        time.sleep(max(0.0, 5 - (time.monotonic() - started)))
        height = rpc(datadir, "chain_head")["height"]  # type: ignore[index]
        assert height < FLOOD, f"{height} blocks in the first seconds: a flood"
        status = rpc(datadir, "node_status")
        assert status["chain_id"] == genesis.chain_id.hex()  # type: ignore[index]
    finally:
        stop(proc)
    again = start(datadir)
    try:
        assert load_genesis(datadir / "genesis.json").chain_id == genesis.chain_id
        assert rpc(datadir, "chain_head")["height"] >= height  # type: ignore[index]
    finally:
        stop(again)
