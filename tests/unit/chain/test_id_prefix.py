"""Ids by unique prefix (chain/id_prefix.py): what tables print is accepted back (issue 16, finding 4)."""

from __future__ import annotations

import pytest

from chain.errors import ChainError
from chain.id_prefix import ids_in, is_whole, parse_id, pick
from chain.store import MemoryKV

A = bytes.fromhex("ab12cd34" + "00" * 28)
B = bytes.fromhex("ab12cd35" + "11" * 28)
C = bytes.fromhex("ab12cd34" + "ff" * 28)  # shares A's first 8 digits


def reason(call: object) -> str:
    with pytest.raises(ChainError) as caught:
        call()  # type: ignore[operator]
    return caught.value.reason


def test_parse_takes_whole_ids_and_prefixes_of_eight_or_more() -> None:
    assert parse_id(" 0xAB12CD34 ") == "ab12cd34" and not is_whole("ab12cd34")
    assert is_whole(parse_id(A.hex()))
    for bad in ("ab12cd3", "ab12cd3g", "", A.hex() + "0"):
        assert reason(lambda bad=bad: parse_id(bad)) == "bad-id"


def test_pick_names_the_one_match_or_says_why_not() -> None:
    assert pick("ab12cd35", [A, B, C], "tx id") == B
    assert pick("ab12cd340", [A, B, C], "tx id") == A  # an odd digit narrows it
    with pytest.raises(ChainError) as caught:
        pick("ab12cd34", [A, B, C], "tx id")
    assert caught.value.reason == "ambiguous-id" and "2 tx ids" in caught.value.detail
    assert reason(lambda: pick("ffffffff", [A, B], "job id", "unknown-job")) == "unknown-job"


def test_ids_in_seeks_a_table_by_whole_bytes_then_checks_the_odd_digit() -> None:
    kv = MemoryKV()
    kv.commit({b"t" + A: b"", b"t" + B: b"", b"t" + C: b"", b"h" + A: b"", b"t" + A[:8]: b""}, sync=False)
    assert sorted(ids_in(kv, b"t", "ab12cd34")) == [A, C]  # not the short key, not another table
    assert list(ids_in(kv, b"t", "ab12cd34f")) == [C]
    assert list(ids_in(kv, b"h", "ab12cd35")) == []
