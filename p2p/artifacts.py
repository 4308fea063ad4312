"""The artifact protocol `/neuro/<chain16>/artifact/1`: wire messages, the backend it serves
from, and the server side (the fetching side is `p2p.artifact_fetch`).

Why pieces: a file is committed by the BLAKE3 hash of its whole bytes, and the `blake3` package
exposes no subtree chaining values, so a piece of a large file cannot be checked against the
manifest on its own. Each server therefore answers a file's piece list (BLAKE3 of each
`PIECE_SIZE` piece); the fetcher checks every piece against the list of the source that sent it
before writing it, and the whole file against the manifest hash before it enters the store. A
file of at most one piece needs no list: its one piece hash is the manifest's file hash.

Why `read-files`: a dataset shard is hundreds of files of a few KB, each one piece. One request
each would cost a stream and a slot of the peer's request rate per file; a `read-files` request
asks for up to MAX_READ_FILES one-piece files (MAX_READ_FILES_BYTES in all) and is answered with
one frame per file, tagged by its hash, each checked against the manifest's hash before it is
written. A server that predates it answers `["error", "unknown-request"]` (and, being old,
charges BAD_REQUEST for it): the fetcher then reads that source's files one by one.

The server answers only what its backend holds and its policy allows (`may_fetch`), paces each
peer's bytes with a token bucket, and caps each peer's concurrent artifact streams. p2p never
decodes a manifest: the backend (neurod, over its artifact store) does.
"""

from __future__ import annotations

import errno
import io
import logging
import mmap
import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import trio
from blake3 import blake3

from p2p.errors import P2PError, WireError
from p2p.host import ReadFn
from p2p.scoring import Offence, Rate, TokenBucket
from p2p.wire import FRAME_PREFIX, HASH_LEN, MAX_REQUEST_BYTES, _pack, _unpack, frame, read_frame

log = logging.getLogger("neuro.p2p.artifacts")

PIECE_SIZE = 1 << 20  # bytes per piece; the last piece of a file may be shorter
MAX_READ_PIECES = 64  # pieces one `read` request may ask for
MAX_READ_FILES = 256  # one-piece files one `read-files` request may ask for
MAX_READ_FILES_BYTES = 4 << 20  # their bytes in all, by the manifest's sizes
MAX_MANIFEST_FRAME = 64 << 20  # a manifest larger than this cannot travel in v1
MAX_LIST_FRAME = 8 << 20  # 262,144 piece hashes: files up to 256 GiB
MAX_PIECE_FRAME = PIECE_SIZE + 64
MAX_REASON = 64
SEND_BATCH = 4  # pieces a server reads from disk per worker-thread call
SEND_FILES = 64  # small files a server reads from disk per worker-thread call
SEND_COALESCE = 1 << 16  # small-file frames are written together up to this many bytes
READ_CHUNK = 1 << 16  # bytes a fetcher asks of its stream per read
DIRECT_ALIGN = 4096  # O_DIRECT writes: offset and length a multiple of this, buffer page-aligned

Penalise = Callable[[str, Offence, str], None]
Allow = Callable[[str, str], bool]
Write = Callable[[bytes], Awaitable[None]]


def artifact_protocol(chain_id: str) -> str:
    return f"/neuro/{chain_id[:16]}/artifact/1"


def piece_count(size: int) -> int:
    """Pieces of a file of `size` bytes (an empty file has one empty piece)."""
    return max(1, -(-size // PIECE_SIZE))


def piece_hashes(path: Path, size: int) -> list[bytes]:
    """BLAKE3 of each piece of the file at `path` (blocking: run it in a thread)."""
    hashes = []
    with open(path, "rb") as f:
        for _ in range(piece_count(size)):
            hashes.append(blake3(f.read(PIECE_SIZE)).digest())
    return hashes


class ArtifactRejected(P2PError):
    """Bytes a peer sent that are not the artifact asked for (a manifest off its root)."""

    reason = "bad-artifact"


@dataclass(frozen=True, slots=True)
class FileSpec:
    """A file an artifact delivers, as the fetcher needs it: its content hash and size."""

    hash: bytes
    size: int


class ArtifactBackend(Protocol):
    """The artifact store as p2p sees it; neurod implements it. Blocking methods are called
    from worker threads (marked); the others must be cheap: they run on the event loop."""

    def may_fetch(self, peer: str, root: bytes) -> bool:
        """Policy: may `peer` fetch artifact `root` from us?"""
        ...

    def manifest_bytes(self, root: bytes) -> bytes | None:
        """The stored manifest of `root`, exactly as delivered; None if not stored. Thread."""
        ...

    def file_path(self, root: bytes, file_hash: bytes) -> tuple[Path, int] | None:
        """(path, size) of a stored file `root`'s manifest lists; None otherwise. Thread."""
        ...

    def has(self, root: bytes) -> bool: ...

    def check_manifest(self, root: bytes, data: bytes) -> list[FileSpec]:
        """Decode a fetched manifest and check it commits to `root` (every leaf, the items
        root, the root); the distinct files it delivers that the store lacks. Raises
        `ArtifactRejected` naming the reason. Thread."""
        ...

    def partial_dir(self, root: bytes) -> Path:
        """A folder that survives restarts, for the pieces of an unfinished fetch."""
        ...

    def adopt_file(self, spec: FileSpec, path: Path) -> bool:
        """Hash the file at `path` whole; if it is `spec`, move it into the store and return
        True; False (file left in place) if it is not. Thread."""
        ...

    def complete(self, root: bytes, data: bytes) -> None:
        """Every file is stored: store the manifest (the artifact is now `has`), drop the
        partial folder. Thread."""
        ...

    async def sealed_root(self, peer: str, purchase_id: bytes) -> bytes | str:
        """The root of the sealed (encrypted to the buyer) delivery of a purchase, made if need
        be; or why there is none (a kebab-case reason sent back as an error)."""
        ...


# --------------------------------------------------------------------------- wire


@dataclass(frozen=True, slots=True)
class ManifestRequest:
    root: bytes


@dataclass(frozen=True, slots=True)
class PiecesRequest:
    root: bytes
    file_hash: bytes


@dataclass(frozen=True, slots=True)
class ReadRequest:
    root: bytes
    file_hash: bytes
    first: int
    count: int


@dataclass(frozen=True, slots=True)
class ReadFilesRequest:
    """Whole one-piece files, answered in this order; distinct, 1 to MAX_READ_FILES of them."""

    root: bytes
    file_hashes: tuple[bytes, ...]


@dataclass(frozen=True, slots=True)
class SealedRequest:
    """Which artifact holds the delivery of a purchase, sealed to its buyer (`neurod.listings`):
    answered `["sealed", root]`, and that root is then fetched like any other."""

    purchase_id: bytes


ArtifactRequest = ManifestRequest | PiecesRequest | ReadRequest | ReadFilesRequest | SealedRequest


def encode_request(req: ArtifactRequest) -> bytes:
    if isinstance(req, ManifestRequest):
        return _pack(["manifest", req.root])
    if isinstance(req, PiecesRequest):
        return _pack(["pieces", req.root, req.file_hash])
    if isinstance(req, ReadFilesRequest):
        return _pack(["read-files", req.root, list(req.file_hashes)])
    if isinstance(req, SealedRequest):
        return _pack(["sealed", req.purchase_id])
    return _pack(["read", req.root, req.file_hash, req.first, req.count])


def _hash(value: Any, what: str) -> bytes:
    if not isinstance(value, bytes) or len(value) != HASH_LEN:
        raise WireError("bad-hash", f"{what} is not a {HASH_LEN}-byte hash")
    return value


def _uint(value: Any, what: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise WireError("bad-shape", f"{what} must be a non-negative integer")
    return value


def _fields(obj: list[Any], n: int) -> None:
    if len(obj) != n:
        raise WireError("bad-shape", f"{obj[0]} has {len(obj)} fields, expected {n}")


def decode_request(data: bytes) -> ArtifactRequest:
    obj = _unpack(data, MAX_REQUEST_BYTES)
    tag = obj[0]
    if tag == "manifest":
        _fields(obj, 2)
        return ManifestRequest(_hash(obj[1], "root"))
    if tag == "pieces":
        _fields(obj, 3)
        return PiecesRequest(_hash(obj[1], "root"), _hash(obj[2], "file"))
    if tag == "read":
        _fields(obj, 5)
        first, count = _uint(obj[3], "first"), _uint(obj[4], "count")
        if not 1 <= count <= MAX_READ_PIECES:
            raise WireError("bad-count", f"count {count} outside 1..{MAX_READ_PIECES}")
        return ReadRequest(_hash(obj[1], "root"), _hash(obj[2], "file"), first, count)
    if tag == "read-files":
        _fields(obj, 3)
        if not isinstance(obj[2], list) or not 1 <= len(obj[2]) <= MAX_READ_FILES:
            raise WireError("bad-count", f"read-files must list 1..{MAX_READ_FILES} files")
        hashes = tuple(_hash(h, "file") for h in obj[2])
        if len(set(hashes)) != len(hashes):
            raise WireError("bad-shape", "read-files lists a file twice")
        return ReadFilesRequest(_hash(obj[1], "root"), hashes)
    if tag == "sealed":
        _fields(obj, 2)
        return SealedRequest(_hash(obj[1], "purchase"))
    raise WireError("unknown-request", f"tag {tag!r}")


def error_frame(reason: str) -> bytes:
    return frame(_pack(["error", reason[:MAX_REASON]]))


class Refused(P2PError):
    """The peer answered `["error", reason]`: it will not serve this (not a fault)."""

    reason = "refused"


def _expect(obj: list[Any], tag: str, n: int) -> None:
    if obj[0] == "error" and len(obj) == 2 and isinstance(obj[1], str) and len(obj[1]) <= MAX_REASON:
        raise Refused(obj[1] or "refused", "peer refused")
    if obj[0] != tag:
        raise WireError("unexpected-response", f"{obj[0]!r} to a {tag} request")
    _fields(obj, n)


def decode_manifest_response(data: bytes) -> bytes:
    obj = _unpack(data, MAX_MANIFEST_FRAME)
    _expect(obj, "manifest", 2)
    if not isinstance(obj[1], bytes):
        raise WireError("bad-shape", "manifest must be bytes")
    return obj[1]


def decode_sealed_response(data: bytes) -> bytes:
    obj = _unpack(data, MAX_REQUEST_BYTES)
    _expect(obj, "sealed", 2)
    return _hash(obj[1], "sealed root")


def decode_pieces_response(data: bytes, count: int) -> list[bytes]:
    """A piece list, which must have exactly `count` hashes (the manifest fixes the size)."""
    obj = _unpack(data, MAX_LIST_FRAME)
    _expect(obj, "pieces", 2)
    if not isinstance(obj[1], list) or len(obj[1]) != count:
        raise WireError("bad-piece-list", f"expected a list of {count} piece hashes")
    return [_hash(h, "piece hash") for h in obj[1]]


def decode_piece(data: bytes, index: int, length: int) -> bytes:
    """One `["piece", index, bytes]` frame of a read answer, which must be piece `index` of
    exactly `length` bytes. `PieceReader` takes the fast path; this one names what is wrong
    with a frame that is not the expected piece."""
    obj = _unpack(data, MAX_PIECE_FRAME)
    _expect(obj, "piece", 3)
    if obj[1] != index or not isinstance(obj[2], bytes) or len(obj[2]) != length:
        raise WireError("bad-piece", f"expected piece {index} of {length} bytes")
    return bytes(obj[2])


def decode_file(data: bytes, file_hash: bytes, length: int) -> bytes:
    """One `["file", file_hash, bytes]` frame of a read-files answer, which must be the file
    asked for next, of exactly its manifest size (whether its bytes hash to it is checked
    apart: a wrong file body is a bad artifact, a wrong frame a bad response)."""
    obj = _unpack(data, MAX_PIECE_FRAME)
    _expect(obj, "file", 3)
    if obj[1] != file_hash or not isinstance(obj[2], bytes) or len(obj[2]) != length:
        raise WireError("bad-file", f"expected file {file_hash.hex()[:16]} of {length} bytes")
    return bytes(obj[2])


def _bin_header(length: int) -> bytes:
    if length < 1 << 8:
        return b"\xc4" + length.to_bytes(1, "big")
    if length < 1 << 16:
        return b"\xc5" + length.to_bytes(2, "big")
    return b"\xc6" + length.to_bytes(4, "big")


def piece_header(index: int, length: int) -> bytes:
    """The canonical msgpack of `["piece", index, <length bytes>]` up to the bytes themselves
    (array of 3, the tag, the index as the shortest uint, the bin header): a piece frame's body
    is exactly this header followed by the piece."""
    return _PIECE_TAG + _pack(index) + _bin_header(length)


def file_header(file_hash: bytes, length: int) -> bytes:
    """As `piece_header`, for `["file", file_hash, <length bytes>]`."""
    return _FILE_TAG + b"\xc4\x20" + file_hash + _bin_header(length)


_PIECE_TAG = b"\x93" + _pack("piece")  # fixarray of 3, then the tag
_FILE_TAG = b"\x93" + _pack("file")


class PieceReader:
    """Reads the piece frames of one `read` answer (or the file frames of a `read-files` one)
    off a stream.

    Only the small header of each frame is compared, byte for byte, with the one canonical
    header of the piece asked for (`piece_header`), and the length prefix with the header plus
    the piece length; the piece bytes themselves are never decoded or re-encoded, and each is
    copied once, into its own buffer. That accepts exactly the frames `decode_piece` accepts; a
    frame that differs is read whole and handed to `decode_piece` for its reason (`error`
    answers included). Reads ask for large chunks: every stream read costs a yamux window
    update, so a small read per frame prefix would double their number."""

    def __init__(self, read: ReadFn) -> None:
        self._read = read
        self._rest = memoryview(b"")

    async def _into(self, out: bytearray | memoryview) -> None:
        view, got = memoryview(out), 0
        while got < len(view):
            if not self._rest:
                chunk = await self._read(max(len(view) - got, READ_CHUNK))
                if not chunk:
                    raise WireError("truncated", f"stream ended {len(view) - got} bytes short")
                self._rest = memoryview(chunk)
            take = min(len(view) - got, len(self._rest))
            view[got:got + take] = self._rest[:take]
            self._rest = self._rest[take:]
            got += take

    async def exactly(self, n: int) -> bytearray:
        out = bytearray(n)
        await self._into(out)
        return out

    async def piece(self, index: int, length: int, into: mmap.mmap | None = None) -> bytearray | memoryview:
        """The next frame, which must be piece `index` of exactly `length` bytes; read into
        `into` (a `PieceBuffers` buffer) when given, and then a view of its first `length` bytes."""
        return await self._frame(
            piece_header(index, length), length, lambda body: decode_piece(body, index, length), into
        )

    async def file(self, file_hash: bytes, length: int) -> bytearray:
        """The next frame, which must be file `file_hash` of exactly `length` bytes."""
        return await self._frame(
            file_header(file_hash, length), length, lambda body: decode_file(body, file_hash, length)
        )

    async def _frame(
        self, header: bytes, length: int, decode: Callable[[bytes], bytes], into: mmap.mmap | None = None
    ) -> bytearray | memoryview:
        size = int.from_bytes(await self.exactly(FRAME_PREFIX), "big")
        if size > MAX_PIECE_FRAME:
            raise WireError("oversize", f"frame of {size} bytes > {MAX_PIECE_FRAME}")
        if size != len(header) + length:
            decode(bytes(await self.exactly(size)))  # raises: it is not the frame expected
            raise WireError("bad-frame", "not the frame expected")  # unreachable: decode raised
        got = await self.exactly(len(header))
        data: bytearray | memoryview = bytearray(length) if into is None else memoryview(into)[:length]
        await self._into(data)
        if got != header:
            decode(bytes(got) + bytes(data))  # raises: it is not the frame expected
            raise WireError("bad-frame", "not the frame expected")
        return data


# --------------------------------------------------------------------------- server


def read_range(path: Path, first: int, count: int, size: int) -> list[bytes]:
    with open(path, "rb") as f:
        f.seek(first * PIECE_SIZE)
        return [f.read(min(PIECE_SIZE, size - i * PIECE_SIZE)) for i in range(first, first + count)]


def piece_frames(
    path: Path, first: int, count: int, size: int, into: list[bytearray] | None = None
) -> list[bytearray | memoryview]:
    """Pieces `first..first+count-1` of a file as ready-to-write piece frames (thread): each is
    read straight into its frame, after its length prefix and header, and never copied again.
    With `into` (at least `count` buffers of MAX_PIECE_FRAME bytes), the frames are views of
    those buffers: a sender reuses them for its next pieces instead of fresh memory per piece,
    which the kernel would fault in and zero each time."""
    frames: list[bytearray | memoryview] = []
    with open(path, "rb", buffering=0) as f:
        f.seek(first * PIECE_SIZE)
        for n, index in enumerate(range(first, first + count)):
            length = min(PIECE_SIZE, size - index * PIECE_SIZE)
            header, short = piece_header(index, length), f"{path} ends before piece {index}"
            frames.append(_read_frame(f, header, length, short, None if into is None else into[n]))
    return frames


def file_frames(files: list[tuple[bytes, Path, int]]) -> list[bytearray | memoryview]:
    """(hash, path, size) of one-piece files as ready-to-write file frames (thread), built like
    `piece_frames`."""
    frames = []
    for file_hash, path, size in files:
        with open(path, "rb", buffering=0) as f:
            frames.append(_read_frame(f, file_header(file_hash, size), size, f"{path} is shorter than {size} bytes"))
    return frames


def _read_frame(
    f: io.FileIO, header: bytes, length: int, short: str, into: bytearray | None = None
) -> bytearray | memoryview:
    """A frame of `header` and the next `length` bytes of `f`, read in place (into the start of
    `into` when given: then a view of it)."""
    head = FRAME_PREFIX + len(header)
    out = bytearray(head + length) if into is None else memoryview(into)[:head + length]
    out[:head] = (len(header) + length).to_bytes(FRAME_PREFIX, "big") + header
    view = memoryview(out)[head:]
    while view:
        got = f.readinto(view)
        if not got:
            raise OSError(short)
        view = view[got:]
    return out


def _file_paths(backend: ArtifactBackend, root: bytes, hashes: tuple[bytes, ...]) -> list[tuple[Path, int] | None]:
    return [backend.file_path(root, h) for h in hashes]


@dataclass(slots=True)
class ArtifactServer:
    """Answers artifact requests from the backend, within per-peer limits."""

    backend: ArtifactBackend
    penalise: Penalise
    allow: Allow
    max_streams: int  # concurrent artifact streams per peer
    byte_rate: Rate  # bytes a peer may fetch per second (bursts up to `burst`)
    _streams: dict[str, int] = field(default_factory=dict)
    _buckets: dict[str, TokenBucket] = field(default_factory=dict)
    _lists: dict[bytes, list[bytes]] = field(default_factory=dict)  # piece lists, by file hash

    def forget(self, peer: str) -> None:
        self._buckets.pop(peer, None)

    async def handle(self, peer: str, read: ReadFn, write: Write) -> None:
        if not self.allow(peer, "artifacts"):
            self.penalise(peer, Offence.RATE_LIMIT, "artifact requests over rate")
            await write(error_frame("rate-limited"))
            return
        if self._streams.get(peer, 0) >= self.max_streams:
            await write(error_frame("busy"))  # no penalty: a restarted client's old streams linger
            return
        self._streams[peer] = self._streams.get(peer, 0) + 1
        try:
            await self._serve(peer, read, write)
        finally:
            self._streams[peer] -= 1
            if not self._streams[peer]:
                del self._streams[peer]

    async def _serve(self, peer: str, read: ReadFn, write: Write) -> None:
        try:
            request = decode_request(await read_frame(read, MAX_REQUEST_BYTES))
        except WireError as exc:
            # a well-formed request of a kind we do not know is a newer peer probing: no offence
            if exc.reason != "unknown-request":
                self.penalise(peer, Offence.OVERSIZE if exc.reason == "oversize" else Offence.BAD_REQUEST, str(exc))
            await write(error_frame(exc.reason))
            return
        if isinstance(request, SealedRequest):
            sealed = await self.backend.sealed_root(peer, request.purchase_id)
            await write(frame(_pack(["sealed", sealed])) if isinstance(sealed, bytes) else error_frame(sealed))
            return
        if not self.backend.may_fetch(peer, request.root):
            await write(error_frame("not-allowed"))
            return
        if isinstance(request, ManifestRequest):
            data = await trio.to_thread.run_sync(self.backend.manifest_bytes, request.root)
            if data is None or len(data) + 64 > MAX_MANIFEST_FRAME:
                await write(error_frame("unknown-artifact" if data is None else "manifest-too-large"))
                return
            await write(frame(_pack(["manifest", data])))
            return
        if isinstance(request, ReadFilesRequest):
            await self._serve_files(peer, write, request)
            return
        found = await trio.to_thread.run_sync(self.backend.file_path, request.root, request.file_hash)
        if found is None:
            await write(error_frame("unknown-file"))
            return
        path, size = found
        if isinstance(request, PiecesRequest):
            hashes = await self._piece_list(request.file_hash, path, size)
            await write(frame(_pack(["pieces", hashes])))
            return
        if request.first + request.count > piece_count(size):
            self.penalise(peer, Offence.BAD_REQUEST, "read past the end of a file")
            await write(error_frame("bad-range"))
            return
        await self._send_pieces(peer, write, path, size, request)

    async def _serve_files(self, peer: str, write: Write, request: ReadFilesRequest) -> None:
        """Every file listed must be a one-piece file of the artifact, within the byte cap;
        then one frame per file, in order, paced by the peer's byte bucket like pieces."""
        found = await trio.to_thread.run_sync(_file_paths, self.backend, request.root, request.file_hashes)
        if any(f is None for f in found):
            await write(error_frame("unknown-file"))
            return
        files = [(h, path, size) for h, (path, size) in zip(request.file_hashes, filter(None, found), strict=True)]
        if any(size > PIECE_SIZE for _, _, size in files):
            self.penalise(peer, Offence.BAD_REQUEST, "read-files asked for a file of several pieces")
            await write(error_frame("not-one-piece"))
            return
        if sum(size for _, _, size in files) > MAX_READ_FILES_BYTES:
            self.penalise(peer, Offence.BAD_REQUEST, f"read-files asked for over {MAX_READ_FILES_BYTES} bytes")
            await write(error_frame("too-many-bytes"))
            return
        bucket = self._bucket(peer)
        out = bytearray()
        for start in range(0, len(files), SEND_FILES):
            for data in await trio.to_thread.run_sync(file_frames, files[start:start + SEND_FILES]):
                length = len(data)
                if not bucket.take(trio.current_time(), length):
                    if out:  # what is paid for goes out before the wait
                        await write(bytes(out))
                        out.clear()
                    while not bucket.take(trio.current_time(), length):
                        await trio.sleep(max(0.001, (length - bucket.tokens) / bucket.rate))
                out += data
                if len(out) >= SEND_COALESCE:
                    await write(bytes(out))
                    out.clear()
        if out:
            await write(bytes(out))

    def _bucket(self, peer: str) -> TokenBucket:
        bucket = self._buckets.get(peer)
        if bucket is None:
            bucket = self._buckets[peer] = TokenBucket(self.byte_rate.per_second, self.byte_rate.burst)
        return bucket

    async def _piece_list(self, file_hash: bytes, path: Path, size: int) -> list[bytes]:
        hashes = self._lists.get(file_hash)
        if hashes is None:
            hashes = await trio.to_thread.run_sync(piece_hashes, path, size)
            if len(self._lists) >= 256:
                self._lists.pop(next(iter(self._lists)))
            self._lists[file_hash] = hashes
        return hashes

    async def _send_pieces(self, peer: str, write: Write, path: Path, size: int, req: ReadRequest) -> None:
        """Read a few pieces at a time in a thread; pace each by the peer's byte bucket."""
        bucket = self._bucket(peer)
        index = req.first
        end = req.first + req.count
        buffers = [bytearray(MAX_PIECE_FRAME) for _ in range(min(SEND_BATCH, req.count))]
        while index < end:
            batch = min(SEND_BATCH, end - index)
            frames = await trio.to_thread.run_sync(piece_frames, path, index, batch, size, buffers)
            for data in frames:
                length = min(PIECE_SIZE, size - index * PIECE_SIZE)
                while not bucket.take(trio.current_time(), length):
                    await trio.sleep(max(0.001, (length - bucket.tokens) / bucket.rate))
                await write(data)
                index += 1


class PieceBuffers:
    """Page-aligned PIECE_SIZE buffers that pieces are read into on their way to disk, reused.

    Why: a fresh 1 MiB buffer per piece is memory the kernel faults in and zeroes every time
    (on a VM whose memory the host backs lazily, first touches cost more than the network
    copy), and only page-aligned memory can be written with O_DIRECT (`open_direct`)."""

    def __init__(self, keep: int) -> None:
        self._free: list[mmap.mmap] = []
        self._keep = keep

    def take(self) -> mmap.mmap:
        return self._free.pop() if self._free else mmap.mmap(-1, PIECE_SIZE)

    def give(self, buffers: list[mmap.mmap]) -> None:
        """Buffers no view is left of; beyond `keep`, dropped (unmapped when unreferenced)."""
        self._free.extend(buffers[:max(0, self._keep - len(self._free))])

    def clear(self) -> None:
        self._free.clear()


def open_direct(path: Path) -> int:
    """A second, O_DIRECT descriptor of a partial file for its whole aligned pieces, or -1 where
    the platform or file system has none (tmpfs, macOS). Why: a buffered write copies every
    byte into fresh page-cache pages, the fetcher's largest cost after the network (and the
    whole-file check reads the file back anyway); a direct write moves it from our reused
    buffer to the device."""
    flag = getattr(os, "O_DIRECT", 0)
    if not flag:
        return -1
    try:
        return os.open(path, os.O_WRONLY | flag)
    except OSError:
        return -1


def _pwrite_all(fd: int, data: memoryview, offset: int) -> None:
    while data:
        written = os.pwrite(fd, data, offset)
        data, offset = data[written:], offset + written


def write_piece(fd: int, index: int, data: bytes | bytearray | memoryview, expected: bytes, direct: int = -1) -> bool:
    """Check one piece against its expected hash and write it in place if it matches (thread).
    `direct`: an `open_direct` descriptor of the same file, used for a piece of whole blocks,
    which must then be in a page-aligned buffer (`PieceBuffers`); a short last piece, or what a
    direct write left, goes through `fd`."""
    if blake3(data).digest() != expected:
        return False
    view, offset = memoryview(data), index * PIECE_SIZE
    if direct >= 0 and view and len(view) % DIRECT_ALIGN == 0:
        try:
            written = os.pwrite(direct, view, offset)
            view, offset = view[written:], offset + written
        except OSError as exc:
            if exc.errno != errno.EINVAL:  # EINVAL: this file system takes no direct writes
                raise
    _pwrite_all(fd, view, offset)
    return True


def write_pieces(
    fd: int, pieces: list[tuple[int, bytearray | memoryview]], hashes: list[bytes], direct: int = -1
) -> int:
    """Check each piece against its hash in `hashes` and write it in place, in order, stopping
    at the first that does not match (thread); returns how many were written."""
    for done, (index, data) in enumerate(pieces):
        if not write_piece(fd, index, data, hashes[index], direct):
            return done
    return len(pieces)


def write_files(files: list[tuple[Path, bytes, bytearray | memoryview]]) -> int:
    """(path, expected hash, bytes) of one-piece files: check each against its manifest hash
    and write it whole at `path` (not synced), in order, stopping at the first that does not
    match (thread); returns how many were written."""
    for done, (path, expected, data) in enumerate(files):
        if blake3(data).digest() != expected:
            return done
        with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "wb") as out:
            out.write(data)
    return len(files)


def verified_pieces(path: Path, hashes: list[bytes], size: int) -> set[int]:
    """Indices of the pieces of a partial file that already match `hashes` (thread): how a
    fetch resumes, with no record to keep consistent with the file across a kill."""
    done: set[int] = set()
    try:
        with open(path, "rb") as f:
            for index, expected in enumerate(hashes):
                data = f.read(PIECE_SIZE)
                if len(data) == min(PIECE_SIZE, size - index * PIECE_SIZE) and blake3(data).digest() == expected:
                    done.add(index)
    except FileNotFoundError:
        pass
    return done
