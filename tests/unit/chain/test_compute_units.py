"""Compute units against hand-computed values, and their monotonicity in size."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chain.compute_units import (
    UnitsError,
    centernet_forward_flops,
    cnn_forward_flops,
    inference_units,
    render_units,
    training_units,
)


def test_render_units_by_hand() -> None:
    # 28 x 28 grey, 100 items, no effect: one pass
    assert render_units(28, 28, 1, 100) == 78_400
    # noise (1 pass) + blur (2 passes) = 4 passes
    assert render_units(28, 28, 1, 100, effects=["noise", "blur"]) == 313_600
    # supersample 2: four times the pixels; objects: 500 px * 3 channels per item
    assert render_units(10, 10, 3, 2, supersample=2) == 2_400
    assert render_units(10, 10, 3, 2, object_pixels=500) == 2 * (300 + 1_500)


def test_cnn_forward_flops_by_hand() -> None:
    # block 0: 2*1*8*9*28*28 = 112,896; block 1 at 14x14: 2*8*16*9*14*14 = 451,584; head 2*16*10
    assert cnn_forward_flops(28, 1, 8, 2, 10) == 112_896 + 451_584 + 320


def test_centernet_forward_flops_by_hand() -> None:
    # S=32, w=1, h=1, C=1: every spatial size is S/2..S/32 = 16, 8, 4, 2, 1
    stem = 2 * 3 * 1 * 9 * 16 * 16
    stage2 = 2 * 1 * 2 * 9 * 64 + 2 * 2 * 2 * 9 * 64
    stage3 = 2 * 2 * 4 * 9 * 16 + 2 * 4 * 4 * 9 * 16
    stage4 = 2 * 4 * 8 * 9 * 4 + 2 * 8 * 8 * 9 * 4
    stage5 = 2 * 8 * 8 * 9 * 1 + 2 * 8 * 8 * 9 * 1
    ups = 2 * 8 * 4 * 9 * 4 + 2 * 4 * 2 * 9 * 16 + 2 * 2 * 2 * 9 * 64
    heads = 3 * (2 * 2 * 1 * 9 * 64) + 2 * 64 * (1 + 2 + 2)
    expected = stem + stage2 + stage3 + stage4 + stage5 + ups + heads
    assert centernet_forward_flops(32, 1, 1, 1) == expected


def test_training_and_inference_units() -> None:
    assert training_units(1_000, 32, 10) == 960_000
    assert inference_units(1_000, 7) == 7_000


def test_bad_values_are_named() -> None:
    with pytest.raises(UnitsError) as info:
        render_units(28, 28, 1, 10, effects=["sparkles"])
    assert info.value.reason == "bad-units"
    with pytest.raises(UnitsError):
        render_units(-1, 28, 1, 10)
    with pytest.raises(UnitsError):
        render_units(28, 28, 1, 10, supersample=0)
    with pytest.raises(UnitsError):
        training_units(10, True, 3)  # a bool is not a size


@given(
    side=st.integers(1, 256),
    items=st.integers(0, 10_000),
    extra=st.integers(1, 100),
)
def test_units_grow_with_size(side: int, items: int, extra: int) -> None:
    assert render_units(side, side, 1, items + extra) > render_units(side, side, 1, items)
    assert render_units(side + extra, side, 3, items + 1) > render_units(side, side, 3, items + 1)
    small = cnn_forward_flops(side, 1, 8, 2, 10)
    assert cnn_forward_flops(side, 1, 8 + extra, 2, 10) > small
    assert training_units(small, 32, items + extra) > training_units(small, 32, items)
