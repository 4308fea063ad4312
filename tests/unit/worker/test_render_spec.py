"""Specs: canonical form and hash, and bad specs refused with a one-line reason."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from worker.errors import SpecError
from worker.render.dataset import load_render_spec
from worker.render.digits import DigitsSpec
from worker.render.shelf_spec import ShelfSpec
from worker.spec import canonical_json, load_spec, spec_hash


def test_canonical_json_is_sorted_compact_and_order_independent() -> None:
    spec = ShelfSpec(width=128, count=10)
    text = canonical_json(spec)
    assert b" " not in text and b"\n" not in text
    reordered = dict(reversed(list(json.loads(text).items())))
    assert canonical_json(load_spec(reordered, ShelfSpec)) == text
    assert spec_hash(spec) == spec.spec_hash() and len(spec.spec_hash()) == 32
    assert ShelfSpec(width=129, count=10).spec_hash() != spec.spec_hash()


def test_spec_loads_from_file_and_dict_alike(tmp_path: Path) -> None:
    path = tmp_path / "spec.json"
    path.write_text(json.dumps({"kind": "digits", "count": 50, "rotation_deg": [-5, 5]}))
    from_file = load_render_spec(path)
    assert isinstance(from_file, DigitsSpec)
    assert from_file.rotation_deg == (-5, 5)
    assert from_file == load_render_spec(json.loads(path.read_text()))


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"colour": 3}, "colour: unknown field"),
        ({"catalog": {"skus": 0}}, "catalog.skus: must be >= 1"),
        ({"width": 100_000}, "width: must be <= 2048"),
        ({"count": 10**9}, "count: must be <= 1000000"),
        ({"catalog": {"skus": 50_000}}, "catalog.skus: must be <= 1000"),
        ({"height": "tall"}, "height: must be an integer"),
        ({"placement": {"scale_pct": [90, 50]}}, "placement.scale_pct: min 90 is above max 50"),
        (
            {"photometric": {"blur_radius": [1, 99]}},
            "photometric.blur_radius: ends must lie in [1, 8], got [1, 99]",
        ),
        ({"catalog": {"shapes": ["box", "barrel"]}}, "catalog.shapes.1: must be"),
        ({"renderer_version": 2}, "renderer_version: must be 1"),
        ({"renderer_version": True}, "renderer_version: must be an integer, got true"),
        ({"count": "20"}, 'count: must be an integer, got "20"'),
        ({"count": True}, "count: must be an integer, got true"),
        ({"count": 20.0}, "count: must be an integer, got 20.0"),
        ({"placement": {"gap_px": [0, "3"]}}, 'placement.gap_px.1: must be an integer, got "3"'),
        ({"background": {"colour": 1}}, "background.colour: unknown field"),
    ],
)
def test_bad_shelf_spec_is_refused_with_the_field_named(
    data: dict[str, object], message: str
) -> None:
    with pytest.raises(SpecError) as info:
        load_spec(data, ShelfSpec)
    assert info.value.reason == "bad-spec"
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_bad_digits_and_kind_and_file_are_refused(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="class_weights: weights must lie"):
        load_spec({"class_weights": [0] * 10}, DigitsSpec)
    with pytest.raises(SpecError, match="class_weights: needs at least 10"):
        load_spec({"class_weights": [1, 2]}, DigitsSpec)
    with pytest.raises(SpecError, match="kind: must be one of"):
        load_render_spec({"kind": "video"})
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    with pytest.raises(SpecError, match="not valid JSON"):
        load_render_spec(broken)
    with pytest.raises(SpecError) as info:
        load_render_spec(tmp_path / "missing.json")
    assert info.value.reason == "spec-unreadable"


def test_digits_spec_takes_no_coerced_values() -> None:
    for field, value in [("count", "20"), ("count", True), ("size", 28.0), ("blur_pct", False),
                         ("styles", "round"), ("class_weights", [1] * 9 + [True])]:
        with pytest.raises(SpecError) as info:
            load_spec({field: value}, DigitsSpec)
        assert str(info.value).startswith(field)
    lists_are_tuples = load_spec({"rotation_deg": [-5, 5], "styles": ["round"]}, DigitsSpec)
    assert lists_are_tuples.rotation_deg == (-5, 5) and lists_are_tuples.styles == ("round",)


def test_many_errors_are_summarised_on_one_line() -> None:
    with pytest.raises(SpecError) as info:
        load_spec({"a": 1, "b": 2, "c": 3, "d": 4, "e": 5}, ShelfSpec)
    assert "(and 2 more)" in str(info.value)
