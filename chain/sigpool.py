"""Signature checks in worker processes, fed by the calling thread itself.

Why not `ProcessPoolExecutor`: its tasks reach the workers through two helper threads of the
calling process (the executor's manager and the queue's feeder), and both need the GIL. While the
importing thread runs Python they get it only at the interpreter's switch interval, once per hop:
measured on a 1,000-transfer block, the checks reached the workers only when the import blocked to
wait for them, so nothing overlapped. Here the caller pickles and writes each chunk to a worker's
pipe before it goes on with its own work, and reads the answers when it joins.

A worker holds only its end of its pipe, so when the daemon dies (even by SIGKILL) its next read
sees end-of-file and it exits: no orphans. A worker that dies mid-batch is replaced and its chunk
is checked in the calling thread; callers never see the difference but in time.
"""

from __future__ import annotations

import multiprocessing
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection
from multiprocessing.context import SpawnContext
from multiprocessing.process import BaseProcess

from chain.crypto import MIN_POOL_BATCH, PendingVerification, verify_chunk

Items = Sequence[tuple[bytes, bytes, bytes]]


@dataclass(frozen=True, slots=True)
class _Worker:
    process: BaseProcess
    conn: Connection


def _serve(conn: Connection) -> None:
    """A worker's loop: a chunk of (public key, message, signature) in, a list of bools out."""
    while True:
        try:
            chunk = conn.recv()
        except (EOFError, OSError):
            return  # the daemon closed the pool or died
        conn.send(verify_chunk(chunk))


class SignaturePool:
    """``size`` worker processes, started on the first batch that needs them; thread-safe.

    A batch takes every idle worker; one that finds none (another thread's batch holds them)
    checks its signatures inline, so callers never wait on each other.
    """

    def __init__(self, size: int = 2) -> None:
        self.size = max(1, size)
        self._context: SpawnContext = multiprocessing.get_context("spawn")  # no fork of a threaded process
        self._idle: list[_Worker] = []
        self._started = 0
        self._lock = threading.Lock()
        self._closed = False

    def start(self, items: Items) -> PendingVerification:
        """Send ``items`` to the workers in one chunk each and return at once."""
        workers = self._take() if len(items) >= MIN_POOL_BATCH else []
        if not workers:
            return PendingVerification.done(verify_chunk(items))
        size = -(-len(items) // len(workers))
        sent: list[tuple[_Worker | None, Items]] = []
        for index, worker in enumerate(workers):
            chunk = items[index * size : (index + 1) * size]
            if not chunk:
                self._release(worker)
                continue
            try:
                worker.conn.send(chunk)
                sent.append((worker, chunk))
            except (OSError, ValueError):
                self._discard(worker)
                sent.append((None, chunk))
        return PendingVerification(lambda: self._collect(sent))

    def close(self) -> None:
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for worker in idle:
            worker.conn.close()
            worker.process.join(timeout=2)
            if worker.process.is_alive():
                worker.process.kill()

    def _collect(self, sent: list[tuple[_Worker | None, Items]]) -> list[bool]:
        results: list[bool] = []
        for worker, chunk in sent:
            part = None
            if worker is not None:
                try:
                    part = worker.conn.recv()
                    self._release(worker)
                except (EOFError, OSError):
                    self._discard(worker)
            results.extend(part if part is not None else verify_chunk(chunk))
        return results

    def _take(self) -> list[_Worker]:
        with self._lock:
            if self._closed:
                return []
            taken, self._idle = self._idle, []
            while self._started < self.size:  # first use, or replacing a dead worker
                taken.append(self._spawn())
        return taken

    def _spawn(self) -> _Worker:
        ours, theirs = self._context.Pipe()
        process = self._context.Process(target=_serve, args=(theirs,), name="neuro-verify", daemon=True)
        process.start()
        theirs.close()
        self._started += 1
        return _Worker(process, ours)

    def _release(self, worker: _Worker) -> None:
        with self._lock:
            if not self._closed:
                self._idle.append(worker)
                return
        worker.conn.close()

    def _discard(self, worker: _Worker) -> None:
        worker.conn.close()
        worker.process.kill()
        with self._lock:
            self._started -= 1
