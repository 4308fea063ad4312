"""Synthetic handwritten-style digits for classification, shaped like MNIST.

Like MNIST: white strokes on black, the digit scaled so its longer side fills a ~20 px box,
anti-aliased, then moved so its centre of mass sits at the image centre. Strokes are rasterized
at 4x with an exact integer point-to-segment distance test and averaged down 4x4, which gives
MNIST's soft edges without any float step. Every randomization range is a spec field, for the
optimizer of the active-learning loop to tune.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import (
    Field,
    SerializerFunctionWrapHandler,
    field_validator,
    model_serializer,
    model_validator,
)

from worker.errors import SpecError
from worker.render.digit_glyphs import (
    EXTRA_GLYPHS,
    GLYPHS,
    Q14,
    SINE_TABLE,
    Glyph,
    cos_q14,
    sin_q14,
)
from worker.render.ops import NumpyCompositor
from worker.render.rng import ItemRng
from worker.spec import EXACT_INT, LIST_AS_TUPLE, IntRange, TaskSpec, between

SUPERSAMPLE = 4
SUBPIXEL = 16  # subpixel steps per supersampled pixel: line ends are placed to 1/64 px
UNIT = SUPERSAMPLE * SUBPIXEL  # subpixel units per output pixel
GLYPH_CENTER = (300, 500)
SPLIT_LONGER_THAN = 300  # glyph units: longer segments get a midpoint, so jitter can bend them
MAX_COUNT = 5_000_000
MAX_RENDER_BATCH = 100_000

Style = Literal["round", "angular", "variant"]
# fields that renderer_version 1 does not know: left out of a version 1 spec's canonical JSON
# (its hash, so its items, stay what they were) and refused away from their defaults there
V2_FIELDS = ("smooth_passes", "extra_glyph_pct")


class DigitsSpec(TaskSpec):
    """A digits classification set: ``count`` grayscale images, labels 0-9."""

    kind: Literal["digits"] = "digits"
    renderer_version: Annotated[Literal[1, 2], EXACT_INT] = 2
    size: int = Field(default=28, ge=16, le=64, description="image side in pixels")
    count: int = Field(default=10_000, ge=1, le=MAX_COUNT)
    styles: Annotated[tuple[Style, ...], LIST_AS_TUPLE] = Field(
        default=("round", "angular", "variant"), min_length=1, max_length=3
    )
    class_weights: Annotated[tuple[int, ...], LIST_AS_TUPLE] = Field(
        default=(1,) * 10,
        min_length=10,
        max_length=10,
        description="relative frequency of each digit",
    )
    box_px: Annotated[IntRange, between(6, 64)] = Field(
        default=(18, 20), description="longer side of the digit, MNIST: 20"
    )
    thickness_dpx: Annotated[IntRange, between(5, 80)] = Field(
        default=(16, 36), description="stroke width, tenths of a px"
    )
    rotation_deg: Annotated[IntRange, between(-90, 90)] = (-15, 15)
    shear_pct: Annotated[IntRange, between(-100, 100)] = Field(
        default=(-40, 20), description="< 0 leans right, as most hands"
    )
    aspect_pct: Annotated[IntRange, between(30, 200)] = Field(
        default=(55, 130), description="width scale against height"
    )
    warp: Annotated[IntRange, between(0, 300)] = Field(
        default=(0, 140), description="smooth bending, glyph units"
    )
    point_jitter: Annotated[IntRange, between(0, 200)] = Field(
        default=(0, 30), description="glyph units (digit height 1000)"
    )
    translate_px: Annotated[IntRange, between(0, 8)] = Field(
        default=(0, 2), description="shift after centring by mass"
    )
    intensity: Annotated[IntRange, between(1, 255)] = (235, 255)
    clutter_strokes: Annotated[IntRange, between(0, 8)] = (0, 1)
    clutter_intensity: Annotated[IntRange, between(0, 255)] = (20, 90)
    blur_pct: int = Field(default=5, ge=0, le=100)
    noise_pct: int = Field(default=10, ge=0, le=100)
    noise_amplitude: Annotated[IntRange, between(1, 127)] = (2, 10)
    invert_pct: int = Field(default=0, ge=0, le=100)
    # renderer_version 2 only (see V2_FIELDS)
    smooth_passes: Annotated[IntRange, between(0, 3)] = Field(
        default=(2, 2), description="Chaikin corner-cutting passes over each stroke"
    )
    extra_glyph_pct: int = Field(
        default=25, ge=0, le=100, description="chance of the extra glyph set over the style's"
    )

    @field_validator("class_weights")
    @classmethod
    def _some_weight(cls, weights: tuple[int, ...]) -> tuple[int, ...]:
        if any(w < 0 or w > 1000 for w in weights) or not any(weights):
            raise ValueError("weights must lie in [0, 1000] and not all be 0")
        return weights

    @model_validator(mode="after")
    def _fields_of_its_version(self) -> DigitsSpec:
        if self.renderer_version == 1:
            for name in V2_FIELDS:
                if getattr(self, name) != type(self).model_fields[name].default:
                    raise ValueError(f"{name} needs renderer_version 2")
        return self

    @model_serializer(mode="wrap")
    def _dump_fields_of_its_version(self, handler: SerializerFunctionWrapHandler) -> Any:
        # a version 1 spec hashes as it did before version 2 existed, so its items re-render
        data = handler(self)
        if self.renderer_version == 1:
            for name in V2_FIELDS:
                data.pop(name, None)
        return data


@dataclass(frozen=True, slots=True)
class DigitPose:
    """The per-item draws that place a glyph; all integers."""

    rotation: int
    shear_pct: int
    aspect_pct: int
    box_px: int
    radius_sub: int  # half the stroke width in subpixel units
    phase: tuple[int, int]  # subpixel offset, so edges do not always fall on pixel borders


@lru_cache(maxsize=16)
def _digest(spec: DigitsSpec) -> bytes:
    return spec.spec_hash()


def render_digit(spec: DigitsSpec, seed: int, index: int) -> tuple[np.ndarray, int]:
    """Item ``index`` of the digits set ``(spec, seed)``: ``(size x size uint8 image, label)``."""
    if spec.renderer_version == 2:
        return _render_v2(spec, seed, index)
    rng = ItemRng.for_item(_digest(spec), seed, index)
    label = rng.weighted(spec.class_weights)
    style = spec.styles[rng.choice(len(spec.styles))]
    pose = _draw_pose(spec, rng)
    strokes = _jitter(GLYPHS[style][label], rng, rng.pick(spec.point_jitter))
    strokes = _place(_warp(strokes, rng, spec.warp), pose, spec.size)
    ink = _downsample(_rasterize(strokes, pose.radius_sub, spec.size), rng.pick(spec.intensity))
    image = _center_by_mass(ink, rng.pick(spec.translate_px), rng)
    image = np.maximum(image, _clutter(spec, rng))
    return _finish(spec, rng, image), label


def _draw_pose(spec: DigitsSpec, rng: ItemRng) -> DigitPose:
    return DigitPose(
        rotation=rng.pick(spec.rotation_deg),
        shear_pct=rng.pick(spec.shear_pct),
        aspect_pct=rng.pick(spec.aspect_pct),
        box_px=min(rng.pick(spec.box_px), spec.size),
        radius_sub=max(1, rng.pick(spec.thickness_dpx) * UNIT // 20),
        phase=(rng.draw(0, UNIT - 1), rng.draw(0, UNIT - 1)),
    )


def render_digits(
    spec: DigitsSpec, seed: int, start: int, stop: int
) -> tuple[np.ndarray, np.ndarray]:
    """Items ``start..stop-1`` as ``(N, size, size) uint8`` images and ``(N,) int64`` labels."""
    if not 0 <= start <= stop or stop - start > MAX_RENDER_BATCH:
        raise SpecError(
            f"bad item range [{start}, {stop}): at most {MAX_RENDER_BATCH} at once",
            reason="bad-item-range",
        )
    images = np.zeros((stop - start, spec.size, spec.size), dtype=np.uint8)
    labels = np.zeros(stop - start, dtype=np.int64)
    for row, index in enumerate(range(start, stop)):
        images[row], labels[row] = render_digit(spec, seed, index)
    return images, labels


def _jitter(glyph: Glyph, rng: ItemRng, amount: int) -> list[np.ndarray]:
    """Each stroke as an (n, 2) int64 array, long segments split, every point moved a little."""
    strokes = []
    for stroke in glyph:
        points: list[tuple[int, int]] = [stroke[0]]
        for end in stroke[1:]:
            last = points[-1]
            if abs(end[0] - last[0]) + abs(end[1] - last[1]) > SPLIT_LONGER_THAN:
                points.append(((last[0] + end[0]) // 2, (last[1] + end[1]) // 2))
            points.append(end)
        array = np.asarray(points, dtype=np.int64)
        if amount:
            array = array + rng.ints(-amount, amount, array.size).reshape(array.shape)
        strokes.append(array)
    return strokes


def _warp(strokes: list[np.ndarray], rng: ItemRng, warp: tuple[int, int]) -> list[np.ndarray]:
    """A smooth random bend of the whole glyph (an integer cousin of MNIST elastic distortion).

    Each axis is displaced by two low-frequency sine waves, one along each coordinate, with
    random amplitude, frequency (1-2 periods per glyph height) and phase.
    """
    waves = [(rng.pick(warp), rng.draw(1, 2), rng.draw(0, 359)) for _ in range(4)]

    def wave(coordinate: np.ndarray, amplitude: int, periods: int, phase: int) -> np.ndarray:
        angles = (coordinate * periods * 360 // 1000 + phase) % 360
        bent: np.ndarray = amplitude * SINE_TABLE[angles] // Q14
        return bent

    return [
        s
        + np.stack(
            [
                wave(s[:, 1], *waves[0]) + wave(s[:, 0], *waves[1]),
                wave(s[:, 0], *waves[2]) + wave(s[:, 1], *waves[3]),
            ],
            axis=1,
        )
        for s in strokes
    ]


def _place(strokes: list[np.ndarray], pose: DigitPose, size: int) -> list[np.ndarray]:
    """Shear, squeeze and rotate (Q14 fixed point), then fit the pose's box, centred, in subpixels."""
    cos, sin = cos_q14(pose.rotation), sin_q14(pose.rotation)
    # x' = aspect * (x + shear * y); then rotate: all factors as Q14 integers
    a = pose.aspect_pct * Q14 // 100
    b = pose.aspect_pct * pose.shear_pct * Q14 // 10_000
    matrix = np.asarray(
        [[cos * a - sin * 0, cos * b - sin * Q14], [sin * a + cos * 0, sin * b + cos * Q14]],
        dtype=np.int64,
    )
    center = np.asarray(GLYPH_CENTER, dtype=np.int64)
    moved = [((s - center) @ matrix.T) >> 28 for s in strokes]  # two Q14 factors
    every = np.concatenate(moved)
    low, high = every.min(axis=0), every.max(axis=0)
    extent = max(int((high - low).max()), 1)
    span = pose.box_px * UNIT - 2 * pose.radius_sub
    scaled = [(m - low) * span // extent for m in moved]
    drawn = (high - low) * span // extent
    origin = (size * UNIT - drawn) // 2 + np.asarray(pose.phase, dtype=np.int64) - UNIT // 2
    return [s + origin for s in scaled]


def _rasterize(strokes: list[np.ndarray], radius: int, size: int) -> np.ndarray:
    """Supersampled ink of the strokes drawn with a round pen of ``radius`` subpixels."""
    side = size * SUPERSAMPLE
    ink = np.zeros((side, side), dtype=bool)
    starts = np.concatenate([s[:-1] if len(s) > 1 else s for s in strokes])
    ends = np.concatenate([s[1:] if len(s) > 1 else s for s in strokes])
    _stamp(ink, _pen_path(starts, ends, radius), radius)
    return ink


def _pen_path(starts: np.ndarray, ends: np.ndarray, radius: int) -> np.ndarray:
    """Points along each segment ``starts[i] -> ends[i]``, both ends included.

    Points are at most a third of the pen radius apart along x and y (so at most r*sqrt(2)/3
    apart), so the union of pen discs misses the exact thick line by under r/32: a sixteenth of a
    pixel for a 2-3 px stroke.
    """
    spacing = max(SUBPIXEL, radius // 3)
    delta = ends - starts
    steps = np.abs(delta).max(axis=1) // spacing + 1
    counts = steps + 1
    segment = np.repeat(np.arange(len(starts)), counts)
    k = np.arange(int(counts.sum())) - np.repeat(np.cumsum(counts) - counts, counts)
    points: np.ndarray = starts[segment] + delta[segment] * k[:, None] // steps[segment][:, None]
    return points


def _stamp(ink: np.ndarray, points: np.ndarray, radius: int) -> None:
    """Set every pixel whose centre is within ``radius`` of one of ``points`` (exact integers)."""
    side = ink.shape[0]
    reach = radius // SUBPIXEL + 1
    span = np.arange(-reach, reach + 1)
    cells = points // SUBPIXEL
    xs = (cells[:, 0:1] + span[None, :])[:, None, :]  # (N, 1, K)
    ys = (cells[:, 1:2] + span[None, :])[:, :, None]  # (N, K, 1)
    dx = xs * SUBPIXEL + SUBPIXEL // 2 - points[:, 0, None, None]
    dy = ys * SUBPIXEL + SUBPIXEL // 2 - points[:, 1, None, None]
    inside = (dx * dx + dy * dy <= radius * radius) & (xs >= 0) & (xs < side) & (ys >= 0)
    inside &= ys < side
    hit_y, hit_x = (
        np.broadcast_to(ys, inside.shape)[inside],
        np.broadcast_to(xs, inside.shape)[inside],
    )
    ink[hit_y, hit_x] = True


def _downsample(ink: np.ndarray, intensity: int) -> np.ndarray:
    """4x4 block averages, rounded: the anti-aliased stroke edges."""
    side = ink.shape[0] // SUPERSAMPLE
    cover = ink.reshape(side, SUPERSAMPLE, side, SUPERSAMPLE).sum(axis=(1, 3), dtype=np.int32)
    area = SUPERSAMPLE * SUPERSAMPLE
    shaded: np.ndarray = ((cover * intensity + area // 2) // area).astype(np.uint8)
    return shaded


def _center_by_mass(image: np.ndarray, translate: int, rng: ItemRng) -> np.ndarray:
    """Shift (whole pixels) so the centre of mass lands on the image centre, then jitter."""
    size = image.shape[0]
    mass = int(image.sum(dtype=np.int64))
    if mass == 0:
        return image
    coords = np.arange(size, dtype=np.int64)
    moment_y = int(image.sum(axis=1, dtype=np.int64) @ coords)
    moment_x = int(image.sum(axis=0, dtype=np.int64) @ coords)
    # round((size - 1) / 2 - moment / mass) with integers only
    shift_y = ((size - 1) * mass - 2 * moment_y + mass) // (2 * mass) + rng.draw(
        -translate, translate
    )
    shift_x = ((size - 1) * mass - 2 * moment_x + mass) // (2 * mass) + rng.draw(
        -translate, translate
    )
    return _shift(image, shift_y, shift_x)


def _shift(image: np.ndarray, dy: int, dx: int) -> np.ndarray:
    size = image.shape[0]
    out = np.zeros_like(image)
    if abs(dy) >= size or abs(dx) >= size:
        return out
    out[max(dy, 0) : size + min(dy, 0), max(dx, 0) : size + min(dx, 0)] = image[
        max(-dy, 0) : size + min(-dy, 0), max(-dx, 0) : size + min(-dx, 0)
    ]
    return out


def _clutter(spec: DigitsSpec, rng: ItemRng) -> np.ndarray:
    """Faint stray strokes (pen marks, scanner dirt) that the classifier must learn to ignore."""
    size = spec.size
    ink = np.zeros((size * SUPERSAMPLE, size * SUPERSAMPLE), dtype=bool)
    extent = size * UNIT
    for _ in range(rng.pick(spec.clutter_strokes)):
        a = np.asarray([rng.draw(0, extent), rng.draw(0, extent)], dtype=np.int64)
        b = a + np.asarray(
            [rng.draw(-extent // 4, extent // 4), rng.draw(-extent // 4, extent // 4)]
        )
        radius = rng.draw(UNIT // 4, UNIT)
        _stamp(ink, _pen_path(a[None, :], b[None, :], radius), radius)
    return _downsample(ink, rng.pick(spec.clutter_intensity))


def _finish(spec: DigitsSpec, rng: ItemRng, image: np.ndarray) -> np.ndarray:
    """Blur, noise and inversion; each chance is drawn every time so the RNG stream stays fixed."""
    ops = NumpyCompositor()
    blur = rng.chance(spec.blur_pct)
    if blur:
        image = ops.blur(image[:, :, None], 1)[:, :, 0]
    noisy = rng.chance(spec.noise_pct)
    amplitude = rng.pick(spec.noise_amplitude)
    if noisy:
        image = ops.add_noise(image, rng.byte_noise(image.shape, amplitude))
    if rng.chance(spec.invert_pct):
        image = 255 - image
    return image



def _render_v2(spec: DigitsSpec, seed: int, index: int) -> tuple[np.ndarray, int]:
    """Version 2: version 1's draws, then an extra glyph set, closed loops and smoothed strokes."""
    rng = ItemRng.for_item(_digest(spec), seed, index)
    label = rng.weighted(spec.class_weights)
    style = spec.styles[rng.choice(len(spec.styles))]
    pose = _draw_pose(spec, rng)
    glyph = EXTRA_GLYPHS[label] if rng.chance(spec.extra_glyph_pct) else GLYPHS[style][label]
    closed = [stroke[0] == stroke[-1] for stroke in glyph]
    strokes = _jitter(glyph, rng, rng.pick(spec.point_jitter))
    strokes = [_close(s) if loop else s for s, loop in zip(strokes, closed)]
    strokes = _warp(strokes, rng, spec.warp)
    passes = rng.pick(spec.smooth_passes)
    strokes = [_smooth(s, passes, loop) for s, loop in zip(strokes, closed)]
    strokes = _place(strokes, pose, spec.size)
    ink = _downsample(_rasterize(strokes, pose.radius_sub, spec.size), rng.pick(spec.intensity))
    image = _center_by_mass(ink, rng.pick(spec.translate_px), rng)
    image = np.maximum(image, _clutter(spec, rng))
    return _finish(spec, rng, image), label


def _close(stroke: np.ndarray) -> np.ndarray:
    """A loop whose ends jitter moved apart, joined again (a 0 or an 8 is written closed)."""
    joined = stroke.copy()
    joined[-1] = joined[0]
    return joined


def _smooth(stroke: np.ndarray, passes: int, closed: bool) -> np.ndarray:
    """Chaikin corner cutting in integers: each pass puts two points at 1/4 and 3/4 of every
    segment, so jittered polylines become the smooth curves a pen draws. An open stroke keeps its
    ends; a closed one is cut all round, its joint included."""
    for _ in range(passes):
        if len(stroke) < 3:
            return stroke
        a, b = stroke[:-1], stroke[1:]
        cut = np.stack([(3 * a + b) // 4, (a + 3 * b) // 4], axis=1).reshape(-1, 2)
        if closed:
            stroke = np.concatenate([cut, cut[:1]])
        else:
            stroke = np.concatenate([stroke[:1], cut[1:-1], stroke[-1:]])
    return stroke
