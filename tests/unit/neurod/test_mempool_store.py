"""Mempool persistence (neurod/mempool_format.py, neurod/mempool_store.py): the file format,
damaged files, the journal's batching and rotation, and the re-validation of what a restart reads
back."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import trio
import trio.testing
from hypothesis import given
from hypothesis import strategies as st

import neurod.mempool_store as store_module
from chain.crypto import verify_many
from chain.types import Transaction
from neurod.config import NodeConfig
from neurod.mempool import Mempool, MempoolLimits
from neurod.mempool_format import (
    ENTRIES_PER_RECORD,
    JOURNAL_MAGIC,
    SNAPSHOT_MAGIC,
    SavedTx,
    encode_snapshot,
    frame,
    frame_entries,
    journal_header,
    parse,
)
from neurod.mempool_store import BAD_SUFFIX, MempoolStore, restore
from neurod.node import Node
from tests.support.chain_builders import (
    account_of,
    funded_genesis,
    mine_blocks,
    new_chain,
    signed_transfer,
)
from tests.support.txs import transfer_hex

CHAIN_ID = bytes(range(32))
OTHER_CHAIN = bytes(32)


def entries(count: int, size: int = 40) -> list[SavedTx]:
    return [SavedTx(i.to_bytes(4, "big") * (size // 4), 1_700_000_000 + i / 8) for i in range(count)]


def journal(chain_id: bytes, *batches: list[SavedTx]) -> bytes:
    return journal_header(chain_id) + b"".join(frame_entries(batch) for batch in batches)


def signatures_valid(txs: list[Transaction]) -> list[bool]:
    return verify_many([(tx.sender, tx.signing_message(), tx.signature) for tx in txs])


# ---- format ------------------------------------------------------------------------------


@given(st.lists(st.tuples(st.binary(max_size=300), st.integers(0, 2**42)), max_size=40))
def test_snapshot_and_journal_round_trip(items: list[tuple[bytes, int]]) -> None:
    saved = [SavedTx(encoded, ms / 1000) for encoded, ms in items]
    snapshot = parse(encode_snapshot(CHAIN_ID, saved), SNAPSHOT_MAGIC, CHAIN_ID)
    assert (snapshot.entries, snapshot.damage, snapshot.torn_tail) == (saved, None, False)
    appended = parse(journal(CHAIN_ID, saved[:5], saved[5:]), JOURNAL_MAGIC, CHAIN_ID)
    assert (appended.entries, appended.damage, appended.torn_tail) == (saved, None, False)


def test_a_large_snapshot_spans_several_records_and_keeps_the_order() -> None:
    saved = entries(2 * ENTRIES_PER_RECORD + 7)
    assert parse(encode_snapshot(CHAIN_ID, saved), SNAPSHOT_MAGIC, CHAIN_ID).entries == saved


def test_a_torn_journal_tail_is_dropped_quietly_at_every_cut() -> None:
    whole = journal(CHAIN_ID, entries(3))
    last = frame_entries(entries(2, size=80))
    for cut in range(1, len(last)):
        read = parse(whole + last[:cut], JOURNAL_MAGIC, CHAIN_ID)
        assert (read.entries, read.damage, read.torn_tail) == (entries(3), None, True), cut


@pytest.mark.parametrize(
    ("data", "reason", "kept"),
    [
        (b"", "bad-magic", 0),
        (b"\x00garbage" * 20, "bad-magic", 0),
        (encode_snapshot(CHAIN_ID, entries(3)), "bad-magic", 0),  # a snapshot in place of a journal
        (JOURNAL_MAGIC + b"\x01", "truncated", 0),
        (journal(OTHER_CHAIN, entries(3)), "wrong-chain", 0),
        (JOURNAL_MAGIC + frame(b"\x92\x07\xc4\x20" + CHAIN_ID), "unsupported-version", 0),
        (JOURNAL_MAGIC + frame(b"\xc1"), "bad-encoding", 0),
        (journal(CHAIN_ID, entries(3)) + frame(b"\x91\x92\x01\x02"), "bad-encoding", 3),
    ],
)
def test_a_damaged_journal_names_its_damage_and_keeps_what_precedes_it(data: bytes, reason: str, kept: int) -> None:
    read = parse(data, JOURNAL_MAGIC, CHAIN_ID)
    assert read.damage is not None and read.damage.reason == reason
    assert read.entries == entries(kept)


def test_a_flipped_byte_mid_journal_is_damage_not_a_torn_tail() -> None:
    good = journal(CHAIN_ID, entries(3))
    data = bytearray(good + frame_entries(entries(4)) + frame_entries(entries(1)))
    data[len(good) + 20] ^= 0xFF
    read = parse(bytes(data), JOURNAL_MAGIC, CHAIN_ID)
    assert read.damage is not None and read.damage.reason == "bad-checksum"
    assert read.entries == entries(3) and not read.torn_tail


@given(st.data())
def test_a_flipped_bit_or_a_cut_never_raises_nor_yields_a_wrong_entry(data: st.DataObject) -> None:
    """crc32 catches every error of up to 3 bits in records this small: whatever the damage, the
    entries read back are a prefix of those written, and a damaged snapshot is never taken whole."""
    saved = entries(5)
    for magic, whole in ((SNAPSHOT_MAGIC, encode_snapshot(CHAIN_ID, saved)), (JOURNAL_MAGIC, journal(CHAIN_ID, saved[:2], saved[2:]))):
        damaged = bytearray(whole)
        for bit in data.draw(st.lists(st.integers(0, 8 * len(whole) - 1), max_size=3, unique=True)):
            damaged[bit // 8] ^= 1 << bit % 8
        cut = data.draw(st.integers(0, len(whole)))
        read = parse(bytes(damaged[:cut]), magic, CHAIN_ID)
        assert read.entries == saved[:len(read.entries)]
        if magic == SNAPSHOT_MAGIC and bytes(damaged[:cut]) != whole:
            assert read.damage is not None  # a journal may end at any record; a snapshot may not


def test_a_snapshot_cut_anywhere_is_damage() -> None:
    """Written atomically, a snapshot is never torn by a crash: a short one was damaged later,
    and the entry count catches a cut that falls exactly between two records."""
    saved = entries(ENTRIES_PER_RECORD + 1)
    data = encode_snapshot(CHAIN_ID, saved)
    between = len(data) - len(frame_entries(saved[ENTRIES_PER_RECORD:]))
    for cut in (between, between + 3, len(data) - 1):
        read = parse(data[:cut], SNAPSHOT_MAGIC, CHAIN_ID)
        assert read.damage is not None and read.damage.reason == "truncated", cut
        assert read.entries == saved[:ENTRIES_PER_RECORD]


# ---- files -------------------------------------------------------------------------------


def test_journaled_entries_survive_an_unclosed_store_and_a_save_empties_the_journal(tmp_path: Path) -> None:
    store = MempoolStore(tmp_path, CHAIN_ID)
    for entry in entries(3):
        store.record(entry.encoded, entry.added)
    # no close: a killed process leaves the journal as its last write() left it
    reopened = MempoolStore(tmp_path, CHAIN_ID)
    assert reopened.load() == entries(3)
    assert reopened.save([(e.encoded, e.added) for e in entries(3)])
    assert (tmp_path / "mempool.journal").read_bytes() == journal_header(CHAIN_ID)
    assert MempoolStore(tmp_path, CHAIN_ID).load() == entries(3)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mempool.dat", "mempool.journal"]


def test_a_batch_is_one_write_when_it_exits(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    writes: list[int] = []
    real_write_all = store_module.write_all
    monkeypatch.setattr(store_module, "write_all", lambda fd, data: (writes.append(len(data)), real_write_all(fd, data)))
    store = MempoolStore(tmp_path, CHAIN_ID)
    store.save([])
    writes.clear()
    with store.batch():
        for entry in entries(3 * ENTRIES_PER_RECORD):
            store.record(entry.encoded, entry.added)
        assert writes == []  # nothing reaches the journal before the batch ends...
    assert len(writes) == 1  # ...and then all of it in one write
    assert MempoolStore(tmp_path, CHAIN_ID).load() == entries(3 * ENTRIES_PER_RECORD)


def test_a_call_outside_a_batch_writes_at_once_while_another_task_batches(tmp_path: Path) -> None:
    """Requests interleave at checkpoints: a plain `record` of one request must not wait for
    another request's batch to end, or it would reply before its transaction is written."""
    store = MempoolStore(tmp_path, CHAIN_ID)
    batched, single = entries(3)[:2], entries(3)[2]
    journaled: list[list[SavedTx]] = []

    def on_disk() -> list[SavedTx]:
        return MempoolStore(tmp_path, CHAIN_ID).load()

    async def bulk_request(inside: trio.Event, resume: trio.Event) -> None:
        with store.batch():
            for entry in batched:
                store.record(entry.encoded, entry.added)
            inside.set()
            await resume.wait()
        journaled.append(on_disk())

    async def main() -> None:
        inside, resume = trio.Event(), trio.Event()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(bulk_request, inside, resume)
            await inside.wait()
            assert on_disk() == []
            store.record(single.encoded, single.added)  # another request, no batch of its own
            journaled.append(on_disk())
            resume.set()

    trio.run(main)
    assert journaled == [entries(3), entries(3)]  # the single write took the batch's entries along


def test_damaged_files_are_set_aside_with_one_warning_and_nothing_else_is_lost(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "mempool.dat").write_bytes(b"not a mempool")
    (tmp_path / "mempool.journal.old").write_bytes(journal(OTHER_CHAIN, entries(2)))
    (tmp_path / "mempool.journal").write_bytes(journal(CHAIN_ID, entries(4)))
    with caplog.at_level(logging.WARNING, logger="neuro.mempool"):
        loaded = MempoolStore(tmp_path, CHAIN_ID).load()
    assert loaded == entries(4)
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 2
    assert "mempool.dat" in warnings[0] and "bad-magic" in warnings[0]
    assert "mempool.journal.old" in warnings[1] and "wrong-chain" in warnings[1]
    assert (tmp_path / f"mempool.dat{BAD_SUFFIX}").read_bytes() == b"not a mempool"
    assert (tmp_path / f"mempool.journal.old{BAD_SUFFIX}").exists()
    assert not (tmp_path / "mempool.dat").exists() and not (tmp_path / "mempool.journal.old").exists()


def test_a_torn_journal_tail_is_no_warning_and_leaves_no_bad_file(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "mempool.journal").write_bytes(journal(CHAIN_ID, entries(2)) + frame_entries(entries(1))[:-3])
    with caplog.at_level(logging.WARNING, logger="neuro.mempool"):
        assert MempoolStore(tmp_path, CHAIN_ID).load() == entries(2)
    assert caplog.records == []
    assert not list(tmp_path.glob("*.bad"))


def test_rotation_lets_journaling_go_on_while_a_snapshot_is_written(tmp_path: Path) -> None:
    store = MempoolStore(tmp_path, CHAIN_ID)
    early, late = entries(6)[:3], entries(6)[3:]
    for entry in early:
        store.record(entry.encoded, entry.added)
    store.rotate_journal()
    for entry in late:  # what RPC calls journal while the snapshot thread runs
        store.record(entry.encoded, entry.added)
    assert MempoolStore(tmp_path, CHAIN_ID).load() == early + late  # a crash here loses nothing
    assert store.write_snapshot([(e.encoded, e.added) for e in early])
    assert not (tmp_path / "mempool.journal.old").exists()
    assert MempoolStore(tmp_path, CHAIN_ID).load() == early + late


def test_a_failed_snapshot_write_keeps_the_journal(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    store = MempoolStore(tmp_path, CHAIN_ID)
    for entry in entries(2):
        store.record(entry.encoded, entry.added)
    (tmp_path / "mempool.dat").mkdir()  # the rename onto it fails
    with caplog.at_level(logging.WARNING, logger="neuro.mempool"):
        assert not store.save([(e.encoded, e.added) for e in entries(2)])
    assert "cannot write" in caplog.text
    (tmp_path / "mempool.dat").rmdir()
    assert MempoolStore(tmp_path, CHAIN_ID).load() == entries(2)


# ---- re-validation -----------------------------------------------------------------------


def test_restore_re_validates_against_the_tip_and_counts_what_it_drops() -> None:
    genesis, (a, b, c, *_) = funded_genesis(4, "10")
    chain = new_chain(genesis)
    pool = Mempool(chain, chain.chain_id, MempoolLimits(min_fee=10))
    now = 1_800_000_000.0

    def transfer(seed: bytes, nonce: int) -> Transaction:
        return signed_transfer(chain.chain_id, seed, account_of(c), 1_000, nonce, fee=100)

    mined = transfer(a, 0)
    kept = [transfer(a, 1), transfer(b, 0)]
    forged = transfer(c, 0)
    forged = Transaction(forged.chain_id, forged.sender, forged.nonce, forged.fee, forged.payload, bytes(64))
    stale = transfer(b, 1)
    saved = [
        SavedTx(mined.encode(), now - 60),
        *(SavedTx(tx.encode(), now - 30) for tx in kept),
        SavedTx(kept[0].encode(), now - 10),  # journaled and then snapshotted: read twice
        SavedTx(forged.encode(), now),
        SavedTx(b"\xc1 not a transaction", now),
        SavedTx(stale.encode(), now - pool.limits.expiry_seconds - 1),
    ]
    mine_blocks(chain, 1, [mined])  # the tip moved on while the node was down

    report = restore(pool, saved, signatures_valid, now)

    assert sorted(pool.txids()) == sorted(tx.txid for tx in kept)
    assert pool.entries()[0] == (kept[0].encode(), now - 30)  # the first admission time is kept
    assert (report.saved, report.restored, report.expired) == (6, 2, 1)
    assert dict(report.dropped) == {"nonce-too-low": 1, "bad-tx-signature": 1, "bad-encoding": 1}
    assert str(report) == (
        "2 of 6 saved transactions restored, 3 no longer valid "
        "(bad-encoding: 1, nonce-too-low: 1, bad-tx-signature: 1), 1 expired"
    )


def test_restore_brings_pending_and_queued_back_as_they_were() -> None:
    """A fee bump moves a transaction to the end of admission order; replayed in that order, the
    sender's later nonces would stand behind a gap and overflow its queue. Each sender's
    transactions go back in nonce order instead, and a queued one comes back queued, or expires
    if it waited past its queued life."""
    genesis, (a, b, c, *_) = funded_genesis(4, "10")
    chain = new_chain(genesis)
    limits = MempoolLimits(min_fee=10, max_queued_per_sender=2, queued_expiry_seconds=60.0)
    pool = Mempool(chain, chain.chain_id, limits)
    now = 1_800_000_000.0

    def transfer(seed: bytes, nonce: int, fee: int = 100) -> Transaction:
        return signed_transfer(chain.chain_id, seed, account_of(c), 1_000, nonce, fee=fee)

    for nonce in range(5):
        pool.add(transfer(a, nonce), now - 100)
    pool.add(transfer(a, 0, fee=200), now - 90)  # bumped: now last in admission order
    waiting, stale = transfer(b, 2), transfer(b, 4)
    pool.add(stale, now - 61)
    pool.add(waiting, now - 30)
    saved = [SavedTx(encoded, added) for encoded, added in pool.entries()]

    restored = Mempool(chain, chain.chain_id, limits)
    report = restore(restored, saved, signatures_valid, now)

    assert (report.restored, report.expired, dict(report.dropped)) == (6, 1, {})
    assert sorted(restored.txids()) == sorted(set(pool.txids()) - {stale.txid})
    assert [restored.kind(t) for t in pool.txids() if t != stale.txid] == ["pending"] * 5 + ["queued"]
    assert restored.stats().pending == 5 and restored.stats().queued == 1


# ---- in the node ---------------------------------------------------------------------------


def test_a_node_snapshots_while_local_transactions_keep_arriving(tmp_path: Path) -> None:
    """`Node.save_mempool` (periodic, or when the journal passes its bound) writes mempool.dat
    in a thread; what is journaled meanwhile goes to the fresh journal, and nothing is lost."""
    node = Node(NodeConfig(datadir=tmp_path, network="devnet", listen=("/ip4/127.0.0.1/tcp/0",)))
    chain_id = node.chain.chain_id
    txs = [Transaction.decode(bytes.fromhex(transfer_hex("alice", "bob", 1_000, nonce)[0])) for nonce in range(4)]

    async def main() -> None:
        with node.journal_batch():
            for tx in txs[:2]:
                node.add_transaction(tx, local=True)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(node.save_mempool)
            await trio.testing.wait_all_tasks_blocked()  # rotated; the snapshot thread is running
            for tx in txs[2:]:
                node.add_transaction(tx, local=True)

    try:
        trio.run(main)
        snapshot = parse((tmp_path / "mempool.dat").read_bytes(), SNAPSHOT_MAGIC, chain_id)
        journaled = parse((tmp_path / "mempool.journal").read_bytes(), JOURNAL_MAGIC, chain_id)
        assert [e.encoded for e in snapshot.entries] == [tx.encode() for tx in txs[:2]]
        assert [e.encoded for e in journaled.entries] == [tx.encode() for tx in txs[2:]]
        assert not (tmp_path / "mempool.journal.old").exists()
    finally:
        node.close()
    assert sorted(p.name for p in tmp_path.glob("mempool*")) == ["mempool.dat", "mempool.journal"]
    assert len(parse((tmp_path / "mempool.dat").read_bytes(), SNAPSHOT_MAGIC, chain_id).entries) == 4
