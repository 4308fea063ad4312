"""The search space of the active-learning loop: which DigitsSpec ranges it may move, and how far.

Each entry maps a few optuna parameters onto one spec field. A symmetric range (rotation) is one
parameter, the half-width; one-sided ones (jitter, warp, clutter) only move their top end; the
rest move both ends (slant is asymmetric: real handwriting leans right). Fewer, meaningful dimensions let TPE learn something in ten-odd rounds.
The bounds here are the loop's policy (plausible handwriting); the spec's own caps are wider.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

Params = Mapping[str, int]


class Trial(Protocol):
    """The part of ``optuna.Trial`` the space uses (the loop passes a real optuna trial)."""

    def suggest_int(self, name: str, low: int, high: int) -> int: ...


@dataclass(frozen=True, slots=True)
class Knob:
    """One spec field, the parameters that set it, and how to read them off a spec value."""

    field: str
    bounds: Mapping[str, tuple[int, int]]
    build: Callable[[Params], Any]
    read: Callable[[Any], dict[str, int]]


def _both(field: str, low: tuple[int, int], high: tuple[int, int]) -> Knob:
    lo, hi = f"{field}.lo", f"{field}.hi"
    return Knob(
        field,
        {lo: low, hi: high},
        lambda p: (min(p[lo], p[hi]), max(p[lo], p[hi])),
        lambda v: {lo: int(v[0]), hi: int(v[1])},
    )


def _symmetric(field: str, bound: tuple[int, int]) -> Knob:
    name = f"{field}.half"
    return Knob(field, {name: bound}, lambda p: (-p[name], p[name]), lambda v: {name: int(v[1])})


def _top(field: str, bound: tuple[int, int]) -> Knob:
    name = f"{field}.hi"
    return Knob(field, {name: bound}, lambda p: (0, p[name]), lambda v: {name: int(v[1])})


def _scalar(field: str, bound: tuple[int, int]) -> Knob:
    return Knob(field, {field: bound}, lambda p: p[field], lambda v: {field: int(v)})


KNOBS: tuple[Knob, ...] = (
    _both("box_px", (12, 20), (18, 24)),
    _both("thickness_dpx", (6, 30), (20, 64)),
    _symmetric("rotation_deg", (0, 35)),
    _both("shear_pct", (-60, 0), (-10, 40)),
    _both("aspect_pct", (40, 90), (80, 130)),
    _top("point_jitter", (0, 120)),
    _top("warp", (0, 200)),
    _top("translate_px", (0, 3)),
    _top("clutter_strokes", (0, 3)),
    _scalar("blur_pct", (0, 80)),
    _scalar("noise_pct", (0, 80)),
)


def suggest(trial: Trial) -> dict[str, Any]:
    """Spec field values for one trial (to merge over the base spec)."""
    fields: dict[str, Any] = {}
    for knob in KNOBS:
        params = {name: trial.suggest_int(name, low, high) for name, (low, high) in knob.bounds.items()}
        fields[knob.field] = knob.build(params)
    return fields


def params_of(spec_fields: Mapping[str, Any]) -> dict[str, int]:
    """The optuna parameters that reproduce a spec's fields, clipped into the search bounds.

    Used to enqueue the starting spec as round 0, so the loop's first figure is the baseline.
    """
    params: dict[str, int] = {}
    for knob in KNOBS:
        for name, value in knob.read(spec_fields[knob.field]).items():
            low, high = knob.bounds[name]
            params[name] = min(max(value, low), high)
    return params
