"""`neurod --reindex` and `--check-db` over real LevelDB stores, healthy and damaged."""

from __future__ import annotations

from pathlib import Path

from chain import schema
from chain.chainstate import ChainState
from chain.store import LevelKV
from neurod.repair import check_db, describe_check, reindex
from tests.support.chain_builders import chain_split, devnet, import_all
from tests.unit.chain.test_store_damage import busy_chain

DERIVED = (schema.ACCOUNT, schema.TRIE, schema.TX_INDEX, schema.HISTORY, schema.MAIN_CHAIN, schema.TIP, schema.SUPPLY)


def make_store(datadir: Path, blocks: int = 12) -> bytes:
    """A closed store with a busy main chain and a losing side branch; returns its tip."""
    kv = LevelKV(datadir / "chain")
    chain = busy_chain(kv, blocks)
    split = chain_split(chain, 1, 2)
    import_all(chain, split.a + split.b)
    tip = chain.tip_hash
    kv.close()
    return tip


def rows(datadir: Path) -> dict[bytes, bytes]:
    kv = LevelKV(datadir / "chain", create=False)
    try:
        return {k: v for prefix in DERIVED for k, v in kv.iterate(prefix)}
    finally:
        kv.close()


def tip_of(datadir: Path) -> tuple[int, bytes]:
    kv = LevelKV(datadir / "chain", create=False)
    try:
        chain = ChainState(kv, devnet())
        return chain.height, chain.tip_hash
    finally:
        kv.close()


def test_reindex_of_a_healthy_store_rebuilds_the_same_state(tmp_path: Path) -> None:
    tip = make_store(tmp_path)
    before = rows(tmp_path)
    said: list[str] = []
    report = reindex(tmp_path, devnet(), verify_workers=1, say=said.append)
    assert (report.height, report.damaged, report.orphaned, report.kept) == (14, 0, 0, None)
    assert report.tip == tip.hex()
    assert rows(tmp_path) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["chain"]  # nothing left behind


def test_reindex_repairs_a_store_without_current_and_keeps_the_original(tmp_path: Path) -> None:
    tip = make_store(tmp_path)
    LevelKV(tmp_path / "chain").close()  # rows into table files
    (tmp_path / "chain" / "CURRENT").unlink()
    report = reindex(tmp_path, devnet(), verify_workers=1, say=lambda _: None)
    assert tip_of(tmp_path) == (14, tip)
    assert report.kept is not None and report.kept.name.startswith("chain.damaged-")
    assert not (report.kept / "CURRENT").exists()  # the copy is the store as it was found
    assert check_db(tmp_path, devnet(), lambda _: None).ok


def test_reindex_drops_a_damaged_block_and_what_builds_on_it(tmp_path: Path) -> None:
    make_store(tmp_path)
    kv = LevelKV(tmp_path / "chain")
    chain = ChainState(kv, devnet())
    target, other = chain.hash_at(8) or b"", chain.hash_at(9) or b""
    kv.commit({schema.BLOCK + target: kv.get(schema.BLOCK + other)}, sync=True)
    kv.close()
    report = reindex(tmp_path, devnet(), verify_workers=1, say=lambda _: None)
    assert report.damaged == 1
    assert report.height == 7 and report.orphaned == 7  # main blocks 9..14 and the side block
    assert tip_of(tmp_path)[0] == 7
    assert report.kept is not None and report.kept.name.startswith("chain.pre-reindex-")
    assert check_db(tmp_path, devnet(), lambda _: None).ok


def test_check_db_reports_problems_in_lines(tmp_path: Path) -> None:
    make_store(tmp_path)
    kv = LevelKV(tmp_path / "chain")
    first = next(key for key, _ in kv.iterate(schema.TX_INDEX))
    kv.commit({first: None}, sync=True)
    kv.close()
    report = check_db(tmp_path, devnet(), lambda _: None)
    lines = describe_check(report)
    assert not report.ok and lines[0].startswith("check-db: 1 problem(s): 15 blocks")
    assert lines[1].strip().startswith("store-tx-index-missing")
