"""Key-value storage: LevelDB on disk (the only plyvel importer) and an in-memory twin for tests.

Both expose the narrow interface the chain state needs: `get`, prefix iteration, and an atomic
`commit(puts, deletes, sync)`. LevelDB writes a batch with `transaction=True`, so a batch whose
builder raises writes nothing (without it plyvel writes the half-built batch), and a batch is
all-or-nothing across a crash: the write-ahead log replays whole batches only.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Protocol

from chain.errors import StoreError


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


class LevelKV:
    """LevelDB via plyvel. One process at a time: LevelDB's own LOCK file enforces it."""

    def __init__(self, path: str | os.PathLike[str], *, cache_mb: int = 64) -> None:
        import plyvel  # the only plyvel import in the project

        Path(path).mkdir(parents=True, exist_ok=True)
        try:
            self._db = plyvel.DB(
                str(path),
                create_if_missing=True,
                lru_cache_size=cache_mb << 20,
                write_buffer_size=16 << 20,
                compression=None,  # hashes, keys and signatures do not compress (Bitcoin Core turns it off too)
            )
        except plyvel.IOError as exc:
            if "lock" in str(exc).lower():
                raise StoreError("datadir-locked", f"{path} is in use by another process") from None
            raise StoreError("store-open-failed", f"{path}: {exc}") from None
        except plyvel.CorruptionError as exc:
            raise StoreError("store-corrupt", f"{path}: {exc}") from None

    def get(self, key: bytes) -> bytes | None:
        value: bytes | None = self._db.get(key)
        return value

    def iterate(self, prefix: bytes) -> Iterator[tuple[bytes, bytes]]:
        with self._db.iterator(prefix=prefix) as it:
            yield from it

    def commit(self, writes: Mapping[bytes, bytes | None], *, sync: bool) -> None:
        with self._db.write_batch(transaction=True, sync=sync) as batch:
            put, delete = batch.put, batch.delete  # ~10,000 calls for a block of 1,000 transfers
            for key, value in writes.items():
                if value is None:
                    delete(key)
                else:
                    put(key, value)

    def close(self) -> None:
        if not self._db.closed:
            self._db.close()


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
