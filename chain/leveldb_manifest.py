"""The live table files of a LevelDB directory and their sizes, read from its MANIFEST.

LevelDB records every table file it adds or drops as a `VersionEdit` in the manifest that
CURRENT names (db/version_edit.cc, db/log_format.h). Replaying those edits gives the exact set of
live tables with the size each had when written, so a start-up check can tell a truncated or
missing table from the leftovers of a compaction that a crash interrupted (files LevelDB never
recorded, which it deletes at open and which must not be mistaken for damage).

Only what the check needs is parsed: records are reassembled from the 32 KiB log blocks and
their edits replayed; checksums are LevelDB's own business when it opens the file.
"""

from __future__ import annotations

from pathlib import Path

BLOCK_SIZE = 32768
HEADER_SIZE = 7  # crc32c (4), length (2), type (1)
FULL, FIRST, MIDDLE, LAST = 1, 2, 3, 4

# VersionEdit tags (db/version_edit.cc)
COMPARATOR, LOG_NUMBER, NEXT_FILE, LAST_SEQUENCE, COMPACT_POINTER = 1, 2, 3, 4, 5
DELETED_FILE, NEW_FILE, PREV_LOG_NUMBER = 6, 7, 9


class ManifestError(ValueError):
    pass


def live_tables(db_dir: Path) -> dict[int, int]:
    """File number -> size of every live table, from the manifest CURRENT names."""
    name = (db_dir / "CURRENT").read_text().strip()
    if not name.startswith("MANIFEST-") or "/" in name:
        raise ManifestError(f"CURRENT names {name!r}, not a manifest")
    tables: dict[tuple[int, int], int] = {}
    for record in _records((db_dir / name).read_bytes()):
        added, deleted = _edit(record)
        for level_number in deleted:
            tables.pop(level_number, None)
        for level, number, size in added:
            tables[(level, number)] = size
    return {number: size for (_, number), size in tables.items()}


def _records(data: bytes) -> list[bytes]:
    records, pending = [], b""
    for start in range(0, len(data), BLOCK_SIZE):
        block, at = data[start : start + BLOCK_SIZE], 0
        while at + HEADER_SIZE <= len(block):
            length = int.from_bytes(block[at + 4 : at + 6], "little")
            kind = block[at + 6]
            if kind == 0 and length == 0:  # zero padding at a block's end
                break
            fragment = block[at + HEADER_SIZE : at + HEADER_SIZE + length]
            if len(fragment) != length:
                raise ManifestError("record runs past its block")
            at += HEADER_SIZE + length
            if kind == FULL:
                records.append(fragment)
            elif kind == FIRST:
                pending = fragment
            elif kind == MIDDLE:
                pending += fragment
            elif kind == LAST:
                records.append(pending + fragment)
                pending = b""
            else:
                raise ManifestError(f"unknown record type {kind}")
    return records


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data, self.at = data, 0

    def varint(self) -> int:
        value = shift = 0
        while True:
            if self.at >= len(self.data) or shift > 63:
                raise ManifestError("bad varint")
            byte = self.data[self.at]
            self.at += 1
            value |= (byte & 0x7F) << shift
            if byte < 0x80:
                return value
            shift += 7

    def sliced(self) -> bytes:
        length = self.varint()
        value = self.data[self.at : self.at + length]
        if len(value) != length:
            raise ManifestError("slice runs past the record")
        self.at += length
        return value


def _edit(record: bytes) -> tuple[list[tuple[int, int, int]], list[tuple[int, int]]]:
    """The tables one version edit adds (level, number, size) and deletes (level, number)."""
    reader = _Reader(record)
    added: list[tuple[int, int, int]] = []
    deleted: list[tuple[int, int]] = []
    while reader.at < len(record):
        tag = reader.varint()
        if tag == COMPARATOR:
            reader.sliced()
        elif tag in (LOG_NUMBER, NEXT_FILE, LAST_SEQUENCE, PREV_LOG_NUMBER):
            reader.varint()
        elif tag == COMPACT_POINTER:
            reader.varint()
            reader.sliced()
        elif tag == DELETED_FILE:
            deleted.append((reader.varint(), reader.varint()))
        elif tag == NEW_FILE:
            level, number, size = reader.varint(), reader.varint(), reader.varint()
            reader.sliced()  # smallest key
            reader.sliced()  # largest key
            added.append((level, number, size))
        else:
            raise ManifestError(f"unknown version edit tag {tag}")
    return added, deleted
