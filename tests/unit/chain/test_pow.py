"""Compact targets, ASERT difficulty and the nonce search."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chain.pow import (
    asert_bits,
    bits_to_target,
    is_canonical_bits,
    meets_target,
    mine,
    pow_hash,
    target_to_bits,
    work_of,
)
from chain.types import Header

SPACING = 60
HALF_LIFE = 172_800
ANCHOR = 0x1D11E54C
LIMIT = 0x1F00FFFF


def asert(time_diff: int, height_diff: int, anchor: int = ANCHOR) -> int:
    return asert_bits(
        anchor, time_diff, height_diff, spacing=SPACING, half_life=HALF_LIFE, pow_limit_bits=LIMIT
    )


def ratio(bits: int, anchor: int = ANCHOR) -> float:
    return bits_to_target(bits) / bits_to_target(anchor)


# ---- compact bits --------------------------------------------------------------------------


def test_known_compact_values() -> None:
    assert bits_to_target(0x1D00FFFF) == 0xFFFF << 208  # Bitcoin's genesis target
    assert target_to_bits(0xFFFF << 208) == 0x1D00FFFF
    assert bits_to_target(0x03123456) == 0x123456
    assert bits_to_target(0x02123456) == 0x1234
    assert target_to_bits(0x80) == 0x02008000  # a mantissa with its top bit set moves up a byte
    with pytest.raises(ValueError):
        bits_to_target(0x04923456)


@given(st.integers(1, 2**255))
def test_target_to_bits_round_trips_and_rounds_down(target: int) -> None:
    bits = target_to_bits(target)
    assert is_canonical_bits(bits)
    compact = bits_to_target(bits)
    assert compact <= target
    assert target - compact < max(1, target >> 15)  # 16 significant bits survive
    assert target_to_bits(compact) == bits


@given(st.integers(0x03000001, 0x2000FFFF))
def test_canonical_bits_are_exactly_the_fixed_points(bits: int) -> None:
    try:
        target = bits_to_target(bits)
    except ValueError:
        assert not is_canonical_bits(bits)
        return
    assert is_canonical_bits(bits) == (target > 0 and target_to_bits(target) == bits)


def test_work_grows_as_the_target_shrinks() -> None:
    assert work_of(0x1D00FFFF) > work_of(0x1E00FFFF) > work_of(0x1F00FFFF)
    assert work_of(0x2100FFFF) == 1  # the devnet limit: every hash meets it


def test_work_is_two_to_the_256_over_target_plus_one() -> None:
    assert work_of(0x1D00FFFF) == 0x100010001  # Bitcoin's genesis block: its chainwork
    assert work_of(0x03000001) == 2**255  # target 1: half of all hashes are 0 or 1
    assert work_of(0x03000003) == 2**254
    assert work_of(0x2000FFFF) == 256


def test_a_hash_equal_to_the_target_meets_it() -> None:
    bits = 0x1D00FFFF
    target = bits_to_target(bits)
    assert meets_target(target.to_bytes(32, "big"), bits)
    assert meets_target((target - 1).to_bytes(32, "big"), bits)
    assert not meets_target((target + 1).to_bytes(32, "big"), bits)


# ---- ASERT ---------------------------------------------------------------------------------


@pytest.mark.parametrize("height", [1, 10, 1000, 100_000])
def test_on_schedule_blocks_keep_the_target(height: int) -> None:
    assert asert(SPACING * height, height) == ANCHOR


@pytest.mark.parametrize("height", [1, 500, 10_000])
def test_one_half_life_slow_doubles_the_target(height: int) -> None:
    assert ratio(asert(SPACING * height + HALF_LIFE, height)) == pytest.approx(2.0, rel=0.01)
    assert ratio(asert(SPACING * height + 2 * HALF_LIFE, height)) == pytest.approx(4.0, rel=0.01)


@pytest.mark.parametrize("height", [1, 500, 10_000])
def test_fast_blocks_shrink_the_target(height: int) -> None:
    assert ratio(asert(SPACING * height - HALF_LIFE, height)) == pytest.approx(0.5, rel=0.01)
    assert ratio(asert(SPACING * height - HALF_LIFE // 2, height)) == pytest.approx(2**-0.5, rel=0.01)
    assert ratio(asert(SPACING * height - 600, height)) < 1.0  # ten minutes early


@given(st.integers(-10 * HALF_LIFE, 10 * HALF_LIFE), st.integers(0, 1000))
def test_target_is_monotonic_in_time(drift: int, height: int) -> None:
    earlier = bits_to_target(asert(SPACING * height + drift, height))
    later = bits_to_target(asert(SPACING * height + drift + 600, height))
    assert earlier <= later


def test_clamped_at_the_pow_limit() -> None:
    assert asert(SPACING + 100 * HALF_LIFE, 1) == LIMIT
    assert asert(10**9, 1) == LIMIT
    assert asert(SPACING, 1, anchor=LIMIT) == LIMIT
    assert asert(SPACING + HALF_LIFE, 1, anchor=LIMIT) == LIMIT  # cannot get easier than the limit


def test_floor_at_a_target_of_one() -> None:
    assert bits_to_target(asert(-300 * HALF_LIFE, 1)) == 1


# ---- mining --------------------------------------------------------------------------------

HEADER = Header(1, 7, bytes(range(32)), 1_800_000_000, 0x2000FFFF, bytes(32), bytes(32), bytes(20))


def test_mine_finds_the_first_nonce_that_meets_the_target() -> None:
    bits = 0x2000FFFF  # one hash in 256 meets it
    nonce = mine(HEADER.encode(), bits, 0, 1 << 16)
    assert nonce is not None
    winner = HEADER.with_nonce(nonce)
    assert meets_target(pow_hash(winner.encode()), bits)
    assert winner.hash == pow_hash(winner.encode())
    assert not any(meets_target(HEADER.with_nonce(n).hash, bits) for n in range(nonce))


def test_mine_agrees_with_the_plain_hash_from_any_start() -> None:
    bits = 0x2000FFFF
    hits = [n for n in range(5000, 7000) if meets_target(HEADER.with_nonce(n).hash, bits)]
    assert hits  # about 8 expected
    assert mine(HEADER.encode(), bits, 5000, 2000) == hits[0]
    assert mine(HEADER.with_nonce(123).encode(), bits, hits[0] + 1, 7000 - hits[0] - 1) == (
        hits[1] if len(hits) > 1 else None
    )


def test_mine_returns_none_when_no_nonce_in_range_meets() -> None:
    assert mine(HEADER.encode(), 0x03000001, 0, 1000) is None  # target 1: impossible
    assert mine(HEADER.encode(), 0x2000FFFF, 0, 0) is None


def test_mine_stops_at_the_last_nonce() -> None:
    last = (1 << 64) - 1
    found = mine(HEADER.encode(), 0x2100FFFF, last, 10)
    assert found == last
    assert HEADER.with_nonce(last).nonce == b"\xff" * 8


def test_mine_gives_up_at_the_end_of_the_nonce_space() -> None:
    # a target of 1 is never met: the search runs to the end of the 64-bit nonce space and stops
    header = bytes(100)
    assert mine(header, 0x03000001, 2**64 - 3, 10) is None
    assert mine(header, 0x03000001, 2**64, 10) is None
