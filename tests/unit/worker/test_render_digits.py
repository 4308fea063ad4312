"""Synthetic digits look like MNIST: white on black, ~20 px box, centred by mass, soft edges."""

from __future__ import annotations

import numpy as np
import pytest

from worker.errors import SpecError
from worker.render.digits import DigitsSpec, render_digit, render_digits

CLEAN = DigitsSpec(count=200, blur_pct=0, noise_pct=0, clutter_strokes=(0, 0), translate_px=(0, 0))


def test_batch_matches_single_items_and_has_the_promised_types() -> None:
    images, labels = render_digits(CLEAN, 3, 10, 30)
    assert images.shape == (20, 28, 28) and images.dtype == np.uint8
    assert labels.shape == (20,) and labels.dtype == np.int64
    for row, index in enumerate(range(10, 30)):
        image, label = render_digit(CLEAN, 3, index)
        assert np.array_equal(images[row], image) and labels[row] == label
    assert set(labels.tolist()) <= set(range(10))


def test_clean_digits_have_mnist_geometry() -> None:
    images, _ = render_digits(CLEAN, 1, 0, 100)
    soft_edged = 0
    for image in images:
        ys, xs = np.nonzero(image)
        longer = max(ys.max() - ys.min(), xs.max() - xs.min()) + 1
        assert 17 <= longer <= 22  # box_px (18, 20) plus the anti-aliased rim
        assert image[0].max() == image[-1].max() == image[:, 0].max() == image[:, -1].max() == 0
        mass = image.astype(np.float64)
        centre_y = (mass.sum(axis=1) @ np.arange(28)) / mass.sum()
        centre_x = (mass.sum(axis=0) @ np.arange(28)) / mass.sum()
        assert abs(centre_y - 13.5) <= 0.5 and abs(centre_x - 13.5) <= 0.5
        assert image.max() >= 200
        soft_edged += np.count_nonzero((image > 0) & (image < image.max())) >= 10
    # anti-aliased edges, not binary strokes (a straight 1 may fall on pixel borders by chance)
    assert soft_edged >= 90


def test_every_digit_and_style_is_drawn_and_differs() -> None:
    images, labels = render_digits(CLEAN, 2, 0, 200)
    assert np.bincount(labels, minlength=10).min() >= 8
    means = np.stack([images[labels == d].mean(axis=0) for d in range(10)])
    distances = np.abs(means[:, None] - means[None, :]).sum(axis=(2, 3))
    assert (distances + np.eye(10) * 1e9).min() > 300  # no two digit classes look alike


def test_class_weights_and_inversion_are_honoured() -> None:
    only_threes = CLEAN.model_copy(update={"class_weights": (0, 0, 0, 1, 0, 0, 0, 0, 0, 0)})
    _, labels = render_digits(only_threes, 1, 0, 30)
    assert set(labels.tolist()) == {3}
    inverted = CLEAN.model_copy(update={"invert_pct": 100})
    flipped, _ = render_digits(inverted, 1, 0, 5)
    # a new spec is a new random stream, so compare the look, not the pixels
    assert (flipped[:, 0, :] == 255).all() and (flipped.min(axis=(1, 2)) <= 55).all()


def test_randomization_ranges_change_the_images() -> None:
    upright = CLEAN.model_copy(
        update={"rotation_deg": (0, 0), "shear_pct": (0, 0), "point_jitter": (0, 0)}
    )
    slanted = upright.model_copy(update={"shear_pct": (60, 60)})
    thick = upright.model_copy(update={"thickness_dpx": (45, 45)})
    thin = upright.model_copy(update={"thickness_dpx": (12, 12)})
    base, _ = render_digits(upright, 5, 0, 20)
    assert not np.array_equal(base, render_digits(slanted, 5, 0, 20)[0])
    assert render_digits(thick, 5, 0, 20)[0].sum() > 1.5 * render_digits(thin, 5, 0, 20)[0].sum()


def test_batch_range_is_checked() -> None:
    with pytest.raises(SpecError) as info:
        render_digits(CLEAN, 1, 5, 2)
    assert info.value.reason == "bad-item-range"
