"""The file format of the mempool's snapshot (`mempool.dat`) and journal (`mempool.journal`).

Pure functions over bytes; neurod/mempool_store.py does the files. Both files are framed records,
so a reader finds where a crash cut a write and what a bad disk changed (integers big-endian,
payloads canonical msgpack as in chain/encoding.py):

    file    = magic:8 record*
    record  = length:u32 crc32:u32 payload[length]             crc32 (zlib) of the payload
    entry   = [tx encoding, admitted at: integer milliseconds since the epoch]

    mempool.dat      magic "neuromp\\0"; header record [version, chain id, entry count], then
                     records of up to ENTRIES_PER_RECORD entries each. The count catches a file
                     cut at a record boundary.
    mempool.journal  magic "neuromj\\0"; header record [version, chain id], then records of
                     entries, appended.

`parse` never raises: it returns the entries of the whole records before any damage, and names
the damage. A journal whose last record is short is not damaged: a crash cut its last write.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from chain import encoding as enc
from chain.errors import ChainError, RejectKind
from chain.hashing import HASH_SIZE
from chain.params import MAX_TX_BYTES

FORMAT_VERSION = 1
SNAPSHOT_MAGIC = b"neuromp\x00"
JOURNAL_MAGIC = b"neuromj\x00"
FRAME = struct.Struct(">II")  # payload length, crc32 of the payload
ENTRIES_PER_RECORD = 1_024
MAX_ENTRY_BYTES = MAX_TX_BYTES + 32  # a tx, its time and the msgpack framing of both
MAX_RECORD_BYTES = ENTRIES_PER_RECORD * MAX_ENTRY_BYTES + 16


class MempoolFileError(ChainError):
    """A mempool file that cannot be used as it is; ``reason`` names what is wrong with it."""

    reason = "bad-mempool-file"
    kind = RejectKind.LOCAL


@dataclass(frozen=True, slots=True)
class SavedTx:
    """A pending transaction as saved: its canonical encoding and when the mempool admitted it
    (kept across restarts so that expiry counts from the first admission, not the last start)."""

    encoded: bytes
    added: float  # unix seconds; stored as integer milliseconds (the encoding has no floats)

    def to_list(self) -> list[Any]:
        return [self.encoded, max(0, round(self.added * 1000))]

    @classmethod
    def from_list(cls, value: Any) -> SavedTx:
        encoded, added_ms = enc.fields(value, "mempool entry", 2)
        return cls(
            enc.as_bytes(encoded, "mempool entry.tx", max_size=MAX_TX_BYTES),
            enc.as_int(added_ms, "mempool entry.added") / 1000,
        )


def frame(payload: bytes) -> bytes:
    return FRAME.pack(len(payload), zlib.crc32(payload)) + payload


def frame_entries(entries: Sequence[SavedTx]) -> bytes:
    """Records of at most ENTRIES_PER_RECORD entries each, so no record needs a large decode bound."""
    return b"".join(
        frame(enc.pack([entry.to_list() for entry in entries[start:start + ENTRIES_PER_RECORD]]))
        for start in range(0, len(entries), ENTRIES_PER_RECORD)
    )


def encode_snapshot(chain_id: bytes, entries: Sequence[SavedTx]) -> bytes:
    return SNAPSHOT_MAGIC + frame(enc.pack([FORMAT_VERSION, chain_id, len(entries)])) + frame_entries(entries)


def journal_header(chain_id: bytes) -> bytes:
    return JOURNAL_MAGIC + frame(enc.pack([FORMAT_VERSION, chain_id]))


@dataclass(slots=True)
class FileRead:
    """What a mempool file yielded: the entries of its whole records, and whether it is damaged."""

    entries: list[SavedTx] = field(default_factory=list)
    damage: MempoolFileError | None = None  # set: the file is set aside
    torn_tail: bool = False  # the last record was cut short by a crash (the journal's normal wear)


def _records(data: bytes, start: int) -> tuple[list[bytes], str | None]:
    """Payloads of the whole records from ``start``, up to the first short or corrupt one, and
    why reading stopped there: None (end of file), "torn" (short at the end) or a damage reason."""
    payloads: list[bytes] = []
    offset = start
    while offset < len(data):
        if offset + FRAME.size > len(data):
            return payloads, "torn"
        length, checksum = FRAME.unpack_from(data, offset)
        if length > MAX_RECORD_BYTES:
            return payloads, "oversized-record"
        payload = data[offset + FRAME.size:offset + FRAME.size + length]
        if len(payload) < length:
            return payloads, "torn"
        if zlib.crc32(payload) != checksum:
            return payloads, "bad-checksum"
        payloads.append(payload)
        offset += FRAME.size + length
    return payloads, None


def _header(payload: bytes, magic: bytes, chain_id: bytes) -> int | None:
    """Check a header's version and chain id; returns a snapshot's entry count."""
    fields = enc.unpack(payload, what="mempool header", max_size=64)
    fields = enc.fields(fields, "mempool header", 3 if magic == SNAPSHOT_MAGIC else 2)
    if fields[0] != FORMAT_VERSION:
        raise MempoolFileError("unsupported-version", expected=FORMAT_VERSION, got=fields[0])
    if enc.as_bytes(fields[1], "mempool header.chain_id", size=HASH_SIZE) != chain_id:
        raise MempoolFileError("wrong-chain", expected=chain_id.hex(), got=fields[1].hex())
    return enc.as_int(fields[2], "mempool header.count") if magic == SNAPSHOT_MAGIC else None


def _entries(payload: bytes) -> list[SavedTx]:
    items = enc.as_list(
        enc.unpack(payload, what="mempool record", max_size=MAX_RECORD_BYTES),
        "mempool record", max_len=ENTRIES_PER_RECORD,
    )
    return [SavedTx.from_list(item) for item in items]


def parse(data: bytes, magic: bytes, chain_id: bytes) -> FileRead:
    """Read a snapshot (``SNAPSHOT_MAGIC``) or a journal (``JOURNAL_MAGIC``) for ``chain_id``."""
    read = FileRead()
    if data[:len(magic)] != magic:
        read.damage = MempoolFileError("bad-magic", "not a mempool file of this kind")
        return read
    payloads, stop = _records(data, len(magic))
    try:
        if not payloads:
            raise MempoolFileError("truncated" if stop in (None, "torn") else stop, "no header")
        count = _header(payloads[0], magic, chain_id)
        for payload in payloads[1:]:
            read.entries += _entries(payload)
    except ChainError as exc:  # DecodeError included
        read.damage = exc if isinstance(exc, MempoolFileError) else MempoolFileError(exc.reason, exc.detail)
        if exc.reason in ("wrong-chain", "unsupported-version"):
            read.entries = []
        return read
    if count is not None:  # a snapshot is written atomically: a short one is damage, not wear
        if stop is not None or len(read.entries) != count:
            reason = "truncated" if stop in (None, "torn") else stop
            read.damage = MempoolFileError(reason, "entries", expected=count, got=len(read.entries))
    elif stop == "torn":
        read.torn_tail = True
    elif stop is not None:
        read.damage = MempoolFileError(stop, f"after {len(read.entries)} entries")
    return read

