"""Ids as people type them: a full 64-hex id, or any prefix of it of at least 8 hex digits that
names exactly one (as git takes abbreviated commit ids).

Tables print ids cut to 16 digits so that rows fit; whatever is printed must be accepted back.
A prefix that matches nothing, or more than one id, is an error that says which.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Protocol

from chain.errors import ChainError, shown

MIN_PREFIX_HEX = 8
ID_HEX = 64
HEX_DIGITS = frozenset("0123456789abcdef")
AMBIGUOUS_SHOWN = 3  # candidates named in an ambiguous-id error


class PrefixReader(Protocol):
    def iterate(self, prefix: bytes) -> Iterator[tuple[bytes, bytes]]: ...


def parse_id(text: str, what: str = "id", reason: str = "bad-id") -> str:
    """``text`` as lowercase hex: a whole id (64) or a prefix (8 to 63 digits); else ``reason``."""
    value = text.strip().lower().removeprefix("0x")
    if not MIN_PREFIX_HEX <= len(value) <= ID_HEX or not set(value) <= HEX_DIGITS:
        raise ChainError(reason, f"{shown(text)} is not a valid {what}: give its {ID_HEX} hex digits, or the first "
                                   f"{MIN_PREFIX_HEX} or more")
    return value


def is_whole(hex_id: str) -> bool:
    return len(hex_id) == ID_HEX


def ids_in(reader: PrefixReader, table: bytes, hex_prefix: str, size: int = ID_HEX // 2) -> Iterator[bytes]:
    """Ids (keys of ``size`` bytes after the ``table`` byte) starting with ``hex_prefix``: a seek to
    its whole bytes, then the odd digit, if any, checked on each key."""
    whole = bytes.fromhex(hex_prefix[: len(hex_prefix) // 2 * 2])
    for key, _ in reader.iterate(table + whole):
        ident = key[len(table):]
        if len(ident) == size and ident.hex().startswith(hex_prefix):
            yield ident


def pick(hex_prefix: str, candidates: Iterable[bytes], what: str, unknown_reason: str = "unknown-id") -> bytes:
    """The one candidate ``hex_prefix`` names; ``unknown_reason`` if none, `ambiguous-id` if several."""
    found = sorted({c for c in candidates if c.hex().startswith(hex_prefix)})
    if not found:
        raise ChainError(unknown_reason, f"no {what} starts with {hex_prefix}")
    if len(found) > 1:
        listed = ", ".join(f.hex()[:16] for f in found[:AMBIGUOUS_SHOWN])
        more = "" if len(found) <= AMBIGUOUS_SHOWN else ", ..."
        raise ChainError("ambiguous-id", f"{hex_prefix} is the start of {len(found)} {what}s ({listed}{more}): "
                                         "give more digits")
    return found[0]
