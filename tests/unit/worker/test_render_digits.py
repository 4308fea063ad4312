"""Synthetic digits look like MNIST: white on black, ~20 px box, centred by mass, soft edges."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from worker.errors import SpecError
from worker.render.digits import (
    SUBPIXEL,
    DigitsSpec,
    _pen_path,
    _stamp,
    render_digit,
    render_digits,
)

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
    soft_edged = touching = 0
    for image in images:
        ys, xs = np.nonzero(image)
        longer = max(ys.max() - ys.min(), xs.max() - xs.min()) + 1
        assert 17 <= longer <= 22  # box_px (18, 20) plus the anti-aliased rim
        edges = (image[0], image[-1], image[:, 0], image[:, -1])
        touching += max(int(edge.max()) for edge in edges) > 0
        mass = image.astype(np.float64)
        centre_y = (mass.sum(axis=1) @ np.arange(28)) / mass.sum()
        centre_x = (mass.sum(axis=0) @ np.arange(28)) / mass.sum()
        assert abs(centre_y - 13.5) <= 0.5 and abs(centre_x - 13.5) <= 0.5
        assert image.max() >= 200
        soft_edged += np.count_nonzero((image > 0) & (image < image.max())) >= 10
    # anti-aliased edges, not binary strokes (a straight 1 may fall on pixel borders by chance)
    assert soft_edged >= 90
    assert touching <= 3  # as in MNIST (1.7%), centring by mass rarely pushes ink to the border


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


def test_pen_strokes_are_thick_lines_to_a_sixteenth_of_a_pixel() -> None:
    """Stamped pen discs cover every pixel near the segment and none far from it."""
    rng = np.random.default_rng(4)
    for _ in range(20):
        radius = int(rng.integers(20, 200))
        a, b = rng.integers(0, 112 * SUBPIXEL, (2, 2))
        ink = np.zeros((112, 112), dtype=bool)
        _stamp(ink, _pen_path(a[None, :], b[None, :], radius), radius)
        centres = np.stack(np.meshgrid(np.arange(112), np.arange(112)), -1) * SUBPIXEL + 8
        d = b - a
        t = np.clip(((centres - a) @ d) / max(d @ d, 1), 0, 1)
        distance = np.linalg.norm(centres - (a + t[..., None] * d), axis=-1)
        assert ink[distance <= radius - radius / 32 - 2].all()
        assert not ink[distance > radius + 2].any()


@settings(max_examples=25, deadline=None)
@given(
    size=st.integers(16, 64),
    thickness=st.integers(5, 80),
    rotation=st.integers(-90, 90),
    shear=st.integers(-100, 100),
    aspect=st.integers(30, 200),
    warp=st.integers(0, 300),
    jitter=st.integers(0, 200),
    translate=st.integers(0, 8),
    clutter=st.integers(0, 8),
    seed=st.integers(0, 2**32),
)
def test_any_spec_in_range_renders_a_visible_digit(
    size: int,
    thickness: int,
    rotation: int,
    shear: int,
    aspect: int,
    warp: int,
    jitter: int,
    translate: int,
    clutter: int,
    seed: int,
) -> None:
    spec = DigitsSpec(
        size=size,
        count=10,
        thickness_dpx=(thickness, thickness),
        rotation_deg=(rotation, rotation),
        shear_pct=(shear, shear),
        aspect_pct=(aspect, aspect),
        warp=(warp, warp),
        point_jitter=(jitter, jitter),
        translate_px=(translate, translate),
        clutter_strokes=(clutter, clutter),
        noise_pct=50,
        blur_pct=50,
        invert_pct=50,
    )
    image, label = render_digit(spec, seed, 3)
    assert image.shape == (size, size) and image.dtype == np.uint8 and 0 <= label <= 9
    contrast = int(image.max()) - int(image.min())
    # the digit shows, whatever the pose; a sub-pixel pen under blur is faint but still there
    assert contrast >= (100 if thickness >= 15 else 10)


# renderer_version 1 as it was before version 2 existed: its canonical JSON (its hash) and items
V1_JSON = (
    '{"aspect_pct":[55,130],"blur_pct":5,"box_px":[18,20],"class_weights":[1,1,1,1,1,1,1,1,1,1],'
    '"clutter_intensity":[20,90],"clutter_strokes":[0,1],"count":10000,"intensity":[235,255],'
    '"invert_pct":0,"kind":"digits","noise_amplitude":[2,10],"noise_pct":10,"point_jitter":[0,30],'
    '"renderer_version":1,"rotation_deg":[-15,15],"shear_pct":[-40,20],"size":28,'
    '"styles":["round","angular","variant"],"thickness_dpx":[16,36],"translate_px":[0,2],'
    '"warp":[0,140]}'
)


def test_a_version_1_spec_keeps_its_hash_and_refuses_version_2_fields() -> None:
    import json

    from worker.spec import load_spec

    old = load_spec(json.loads(V1_JSON), DigitsSpec)
    assert old.renderer_version == 1 and old.canonical_json().decode() == V1_JSON
    assert DigitsSpec(renderer_version=1).canonical_json() == old.canonical_json()
    assert b"smooth_passes" in DigitsSpec().canonical_json()
    for field, value in (("smooth_passes", [1, 1]), ("extra_glyph_pct", 5)):
        with pytest.raises(SpecError, match=f"{field} needs renderer_version 2"):
            load_spec({**json.loads(V1_JSON), field: value}, DigitsSpec)


def test_version_2_extra_glyphs_are_digits_of_their_own_look() -> None:
    """The extra set draws each digit another way: its class means differ from the styles'."""
    plain = CLEAN.model_copy(update={"extra_glyph_pct": 0})
    extra = CLEAN.model_copy(update={"extra_glyph_pct": 100})
    means = []
    for spec in (plain, extra):
        images, labels = render_digits(spec, 6, 0, 300)
        assert np.bincount(labels, minlength=10).min() >= 15
        means.append(np.stack([images[labels == d].mean(axis=0) for d in range(10)]))
    assert np.abs(means[0] - means[1]).sum(axis=(1, 2)).min() > 300
    # every extra digit still looks most like its own class among the extra ones
    own = np.abs(means[1][:, None] - means[1][None, :]).sum(axis=(2, 3)) + np.eye(10) * 1e9
    assert own.min() > 300


def test_chaikin_smoothing_keeps_open_ends_and_closes_loops() -> None:
    from worker.render.digits import _smooth

    square = np.asarray([[0, 0], [400, 0], [400, 400], [0, 400], [0, 0]], dtype=np.int64)
    opened = _smooth(square, 2, closed=False)
    assert (opened[0] == square[0]).all() and (opened[-1] == square[-1]).all()
    looped = _smooth(square, 2, closed=True)
    assert (looped[0] == looped[-1]).all() and not (looped == [0, 0]).all(axis=1).any()
    assert len(looped) == 4 * 2 * 2 + 1
