"""Canonical msgpack encoding: positional lists, strict decoding, re-encode-and-compare.

Every wire and storage type is a msgpack array of its fields in a fixed order. Decoding is strict:
the input size is checked before unpacking, ext types and floats are refused, and the decoded value
must re-encode to exactly the input bytes, which rules out non-minimal integers, str/bin confusion,
map keys out of order and trailing bytes in one comparison (msgpack itself accepts all of them).
"""

from __future__ import annotations

import threading
from typing import Any, NoReturn

import msgpack

from chain.errors import DecodeError

MAX_INT = 2**64 - 1


_packers = threading.local()  # msgpack.packb builds a Packer per call: 2.5x the cost of packing


def pack(value: Any) -> bytes:
    """The canonical encoding of a value built from lists, ints, bytes, str and bool."""
    try:
        packer = _packers.packer
    except AttributeError:
        packer = _packers.packer = msgpack.Packer(use_bin_type=True)
    packed: bytes = packer.pack(value)
    return packed


def array_header(length: int) -> bytes:
    """The canonical encoding of an array's length, which precedes its items' encodings."""
    if length < 16:
        return bytes([0x90 | length])
    if length < 1 << 16:
        return b"\xdc" + length.to_bytes(2, "big")
    return b"\xdd" + length.to_bytes(4, "big")


def _refuse_ext(code: int, data: bytes) -> NoReturn:
    raise DecodeError("bad-encoding", f"msgpack ext type {code} is not allowed")


def unpack(data: bytes, *, what: str, max_size: int) -> Any:
    """Decode ``data`` as the canonical encoding of a ``what``, at most ``max_size`` bytes."""
    value = load(data, what=what, max_size=max_size)
    if pack(value) != data:
        raise DecodeError("non-canonical", f"{what} does not re-encode to the same bytes")
    return value


def load(data: bytes, *, what: str, max_size: int) -> Any:
    """`unpack` without the canonical check, for a caller that re-encodes the value in parts
    anyway (a block re-encodes each transaction, whose encodings it keeps) and compares them."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise DecodeError("bad-encoding", f"{what}: expected bytes, got {type(data).__name__}")
    if len(data) > max_size:
        raise DecodeError(
            "oversized", f"{what} of {len(data)} bytes", expected=f"<= {max_size}", got=len(data)
        )
    try:
        value = msgpack.unpackb(
            data,
            use_list=True,
            raw=False,
            strict_map_key=True,
            ext_hook=_refuse_ext,
            max_bin_len=max_size,
            max_str_len=max_size,
            max_array_len=max_size,
            max_map_len=0,  # no maps anywhere in the protocol
            max_ext_len=0,
        )
    except DecodeError:
        raise
    except msgpack.ExtraData:
        raise DecodeError("bad-encoding", f"{what}: trailing bytes") from None
    except UnicodeDecodeError:  # a ValueError too, whose text names codec internals
        raise DecodeError("bad-encoding", f"{what}: a string that is not UTF-8") from None
    except (ValueError, TypeError, msgpack.UnpackException) as exc:
        raise DecodeError("bad-encoding", f"{what}: {exc}") from None
    return value


def fields(value: Any, what: str, count: int) -> list[Any]:
    """``value`` as a list of exactly ``count`` fields."""
    if type(value) is not list:
        raise DecodeError("bad-encoding", f"{what}: expected a list, got {type(value).__name__}")
    if len(value) != count:
        raise DecodeError(
            "bad-encoding", f"{what}: wrong field count", expected=count, got=len(value)
        )
    return value


def as_int(value: Any, field: str, lo: int = 0, hi: int = MAX_INT) -> int:
    """An integer in ``[lo, hi]``; bool is not an integer here."""
    if type(value) is not int:
        raise DecodeError("bad-encoding", f"{field}: expected int, got {type(value).__name__}")
    if not lo <= value <= hi:
        raise DecodeError("bad-encoding", f"{field}: out of range", expected=f"[{lo}, {hi}]", got=value)
    return value


def as_bytes(value: Any, field: str, *, size: int | None = None, max_size: int | None = None) -> bytes:
    """Bytes of exactly ``size`` or at most ``max_size``."""
    if type(value) is not bytes:
        raise DecodeError("bad-encoding", f"{field}: expected bytes, got {type(value).__name__}")
    if size is not None and len(value) != size:
        raise DecodeError("bad-encoding", f"{field}: wrong length", expected=size, got=len(value))
    if max_size is not None and len(value) > max_size:
        raise DecodeError("oversized", f"{field}: too long", expected=f"<= {max_size}", got=len(value))
    return value


def as_list(value: Any, field: str, *, max_len: int) -> list[Any]:
    if type(value) is not list:
        raise DecodeError("bad-encoding", f"{field}: expected a list, got {type(value).__name__}")
    if len(value) > max_len:
        raise DecodeError("oversized", f"{field}: too many items", expected=f"<= {max_len}", got=len(value))
    return value
