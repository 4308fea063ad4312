"""Fetching one artifact by its root from several peers at once (`/neuro/<chain16>/artifact/1`).

Order of checks, cheapest first, each before anything is kept:
1. the manifest, from the first source that has it: the backend decodes it and recomputes
   every leaf, the items root and the root, which must equal the root asked for; a manifest
   off its root costs its sender `Offence.BAD_ARTIFACT` and the fetch asks the next source;
2. per file of more than one piece, each source's piece list: the first list heard is the
   file's list; a source whose list differs is not used for that file (no blame yet: one of
   the two lies, and step 4 tells which);
3. every piece, against the file's list (a one-piece file: against the manifest's file hash),
   before it is written into the partial file: a bad piece costs the source that sent it
   `BAD_ARTIFACT` and it is dropped from the fetch (its list said otherwise). One-piece files
   travel in batches (`read-files`), each file of a batch checked the same way before it is
   written: a bad one costs its source `BAD_ARTIFACT`, and the files of the batch not yet
   written go to the other sources;
4. the whole file against the manifest hash, as the store adopts it: a mismatch means the list
   itself lied, so every source that vouched for it is penalised and dropped, the file starts
   over, and the sources set aside in step 2 take it.
An honest source is never blamed: its list is the true one, and pieces matching the true list
make the true file.

Pieces verified against a list are thrown away only when step 4 proves that list false. A source
dropped for anything else (a bad piece, a timeout, a malformed answer, or it went away) leaves
them as a candidate: the next list heard keeps them if it is equal, and step 4 still checks the
file they make.

Departures: a source whose request fails without an answer (the connection or stream reset, a
stream that ends early once its connection has gone) is not blamed; it is dialed again and
retried, and dropped after RETRIES such failures in a row. A stream that ends early while the
connection stays up is an offence (`bad-response`).

Small files: a source is sent `read-files` requests for the one-piece files, in batches sized so
that every stream of every source gets a share (at least MIN_READ_FILES files, at most the
protocol's caps). A source that answers `unknown-request` (a server older than `read-files`, which
charges a BAD_REQUEST for it) is read file by file; `ReadFilesSupport` remembers that for the
node's other fetches and lets only one probe per source be under way at a time.

Resume: pieces land in the backend's partial folder (`<hash>.part`, preallocated, written in
place) next to the file's piece list (`<hash>.pieces`). A restarted fetch re-hashes the partial
file against the saved list and keeps the pieces that match, once a source confirms the list;
there is no separate record of done pieces to keep consistent with the file across a kill.
"""

from __future__ import annotations

import itertools
import logging
import mmap
import os
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import trio

from p2p.artifacts import (
    MAX_LIST_FRAME,
    MAX_MANIFEST_FRAME,
    MAX_READ_FILES,
    MAX_READ_FILES_BYTES,
    PIECE_SIZE,
    ArtifactBackend,
    ArtifactRejected,
    FileSpec,
    ManifestRequest,
    Penalise,
    PieceBuffers,
    PieceReader,
    PiecesRequest,
    ReadFilesRequest,
    ReadRequest,
    Refused,
    decode_manifest_response,
    decode_pieces_response,
    encode_request,
    open_direct,
    piece_count,
    verified_pieces,
    write_files,
    write_pieces,
)
from p2p.errors import P2PError, RequestFailed, WireError
from p2p.host import Host
from p2p.scoring import Offence, Rate, TokenBucket
from p2p.wire import frame

log = logging.getLogger("neuro.p2p.artifacts")

READ_PIECES = 64  # pieces per read request (<= MAX_READ_PIECES)
STREAMS_PER_SOURCE = 6  # concurrent streams to one source (servers allow 8): a dataset is many small files
WRITE_BATCH = 4  # pieces checked and written per worker-thread call
MIN_READ_FILES = 16  # one-piece files per read-files request, unless fewer are left
WRITE_FILES = 64  # one-piece files checked and written per worker-thread call
WRITE_FILES_BYTES = 4 * PIECE_SIZE  # ... or fewer, up to this many bytes
READ_FILES_RECHECK = 3600.0  # seconds before a source that lacked read-files is probed again
KEPT_SOURCES = 4096  # sources whose read-files support a node remembers
RETRIES = 3  # a source that goes away this many times in a row is dropped (no blame)
MANIFEST_BACKOFF = 0.5  # seconds before the second manifest try of a source; doubles per try
DEPARTURE_GRACE = 1.0  # a stream that ended early: seconds to see whether its connection went
MAX_REDIAL_ADDRS = 4  # addresses of a source tried when dialing it again
RATE_WINDOW = 5.0  # seconds the reported rate averages over
# requests we send one source: 4/5 of what a node serves one peer (p2p.config, "artifacts")
REQUEST_PACE = Rate(per_second=160.0, burst=640.0)


class _Fault(Exception):
    """A source sent something provably wrong."""

    def __init__(self, offence: Offence, detail: str) -> None:
        super().__init__(detail)
        self.offence = offence


@dataclass(slots=True)
class FetchProgress:
    """What `artifact_progress` reports about one fetch."""

    root: bytes
    state: str = "manifest"  # manifest | fetching | done | failed
    total: int = 0  # bytes of the files the store lacked
    done: int = 0  # of those, bytes verified and written
    resumed: int = 0  # bytes found verified in partial files when the fetch started
    reason: str = ""  # kebab-case, when failed
    requests: int = 0  # requests sent to sources (manifest, piece lists, reads)
    error: str = ""
    sources: list[str] = field(default_factory=list)
    dropped: dict[str, str] = field(default_factory=dict)  # source -> why it was dropped
    started: float = 0.0
    finished: float = 0.0
    samples: deque[tuple[float, int]] = field(default_factory=lambda: deque(maxlen=64))
    changed: trio.Event = field(default_factory=trio.Event)

    def rate(self, now: float) -> float:
        """Bytes per second over the last RATE_WINDOW seconds."""
        recent = [(t, d) for t, d in self.samples if t >= now - RATE_WINDOW]
        if len(recent) < 2 or recent[-1][0] <= recent[0][0]:
            return 0.0
        return (recent[-1][1] - recent[0][1]) / (max(now, recent[-1][0]) - recent[0][0])

    def note(self, now: float) -> None:
        if not self.samples or now - self.samples[-1][0] >= 0.05:
            self.samples.append((now, self.done))

    def finish(self, state: str, now: float, reason: str = "", error: str = "") -> None:
        self.state, self.reason, self.error, self.finished = state, reason, error, now
        self.changed.set()

    def to_json(self, now: float) -> dict[str, object]:
        elapsed = (self.finished or now) - self.started
        rate = self.rate(now) if self.state == "fetching" else (self.done - self.resumed) / max(elapsed, 1e-9)
        return {
            "root": self.root.hex(), "state": self.state, "bytes_total": self.total, "bytes_done": self.done,
            "bytes_resumed": self.resumed, "requests": self.requests, "rate": rate, "seconds": elapsed, "reason": self.reason,
            "error": self.error, "sources": list(self.sources), "dropped": dict(self.dropped),
        }


@dataclass(slots=True)
class _File:
    spec: FileSpec
    part: Path
    count: int
    hashes: list[bytes] | None = None  # the list pieces are checked against
    backers: set[str] = field(default_factory=set)  # sources that sent that list
    refused: set[str] = field(default_factory=set)  # sources whose list differs
    have: set[int] = field(default_factory=set)
    todo: set[int] = field(default_factory=set)  # neither done nor in flight
    candidate: tuple[list[bytes], set[int]] | None = None  # a saved list and the pieces matching it
    generation: int = 0  # bumped when the file starts over: in-flight pieces are then void
    stored: bool = False
    finishing: bool = False
    fd: int = -1
    direct: int = -1  # an O_DIRECT descriptor of `part` for whole pieces (`open_direct`), or -1

    def close(self) -> None:
        for fd in (self.fd, self.direct):
            if fd >= 0:
                os.close(fd)
        self.fd = self.direct = -1

    def piece_len(self, index: int) -> int:
        return min(PIECE_SIZE, self.spec.size - index * PIECE_SIZE)

    def have_bytes(self) -> int:
        return sum(self.piece_len(i) for i in self.have)


@dataclass(frozen=True, slots=True)
class _Pieces:
    """A job: pieces `indices` (consecutive) of one file."""

    file: _File
    indices: list[int]
    generation: int


@dataclass(slots=True)
class _Files:
    """A job: one-piece files whole, in one read-files request."""

    files: list[tuple[_File, int]]  # each with its generation when taken
    served: bool = False  # the source answered with a file frame: it speaks read-files


class ReadFilesSupport:
    """Which sources answer `read-files`, shared by a node's fetches. A source not known either
    way is probed by one request at a time, the node's other streams to it waiting for the
    answer: a server older than read-files charges BAD_REQUEST for each, and several probes at
    once (six streams, four shards) would get us banned. One found lacking it is read file by
    file, and probed again after READ_FILES_RECHECK seconds (it may have been upgraded by then;
    the points of one probe have long decayed)."""

    def __init__(self) -> None:
        self._serving: dict[str, None] = {}  # answered read-files (insertion order: oldest first)
        self._lacking: dict[str, float] = {}  # answered unknown-request, and when
        self._probing: set[str] = set()
        self._watchers: set[Callable[[], None]] = set()  # fetches waiting on a probe's answer

    def use(self, source: str, now: float) -> str:
        """How to ask `source` for one-piece files now: "batch", "probe" (a batch; the probe is
        under way until `settle`), "wait" (another probe is), or "single" (one read per file)."""
        if source in self._serving:
            return "batch"
        lacking = self._lacking.get(source)
        if lacking is not None and now - lacking < READ_FILES_RECHECK:
            return "single"
        if source in self._probing:
            return "wait"
        self._probing.add(source)
        return "probe"

    def settle(self, source: str, served: bool | None, now: float) -> None:
        """A read-files request to `source` ended: it served files (True), answered
        `unknown-request` (False), or neither (None: nothing learnt)."""
        probed = source in self._probing
        self._probing.discard(source)
        if served:
            self._lacking.pop(source, None)
            self._serving[source] = None
        elif served is False:
            self._serving.pop(source, None)
            self._lacking[source] = now
        for known in (self._serving, self._lacking):
            while len(known) > KEPT_SOURCES:
                del known[next(iter(known))]
        if probed:
            for wake in list(self._watchers):
                wake()

    def watch(self, wake: Callable[[], None]) -> None:
        self._watchers.add(wake)

    def unwatch(self, wake: Callable[[], None]) -> None:
        self._watchers.discard(wake)


def _lacks_read_files(exc: Exception) -> bool:
    return isinstance(exc, Refused) and exc.reason == "unknown-request"


class ArtifactFetch:
    """One running fetch; `run` returns when it is done or failed (see `progress`)."""

    def __init__(
        self, host: Host, protocol: str, backend: ArtifactBackend, penalise: Penalise,
        root: bytes, timeout: float, may_dial: MayDial | None = None, support: ReadFilesSupport | None = None,
    ) -> None:
        self.host, self.protocol, self.backend, self.penalise = host, protocol, backend, penalise
        self.root = root
        self.timeout = timeout
        self.may_dial = may_dial  # None: any source that went away may be dialed again
        self.support = support or ReadFilesSupport()
        self.progress = FetchProgress(root, started=trio.current_time())
        self._active: list[str] = []
        self._strikes: dict[str, int] = {}  # failures in a row without blame, per source
        self._strike_seq: dict[str, int] = {}  # strikes ever counted: one departure, one strike
        self._pace: dict[str, TokenBucket] = {}  # our requests to each source, kept under its limit
        self._addrs: dict[str, list[str]] = {}  # where to dial a source that went away
        self._dialing: dict[str, trio.Lock] = {}
        self._files: list[_File] = []
        self._wake = trio.Event()
        self._inflight = 0  # read jobs and whole-file checks under way
        self._file_share = MIN_READ_FILES  # one-piece files per read-files request
        self._jobs: trio.Nursery | None = None
        self._local_error: OSError | ArtifactRejected | None = None
        self._buffers = PieceBuffers(keep=STREAMS_PER_SOURCE * WRITE_BATCH)

    # -- driver --------------------------------------------------------------------------------

    async def run(self, sources: list[str], unusable: dict[str, str] | None = None) -> FetchProgress:
        """Fetch from `sources`; `unusable`: sources named for the fetch that could not be
        reached (source -> why), reported as dropped so that a missing source is never silent."""
        progress = self.progress
        self._active = list(dict.fromkeys(sources))
        unusable = {s: why for s, why in (unusable or {}).items() if s not in self._active}
        progress.sources = [*self._active, *unusable]
        for source, why in unusable.items():
            log.info("artifact source %s not used: %s", source, why)
            progress.dropped[source] = why
        # the node forgets a peer's addresses when its connection closes: note them now
        self._addrs = {s: _dial_addrs(s, self.host.addrs(s)) for s in self._active}
        try:
            await self._run()
        except (OSError, ArtifactRejected) as exc:  # our own disk or store, not a peer
            log.warning("artifact fetch %s failed: %s", self.root.hex()[:16], exc)
            progress.finish("failed", trio.current_time(), "local-error", str(exc))
        finally:
            for f in self._files:
                f.close()
            self._buffers.clear()
        return progress

    async def _run(self) -> None:
        progress = self.progress
        found = await self._manifest()
        if found is None:
            return
        data, specs = found
        folder = self.backend.partial_dir(self.root)
        self._files = await trio.to_thread.run_sync(_open_files, folder, specs)
        progress.total = sum(f.spec.size for f in self._files)
        progress.done = progress.resumed = sum(f.have_bytes() for f in self._files)
        progress.state = "fetching"
        progress.note(trio.current_time())
        for f in self._files:
            if len(f.have) == f.count:  # complete before the kill: the whole-file check decides
                await self._finish_file(f, blame=False)
        log.info("fetching artifact %s: %d files, %d bytes (%d resumed) from %d sources",
                 self.root.hex()[:16], len(specs), progress.total, progress.resumed, len(self._active))
        small = sum(1 for f in self._files if f.count == 1 and not f.have)
        share = -(-small // max(1, len(self._active) * STREAMS_PER_SOURCE))
        self._file_share = min(MAX_READ_FILES, max(MIN_READ_FILES, share))
        self.support.watch(self._wake_all)
        try:
            await self._fetch_files()
        finally:
            self.support.unwatch(self._wake_all)
        if self._local_error is not None:
            raise self._local_error
        if any(not f.stored for f in self._files):
            why = "; ".join(f"{p[:12]}..: {w}" for p, w in progress.dropped.items()) or "none given"
            progress.finish("failed", trio.current_time(), "no-sources-left", f"every source dropped ({why})")
            return
        await trio.to_thread.run_sync(self.backend.complete, self.root, data)
        progress.finish("done", trio.current_time())
        log.info("artifact %s fetched: %d bytes", self.root.hex()[:16], progress.total)

    async def _fetch_files(self) -> None:
        async with trio.open_nursery() as nursery:
            self._jobs = nursery
            # round the sources: the first jobs go one to each source, whichever order trio
            # runs new tasks in (it reverses a batch at random)
            for _ in range(STREAMS_PER_SOURCE):
                for source in list(self._active):
                    nursery.start_soon(self._worker, source)

    async def _manifest(self) -> tuple[bytes, list[FileSpec]] | None:
        """The manifest from the first source that has one matching the root; a source that
        fails without blame (gone, reset, busy) is tried again, after a short backoff, up to
        RETRIES times: a dial may race the teardown of an old connection of ours."""
        unanswered: dict[str, str] = {}  # sources still active that never answered
        for source in list(self._active):
            for attempt in range(RETRIES):
                seen = self._strike_seq.get(source, 0)
                try:
                    await self._reach(source)
                    with trio.fail_after(self.timeout):
                        await self._paced(source)
                        raw = await self.host.request(
                            source, self.protocol, frame(encode_request(ManifestRequest(self.root))),
                            MAX_MANIFEST_FRAME,
                        )
                    data = decode_manifest_response(raw)
                    specs = await trio.to_thread.run_sync(self.backend.check_manifest, self.root, data)
                    self._strikes.pop(source, None)
                    return data, specs
                except ArtifactRejected as exc:
                    self._fault(source, Offence.BAD_ARTIFACT, f"manifest: {exc}")
                    break
                except Exception as exc:  # noqa: BLE001 - sorted by _failure
                    if not self._failure(source, await self._departed(source, exc), seen):
                        break
                    unanswered[source] = str(exc)
                    if attempt + 1 < RETRIES:
                        await trio.sleep(MANIFEST_BACKOFF * 2**attempt)
        whys = itertools.chain(self.progress.dropped.items(), ((p, w) for p, w in unanswered.items() if p in self._active))
        why = "; ".join(f"{p[:12]}..: {w}" for p, w in whys) or "no sources given"
        self.progress.finish("failed", trio.current_time(), "no-manifest", f"no source served the manifest ({why})")
        return None

    # -- sources -------------------------------------------------------------------------------

    async def _worker(self, source: str) -> None:
        while source in self._active:
            job = self._take(source)
            if job is None:
                if all(f.stored for f in self._files):
                    return
                if not self._inflight and not any(self._eligible(s) for s in self._active):
                    self._wake_all()  # stuck: what is left, no source left will serve
                    return
                await self._wake.wait()
                continue
            self._inflight += 1
            seen = self._strike_seq.get(source, 0)
            pause = 0.0
            lacking = False
            try:
                await self._reach(source)
                if isinstance(job, _Files):
                    await self._serve_files(source, job)
                else:
                    await self._serve_job(source, job.file, job.indices, job.generation)
                self._strikes.pop(source, None)
            except _Fault as fault:
                self._fault(source, fault.offence, str(fault))
            except Exception as exc:  # noqa: BLE001 - sorted by _failure
                if isinstance(job, _Files) and _lacks_read_files(exc):
                    log.info("artifact source %s lacks read-files: reading its files one by one", source)
                    lacking = True
                elif self._failure(source, await self._departed(source, exc), seen):
                    pause = 0.5 if isinstance(exc, Refused) else 1.0
            finally:
                self._inflight -= 1
                self._hand_back(job)
                if isinstance(job, _Files):
                    self.support.settle(source, False if lacking else (job.served or None), trio.current_time())
                self._wake_all()
            if pause:  # after handing the job back: a busy or departed source must not hold it
                await trio.sleep(pause)

    def _eligible(self, source: str) -> bool:
        return any(not f.stored and source not in f.refused and f.todo for f in self._files)

    def _take(self, source: str) -> _Pieces | _Files | None:
        for f in self._files:
            if f.stored or not f.todo or source in f.refused:
                continue
            if f.count == 1:
                how = self.support.use(source, trio.current_time())
                if how == "wait":
                    continue  # larger files meanwhile; the probe's answer wakes us
                if how != "single":
                    return self._take_files()
            first = min(f.todo)
            indices = [first]
            while len(indices) < READ_PIECES and indices[-1] + 1 in f.todo:
                indices.append(indices[-1] + 1)
            f.todo -= set(indices)
            return _Pieces(f, indices, f.generation)
        return None

    def _take_files(self) -> _Files:
        """One-piece files still to fetch, in order: a share of them for one stream of one source
        (the sources' streams split them as they split a large file's pieces), within the caps."""
        small = [f for f in self._files if f.count == 1 and f.todo and not f.stored]
        job, size = _Files([]), 0
        for f in small[:self._file_share]:
            if job.files and size + f.spec.size > MAX_READ_FILES_BYTES:
                break
            size += f.spec.size
            f.todo.clear()
            job.files.append((f, f.generation))
        return job

    @staticmethod
    def _hand_back(job: _Pieces | _Files) -> None:
        """What a job did not deliver goes back to be taken again (unless its file started over)."""
        if isinstance(job, _Pieces):
            if job.file.generation == job.generation:
                job.file.todo |= set(job.indices) - job.file.have
            return
        for f, generation in job.files:
            if f.generation == generation and not f.have:
                f.todo.add(0)

    def _wake_all(self) -> None:
        self._wake.set()
        self._wake = trio.Event()

    async def _reach(self, source: str) -> None:
        """Dial a source again whose connection went (either side restarted, or its node closed
        the connection); RequestFailed when it cannot be reached (`_failure` counts a strike)."""
        if self.host.is_connected(source):
            return
        async with self._dialing.setdefault(source, trio.Lock()):  # its streams fail together
            if self.host.is_connected(source):
                return
            addrs = self._addrs.get(source, [])
            if not addrs or (self.may_dial is not None and not self.may_dial(source)):
                raise RequestFailed("not-connected", source)
            failed = []
            for addr in addrs:
                try:
                    await self.host.connect(addr, self.timeout)
                except P2PError as exc:
                    failed.append(str(exc))
                    continue
                log.info("artifact source %s dialed again", source)
                return
            raise RequestFailed("redial-failed", "; ".join(failed))

    async def _departed(self, source: str, exc: Exception) -> Exception:
        """A stream that ended early is a departure (RequestFailed), not an offence, when the
        source's connection went with it. A closing connection ends its streams before the
        host lets go of it: wait a moment for that."""
        if not isinstance(exc, WireError) or exc.reason != "truncated":
            return exc
        with trio.move_on_after(DEPARTURE_GRACE):
            while self.host.is_connected(source):
                await trio.sleep(0.02)
            return RequestFailed("departed", f"{exc.detail} (its connection closed)")
        return exc

    async def _serve_job(self, source: str, f: _File, indices: list[int], generation: int) -> None:
        if f.count > 1 and source not in f.backers:
            theirs = await self._piece_list(source, f)
            if f.generation != generation:
                return
            if f.hashes is None:
                await self._adopt_list(f, theirs, source)
                return  # the job's pieces may be done already: take a fresh job
            if theirs != f.hashes:
                log.info("%s: piece list of %s differs; not used for it", source, f.spec.hash.hex()[:16])
                f.refused.add(source)
                return
            f.backers.add(source)
        request = ReadRequest(self.root, f.spec.hash, indices[0], len(indices))
        # the deadline moves with every piece: a slow source is fine, a stalled one is not
        with trio.CancelScope(deadline=trio.current_time() + self.timeout * 3) as scope:
            await self._paced(source)
            async with self.host.stream_request(source, self.protocol, frame(encode_request(request))) as read:
                pieces = PieceReader(read)
                batch: list[tuple[int, bytearray | memoryview]] = []
                held: list[mmap.mmap] = []  # the buffers of `batch`, reused once it is written
                for index in indices:
                    held.append(self._buffers.take())
                    batch.append((index, await pieces.piece(index, f.piece_len(index), held[-1])))
                    scope.deadline = trio.current_time() + self.timeout
                    if len(batch) == WRITE_BATCH or index == indices[-1]:
                        written = await self._write(f, batch, generation)
                        batch = []
                        self._buffers.give(held)
                        held = []
                        if not written:
                            return
        if scope.cancelled_caught:
            raise trio.TooSlowError
        self._finish_when_whole(f)

    async def _serve_files(self, source: str, job: _Files) -> None:
        request = ReadFilesRequest(self.root, tuple(f.spec.hash for f, _ in job.files))
        with trio.CancelScope(deadline=trio.current_time() + self.timeout * 3) as scope:
            await self._paced(source)
            async with self.host.stream_request(source, self.protocol, frame(encode_request(request))) as read:
                frames = PieceReader(read)
                batch: list[tuple[_File, int, bytearray | memoryview]] = []
                size = 0
                for n, (f, generation) in enumerate(job.files):
                    batch.append((f, generation, await frames.file(f.spec.hash, f.spec.size)))
                    job.served = True
                    scope.deadline = trio.current_time() + self.timeout
                    size += f.spec.size
                    if len(batch) == WRITE_FILES or size >= WRITE_FILES_BYTES or n == len(job.files) - 1:
                        await self._write_files(batch)
                        batch, size = [], 0
        if scope.cancelled_caught:
            raise trio.TooSlowError

    async def _write_files(self, batch: list[tuple[_File, int, bytearray | memoryview]]) -> None:
        """Check one-piece files against their manifest hashes and write them, in one worker-
        thread call; each written file is then checked whole and stored in the background."""
        live = [(f, data) for f, generation, data in batch if f.generation == generation and not f.have]
        written = await trio.to_thread.run_sync(write_files, [(f.part, f.spec.hash, data) for f, data in live])
        for f, data in live[:written]:
            f.have.add(0)
            self.progress.done += len(data)
            self._finish_when_whole(f)
        self.progress.note(trio.current_time())
        if written < len(live):
            raise _Fault(Offence.BAD_ARTIFACT, f"file {live[written][0].spec.hash.hex()[:16]} fails its hash")

    async def _write(self, f: _File, batch: list[tuple[int, bytearray | memoryview]], generation: int) -> bool:
        """Check a batch of pieces against the file's list and write them, in one worker-thread
        call; False when the file started over meanwhile (the pieces are void)."""
        if f.generation != generation:
            return False
        if f.count == 1:  # written whole, as in a read-files answer
            await self._write_files([(f, generation, batch[0][1])])
            return True
        assert f.hashes is not None
        written = await trio.to_thread.run_sync(write_pieces, f.fd, batch, f.hashes, f.direct)
        if f.generation != generation:
            return False
        for index, data in batch[:written]:
            f.have.add(index)
            self.progress.done += len(data)
        self.progress.note(trio.current_time())
        if written < len(batch):
            index = batch[written][0]
            raise _Fault(Offence.BAD_ARTIFACT, f"piece {index} of {f.spec.hash.hex()[:16]} fails its hash")
        return True

    async def _paced(self, source: str) -> None:
        """Wait until a request to ``source`` keeps under the rate a node serves one peer
        (`REQUEST_PACE`, below p2p.config's "artifacts" limit): a dataset of thousands of small
        files would otherwise burst past it, and the server refuses and penalises the excess."""
        bucket = self._pace.setdefault(source, TokenBucket(REQUEST_PACE.per_second, REQUEST_PACE.burst))
        while not bucket.take(trio.current_time()):
            await trio.sleep(1 / REQUEST_PACE.per_second)
        self.progress.requests += 1

    async def _piece_list(self, source: str, f: _File) -> list[bytes]:
        await self._paced(source)
        with trio.fail_after(self.timeout):
            raw = await self.host.request(
                source, self.protocol, frame(encode_request(PiecesRequest(self.root, f.spec.hash))), MAX_LIST_FRAME
            )
        return decode_pieces_response(raw, f.count)

    async def _adopt_list(self, f: _File, hashes: list[bytes], source: str) -> None:
        """`hashes` becomes the file's list; pieces kept from a saved list stay only if equal."""
        f.hashes, f.backers = hashes, {source}
        kept = f.candidate[1] if f.candidate and f.candidate[0] == hashes else set()
        f.candidate = None
        if kept != f.have:
            self.progress.done += sum(f.piece_len(i) for i in kept) - f.have_bytes()
            f.have = set(kept)
            f.todo = set(range(f.count)) - f.have
        await trio.to_thread.run_sync(_save_list, f)
        self._finish_when_whole(f)

    def _finish_when_whole(self, f: _File) -> None:
        """Once every piece is in, check the whole file in the background: the source's
        streams go on with the next file meanwhile."""
        if len(f.have) < f.count or f.finishing or f.stored or self._jobs is None:
            return
        f.finishing = True
        self._inflight += 1  # workers wait for it: a list found lying puts the file back
        self._jobs.start_soon(self._finish_in_background, f)

    async def _finish_in_background(self, f: _File) -> None:
        try:
            await self._finish_file(f)
        except (OSError, ArtifactRejected) as exc:  # our own disk or store: the fetch fails
            self._local_error = exc
            assert self._jobs is not None
            self._jobs.cancel_scope.cancel()
        finally:
            self._inflight -= 1
            self._wake_all()

    async def _finish_file(self, f: _File, *, blame: bool = True) -> None:
        f.finishing = True
        try:
            if await trio.to_thread.run_sync(_sync_and_adopt, self.backend, f):
                f.stored = True
                f.close()
                f.part.with_suffix(".pieces").unlink(missing_ok=True)
                return
            # every piece matched the list and the file does not: the list lied, and the pieces
            # that matched it are worthless (the one path that throws verified pieces away)
            liars = sorted(f.backers) if blame else []
            self._restart_file(f, keep_candidate=False)
            for backer in liars:
                self._fault(backer, Offence.BAD_ARTIFACT, f"piece list of {f.spec.hash.hex()[:16]} is not the file")
        finally:
            f.finishing = False

    def _restart_file(self, f: _File, *, keep_candidate: bool) -> None:
        """Forget the file's list; its pieces are kept as a candidate when the list may be true."""
        f.generation += 1
        f.candidate = (f.hashes, set(f.have)) if keep_candidate and f.hashes else None
        if not keep_candidate:
            self.progress.done -= f.have_bytes()
            f.have = set()
        f.hashes = [f.spec.hash] if f.count == 1 else None  # a one-piece file's list is its hash
        f.backers, f.refused = set(), set()
        f.todo = set(range(f.count)) - f.have

    def _fault(self, source: str, offence: Offence, detail: str) -> None:
        log.info("artifact source %s dropped: %s", source, detail)
        self.penalise(source, offence, detail)
        self._drop(source, f"{offence.value}: {detail}")

    def _failure(self, source: str, exc: Exception, seen: int | None = None) -> bool:
        """Sort a failed request: True when the source stays (try it again later). `seen`: the
        source's strike count when the request began; a failure of a request begun before the
        last strike (its other stream, cut by the same departure) costs no second strike."""
        if isinstance(exc, WireError):
            offence = Offence.OVERSIZE if exc.reason == "oversize" else Offence.BAD_RESPONSE
            self._fault(source, offence, str(exc))
            return False
        if isinstance(exc, trio.TooSlowError):
            self._fault(source, Offence.TIMEOUT, "artifact request timed out")
            return False
        if isinstance(exc, Refused) and exc.reason == "busy":
            return True
        if isinstance(exc, Refused):
            self._drop(source, f"refused: {exc.reason}")
            return False
        if isinstance(exc, RequestFailed):
            if source not in self._active:
                return False
            if seen is not None and self._strike_seq.get(source, 0) != seen:
                return True
            self._strike_seq[source] = self._strike_seq.get(source, 0) + 1
            self._strikes[source] = self._strikes.get(source, 0) + 1
            if self._strikes[source] < RETRIES:
                log.info("artifact source %s failed (%d of %d): %s", source, self._strikes[source], RETRIES, exc)
                return True
            self._drop(source, f"gone: {exc}")
            return False
        log.exception("artifact fetch from %s: unexpected failure", source)
        self._drop(source, f"error: {exc!r}")
        return False

    def _drop(self, source: str, why: str) -> None:
        if source in self._active:
            self._active.remove(source)
            self.progress.dropped[source] = why
        for f in self._files:
            if f.stored or f.count == 1 or source not in f.backers:
                continue
            f.backers.discard(source)
            if not f.backers:
                # nobody left vouches for the list: hear it again, and keep the pieces that
                # matched it as a candidate whatever the source did: an equal list keeps them,
                # and a false list is caught by the whole-file check (`_finish_file`)
                self._restart_file(f, keep_candidate=True)
        self._wake_all()


def _dial_addrs(peer: str, addrs: list[str]) -> list[str]:
    """A peer's known addresses as dialable /.../p2p/<id> multiaddrs."""
    return [a if "/p2p/" in a else f"{a}/p2p/{peer}" for a in addrs][:MAX_REDIAL_ADDRS]


def _open_files(folder: Path, specs: list[FileSpec]) -> list[_File]:
    return [_open_file(folder, spec) for spec in specs]


def _open_file(folder: Path, spec: FileSpec) -> _File:
    """The partial file of `spec` with the pieces already verified against its saved list,
    created at its full size; a one-piece file is not created here but written whole when it
    comes (`write_files`), so it is there whole, verified against the manifest hash, or not."""
    count = piece_count(spec.size)
    part = folder / f"{spec.hash.hex()}.part"
    f = _File(spec, part, count)
    if count == 1:
        f.hashes = [spec.hash]
        f.have = verified_pieces(part, f.hashes, spec.size)
        f.todo = {0} - f.have
        return f
    f.fd = os.open(part, os.O_RDWR | os.O_CREAT, 0o600)
    if os.fstat(f.fd).st_size != spec.size:
        os.ftruncate(f.fd, spec.size)
    f.direct = open_direct(part)
    saved = _load_list(part.with_suffix(".pieces"), count)
    if saved is not None:
        f.candidate = (saved, verified_pieces(part, saved, spec.size))
        f.have = set(f.candidate[1])
    f.todo = set(range(count)) - f.have
    return f


def _sync_and_adopt(backend: ArtifactBackend, f: _File) -> bool:
    if f.fd >= 0:
        os.fsync(f.fd)
    else:
        fd = os.open(f.part, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    return backend.adopt_file(f.spec, f.part)


def _load_list(path: Path, count: int) -> list[bytes] | None:
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return None
    if len(raw) != 32 * count:
        return None
    return [raw[i:i + 32] for i in range(0, len(raw), 32)]


def _save_list(f: _File) -> None:
    assert f.hashes is not None
    path = f.part.with_suffix(".pieces")
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(b"".join(f.hashes))
    os.replace(tmp, path)


Resolve = Callable[[], Awaitable[tuple[list[str], dict[str, str]]]]  # sources, and those unusable -> why
MayDial = Callable[[str], bool]  # whether a source that went away may be dialed again (bans)
KEPT_FINISHED = 64  # finished fetches remembered for `progress`


class ArtifactTransfers:
    """A node's fetches: at most one running per root; started with `await nursery.start(run)`."""

    def __init__(
        self, host: Host, protocol: str, backend: ArtifactBackend, penalise: Penalise, timeout: float,
        may_dial: MayDial | None = None,
    ) -> None:
        self._host, self._protocol, self._backend = host, protocol, backend
        self._penalise, self._timeout, self._may_dial = penalise, timeout, may_dial
        self._fetches: dict[bytes, ArtifactFetch] = {}
        self._nursery: trio.Nursery | None = None
        self._support = ReadFilesSupport()  # one view of the sources for all fetches

    async def run(self, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            task_status.started()
            await trio.sleep_forever()

    def start(self, root: bytes, resolve: Resolve) -> FetchProgress:
        """Start fetching `root` from the peers `resolve` returns (it may dial; the sources it
        could not reach are reported as dropped); returns at once.
        A fetch of the same root already running is returned as it is."""
        running = self._fetches.get(root)
        if running is not None and running.progress.state in ("manifest", "fetching"):
            return running.progress
        if self._nursery is None:
            raise P2PError("not-running", "the artifact service is not running")
        fetch = ArtifactFetch(
            self._host, self._protocol, self._backend, self._penalise, root, self._timeout, self._may_dial,
            self._support,
        )
        self._fetches.pop(root, None)
        self._fetches[root] = fetch
        while len(self._fetches) > KEPT_FINISHED:
            oldest = next(iter(self._fetches))
            if self._fetches[oldest].progress.state in ("manifest", "fetching"):
                break
            del self._fetches[oldest]
        self._nursery.start_soon(self._run, fetch, resolve)
        return fetch.progress

    async def _run(self, fetch: ArtifactFetch, resolve: Resolve) -> None:
        try:
            if self._backend.has(fetch.root):
                fetch.progress.finish("done", trio.current_time())
                return
            await fetch.run(*await resolve())
        except P2PError as exc:
            fetch.progress.finish("failed", trio.current_time(), exc.reason, str(exc))
        except Exception as exc:  # a fetch must never take the node down
            log.exception("artifact fetch %s crashed", fetch.root.hex()[:16])
            fetch.progress.finish("failed", trio.current_time(), "internal-error", repr(exc))

    def progress(self, root: bytes) -> FetchProgress | None:
        fetch = self._fetches.get(root)
        return fetch.progress if fetch else None
