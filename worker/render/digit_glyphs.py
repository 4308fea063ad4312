"""Stroke skeletons of the digits 0-9 in a few handwriting styles, and an exact integer sine.

Glyphs live in a box 600 wide and 1000 tall (y grows downwards). Each glyph is a list of
polylines; curves are arcs evaluated with `sin_q14`, an integer table built by exact big-integer
arithmetic, so no platform's libm can change a consensus pixel.
"""

from __future__ import annotations

from functools import cache

import numpy as np

Q14 = 1 << 14
_FRAC_BITS = 64
_PI_DIGITS = 3141592653589793238462643383279502884197169399375  # pi * 10**48

Point = tuple[int, int]
Glyph = tuple[tuple[Point, ...], ...]


@cache
def sin_q14(degrees: int) -> int:
    """round(sin(degrees) * 2**14), by a Taylor series in 64-bit fixed point (exact integers)."""
    degrees = (degrees + 180) % 360 - 180
    one = 1 << _FRAC_BITS
    x = degrees * _PI_DIGITS * one // (180 * 10**48)
    term, total, n = x, x, 1
    while term:
        term = -term * x * x // ((2 * n) * (2 * n + 1) * one * one)
        total += term
        n += 1
    return (total * Q14 + one // 2) >> _FRAC_BITS


SINE_TABLE = np.asarray([sin_q14(d) for d in range(360)], dtype=np.int64)  # for array lookups


def cos_q14(degrees: int) -> int:
    return sin_q14(degrees + 90)


def arc(
    cx: int, cy: int, rx: int, ry: int, start: int, stop: int, step: int = 10
) -> tuple[Point, ...]:
    """Points of an elliptic arc from angle ``start`` to ``stop`` (degrees; 90 points down)."""
    sign = 1 if stop >= start else -1
    angles = list(range(start, stop, sign * step)) + [stop]
    return tuple((cx + rx * cos_q14(a) // Q14, cy + ry * sin_q14(a) // Q14) for a in angles)


def figure_eight(
    upper: Point = (230, 420), lower: Point = (290, 480), lean: int = 0, step: int = 10
) -> tuple[Point, ...]:
    """An 8 written in one stroke that crosses itself at the waist (a 1:2 Lissajous curve).

    ``upper`` and ``lower`` are the (x, y) radii of the loops; ``lean`` shifts the upper loop
    right, as a slanted hand does.
    """
    points = []
    for t in range(0, 361, step):
        rx, ry = upper if 180 < t < 360 else lower
        dx = lean * max(0, -sin_q14(t)) // Q14
        points.append((300 + dx + rx * sin_q14(2 * t) // Q14, 520 + ry * sin_q14(t) // Q14))
    return tuple(points)


def _join(*parts: tuple[Point, ...]) -> tuple[Point, ...]:
    points: list[Point] = []
    for part in parts:
        points.extend(part)
    return tuple(points)


# Three styles per digit: "round" (school handwriting), "angular" (quick straight strokes) and
# "variant" (the other common way to write it: a serif 1, a crossed 7, an open 4, ...).
# fmt: off
GLYPHS: dict[str, tuple[Glyph, ...]] = {
    "round": (
        (arc(300, 500, 340, 480, -90, 270),),
        (((300, 0), (300, 1000)),),
        (_join(arc(300, 270, 270, 250, 200, 390), ((420, 560), (250, 720), (100, 830)),
               arc(170, 880, 160, 120, 180, -220), ((350, 1000), (600, 990))),),
        (arc(290, 250, 250, 230, 200, 450), arc(290, 730, 280, 270, -90, 160)),
        (((430, 0), (0, 680), (600, 680)), ((430, 250), (430, 1000))),
        (_join(((530, 0), (90, 0), (70, 430)), arc(280, 690, 280, 300, 240, 520)),),
        (((470, 20), (250, 120), (110, 330), (50, 600), (70, 820), (190, 970), (330, 1000),
          (480, 930), (550, 770), (500, 620), (340, 560), (170, 610), (60, 760)),),
        (((0, 160), (40, 0), (580, 0), (330, 1000)),),
        (figure_eight(),),
        (arc(300, 280, 260, 270, 0, 360), ((560, 280), (520, 1000))),
    ),
    "angular": (
        (((300, 0), (560, 200), (560, 800), (300, 1000), (40, 800), (40, 200), (300, 0)),),
        (((150, 200), (320, 0), (320, 1000)),),
        (((30, 150), (250, 0), (520, 100), (540, 300), (30, 1000), (600, 1000)),),
        (((30, 0), (560, 0), (250, 400)), arc(290, 700, 280, 300, -90, 160)),
        (((80, 0), (20, 600), (600, 600)), ((470, 0), (470, 1000))),
        (((530, 0), (80, 0), (60, 420), (350, 380), (560, 560), (560, 820), (330, 1000),
          (30, 930)),),
        (((420, 0), (80, 520)), arc(300, 760, 240, 240, 200, 560)),
        (((20, 0), (580, 0), (200, 1000)), ((150, 520), (520, 520))),
        (figure_eight((170, 400), (260, 500), lean=80),),
        (arc(300, 280, 260, 270, 0, 360), ((560, 300), (520, 700), (380, 1000))),
    ),
    "variant": (
        (arc(300, 500, 230, 490, -110, 280),),
        (((150, 200), (320, 0), (320, 1000)), ((150, 1000), (490, 1000))),
        (_join(arc(300, 270, 270, 250, 200, 400), ((120, 800),),
               arc(180, 900, 180, 110, 200, -160), ((600, 960),)),),
        (((30, 80), (300, 0), (520, 120), (520, 330), (250, 470), (540, 620), (540, 880),
          (300, 1000), (20, 920)),),
        (((380, 0), (0, 620), (560, 620)), ((420, 300), (420, 1000))),
        (((90, 0), (60, 430)), arc(280, 690, 280, 300, 240, 520), ((90, 0), (560, 0))),
        (_join(((480, 0), (200, 250), (60, 600)), arc(300, 760, 250, 240, 180, 540)),),
        (((40, 80), (100, 20), (580, 0), (440, 420), (380, 1000)),),
        (figure_eight((260, 440), (260, 460), lean=-40),),
        (arc(300, 280, 260, 270, 0, 360), ((560, 250), (560, 1000))),
    ),
}
# Renderer version 2 adds one more way to write each digit (drawn with the spec's
# ``extra_glyph_pct``): a round-topped Z-like 2, a one-stroke 3, a 4 with a curved left arm, a
# big-bellied 5, a 6 with a small loop, a 7 with a curved stem, an 8 as two stacked loops and a 9
# with a small loop over a straight stem; 0 and 1 with an overlap and a flag.
EXTRA_GLYPHS: tuple[Glyph, ...] = (
    (arc(300, 500, 280, 490, -110, 280),),
    (((220, 120), (330, 0), (300, 500), (270, 1000)),),
    (_join(arc(300, 300, 250, 280, 200, 360), ((520, 420), (300, 700), (40, 1000), (600, 980))),),
    (_join(arc(280, 250, 250, 240, 200, 450), arc(280, 740, 290, 260, -90, 150)),),
    (((120, 0), (60, 480), (180, 600), (600, 580)), ((460, 150), (460, 1000))),
    (_join(((90, 20), (60, 450)), arc(300, 690, 270, 290, 230, 510)), ((90, 20), (560, 0))),
    (_join(((500, 0), (300, 150), (130, 450)), arc(300, 770, 220, 230, 170, 530)),),
    (((20, 40), (580, 0), (420, 400), (300, 1000)),),
    (arc(300, 260, 220, 240, 90, 450), arc(300, 740, 270, 260, -90, 270)),
    (arc(290, 230, 240, 220, 0, 360), ((530, 230), (480, 1000))),
)
# fmt: on
STYLES = tuple(GLYPHS)
