"""The fetcher's path from stream to disk: pieces read into reused page-aligned buffers, checked,
then written with O_DIRECT where the file system takes it (and through the page cache where it
does not, or for a short last piece); the server's frames read into reused buffers."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest
import trio
from blake3 import blake3

from p2p import artifacts
from p2p.artifacts import (
    MAX_PIECE_FRAME,
    PIECE_SIZE,
    PieceBuffers,
    PieceReader,
    open_direct,
    piece_frames,
    write_pieces,
)
from p2p.wire import _pack, frame

SIZE = 2 * PIECE_SIZE + 4097  # two whole pieces and a short last one


def _content(size: int) -> bytes:
    return bytes(range(251)) * (size // 251) + bytes(size % 251)


def _pieces(data: bytes) -> list[bytes]:
    return [data[i:i + PIECE_SIZE] for i in range(0, len(data), PIECE_SIZE)]


def _write_all(path: Path, data: bytes, buffers: PieceBuffers, direct: int) -> int:
    """Every piece of `data` through reused buffers into `path`; returns how many were written."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    os.ftruncate(fd, len(data))
    pieces = _pieces(data)
    hashes = [blake3(p).digest() for p in pieces]
    try:
        written = 0
        for index, piece in enumerate(pieces):
            buffer = buffers.take()
            buffer[:len(piece)] = piece
            written += write_pieces(fd, [(index, memoryview(buffer)[:len(piece)])], hashes, direct)
            buffers.give([buffer])
        return written
    finally:
        os.close(fd)


@pytest.mark.parametrize("direct", [True, False])
def test_pieces_written_through_reused_buffers_make_the_file(tmp_path: Path, direct: bool) -> None:
    path = tmp_path / "f.part"
    path.touch()
    fd = open_direct(path) if direct else -1
    try:
        data = _content(SIZE)
        assert _write_all(path, data, PieceBuffers(keep=1), fd) == 3
        assert path.read_bytes() == data
    finally:
        if fd >= 0:
            os.close(fd)


def test_file_system_refusing_direct_writes_falls_back_to_the_page_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "f.part"
    path.touch()
    direct = os.open(path, os.O_WRONLY)  # stands in for an O_DIRECT descriptor that EINVALs
    real = os.pwrite

    def pwrite(fd: int, data: memoryview, offset: int) -> int:
        if fd == direct:
            raise OSError(errno.EINVAL, "no direct I/O here")
        return real(fd, data, offset)

    monkeypatch.setattr(artifacts.os, "pwrite", pwrite)
    try:
        data = _content(SIZE)
        assert _write_all(path, data, PieceBuffers(keep=2), direct) == 3
        assert path.read_bytes() == data
    finally:
        os.close(direct)


def test_piece_failing_its_hash_is_not_written(tmp_path: Path) -> None:
    path = tmp_path / "f.part"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    os.ftruncate(fd, PIECE_SIZE)
    buffer = PieceBuffers(keep=1).take()
    buffer[:] = b"x" * PIECE_SIZE
    direct = open_direct(path)
    try:
        assert write_pieces(fd, [(0, memoryview(buffer))], [blake3(b"y" * PIECE_SIZE).digest()], direct) == 0
        assert path.read_bytes() == bytes(PIECE_SIZE)
    finally:
        os.close(fd)
        if direct >= 0:
            os.close(direct)


def test_piece_reader_reads_into_a_given_buffer() -> None:
    data = _content(PIECE_SIZE)
    stream = memoryview(frame(_pack(["piece", 5, b"ab"])) + frame(_pack(["piece", 6, data])))

    async def read(n: int) -> bytes:
        nonlocal stream
        out, stream = bytes(stream[:min(n, 100_000)]), stream[min(n, 100_000):]
        return out

    async def body() -> None:
        buffers = PieceBuffers(keep=1)
        reader = PieceReader(read)
        first = buffers.take()
        assert bytes(await reader.piece(5, 2, first)) == b"ab"
        buffers.give([first])
        assert buffers.take() is first  # reused, not a fresh buffer
        assert bytes(await reader.piece(6, PIECE_SIZE, first)) == data

    trio.run(body)


def test_server_frames_into_reused_buffers_match_fresh_ones(tmp_path: Path) -> None:
    data = _content(SIZE)
    (tmp_path / "f").write_bytes(data)
    fresh = b"".join(piece_frames(tmp_path / "f", 0, 3, SIZE))
    buffers = [bytearray(MAX_PIECE_FRAME) for _ in range(2)]
    reused = b"".join(
        bytes(f) for first, count in ((0, 2), (2, 1)) for f in piece_frames(tmp_path / "f", first, count, SIZE, buffers)
    )
    assert reused == fresh
