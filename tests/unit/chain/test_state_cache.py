"""The in-memory cache of account and trie reads: committed values only, never a stale one."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from chain.chainstate import DecodeMemo
from chain.store import MemoryKV, StateCache

HOT = (b"a", b"s")


class CountingKV(MemoryKV):
    """A MemoryKV that counts reads and can run a hook in the middle of one."""

    def __init__(self) -> None:
        super().__init__()
        self.reads = 0
        self.during_read: Callable[[], None] | None = None

    def get(self, key: bytes) -> bytes | None:
        self.reads += 1
        value = super().get(key)
        hook, self.during_read = self.during_read, None
        if hook is not None:
            hook()  # a commit lands after this read fetched its (now old) value
        return value


def test_hot_reads_are_served_from_memory_and_cold_ones_are_not() -> None:
    base = CountingKV()
    base.commit({b"a1": b"x", b"h1": b"y"}, sync=False)
    cache = StateCache(base, HOT, max_entries=100)
    assert [cache.get(b"a1") for _ in range(3)] == [b"x"] * 3
    assert [cache.get(b"h1") for _ in range(3)] == [b"y"] * 3
    assert base.reads == 1 + 3
    assert cache.get(b"a2") is None and cache.get(b"a2") is None  # absence is cached too
    assert base.reads == 5


def test_commit_updates_the_cache_and_the_store() -> None:
    base = CountingKV()
    cache = StateCache(base, HOT, max_entries=100)
    cache.commit({b"a1": b"x", b"s\x01": b"node"}, sync=False)
    assert cache.get(b"a1") == b"x" and base.get(b"a1") == b"x"
    cache.commit({b"a1": None}, sync=False)
    assert cache.get(b"a1") is None and base.get(b"a1") is None
    assert [key for key, _ in cache.iterate(b"s")] == [b"s\x01"]


def test_a_read_overtaken_by_a_commit_does_not_cache_the_old_value() -> None:
    base = CountingKV()
    base.commit({b"a1": b"old"}, sync=False)
    cache = StateCache(base, HOT, max_entries=100)
    base.during_read = lambda: cache.commit({b"a1": b"new"}, sync=False)
    assert cache.get(b"a1") == b"old"  # what the store held when it was read
    assert cache.get(b"a1") == b"new"


def test_failed_commit_leaves_the_cache_as_the_store() -> None:
    class FailingKV(CountingKV):
        def commit(self, writes, *, sync):  # type: ignore[no-untyped-def]
            raise OSError("disk full")

    base = FailingKV()
    MemoryKV.commit(base, {b"a1": b"x"}, sync=False)
    cache = StateCache(base, HOT, max_entries=100)
    assert cache.get(b"a1") == b"x"
    with pytest.raises(OSError):
        cache.commit({b"a1": b"y"}, sync=False)
    assert cache.get(b"a1") == b"x"


def test_outgrowing_the_limit_empties_the_cache() -> None:
    base = CountingKV()
    base.commit({b"a%d" % i: b"v" for i in range(10)}, sync=False)
    cache = StateCache(base, HOT, max_entries=4)
    for i in range(3):
        cache.get(b"a%d" % i)
    cache.commit({b"a8": b"w", b"a9": b"w"}, sync=False)  # 5 entries > 4: emptied
    reads = base.reads
    assert cache.get(b"a0") == b"v" and base.reads == reads + 1


def test_the_decode_memo_decodes_each_encoding_once_and_empties_at_its_limit() -> None:
    decoded: list[bytes] = []

    def decoder(data: bytes) -> bytes:
        decoded.append(data)
        return data.upper()

    memo = DecodeMemo(decoder, limit=2)
    assert [memo.decode(b"a"), memo.decode(b"a"), memo.decode(b"b")] == [b"A", b"A", b"B"]
    assert decoded == [b"a", b"b"]  # the second read of b"a" was a hit
    memo.remember(b"c", b"C")  # the memo holds 2, its limit: emptied first, then holds c only
    assert memo.decode(b"c") == b"C" and decoded == [b"a", b"b"]
    assert memo.decode(b"a") == b"A" and decoded == [b"a", b"b", b"a"]
