"""The real-MNIST split: sizes, disjointness, stratification, determinism."""

from __future__ import annotations

import numpy as np
import pytest

from worker.realdata import RealDataError, load_split, stratified_split


def test_split_sizes_disjoint_and_stratified() -> None:
    split = load_split(tuning_size=100, seed=0)
    assert len(split.tuning) == 100
    assert len(split.heldout) == 4900
    assert not set(split.tuning_index.tolist()) & set(split.heldout_index.tolist())
    assert np.bincount(split.tuning.labels, minlength=10).tolist() == [10] * 10
    assert np.bincount(split.heldout.labels, minlength=10).tolist() == [490] * 10
    assert split.tuning.images.shape == (100, 28, 28)
    assert split.tuning.images.dtype == np.uint8
    # real digits: white strokes on black, not an empty array
    assert split.tuning.images.max() == 255


def test_split_is_deterministic_and_seeded() -> None:
    labels = np.repeat(np.arange(10), 50)
    first, _ = stratified_split(labels, 20, seed=3)
    again, _ = stratified_split(labels, 20, seed=3)
    other, _ = stratified_split(labels, 20, seed=4)
    assert first.tolist() == again.tolist()
    assert first.tolist() != other.tolist()


def test_split_rejects_uneven_size() -> None:
    with pytest.raises(RealDataError) as info:
        stratified_split(np.repeat(np.arange(10), 5), 15)
    assert info.value.reason == "bad-split"
