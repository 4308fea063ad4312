"""Crash safety: an importer SIGKILLed at random points always leaves a consistent store.

The blocks (a common stem, then a branch, then a longer branch that forces a reorg) are built once
in this process and written to a file; `crash_importer.py` imports them into LevelDB and is killed
many times. After each kill the store is reopened and must hold a tip whose header, meta, undo data
and main-chain index agree, and whose accounts, trie nodes, supply and tx index are exactly those a
reference in-memory chain had when it reached that same tip. Where the kill lands (before, inside
or between batches, during a reorg) only changes which tip that is.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import msgpack
import pytest

from chain import failpoints, schema
from chain.chainstate import BlockStatus, ChainState
from chain.devnet_keys import devnet_seed
from chain.state import Account
from chain.store import LevelKV
from chain.trie import root_of
from chain.types import Block
from tests.support.chain_builders import (
    account_of,
    chain_split,
    devnet,
    import_all,
    import_block,
    main_chain,
    mine_blocks,
    new_chain,
    transfers,
)

IMPORTER = Path(__file__).with_name("crash_importer.py")
KILLS = 25
SENDERS = [devnet_seed(name) for name in ("alice", "bob", "carol", "dave")]
RECIPIENTS = [account_of(devnet_seed(f"recipient {i}")) for i in range(40)]


@dataclass(frozen=True)
class Snapshot:
    """What the reference chain held when a block was its tip."""

    root: bytes
    supply: int
    accounts: dict[bytes, Account]
    txids: frozenset[bytes]


def busy_blocks(chain: ChainState, count: int, per_sender: int, seed: int) -> list[Block]:
    """``count`` mined and imported blocks, each with ``per_sender`` transfers from every sender."""
    rng = random.Random(seed)
    blocks = []
    for _ in range(count):
        txs = [
            tx
            for sender in SENDERS
            for tx in transfers(chain, sender, rng.choice(RECIPIENTS), [rng.randint(1, 10**6)] * per_sender)
        ]
        blocks.extend(mine_blocks(chain, 1, txs))
    return blocks


def build_blocks() -> list[Block]:
    """Stem of 70 blocks, branch a of 12 and branch b of 16 (b wins), in import order."""
    chain = new_chain()
    stem = busy_blocks(chain, 70, 5, seed=1)
    split = chain_split(chain, 12, 16, a_txs=transfers(chain, SENDERS[0], RECIPIENTS[0], [7]))
    return stem + split.a + split.b


def reference_snapshots(blocks: list[Block]) -> tuple[dict[bytes, Snapshot], bytes]:
    """Import ``blocks`` in order into an in-memory chain; its state at every tip it reached."""
    chain = new_chain()

    def snapshot() -> Snapshot:
        txids = frozenset(tx.txid for block in main_chain(chain) for tx in block.txs)
        return Snapshot(chain.state_root(), chain.supply, dict(chain.accounts()), txids)

    snapshots = {chain.tip_hash: snapshot()}
    for block in blocks:
        if import_block(chain, block).tip_changed:
            snapshots[chain.tip_hash] = snapshot()
    return snapshots, chain.tip_hash


def check_store(datadir: Path, snapshots: dict[bytes, Snapshot]) -> bytes:
    """Reopen the store and check it against the reference; returns its tip."""
    kv = LevelKV(datadir)
    try:
        chain = ChainState(kv, devnet())
        tip, height = chain.tip_hash, chain.height
        assert chain.header(tip).hash == tip
        meta = chain.meta(tip)
        assert (meta.height, meta.status) == (height, BlockStatus.CONNECTED)
        assert chain.hash_at(height) == tip
        assert chain.hash_at(height + 1) is None
        assert (kv.get(schema.UNDO + tip) is not None) == (height > 0)
        for h in range(height, 0, -1):  # the main-chain index links up to genesis
            header = chain.header(chain.hash_at(h) or b"")
            assert header.height == h and header.parent == chain.hash_at(h - 1)
        assert tip in snapshots, "a tip the reference never had"
        expected = snapshots[tip]
        accounts = dict(chain.accounts())
        assert accounts == expected.accounts
        assert chain.state_root_from_scratch() == expected.root
        assert root_of(lambda path: kv.get(schema.TRIE + path)) == expected.root
        assert chain.tip_header.state_root == expected.root
        assert chain.supply == expected.supply
        assert {key[1:] for key, _ in kv.iterate(schema.TX_INDEX)} == expected.txids
        return tip
    finally:
        kv.close()


def start_importer(datadir: Path, blocks_file: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(IMPORTER), str(datadir), str(blocks_file)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def test_sigkill_at_random_points_leaves_a_consistent_store(tmp_path: Path) -> None:
    blocks = build_blocks()
    snapshots, final_tip = reference_snapshots(blocks)
    blocks_file = tmp_path / "blocks.msgpack"
    blocks_file.write_bytes(msgpack.packb([block.encode() for block in blocks]))
    datadir = tmp_path / "db"
    rng = random.Random(20260101)
    order = {tip: index for index, tip in enumerate(snapshots)}
    tips_seen, previous = set(), -1
    for kill in range(KILLS):
        importer = start_importer(datadir, blocks_file)
        if rng.random() < 0.8:  # mostly aim at the import itself, sometimes at start-up
            assert importer.stdout is not None and importer.stdout.readline() == "ready\n"
        time.sleep(rng.uniform(0.0, 0.02))
        importer.send_signal(signal.SIGKILL)
        _, stderr = importer.communicate()
        assert importer.returncode in (-signal.SIGKILL, 0), stderr
        if not datadir.exists():
            continue  # killed before it created the store
        tip = check_store(datadir, snapshots)
        assert order[tip] >= previous, "the tip went back: a synced batch was lost"
        previous = order[tip]
        tips_seen.add(tip)
    importer = start_importer(datadir, blocks_file)
    stdout, stderr = importer.communicate(timeout=60)
    assert importer.returncode == 0, stderr
    assert stdout.endswith("done\n")
    assert check_store(datadir, snapshots) == final_tip
    assert len(tips_seen) > 1  # the kills did land at different points of the import


CHAIN_FAILPOINTS = {  # point -> which hit of it to die at: mid-stem for blocks, the one reorg
    "block-before-commit": 40,
    "block-after-commit": 40,
    "reorg-after-undo": 1,
    "reorg-before-commit": 1,
}


def dump(datadir: Path) -> dict[bytes, bytes]:
    """Every row of a store: two stores that imported the same blocks must agree on all."""
    kv = LevelKV(datadir)
    try:
        return dict(kv.iterate(b""))
    finally:
        kv.close()


def run_importer(datadir: Path, blocks_file: Path, failpoint: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, failpoints.ENV: failpoint or ""}
    return subprocess.run(
        [sys.executable, str(IMPORTER), str(datadir), str(blocks_file)],
        env=env, check=False, capture_output=True, text=True, timeout=120,
    )


def test_a_crash_at_every_chain_failpoint_recovers_to_the_uncrashed_store(tmp_path: Path) -> None:
    """Killed at each named point inside block import and reorg commit, then restarted, the
    store ends row for row equal to one whose importer never crashed (state root, tip, supply,
    undo data, tx index, history and main-chain rows included)."""
    assert set(CHAIN_FAILPOINTS) <= set(failpoints.POINTS)
    blocks = build_blocks()
    snapshots, final_tip = reference_snapshots(blocks)
    blocks_file = tmp_path / "blocks.msgpack"
    blocks_file.write_bytes(msgpack.packb([block.encode() for block in blocks]))
    reference = run_importer(tmp_path / "reference", blocks_file)
    assert reference.returncode == 0, reference.stderr
    expected = dump(tmp_path / "reference")
    for point, nth in CHAIN_FAILPOINTS.items():
        datadir = tmp_path / point
        crashed = run_importer(datadir, blocks_file, f"{point}@{nth}")
        assert crashed.returncode == -signal.SIGKILL, f"{point}: did not die there: {crashed.stderr}"
        assert "done" not in crashed.stdout
        tip = check_store(datadir, snapshots)  # consistent at whichever tip the kill left
        assert tip != final_tip, f"{point}: the kill landed after the last block"
        resumed = run_importer(datadir, blocks_file)
        assert resumed.returncode == 0, resumed.stderr
        assert check_store(datadir, snapshots) == final_tip
        assert dump(datadir) == expected, f"{point}: the recovered store differs from the uncrashed one"


class _Died(Exception):
    """Raised where a fail point would SIGKILL the process (`os.kill` replaced in-process)."""


@pytest.mark.parametrize("point", list(CHAIN_FAILPOINTS))
def test_each_chain_failpoint_fires_at_its_place(point: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The points of the crash test above, in this process: the importer there is a child
    process, which in-process tools (coverage, mutation runs) do not see. A block import hits
    the block points, a reorg the reorg points, and a point that fires before the commit leaves
    the store's tip where it was."""

    def die(pid: int, sig: int) -> None:
        raise _Died(point)

    monkeypatch.setattr(os, "kill", die)
    chain = new_chain()
    mine_blocks(chain, 2)
    split = chain_split(chain, 1, 2)
    failpoints.arm(point)
    try:
        if point.startswith("reorg-"):
            import_all(chain, [split.a[0], split.b[0]])  # the tip moves on; a side branch as long
            with pytest.raises(_Died):
                import_block(chain, split.b[1])  # longer: the reorg
        else:
            with pytest.raises(_Died):
                import_block(chain, split.a[0])
    finally:
        failpoints.arm("")
    committed = point == "block-after-commit" or point.startswith("reorg-")  # reorgs: only the block before
    assert chain.kv.get(schema.TIP) == (split.a[0].hash if committed else split.fork.hash)
