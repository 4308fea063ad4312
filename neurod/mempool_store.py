"""Mempool persistence: a snapshot and a journal, so that no restart loses an accepted transaction.

Two files in the data dir, after bitcoind's `mempool.dat` and geth's transaction journal:

- `mempool.dat`, the snapshot: every transaction in the mempool with its admission time, rewritten
  whole (temp file, fsync, rename, fsync of the directory) on clean shutdown, after each start,
  and periodically. A crash leaves the old or the new snapshot, never a torn one.
- `mempool.journal`: transactions submitted through this node's RPC, appended as they are
  accepted, one `write()` per RPC call, before the call replies. The kernel keeps what a process
  wrote when the process is SIGKILLed, so a kill loses none of them; a power cut may lose the last
  unsynced seconds, as geth's journal does (an fsync per call would cost a disk flush per client
  request). Rewriting the snapshot empties the journal, which keeps it small.

Gossiped transactions are not journaled: their senders' nodes hold them too.

The format of both files is in neurod/mempool_format.py.

Damage never stops the node. A journal whose last record is short was cut by a crash inside a
write: that record is dropped quietly (its RPC call never replied). Any other damage (bad magic,
checksum, encoding, version, another chain's id, a short snapshot) sets the file aside as
`<name>.bad` with one warning line; the entries before the damage, the other files and the chain
are kept. Loaded entries are only candidates: `restore` re-validates each against the current tip
(signatures included) before it re-enters the mempool. Queued transactions (behind a nonce gap)
are saved and restored like pending ones, and come back queued.

While the snapshot is rewritten in a worker thread, RPC calls keep appending: `rotate_journal`
first moves the journal to `mempool.journal.old` (covered by the snapshot being written, deleted
once it is renamed into place) and starts a fresh one. Loading reads the snapshot, then the old
journal, then the journal: admission order.
"""

from __future__ import annotations

import logging
import os
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from chain import failpoints
from chain.errors import ChainError, DecodeError
from chain.files import write_all, write_atomic
from chain.types import Transaction, txid_of
from neurod.mempool_format import (
    JOURNAL_MAGIC,
    SNAPSHOT_MAGIC,
    FileRead,
    MempoolFileError,
    SavedTx,
    encode_snapshot,
    frame_entries,
    journal_header,
    parse,
)

if TYPE_CHECKING:
    from neurod.mempool import Mempool

log = logging.getLogger("neuro.mempool")

SNAPSHOT_FILE = "mempool.dat"
JOURNAL_FILE = "mempool.journal"
ROTATED_SUFFIX = ".old"  # the journal a snapshot being written covers
BAD_SUFFIX = ".bad"  # a damaged file, set aside for the operator
TEMP_SUFFIX = ".tmp"
MAX_FILE_BYTES = 1 << 30  # far above a full mempool (50,000 txs of ~200 bytes: 10 MB)
JOURNAL_MAX_BYTES = 16 << 20  # past this, the node rewrites the snapshot and empties the journal

_batching: ContextVar[bool] = ContextVar("mempool_journal_batching", default=False)


# ---- files -------------------------------------------------------------------------------


def _publish(path: Path, data: bytes, **points: str) -> None:
    """Write a mempool file whole, through a temp file of a fixed name that start-up sweeps."""
    write_atomic(path, data, temp=path.with_name(path.name + TEMP_SUFFIX), **points)


class MempoolStore:
    """The mempool's files in a data dir. Used from the event loop, except `write_snapshot`,
    which may run in a worker thread while the loop keeps journaling (see `rotate_journal`)."""

    def __init__(self, datadir: Path, chain_id: bytes, on_journal_full: Callable[[], None] | None = None) -> None:
        self.chain_id = chain_id
        self.snapshot_path = datadir / SNAPSHOT_FILE
        self.journal_path = datadir / JOURNAL_FILE
        self.rotated_path = datadir / (JOURNAL_FILE + ROTATED_SUFFIX)
        self.on_journal_full = on_journal_full
        self._staged: list[SavedTx] = []
        self._fd: int | None = None
        self.journal_bytes = 0
        # Only a crash test arms fail points; then a journal write is split in two so that
        # "mempool-journal-partial" has a place to land. Otherwise each flush is one write().
        self._split_writes = failpoints.armed("mempool-journal-partial")

    # ---- loading -----------------------------------------------------------------------

    def load(self) -> list[SavedTx]:
        """Every saved entry, in admission order; damaged files are set aside. Never raises."""
        for path in (self.snapshot_path, self.journal_path):
            path.with_name(path.name + TEMP_SUFFIX).unlink(missing_ok=True)  # a write cut by a crash
        saved: list[SavedTx] = []
        for path, magic in (
            (self.snapshot_path, SNAPSHOT_MAGIC), (self.rotated_path, JOURNAL_MAGIC), (self.journal_path, JOURNAL_MAGIC),
        ):
            saved += self._load_file(path, magic)
        return saved

    def _load_file(self, path: Path, magic: bytes) -> list[SavedTx]:
        try:
            size = path.stat().st_size
            if size > MAX_FILE_BYTES:
                read = FileRead(damage=MempoolFileError("oversized", expected=f"<= {MAX_FILE_BYTES}", got=size))
            else:
                read = parse(path.read_bytes(), magic, self.chain_id)
        except FileNotFoundError:
            return []
        except OSError as exc:
            log.warning("mempool: cannot read %s (%s); its transactions are not restored", path, exc)
            return []
        if read.damage is not None:
            self._set_aside(path, read)
        return read.entries

    def _set_aside(self, path: Path, read: FileRead) -> None:
        """Keep a damaged file for the operator, out of the way of the next load and save."""
        bad = path.with_name(path.name + BAD_SUFFIX)
        try:
            os.replace(path, bad)
            where = f"set aside as {bad.name}"
        except OSError as exc:
            where = f"left in place ({exc.strerror})"
        log.warning("mempool: %s is damaged (%s); %s, %d transactions read from it",
                    path.name, read.damage, where, len(read.entries))

    # ---- journal -----------------------------------------------------------------------

    def record(self, encoded: bytes, added: float) -> None:
        """Journal a local transaction the mempool just admitted: at once, or when the
        enclosing `batch()` of this task exits."""
        self._staged.append(SavedTx(encoded, added))
        if not _batching.get():
            self.flush()

    @contextmanager
    def batch(self) -> Iterator[None]:
        """Journal the local transactions admitted inside in one write when the block exits.

        The flag lives in a context variable, which trio gives each task its own copy of: a
        `record` from another request outside any batch still writes at once (and takes this
        batch's staged entries with it), so no request replies before its transactions are
        written, however requests interleave at checkpoints."""
        token = _batching.set(True)
        try:
            yield
        finally:
            _batching.reset(token)
            self.flush()

    def flush(self) -> None:
        """Write the staged entries to the journal. A failed write is logged, never raised: the
        transactions are admitted already, and the next snapshot saves them."""
        if not self._staged:
            return
        data = frame_entries(self._staged)
        count = len(self._staged)
        self._staged.clear()
        try:
            fd = self._journal_fd()
            if self._split_writes:
                write_all(fd, data[:len(data) // 2])
                failpoints.hit("mempool-journal-partial")
                write_all(fd, data[len(data) // 2:])
            else:
                write_all(fd, data)
        except OSError as exc:
            log.warning("mempool: journal write failed (%s); %d transactions wait for the next snapshot", exc, count)
            self._close_journal()
            return
        self.journal_bytes += len(data)
        if self.journal_bytes > JOURNAL_MAX_BYTES and self.on_journal_full is not None:
            self.on_journal_full()

    def _journal_fd(self) -> int:
        if self._fd is None:
            if not self.journal_path.exists():
                _publish(self.journal_path, journal_header(self.chain_id))
            self._fd = os.open(self.journal_path, os.O_WRONLY | os.O_APPEND)
            self.journal_bytes = os.fstat(self._fd).st_size
        return self._fd

    def _close_journal(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def _start_journal(self) -> None:
        """An empty journal in place of the current one (whose entries a snapshot now holds)."""
        self._close_journal()
        _publish(self.journal_path, journal_header(self.chain_id))
        self.journal_bytes = 0

    # ---- saving ------------------------------------------------------------------------

    def save(self, entries: Iterable[tuple[bytes, float]]) -> bool:
        """Snapshot ``entries`` (the whole mempool) and empty the journal, with no journaling
        going on meanwhile (start-up, shutdown). Never raises: False if it could not."""
        self.flush()
        if not self.write_snapshot(entries):
            return False
        try:
            self._start_journal()
        except OSError as exc:
            log.warning("mempool: cannot empty the journal (%s); it is replayed at the next start", exc)
        return True

    def rotate_journal(self) -> None:
        """Before a `write_snapshot` that runs while journaling goes on: the journal's entries
        are all in the mempool the snapshot is taken from, so it moves aside, to be deleted once
        the snapshot is in place, and new entries go to a fresh journal.

        If an old journal is still there (the last snapshot write failed), this one stays: it
        may hold entries newer than that snapshot's, and is emptied by the next `save`."""
        self.flush()
        if self.rotated_path.exists() or not self.journal_path.exists():
            return
        self._close_journal()
        try:
            os.replace(self.journal_path, self.rotated_path)
            self._start_journal()
        except OSError as exc:
            log.warning("mempool: cannot rotate the journal (%s)", exc)

    def write_snapshot(self, entries: Iterable[tuple[bytes, float]]) -> bool:
        """Write mempool.dat from ``entries``, then drop the journal it covers. Never raises."""
        saved = [SavedTx(encoded, added) for encoded, added in entries]
        try:
            _publish(
                self.snapshot_path, encode_snapshot(self.chain_id, saved),
                partial_point="mempool-save-partial", before_rename_point="mempool-save-before-rename",
            )
            self.rotated_path.unlink(missing_ok=True)
        except OSError as exc:
            log.warning("mempool: cannot write %s (%s); the journal keeps local transactions", self.snapshot_path, exc)
            return False
        log.debug("mempool: %d transactions saved to %s", len(saved), self.snapshot_path.name)
        return True

    def close(self) -> None:
        self.flush()
        self._close_journal()


# ---- re-validation -----------------------------------------------------------------------


@dataclass(slots=True)
class RestoreReport:
    """What a restart did with the saved entries (for the start-up log line)."""

    saved: int = 0  # distinct transactions in the files
    restored: int = 0
    expired: int = 0
    dropped: Counter[str] = field(default_factory=Counter)  # no longer valid, by reason

    def __str__(self) -> str:
        text = f"{self.restored} of {self.saved} saved transactions restored"
        text += f", {sum(self.dropped.values())} no longer valid"
        if self.dropped:
            text += " (" + ", ".join(f"{reason}: {n}" for reason, n in self.dropped.most_common()) + ")"
        return text + f", {self.expired} expired"


def restore(
    mempool: Mempool, saved: Iterable[SavedTx], signatures_valid: Callable[[list[Transaction]], list[bool]], now: float,
) -> RestoreReport:
    """Re-admit saved transactions with the full checks a new one gets, against the current tip.

    The tip may have moved since they were saved (blocks mined them, a reorg, another chain's
    files): each is decoded, its signature checked (one batch, on the node's verify workers),
    then admitted as at first. Those the tip no longer allows are dropped, counted by reason.

    Each sender's transactions go back in nonce order (in the places its transactions held in
    admission order, each with its own admission time): a fee bump moves a transaction to the end
    of admission order, and replayed as it was saved, the later nonces would find a gap before
    them and overflow the queue. In nonce order a transaction is queued on replay only where a gap
    remains at the end, as it was queued before the restart. Queued ones past their queued life
    expire at the end, and count as expired.
    """
    report = RestoreReport()
    candidates: dict[bytes, tuple[SavedTx, Transaction | None]] = {}
    for entry in saved:  # the journal repeats what a snapshot written after it also holds
        txid = txid_of(entry.encoded)
        if txid in candidates:
            continue
        try:
            candidates[txid] = (entry, Transaction.decode(entry.encoded))
        except DecodeError as exc:
            report.dropped[exc.reason] += 1
            candidates[txid] = (entry, None)
    report.saved = len(candidates)
    live = [(entry, tx) for entry, tx in candidates.values() if tx is not None]
    fresh = [(entry, tx) for entry, tx in live if now - entry.added <= mempool.limits.expiry_seconds]
    report.expired = len(live) - len(fresh)
    signed = signatures_valid([tx for _, tx in fresh]) if fresh else []
    for (entry, tx), valid in _in_nonce_order(list(zip(fresh, signed, strict=True))):
        try:
            if not valid:
                report.dropped["bad-tx-signature"] += 1
                continue
            mempool.add(tx, entry.added, encoded=entry.encoded, checked=True)
        except ChainError as exc:
            report.dropped[exc.reason] += 1
        else:
            report.restored += 1
    expired = mempool.expire(now)
    report.restored -= expired
    report.expired += expired
    return report


_Candidate = tuple[tuple[SavedTx, Transaction], bool]


def _in_nonce_order(candidates: list[_Candidate]) -> list[_Candidate]:
    """Each sender's candidates sorted by nonce (stable: a replacement stays after the
    transaction it replaces), in the places that sender's candidates held."""
    by_sender: dict[bytes, list[_Candidate]] = {}
    for candidate in candidates:
        by_sender.setdefault(candidate[0][1].sender_account, []).append(candidate)
    ordered = {sender: iter(sorted(group, key=lambda c: c[0][1].nonce)) for sender, group in by_sender.items()}
    return [next(ordered[candidate[0][1].sender_account]) for candidate in candidates]
