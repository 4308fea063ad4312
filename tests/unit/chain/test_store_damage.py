"""A damaged LevelDB store is refused or reported, never silently wiped, served or built on.

Each test damages a real store on disk the way a bad disk or a careless operator would (a
deleted CURRENT, a truncated table, flipped bytes) or rewrites a row behind the chain's back,
and checks what the store, the chain reads, the start-up check and the whole-store check do.
"""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import pytest

from chain import encoding as enc
from chain import schema
from chain.chainstate import ChainState, _Undo, verified_block, verified_block_bytes
from chain.crypto import public_key_of
from chain.devnet_keys import devnet_seed
from chain.errors import ChainError, StoreError
from chain.jobs import Totals
from chain.market_types import JobPost, Service
from chain.params import MAX_BLOCK_BYTES
from chain.state import Account
from chain.store import LevelKV, inspect_store_dir
from chain.storecheck import check_recent, check_store
from chain.types import Block, Transaction
from chain.validation import tx_root
from tests.support.chain_builders import (
    account_of,
    chain_split,
    devnet,
    import_all,
    mine_blocks,
    new_chain,
    transfers,
)

ALICE = devnet_seed("alice")
BOB = account_of(devnet_seed("bob"))


def busy_chain(kv: LevelKV | None = None, blocks: int = 12) -> ChainState:
    """A chain with a transfer in every block, so index and history rows exist."""
    chain = new_chain(kv=kv)
    for _ in range(blocks):
        mine_blocks(chain, 1, transfers(chain, ALICE, BOB, [1_000, 2_000]))
    return chain


def stored_files(path: Path) -> set[str]:
    return {p.name for p in path.iterdir() if p.suffix in (".ldb", ".log") or p.name.startswith("MANIFEST")}


def compacted_store(path: Path, blocks: int = 12) -> ChainState:
    """A closed store whose rows sit in table files (LevelDB writes its log to a table when it
    reopens), then opened again for the test."""
    kv = LevelKV(path)
    busy_chain(kv, blocks)
    kv.close()
    LevelKV(path).close()
    assert any(p.suffix == ".ldb" for p in path.iterdir())
    kv = LevelKV(path)
    return ChainState(kv, devnet())


def test_a_directory_without_current_is_refused_and_keeps_its_files(tmp_path: Path) -> None:
    path = tmp_path / "chain"
    compacted_store(path).kv.close()
    before = stored_files(path)
    (path / "CURRENT").unlink()
    with pytest.raises(StoreError) as refused:
        LevelKV(path)
    assert refused.value.reason == "store-damaged" and "no CURRENT" in str(refused.value)
    assert stored_files(path) == before  # LevelDB never got to create (and wipe) anything


def test_new_and_empty_directories_are_created(tmp_path: Path) -> None:
    assert inspect_store_dir(tmp_path / "absent")
    (tmp_path / "empty").mkdir()
    assert inspect_store_dir(tmp_path / "empty")
    LevelKV(tmp_path / "empty").close()
    assert not inspect_store_dir(tmp_path / "empty")


def test_without_create_a_missing_store_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="no chain store"):
        LevelKV(tmp_path / "absent", create=False)
    assert not (tmp_path / "absent").exists()


def test_a_truncated_table_is_named_at_open(tmp_path: Path) -> None:
    path = tmp_path / "chain"
    compacted_store(path).kv.close()
    table = max(path.glob("*.ldb"), key=lambda p: p.stat().st_size)
    os.truncate(table, table.stat().st_size // 2)
    with pytest.raises(StoreError) as refused:
        LevelKV(path)
    assert table.name in str(refused.value) and "manifest recorded" in str(refused.value)


def test_a_deleted_table_is_named_at_open(tmp_path: Path) -> None:
    path = tmp_path / "chain"
    compacted_store(path).kv.close()
    table = next(path.glob("*.ldb"))
    table.unlink()
    with pytest.raises(StoreError, match=f"{table.name} .* is missing"):
        LevelKV(path)


def test_a_table_a_crash_left_unrecorded_does_not_stop_the_store(tmp_path: Path) -> None:
    """A compaction killed mid-write leaves a partial table the manifest never listed:
    LevelDB deletes it at open, and the start-up check must not call it damage."""
    path = tmp_path / "chain"
    compacted_store(path).kv.close()
    (path / "999999.ldb").write_bytes(b"half a table")
    kv = LevelKV(path)
    assert ChainState(kv, devnet()).height == 12
    kv.close()


def test_flipped_bytes_are_read_errors_never_wrong_values(tmp_path: Path) -> None:
    path = tmp_path / "chain"
    chain = compacted_store(path, blocks=40)
    expected = dict(chain.kv.iterate(b""))
    chain.kv.close()
    for table in path.glob("*.ldb"):  # one byte at 30% of every table, as the finding did
        data = bytearray(table.read_bytes())
        data[len(data) * 3 // 10] ^= 0xFF
        table.write_bytes(bytes(data))
    faults: list[StoreError] = []
    kv = LevelKV(path, on_fault=faults.append)
    wrong, failed = 0, 0
    for key, value in expected.items():
        try:
            wrong += kv.get(key) != value
        except StoreError as exc:
            assert exc.reason == "store-read-failed"
            failed += 1
    kv.close()
    assert wrong == 0, "a damaged value was returned as if it were stored"
    assert failed > 0 and len(faults) == failed


def overwrite(chain: ChainState, key: bytes, value: bytes | None) -> None:
    chain.kv.commit({key: value}, sync=False)


def test_a_block_that_does_not_match_its_hash_is_never_served(tmp_path: Path) -> None:
    faults: list[StoreError] = []
    chain = busy_chain()
    chain.on_fault = faults.append
    target = chain.hash_at(5)
    assert target is not None
    other = chain.block_bytes(chain.hash_at(6) or b"")
    assert other is not None
    overwrite(chain, schema.BLOCK + target, other)
    for read in (chain.block_bytes, chain.block):
        with pytest.raises(StoreError) as refused:
            read(target)
        assert refused.value.reason == "store-block-mismatch"
    assert [f.reason for f in faults] == ["store-block-mismatch"] * 2


def test_a_block_whose_txs_were_changed_fails_its_tx_root() -> None:
    chain = busy_chain()
    target = chain.hash_at(3) or b""
    block = chain.block(target)
    altered = Block(block.header, block.txs[:1])  # same header, a transaction dropped
    overwrite(chain, schema.BLOCK + target, altered.encode())
    with pytest.raises(StoreError, match="tx root"):
        chain.block_bytes(target)


def test_each_check_of_a_stored_block_names_the_block_and_the_damage() -> None:
    """The checks behind every read of a stored block (`verified_block`, and its bytes-only twin
    for sync serving): unreadable bytes, another block's bytes, and a changed transaction list
    each have their own reason, and the detail names the block so the operator can find it."""
    chain = busy_chain(blocks=3)
    target, other = chain.hash_at(2) or b"", chain.hash_at(3) or b""
    data = chain.block_bytes(target) or b""
    block = Block.decode(data)
    txs_changed = Block(block.header, block.txs[:1]).encode()
    cases = [
        (b"\x93garbage", "store-block-undecodable", f"block {target.hex()}: bad-encoding"),
        (chain.block_bytes(other) or b"", "store-block-mismatch", f"block stored as {target.hex()} hashes to {other.hex()}"),
        (txs_changed, "store-block-mismatch", f"block {target.hex()}: transactions do not match its tx root"),
    ]
    for stored, reason, detail in cases:
        for check in (verified_block_bytes, verified_block):
            with pytest.raises(StoreError) as refused:
                check(stored, target)
            assert (refused.value.reason, refused.value.detail) == (reason, detail), check.__name__
    assert verified_block_bytes(data, target) == data and verified_block(data, target) == block


def test_a_stored_block_over_the_default_size_limit_is_read_back() -> None:
    """A genesis may raise `max_block_bytes` above the default: its blocks, once stored, must
    read back (the store's own bound is 1 GiB, not the default consensus size)."""
    seed = devnet_seed("alice")
    chain = busy_chain(blocks=1)
    posts = [
        Transaction(chain.chain_id, public_key_of(seed), nonce, 10, JobPost(Service.GENERATE, b"x" * 8_000, 1, 1, 2, 20, 10)).signed(seed)
        for nonce in range(260)
    ]
    big = Block(replace(chain.tip_header, tx_root=tx_root(posts)), tuple(posts))
    data = big.encode()
    assert len(data) > MAX_BLOCK_BYTES
    assert verified_block_bytes(data, big.hash) == data
    assert verified_block(data, big.hash) == big


def test_undo_records_are_decoded_strictly_with_named_fields() -> None:
    """A damaged undo record fails to decode with the field that is wrong, before a reorg starts
    undoing anything with it; the bounds are the store's own (64 MiB, 2**20 records)."""
    records, totals = [[b"k", b""]] * (1 << 20), Totals(1).encode()
    assert len(_Undo.decode(enc.pack([1, [], [], totals, [], records])).records) == 1 << 20
    cases = [
        (b"\x00" * ((64 << 20) + 1), "oversized: undo of 67108865 bytes (expected '<= 67108864', got 67108865)"),
        (enc.pack([1, [], [], totals, [], 5]), "bad-encoding: undo.records: expected a list, got int"),
        (enc.pack([1, [], [], totals, [], records + [[b"k", b""]]]),
         "oversized: undo.records: too many items (expected '<= 1048576', got 1048577)"),
        (enc.pack([1, [], []]), "bad-encoding: undo: wrong field count (expected 5, got 3)"),
    ]
    for data, described in cases:
        with pytest.raises(ChainError) as refused:
            _Undo.decode(data)
        assert refused.value.describe() == described


def test_reads_of_absent_blocks_say_which() -> None:
    chain = busy_chain(blocks=2)
    unknown = bytes(range(32))
    for read in (chain.block, chain.header):
        with pytest.raises(ChainError) as absent:
            read(unknown)
        assert (absent.value.reason, absent.value.detail) == ("unknown-block", unknown.hex())
    target = chain.hash_at(1) or b""
    overwrite(chain, schema.BLOCK + target, None)  # known (its meta is there) but not stored
    with pytest.raises(StoreError) as missing:
        chain.read_stored_block(chain.kv, target)
    assert (missing.value.reason, missing.value.detail) == ("store-block-missing", f"block {target.hex()} is not stored")


def test_a_damaged_header_is_reported_with_its_hash() -> None:
    faults: list[StoreError] = []
    chain = busy_chain(blocks=3)
    chain.on_fault = faults.append
    garbled, moved = chain.hash_at(1) or b"", chain.hash_at(2) or b""
    overwrite(chain, schema.HEADER + garbled, b"\x93garbage")
    overwrite(chain, schema.HEADER + moved, chain.kv.get(schema.HEADER + (chain.hash_at(3) or b"")))
    expected = [
        (garbled, "store-header-undecodable", f"header {garbled.hex()}: bad-encoding"),
        (moved, "store-header-mismatch", f"header stored as {moved.hex()} hashes to {(chain.hash_at(3) or b'').hex()}"),
    ]
    for block_hash, reason, detail in expected:
        with pytest.raises(StoreError) as damaged:
            chain.header(block_hash)
        assert (damaged.value.reason, damaged.value.detail) == (reason, detail)
    assert [(f.reason, f.detail) for f in faults] == [(reason, detail) for _, reason, detail in expected]


def test_lost_totals_are_store_damage() -> None:
    chain = busy_chain(blocks=2)
    overwrite(chain, schema.TOTALS, None)
    with pytest.raises(StoreError) as lost:
        chain.totals()
    assert (lost.value.reason, lost.value.detail) == ("store-corrupt", "no totals recorded")


def test_a_job_index_row_with_an_unknown_role_is_store_damage() -> None:
    chain = busy_chain(blocks=1)
    account, job_id = bytes(20), bytes(range(32))
    overwrite(chain, schema.JOB_BY_ACCOUNT + account + job_id + schema.height_bytes(1), b"x")
    with pytest.raises(StoreError) as damaged:
        chain.jobs_of(account)
    assert (damaged.value.reason, damaged.value.detail) == ("store-corrupt", f"job {job_id.hex()} of {account.hex()}: role b'x'")


def test_a_reorg_over_a_damaged_block_fails_without_marking_anything_invalid() -> None:
    chain = busy_chain(blocks=4)
    split = chain_split(chain, 2, 3)
    import_all(chain, split.a)
    tip = chain.tip_hash
    overwrite(chain, schema.UNDO + tip, b"\x93garbage")  # the undo data of the block to undo
    import_all(chain, split.b[:2])
    with pytest.raises(StoreError, match="store-undo-damaged") as info:
        import_all(chain, split.b[2:])
    # the operator is told which record and what is wrong with it
    assert info.value.detail.startswith(f"undo data of {tip.hex()}: bad-encoding: undo: ")
    assert chain.tip_hash == tip  # nothing was committed
    for block in split.b[:2]:  # and the valid branch was not blamed for our disk
        assert chain.meta(block.hash).status.name != "INVALID"
    assert not chain.has_block(split.b[2].hash)  # the block that met the damage can come again


def test_the_start_up_check_passes_on_a_healthy_store() -> None:
    chain = busy_chain()
    report = check_recent(chain, 6)
    assert report.ok and report.blocks == 6 and report.txs == 12


def test_the_start_up_check_with_a_longer_depth_than_the_chain_stops_at_genesis() -> None:
    assert check_recent(busy_chain(blocks=3), 50).blocks == 3


@pytest.mark.parametrize(
    "damage, reason",
    [
        (lambda c: overwrite(c, schema.UNDO + (c.hash_at(c.height - 2) or b""), None), "store-undo-damaged"),
        (lambda c: overwrite(c, schema.TX_INDEX + c.block(c.tip_hash).txs[0].txid, None), "store-index-missing"),
        (lambda c: overwrite(c, schema.height_key(c.height - 1), None), "store-index-missing"),
        (lambda c: overwrite(c, schema.TRIE, None), "store-state-root-mismatch"),
        (lambda c: overwrite(c, schema.BLOCK + (c.hash_at(c.height - 3) or b""), None), "store-block-missing"),
    ],
    ids=["undo-deleted", "tx-index-deleted", "height-index-deleted", "trie-root-deleted", "block-deleted"],
)
def test_the_start_up_check_names_damage_in_the_last_blocks(damage, reason: str) -> None:  # type: ignore[no-untyped-def]
    chain = busy_chain()
    damage(chain)
    with pytest.raises(StoreError) as refused:
        check_recent(chain, 6)
    assert refused.value.reason == reason


def test_the_start_up_check_undoes_blocks_and_compares_state_roots() -> None:
    """Undo data that decodes but holds a wrong balance is caught by undoing in a scratch
    overlay: the state root after the undo is not the parent's."""
    chain = busy_chain()
    tip = chain.tip_hash
    undo = chain.kv.get(schema.UNDO + tip)
    assert undo is not None
    alice = account_of(ALICE)
    before = chain.kv.get(schema.ACCOUNT + alice)
    assert before is not None
    bent = undo.replace(Account.decode(before).encode(), Account(1, 0).encode())
    if bent == undo:  # alice's account before the tip differs from now: bend any balance
        bent = undo[:-3] + bytes([undo[-3] ^ 1]) + undo[-2:]
    overwrite(chain, schema.UNDO + tip, bent)
    with pytest.raises(StoreError) as refused:
        check_recent(chain, 6)
    assert refused.value.reason in ("store-undo-mismatch", "store-undo-damaged")
    assert chain.tip_hash == tip and chain.kv.get(schema.UNDO + tip) == bent  # the check wrote nothing


def test_the_whole_store_check_passes_and_counts() -> None:
    chain = busy_chain()
    report = check_store(chain)
    assert report.ok, report.problems
    assert (report.blocks, report.txs) == (13, 24)
    assert report.supply == chain.supply and report.state_root == chain.tip_header.state_root.hex()


def test_the_whole_store_check_finds_each_kind_of_damage() -> None:
    chain = busy_chain()
    txid = chain.block(chain.hash_at(4) or b"").txs[0].txid
    alice = account_of(ALICE)
    overwrite(chain, schema.TX_INDEX + txid, None)
    overwrite(chain, schema.TX_INDEX + b"\x01" * 32, (chain.hash_at(2) or b"") + b"\x00" * 4)
    history = [key for key, _ in chain.kv.iterate(schema.HISTORY + BOB)]
    overwrite(chain, history[0], b"\x00" * 36)
    overwrite(chain, schema.ACCOUNT + alice, Account(5, 0).encode())
    overwrite(chain, schema.BLOCK + (chain.hash_at(7) or b""), chain.block_bytes(chain.hash_at(8) or b""))
    reasons = {p.reason for p in check_store(chain).problems}
    assert {
        "store-tx-index-missing", "store-tx-index-extra", "store-history-wrong",
        "store-state-mismatch", "store-supply-mismatch", "store-block-mismatch",
    } <= reasons


def test_the_whole_store_check_reports_an_unreadable_height_row_and_goes_on(monkeypatch: pytest.MonkeyPatch) -> None:
    """A bad table block under a main-chain height row is a problem in the report, not a crash of
    the check: the blocks after it are still checked."""
    chain = busy_chain()
    base = chain.kv.base
    read = base.get

    def get(key: bytes) -> bytes | None:
        if key == schema.height_key(5):
            raise StoreError("store-read-failed", "Corruption: block checksum mismatch")
        return read(key)

    monkeypatch.setattr(base, "get", get)
    report = check_store(chain)
    assert [p.reason for p in report.problems if "block 5" in p.detail] == ["store-read-failed"]
    assert report.blocks == 12  # every block but the unreadable one


def test_headers_are_served_up_to_the_first_damaged_one() -> None:
    faults: list[StoreError] = []
    chain = busy_chain()
    chain.on_fault = faults.append
    damaged = chain.hash_at(5) or b""
    overwrite(chain, schema.HEADER + damaged, chain.kv.get(schema.HEADER + (chain.hash_at(6) or b"")))
    served = chain.headers_after([chain.genesis.block.hash], 100)
    assert [h.height for h in served] == [1, 2, 3, 4]
    assert [f.reason for f in faults] == ["store-header-mismatch"]
