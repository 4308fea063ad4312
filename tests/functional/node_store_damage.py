"""A real node's chain store damaged on disk (findings 1-3 of issue 11): the node refuses to
start on it in one line naming the repair, or serves only what is intact; `--reindex` mends it
and `--check-db` confirms it, and nothing that was stored is deleted on the way."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from chain import schema
from chain.store import LevelKV
from tests.support.daemons import Daemon, RpcCallError, wait_converged, wait_until


def mined_store(daemons, name: str, height: int) -> tuple[Daemon, dict[int, str]]:  # type: ignore[no-untyped-def]
    """A stopped node with ``height`` blocks, its rows written to table files (LevelDB turns its
    log into a table when it opens); returns it and its main chain's hashes by height."""
    node = daemons(name, mine=True, block_interval=0.02)
    wait_until(lambda: node.height() >= height, 120, f"{height} blocks")
    assert node.stop() == 0
    node.mine = False
    node.start()
    hashes = {h: node.rpc("chain_block", id=h)["hash"] for h in range(node.height() + 1)}
    assert node.stop() == 0
    assert list((node.datadir / "chain").glob("*.ldb"))
    return node, hashes


def run_neurod(node: Daemon, *flags: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(node.command() + list(flags), check=False, capture_output=True, text=True, timeout=120)


def start_fails(node: Daemon) -> str:
    """Start ``node`` expecting a refusal; returns its one stderr line."""
    done = run_neurod(node)
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr + done.stdout
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    return lines[0]


def table_files(path: Path) -> dict[str, int]:
    return {p.name: p.stat().st_size for p in path.iterdir() if p.suffix in (".ldb", ".log")}


def reindex_and_check(node: Daemon) -> str:
    done = run_neurod(node, "--reindex", "--check-db")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("check-db: ok:"), done.stdout
    return done.stderr


def test_node_store_without_current_is_refused_then_reindexed(daemons) -> None:  # type: ignore[no-untyped-def]
    node, hashes = mined_store(daemons, "node", 40)
    chain_dir = node.datadir / "chain"
    before = table_files(chain_dir)
    (chain_dir / "CURRENT").unlink()
    line = start_fails(node)
    assert "no CURRENT" in line and "--reindex" in line and str(node.datadir) in line
    assert table_files(chain_dir) == before  # nothing was created over it, nothing deleted
    said = reindex_and_check(node)
    assert "kept at" in said  # the store as found is copied aside before LevelDB repairs it
    node.start()
    assert node.height() == max(hashes) and node.tip() == hashes[max(hashes)]


def test_node_store_with_a_truncated_table_is_refused(daemons) -> None:  # type: ignore[no-untyped-def]
    node, hashes = mined_store(daemons, "node", 40)
    table = max((node.datadir / "chain").glob("*.ldb"), key=lambda p: p.stat().st_size)
    with open(table, "r+b") as f:
        f.truncate(table.stat().st_size // 2)
    line = start_fails(node)
    assert table.name in line and "--reindex" in line
    # a table without its footer cannot be read at all (its index is at the end): the blocks in
    # it are lost to this node, and the reindexed chain is what the other files still held
    said = reindex_and_check(node)
    assert "kept at" in said
    node.start()
    assert node.height() <= max(hashes)
    assert all(node.rpc("chain_block", id=h)["hash"] == hashes[h] for h in range(node.height() + 1))


def test_node_store_with_flipped_bytes_never_serves_a_wrong_block(daemons) -> None:  # type: ignore[no-untyped-def]
    """One byte flipped at 30% of every table file: the node either refuses to start (the damage
    is in what the start-up check reads) or starts and answers each block with the block that
    was stored or an error, never another; a fresh peer syncing from it never bans it."""
    node, hashes = mined_store(daemons, "node", 300)
    for table in (node.datadir / "chain").glob("*.ldb"):
        data = bytearray(table.read_bytes())
        data[len(data) * 3 // 10] ^= 0x5A
        table.write_bytes(bytes(data))
    done = run_neurod(node, "--check-db")
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stdout + done.stderr
    assert "problem" in done.stdout
    try:
        node.start()
    except AssertionError:  # it refused: in one line that names the repair
        assert "--reindex" in start_fails(node)
    else:
        wrong, refused = [], 0
        for height, block_hash in hashes.items():
            try:
                if node.rpc("chain_block", id=height)["hash"] != block_hash:
                    wrong.append(height)
            except RpcCallError as exc:
                assert exc.code == -32020 and exc.reason.startswith("store-"), exc
                refused += 1
        assert not wrong, f"blocks other than the stored ones were served at heights {wrong}"
        assert not node.rpc("node_verify_db")["ok"]
        errors = node.rpc("node_status")["store_read_errors"]
        assert errors >= refused
        fresh = daemons("fresh", bootstrap=[node.p2p_addr])
        # the fresh node syncs what is intact, or its requests meet the damage (counted, not served)
        wait_until(
            lambda: fresh.height() >= 1 or node.rpc("node_status")["store_read_errors"] > errors,
            60, "the fresh node to sync or to ask for a damaged row",
        )
        assert "bad-txnmrklroot" not in fresh.log_tail(400) and "banned" not in fresh.log_lines(node.peer_id)
        assert node.stop() == 0
    reindex_and_check(node)
    node.start()
    for height in range(node.height() + 1):
        assert node.rpc("chain_block", id=height)["hash"] == hashes[height]
    fresh = daemons("fresh2", bootstrap=[node.p2p_addr])
    wait_converged([node, fresh], min_height=node.height())


def neuro(node: Daemon, *args: str) -> subprocess.CompletedProcess[str]:
    env = {"PATH": os.environ["PATH"], "HOME": str(node.datadir), "NEURO_DATADIR": str(node.datadir), "NEURO_NETWORK": "devnet"}
    return subprocess.run([sys.executable, "-m", "cli.main", *args], check=False, capture_output=True, text=True, env=env, timeout=120)


def test_node_verify_db_checks_a_running_node(daemons) -> None:  # type: ignore[no-untyped-def]
    """`neuro node verify-db` walks a snapshot of the store of a node that goes on mining."""
    node = daemons("node", mine=True, block_interval=0.05)
    wait_until(lambda: node.height() >= 20, 60, "20 blocks")
    done = neuro(node, "node", "verify-db", "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["ok"] and report["blocks"] >= 21 and report["problems"] == []
    assert neuro(node, "node", "verify-db").stdout.startswith("chain store: ok")


def test_node_refuses_damage_its_start_up_check_reads_in_one_line(daemons) -> None:  # type: ignore[no-untyped-def]
    """The undo data of a recent block rewritten behind the node's back: the start-up check
    undoes the last blocks in a scratch overlay, finds it, and the start is refused in one line
    (nothing logged before it); `--reindex` rebuilds the undo data from the blocks."""
    node, hashes = mined_store(daemons, "node", 30)
    tip = max(hashes)
    kv = LevelKV(node.datadir / "chain")
    kv.commit({schema.UNDO + bytes.fromhex(hashes[tip - 2]): b"\x92\x00\x90"}, sync=True)
    kv.close()
    line = start_fails(node)
    assert ("store-undo-mismatch" in line or "store-undo-damaged" in line) and "--reindex" in line, line
    reindex_and_check(node)
    node.start()
    assert node.tip() == hashes[tip]
