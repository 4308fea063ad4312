"""The search space of the active-learning loop: how far it may move each DigitsSpec range.

The search is local, around the starting spec: a range ``[lo, hi]`` is moved by a *shift* of its
centre and *widened* (or narrowed) by the same amount at both ends, both in field units and both
up to the knob's step, so every trial is a plausible variation of a spec someone already judged
sensible (a degenerate range can still open up), and the starting spec itself is the point
``shift = 0, widen = 0``. A small count range (translation, clutter strokes) and a chance in
percent (blur, noise) are set directly. Few, meaningful dimensions let TPE learn in ~15 rounds;
random points of a wide absolute space mostly render digits no hand writes.

Every value is clipped into the spec's own bounds, so each trial is a valid DigitsSpec.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol


class Trial(Protocol):
    """The part of ``optuna.Trial`` the space uses (the loop passes a real optuna trial)."""

    def suggest_int(self, name: str, low: int, high: int) -> int: ...


@dataclass(frozen=True, slots=True)
class RangeKnob:
    """Shift ``field``'s range by up to ``step`` and widen each end by -step..step."""

    field: str
    step: int
    limits: tuple[int, int]

    def bounds(self) -> dict[str, tuple[int, int]]:
        return {f"{self.field}.shift": (-self.step, self.step),
                f"{self.field}.widen": (-self.step, self.step)}

    def build(self, params: Mapping[str, int], base: Any) -> tuple[int, int]:
        shift, widen = params[f"{self.field}.shift"], params[f"{self.field}.widen"]
        low, high = int(base[0]) + shift - widen, int(base[1]) + shift + widen
        if low > high:  # narrowed past zero width: collapse onto the centre
            low = high = (low + high) // 2
        return _clip(low, self.limits), _clip(high, self.limits)

    def neutral(self, base: Any) -> dict[str, int]:
        return {f"{self.field}.shift": 0, f"{self.field}.widen": 0}


@dataclass(frozen=True, slots=True)
class TopKnob:
    """A range ``[0, hi]`` (counts, or amounts that start at none) with ``hi`` set directly."""

    field: str
    top: tuple[int, int]

    def bounds(self) -> dict[str, tuple[int, int]]:
        return {f"{self.field}.hi": self.top}

    def build(self, params: Mapping[str, int], base: Any) -> tuple[int, int]:
        return int(base[0]), max(int(base[0]), params[f"{self.field}.hi"])

    def neutral(self, base: Any) -> dict[str, int]:
        return {f"{self.field}.hi": _clip(int(base[1]), self.top)}


@dataclass(frozen=True, slots=True)
class ChanceKnob:
    """A percent chance (blur, noise), set directly."""

    field: str
    values: tuple[int, int]

    def bounds(self) -> dict[str, tuple[int, int]]:
        return {self.field: self.values}

    def build(self, params: Mapping[str, int], base: Any) -> int:
        return params[self.field]

    def neutral(self, base: Any) -> dict[str, int]:
        return {self.field: _clip(int(base), self.values)}


def _clip(value: int, limits: tuple[int, int]) -> int:
    return min(max(value, limits[0]), limits[1])


Knob = RangeKnob | TopKnob | ChanceKnob

KNOBS: tuple[Knob, ...] = (
    RangeKnob("box_px", 2, (6, 28)),
    RangeKnob("thickness_dpx", 8, (5, 80)),
    RangeKnob("rotation_deg", 5, (-90, 90)),
    RangeKnob("shear_pct", 15, (-100, 100)),
    RangeKnob("aspect_pct", 15, (30, 200)),
    RangeKnob("warp", 30, (0, 300)),
    TopKnob("point_jitter", (0, 120)),
    TopKnob("translate_px", (0, 3)),
    TopKnob("clutter_strokes", (0, 3)),
    ChanceKnob("blur_pct", (0, 80)),
    ChanceKnob("noise_pct", (0, 80)),
)


def suggest(trial: Trial, base: Mapping[str, Any]) -> dict[str, Any]:
    """Spec field values for one trial, built around ``base`` (a full DigitsSpec dump)."""
    fields: dict[str, Any] = {}
    for knob in KNOBS:
        params = {name: trial.suggest_int(name, low, high) for name, (low, high) in knob.bounds().items()}
        fields[knob.field] = knob.build(params, base[knob.field])
    return fields


def params_of(base: Mapping[str, Any]) -> dict[str, int]:
    """The parameters of the starting spec itself (enqueued as round 0, so TPE knows it)."""
    params: dict[str, int] = {}
    for knob in KNOBS:
        params.update(knob.neutral(base[knob.field]))
    return params
