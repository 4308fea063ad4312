"""ASERT against the published aserti3-2d reference vectors (tests/data/asert, runs 1-12, 14,000 rows).

The devnet's genesis bits equal its PoW limit, so on the devnet the clamp hides most of the
arithmetic: a floor division in place of C's truncating one, or a different rounding constant in
the cubic approximation, still mines and imports every test chain. The reference vectors pin the
arithmetic itself, bit for bit, on anchors far from the limit, at negative exponents and at
heights and times past 32 and 64 bits.

The reference anchors the exponent at the anchor block's *parent* time; this project anchors at
the anchor block's own time (genesis has no parent). With 600 s spacing the two differ by one
spacing, which the call below adds back: ``time - (anchor_parent_time + 600)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from chain.pow import asert_bits

VECTORS = Path(__file__).resolve().parents[2] / "data" / "asert"
SPACING = 600
HALF_LIFE = 172_800
POW_LIMIT = 0x1D00FFFF
RUNS = [f"run{n:02d}" for n in range(1, 13)]
ROWS_PER_RUN = {
    "run01": 10, "run02": 10, "run03": 10, "run04": 225, "run05": 225, "run06": 1000,
    "run07": 1000, "run08": 500, "run09": 10, "run10": 10, "run11": 1000, "run12": 10000,
}


@dataclass(frozen=True)
class Run:
    anchor_height: int
    anchor_parent_time: int
    anchor_bits: int
    rows: list[tuple[int, int, int]]  # (height, time, expected bits) of each block after the anchor


def read_run(name: str) -> Run:
    """One vector file: ``## key: value`` header lines, then ``iteration height time target`` rows."""
    header: dict[str, str] = {}
    rows = []
    for line in (VECTORS / name).read_text().splitlines():
        if line.startswith("##") and ":" in line:
            key, value = line[2:].split(":", 1)
            header[key.strip()] = value.strip()
        elif line and not line.startswith("#"):
            _, height, time, target = line.split()
            rows.append((int(height), int(time), int(target, 16)))
    # early runs call it the anchor's "ancestor time", later ones its "parent time": the same field
    parent_time = header.get("anchor parent time", header.get("anchor ancestor time"))
    assert parent_time is not None, f"{name}: no anchor parent time"
    return Run(int(header["anchor height"]), int(parent_time), int(header["anchor nBits"], 16), rows)


@pytest.mark.parametrize("name", RUNS)
def test_every_reference_row_gives_the_published_bits(name: str) -> None:
    run = read_run(name)
    assert len(run.rows) == ROWS_PER_RUN[name]  # a truncated data file must not pass quietly
    anchor_time = run.anchor_parent_time + SPACING
    wrong = [
        (height, time, hex(expected), hex(got))
        for height, time, expected in run.rows
        if (
            got := asert_bits(
                run.anchor_bits,
                time - anchor_time,
                height - run.anchor_height,
                spacing=SPACING,
                half_life=HALF_LIFE,
                pow_limit_bits=POW_LIMIT,
            )
        )
        != expected
    ]
    assert not wrong, f"{len(wrong)} of {len(run.rows)} rows differ, first: {wrong[:3]}"

