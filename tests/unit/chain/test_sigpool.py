"""The signature worker pool: same answers as inline checks, survives dead workers, shared safely."""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Iterator

import pytest

from chain.crypto import public_key_of, sign, verify, verify_many
from chain.sigpool import SignaturePool
from tests.support.chain_builders import numbered_seed


def _items(count: int, bad_every: int = 7) -> list[tuple[bytes, bytes, bytes]]:
    items = []
    for index in range(count):
        seed = numbered_seed(index % 50)
        message = b"message %d" % index
        signed = b"something else" if index % bad_every == 0 else message
        items.append((public_key_of(seed), message, sign(seed, signed)))
    return items


@pytest.fixture(scope="module")
def pool() -> Iterator[SignaturePool]:
    workers = SignaturePool(2)
    yield workers
    workers.close()


def test_answers_equal_inline_checks(pool: SignaturePool) -> None:
    items = _items(300)
    expected = [verify(*item) for item in items]
    assert expected.count(False) == 43
    assert verify_many(items, pool) == expected
    assert verify_many(items[:10], pool) == expected[:10]  # small batches run inline


def test_a_dead_worker_is_replaced_and_its_chunk_checked_anyway(pool: SignaturePool) -> None:
    items = _items(200)
    expected = [verify(*item) for item in items]
    assert verify_many(items, pool) == expected  # both workers started
    for worker in list(pool._workers):
        os.kill(worker.process.pid, signal.SIGKILL)
        worker.process.join(timeout=10)
    assert verify_many(items, pool) == expected  # chunks sent to the dead: checked inline
    assert verify_many(items, pool) == expected  # and fresh workers took their place
    assert all(worker.process.is_alive() for worker in pool._workers)


def test_concurrent_batches_from_several_threads(pool: SignaturePool) -> None:
    items = _items(256)
    expected = [verify(*item) for item in items]
    results: list[list[bool]] = []

    def check() -> None:
        results.append(verify_many(items, pool))

    threads = [threading.Thread(target=check) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert results == [expected] * 4


def test_a_closed_pool_checks_inline() -> None:
    workers = SignaturePool(1)
    items = _items(100)
    assert verify_many(items, workers) == [verify(*item) for item in items]
    workers.close()
    assert verify_many(items, workers) == [verify(*item) for item in items]
    assert workers._workers == []


def test_one_thread_queues_batches_and_collects_them_in_any_order(pool: SignaturePool) -> None:
    batches = [_items(150, bad_every=5 + i) for i in range(4)]
    pending = [pool.start(items) for items in batches]  # all on the workers' pipes at once
    assert pool._outstanding == 4
    others: list[list[bool]] = []
    thread = threading.Thread(target=lambda: others.append(verify_many(batches[0], pool)))
    thread.start()  # another thread finds the workers queued up: it checks inline, no waiting
    thread.join(timeout=60)
    for index in (2, 0, 3, 1):
        assert pending[index].result() == [verify(*item) for item in batches[index]]
    assert others == [[verify(*item) for item in batches[0]]]
    assert pool._outstanding == 0 and pool._owner is None


def test_a_worker_dying_with_batches_queued_costs_only_time(pool: SignaturePool) -> None:
    batches = [_items(200, bad_every=3 + i) for i in range(3)]
    assert verify_many(batches[0], pool) == [verify(*item) for item in batches[0]]  # workers up
    pending = [pool.start(items) for items in batches]
    victim = pool._workers[0].process
    os.kill(victim.pid, signal.SIGKILL)
    victim.join(timeout=10)
    for items, checks in zip(batches, pending):
        assert checks.result() == [verify(*item) for item in items]  # its chunks checked inline
    assert verify_many(batches[1], pool) == [verify(*item) for item in batches[1]]
    assert len(pool._workers) == 2 and all(w.process.is_alive() for w in pool._workers)
    assert victim not in [w.process for w in pool._workers]  # replaced once the queue drained
