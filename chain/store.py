"""Key-value storage: LevelDB on disk (the only plyvel importer) and an in-memory twin for tests.

Both expose the narrow interface the chain state needs: `get`, prefix iteration, and an atomic
`commit(puts, deletes, sync)`. LevelDB writes a batch with `transaction=True`, so a batch whose
builder raises writes nothing (without it plyvel writes the half-built batch), and a batch is
all-or-nothing across a crash: the write-ahead log replays whole batches only.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, Protocol

from chain.errors import StoreError
from chain.leveldb_manifest import ManifestError, live_tables


class KV(Protocol):
    def get(self, key: bytes) -> bytes | None: ...

    def iterate(self, prefix: bytes) -> Iterator[tuple[bytes, bytes]]: ...

    def commit(self, writes: Mapping[bytes, bytes | None], *, sync: bool) -> None: ...

    def close(self) -> None: ...


_MISSING: bytes = b"\x00missing"  # a sentinel no dict here holds (compared by identity)


class MemoryKV:
    """A dict with the KV interface, for unit tests and throwaway chains."""

    def __init__(self) -> None:
        self._data: dict[bytes, bytes] = {}

    def get(self, key: bytes) -> bytes | None:
        return self._data.get(key)

    def iterate(self, prefix: bytes) -> Iterator[tuple[bytes, bytes]]:
        for key in sorted(k for k in self._data if k.startswith(prefix)):
            yield key, self._data[key]

    def commit(self, writes: Mapping[bytes, bytes | None], *, sync: bool) -> None:
        for key, value in writes.items():
            if value is None:
                self._data.pop(key, None)
            else:
                self._data[key] = value

    def close(self) -> None:
        pass


# the magic number at the end of every LevelDB table file (table/format.h), little-endian
TABLE_MAGIC = (0xDB4775248B80FB57).to_bytes(8, "little")
TABLE_SUFFIXES = (".ldb", ".sst")
# files whose presence means a database was here (the LOG and LOCK files alone do not)
_DATA_PATTERNS = ("*.ldb", "*.sst", "*.log", "MANIFEST-*")

FaultListener = Callable[[StoreError], None]


def inspect_store_dir(path: Path) -> bool:
    """Refuse a damaged LevelDB directory before LevelDB sees it; True if a store must be created.

    LevelDB's `create_if_missing` treats a directory without a CURRENT file as empty: it writes a
    new database there and its first compaction deletes the old table files, a whole chain wiped
    without a word. So a new database is created only where none was: no directory, or one that
    holds no table, log or manifest file. Every live table the manifest lists must be there at
    the size it was written with LevelDB's footer magic at its end (a read of 8 bytes each), so
    a truncated or deleted table is named at start instead of failing reads later; files a crash
    left behind in a compaction are not in the manifest and are not judged.
    """
    if not path.exists():
        return True
    if not path.is_dir():
        raise StoreError("store-not-a-directory", f"{path} is not a directory")
    has_data = any(next(path.glob(pattern), None) is not None for pattern in _DATA_PATTERNS)
    if not (path / "CURRENT").is_file():
        if has_data:
            raise StoreError("store-damaged", f"{path} holds LevelDB files but no CURRENT file")
        return True
    try:
        tables = live_tables(path)
    except (ManifestError, OSError) as exc:
        raise StoreError("store-damaged", f"{path}: manifest unreadable: {exc}") from None
    for number, size in sorted(tables.items()):
        problem = _table_problem(path, number, size)
        if problem:
            raise StoreError("store-damaged", f"table {number:06d}.ldb in {path} {problem}")
    return False


def _table_problem(path: Path, number: int, size: int) -> str:
    """What is wrong with a live table file, or "" (LevelDB names them .ldb, formerly .sst)."""
    for suffix in TABLE_SUFFIXES:
        table = path / f"{number:06d}{suffix}"
        try:
            with table.open("rb") as f:
                actual = f.seek(0, os.SEEK_END)
                if actual != size:
                    return f"is {actual} bytes, the manifest recorded {size}"
                f.seek(size - len(TABLE_MAGIC))
                return "" if f.read(len(TABLE_MAGIC)) == TABLE_MAGIC else "has no table footer"
        except FileNotFoundError:
            continue
        except OSError as exc:
            return f"cannot be read: {exc.strerror or exc}"
    return "is missing"


class LevelKV:
    """LevelDB via plyvel. One process at a time: LevelDB's own LOCK file enforces it.

    Opened with paranoid checks and, by default, every read verifies the block checksums LevelDB
    keeps (``verify_checksums``), so a flipped byte on disk is a read error, never a wrong value.
    A failed read or write raises `StoreError` and is passed to ``on_fault`` first, so the
    daemon counts and logs it wherever it happened.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        cache_mb: int = 64,
        verify_checksums: bool = True,
        on_fault: FaultListener | None = None,
        create: bool = True,
    ) -> None:
        import plyvel  # the only plyvel import in the project

        self._plyvel_errors = (plyvel.Error, OSError)
        self.path = Path(path)
        self.verify_checksums = verify_checksums
        self.on_fault = on_fault
        needs_creating = inspect_store_dir(self.path)
        if needs_creating and not create:
            raise StoreError("store-missing", f"no chain store at {path}")
        try:
            self.path.mkdir(parents=True, exist_ok=True)
            self._db = plyvel.DB(
                str(path),
                create_if_missing=needs_creating,
                paranoid_checks=True,
                lru_cache_size=cache_mb << 20,
                write_buffer_size=16 << 20,
                compression=None,  # hashes, keys and signatures do not compress (Bitcoin Core turns it off too)
            )
        except plyvel.IOError as exc:
            if "lock" in str(exc).lower():
                raise StoreError("datadir-locked", f"{path} is in use by another process") from None
            raise StoreError("store-open-failed", f"{path}: {_one_line(exc)}") from None
        except plyvel.CorruptionError as exc:
            raise StoreError("store-damaged", f"{path}: {_one_line(exc)}") from None
        except (plyvel.Error, OSError) as exc:
            raise StoreError("store-open-failed", f"{path}: {_one_line(exc)}") from None

    def _fault(self, reason: str, key: bytes, exc: BaseException) -> StoreError:
        error = StoreError(reason, f"key {key[:1]!r}+{key[1:9].hex()}: {_one_line(exc)}")
        if self.on_fault is not None:
            self.on_fault(error)
        return error

    def get(self, key: bytes) -> bytes | None:
        return self.read(self._db, key)

    def iterate(self, prefix: bytes) -> Iterator[tuple[bytes, bytes]]:
        return self.scan(self._db, prefix)

    def read(self, source: Any, key: bytes) -> bytes | None:
        """``key`` from the database or one of its snapshots, a failure reported as a fault."""
        try:
            value: bytes | None = source.get(key, verify_checksums=self.verify_checksums)
        except self._plyvel_errors as exc:
            raise self._fault("store-read-failed", key, exc) from None
        return value

    def scan(self, source: Any, prefix: bytes) -> Iterator[tuple[bytes, bytes]]:
        try:
            with source.iterator(prefix=prefix, verify_checksums=self.verify_checksums) as it:
                yield from it
        except self._plyvel_errors as exc:
            raise self._fault("store-read-failed", prefix, exc) from None

    def commit(self, writes: Mapping[bytes, bytes | None], *, sync: bool) -> None:
        try:
            with self._db.write_batch(transaction=True, sync=sync) as batch:
                put, delete = batch.put, batch.delete  # ~10,000 calls for a block of 1,000 transfers
                for key, value in writes.items():
                    if value is None:
                        delete(key)
                    else:
                        put(key, value)
        except self._plyvel_errors as exc:
            raise self._fault("store-write-failed", b"", exc) from None

    def close(self) -> None:
        if not self._db.closed:
            self._db.close()

    def snapshot(self) -> SnapshotKV:
        """A read-only view of the store as it is now, for a long check while blocks import."""
        return SnapshotKV(self, self._db.snapshot())


class SnapshotKV:
    """A LevelDB snapshot with the KV interface: reads see one instant of the store, checksums
    verified and failures reported as the store's own reads are; writes are refused."""

    def __init__(self, store: LevelKV, snapshot: Any) -> None:
        self._store = store
        self._snapshot = snapshot

    def get(self, key: bytes) -> bytes | None:
        return self._store.read(self._snapshot, key)

    def iterate(self, prefix: bytes) -> Iterator[tuple[bytes, bytes]]:
        return self._store.scan(self._snapshot, prefix)

    def commit(self, writes: Mapping[bytes, bytes | None], *, sync: bool) -> None:
        raise StoreError("store-read-only", "a snapshot is read-only")

    def close(self) -> None:
        self._snapshot.close()


def repair_store(path: str | os.PathLike[str]) -> None:
    """LevelDB's RepairDB: rebuild the manifest (and CURRENT) from the table and log files that
    remain, keeping every record whose checksum holds. What it drops is gone; the caller keeps a
    copy of the directory first."""
    import plyvel

    try:
        plyvel.repair_db(str(path), paranoid_checks=True, compression=None)
    except (plyvel.Error, OSError) as exc:
        raise StoreError("store-repair-failed", f"{path}: {_one_line(exc)}") from None


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


class Overlay:
    """Uncommitted writes over a KV: what a block (or a whole reorg) changes before it commits."""

    def __init__(self, base: KV) -> None:
        self.base = base
        self.writes: dict[bytes, bytes | None] = {}

    def get(self, key: bytes) -> bytes | None:
        value = self.writes.get(key, _MISSING)
        if value is _MISSING:
            return self.base.get(key)
        return value

    def put(self, key: bytes, value: bytes) -> None:
        self.writes[key] = value

    def delete(self, key: bytes) -> None:
        self.writes[key] = None

    def commit(self, *, sync: bool) -> None:
        self.base.commit(self.writes, sync=sync)
        self.writes = {}


class StateCache:
    """A KV whose reads of hot keys (the account state and its trie) are served from memory.

    Importing a block reads every touched account and the trie nodes above it; from LevelDB each
    read is a C++ lookup plus a copy, several microseconds, and the same accounts come back block
    after block (Bitcoin Core's dbcache keeps its coins in memory for the same reason). The cache
    holds committed values only (None for a known-absent key): it is filled on reads and updated
    after each successful `commit`, so a crash or a failed batch cannot leave it ahead of the
    store. When it outgrows ``max_entries`` it is emptied, which costs one cold block.

    Reads may come from other threads (RPC) while the owner commits. A generation counter keeps a
    reader that fetched a value from the store before a commit from caching that stale value
    after it: only a read that saw no commit start in between may fill the cache.
    """

    def __init__(self, base: KV, prefixes: tuple[bytes, ...], *, max_entries: int) -> None:
        self.base = base
        self._prefixes = frozenset(prefixes)
        self._max_entries = max_entries
        self._cache: dict[bytes, bytes | None] = {}
        self._generation = 0
        self._lock = threading.Lock()

    def get(self, key: bytes) -> bytes | None:
        value = self._cache.get(key, _MISSING)  # only hot keys are ever cached
        if value is not _MISSING:
            return value
        if key[:1] not in self._prefixes:
            return self.base.get(key)
        generation = self._generation
        value = self.base.get(key)
        with self._lock:
            if generation == self._generation:
                self._cache[key] = value
        return value

    def iterate(self, prefix: bytes) -> Iterator[tuple[bytes, bytes]]:
        return self.base.iterate(prefix)

    def commit(self, writes: Mapping[bytes, bytes | None], *, sync: bool) -> None:
        with self._lock:
            self._generation += 1  # reads in flight from here on may be stale: none may fill
        self.base.commit(writes, sync=sync)
        with self._lock:
            self._generation += 1
            hot = self._prefixes
            self._cache.update({key: value for key, value in writes.items() if key[:1] in hot})
            if len(self._cache) > self._max_entries:
                self._cache.clear()

    def close(self) -> None:
        self.base.close()
