"""Signature checks in worker processes, fed by the calling thread itself.

Why not `ProcessPoolExecutor`: its tasks reach the workers through two helper threads of the
calling process (the executor's manager and the queue's feeder), and both need the GIL. While the
importing thread runs Python they get it only at the interpreter's switch interval, once per hop:
measured on a 1,000-transfer block, the checks reached the workers only when the import blocked to
wait for them, so nothing overlapped. Here the caller pickles and writes each chunk to a worker's
pipe before it goes on with its own work, and reads the answers when it joins.

One thread may queue several batches before it collects any (a batch import starts the checks of
the next blocks while it connects this one, as go-ethereum's sender cacher does): each worker
answers its chunks in order, and its pipe is enlarged (1 MiB) so that the chunks of a few
blocks of transfers fit in it without the sender waiting for the worker to read them. Another thread that finds the workers queued up checks its batch inline instead, so
callers never wait on each other.

A worker holds only its ends of its pipes, so when the daemon dies (even by SIGKILL) its next read
sees end-of-file and it exits: no orphans. A worker that dies is replaced, and the chunks it had
are checked in the collecting thread; callers never see the difference but in time.
"""

from __future__ import annotations

import fcntl
import multiprocessing
import threading
from collections.abc import Sequence
from multiprocessing.connection import Connection
from multiprocessing.context import SpawnContext
from multiprocessing.process import BaseProcess

from chain.crypto import MIN_POOL_BATCH, PendingVerification, verify_chunk

Items = Sequence[tuple[bytes, bytes, bytes]]
PIPE_BYTES = 1 << 20  # Linux's default cap for an unprivileged F_SETPIPE_SZ; ~8 blocks of chunks


def _serve(inbox: Connection, outbox: Connection) -> None:
    """A worker's loop: a chunk of (public key, message, signature) in, a list of bools out."""
    while True:
        try:
            chunk = inbox.recv()
        except (EOFError, OSError):
            return  # the daemon closed the pool or died
        try:
            outbox.send(verify_chunk(chunk))
        except OSError:
            return


def _enlarge(conn: Connection) -> None:
    try:
        fcntl.fcntl(conn.fileno(), fcntl.F_SETPIPE_SZ, PIPE_BYTES)
    except (AttributeError, OSError):
        pass  # not Linux, or capped lower: a queued chunk then waits for the worker to read it


class _Worker:
    """One worker process and the chunks it owes answers for, by ticket, in sending order."""

    def __init__(self, process: BaseProcess, inbox: Connection, outbox: Connection) -> None:
        self.process = process
        self.inbox = inbox  # ours to write
        self.outbox = outbox  # ours to read
        self.sent = 0
        self.read = 0
        self.answers: dict[int, list[bool]] = {}
        self.dead = False
        self.receiving = threading.Lock()

    def send(self, chunk: Items) -> int | None:
        """Queue ``chunk``; its ticket, or None when the worker is gone."""
        if self.dead:
            return None
        try:
            self.inbox.send(chunk)
        except (OSError, ValueError):
            self.dead = True
            return None
        self.sent += 1
        return self.sent - 1

    def answer(self, ticket: int) -> list[bool] | None:
        """The answer for ``ticket``, reading earlier ones aside; None when the worker died."""
        with self.receiving:
            while ticket not in self.answers and not self.dead:
                try:
                    self.answers[self.read] = self.outbox.recv()
                    self.read += 1
                except (EOFError, OSError):
                    self.dead = True
            return self.answers.pop(ticket, None)

    def stop(self, *, kill: bool) -> None:
        self.inbox.close()
        self.outbox.close()
        if kill:
            self.process.kill()
        self.process.join(timeout=2)
        if self.process.is_alive():
            self.process.kill()


class SignaturePool:
    """``size`` worker processes, started on the first batch that needs them; thread-safe.

    The thread whose batches are queued on the workers may queue more; any other thread checks
    its batch inline until they are collected.
    """

    def __init__(self, size: int = 2) -> None:
        self.size = max(1, size)
        self._context: SpawnContext = multiprocessing.get_context("spawn")  # no fork of a threaded process
        self._workers: list[_Worker] = []
        self._owner: int | None = None  # the thread whose batches are on the workers
        self._outstanding = 0
        self._lock = threading.Lock()
        self._closed = False

    def start(self, items: Items) -> PendingVerification:
        """Send ``items`` to the workers in one chunk each and return at once."""
        workers = self._lease() if len(items) >= MIN_POOL_BATCH else []
        if not workers:
            return PendingVerification.done(verify_chunk(items))
        size = -(-len(items) // len(workers))
        parts = [
            (worker, worker.send(chunk), chunk)
            for index, worker in enumerate(workers)
            if (chunk := items[index * size : (index + 1) * size])
        ]
        return PendingVerification(lambda: self._collect(parts))

    def close(self) -> None:
        with self._lock:
            self._closed = True
            workers, self._workers = self._workers, []
        for worker in workers:
            worker.stop(kill=False)

    def _collect(self, parts: list[tuple[_Worker, int | None, Items]]) -> list[bool]:
        results: list[bool] = []
        try:
            for worker, ticket, chunk in parts:
                part = worker.answer(ticket) if ticket is not None else None
                results.extend(part if part is not None else verify_chunk(chunk))
        finally:
            self._return()
        return results

    def _lease(self) -> list[_Worker]:
        me = threading.get_ident()
        with self._lock:
            if self._closed or self._owner not in (None, me):
                return []
            if self._outstanding == 0:  # a good moment to replace workers that died
                for worker in [w for w in self._workers if w.dead]:
                    self._workers.remove(worker)
                    worker.stop(kill=True)
                while len(self._workers) < self.size:
                    self._workers.append(self._spawn())
            self._owner = me
            self._outstanding += 1
            return list(self._workers)

    def _return(self) -> None:
        with self._lock:
            self._outstanding -= 1
            if self._outstanding == 0:
                self._owner = None

    def _spawn(self) -> _Worker:
        inbox_theirs, inbox_ours = self._context.Pipe(duplex=False)
        outbox_ours, outbox_theirs = self._context.Pipe(duplex=False)
        _enlarge(inbox_ours)
        process = self._context.Process(
            target=_serve, args=(inbox_theirs, outbox_theirs), name="neuro-verify", daemon=True
        )
        process.start()
        inbox_theirs.close()
        outbox_theirs.close()
        return _Worker(process, inbox_ours, outbox_ours)
