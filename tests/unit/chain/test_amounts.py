"""NTK amounts: exact parsing and formatting, and a clear refusal of anything else."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chain.amounts import AmountError, format_ntk, parse_ntk
from chain.errors import RejectKind
from chain.params import MAX_SUPPLY_UNITS


@pytest.mark.parametrize(
    ("text", "units"),
    [
        ("0", 0),
        ("1", 10**9),
        (3, 3 * 10**9),
        ("12.5", 12_500_000_000),
        ("0.000000001", 1),
        ("1.000000000", 10**9),  # trailing zeros are not extra decimals
        ("1.0000000000000", 10**9),
        ("1_000.25", 1_000_250_000_000),
        (" 7 ", 7 * 10**9),
        ("9223372036.854775807", MAX_SUPPLY_UNITS),
    ],
)
def test_parse_exact(text: str | int, units: int) -> None:
    assert parse_ntk(text) == units


@pytest.mark.parametrize(
    ("text", "why"),
    [
        (1.5, "not an amount"),
        (True, "not an amount"),
        (None, "not an amount"),
        ("1e3", "plain decimal"),
        ("1E-9", "plain decimal"),
        ("nan", "plain decimal"),
        ("inf", "plain decimal"),
        ("Infinity", "plain decimal"),
        ("0x10", "plain decimal"),
        ("+5", "plain decimal"),
        (".5", "plain decimal"),
        ("5.", "plain decimal"),
        ("1.2.3", "plain decimal"),
        ("", "plain decimal"),
        ("1__0", "plain decimal"),
        ("١٢", "plain decimal"),  # Arabic-Indic digits: int() would take them
        ("9" * 5000, "plain decimal"),
        ("0.0000000001", "more than 9 decimals"),
        ("1.0000000000000000000000000001", "more than 9 decimals"),  # beyond Decimal's 28 digits
        ("-1", "negative"),
        (-1, "negative"),
        ("9223372036.854775808", "maximum supply"),
    ],
)
def test_parse_rejects(text: object, why: str) -> None:
    with pytest.raises(AmountError, match=why) as info:
        parse_ntk(text)  # type: ignore[arg-type]
    assert info.value.reason == "bad-amount"
    assert info.value.kind is RejectKind.MALFORMED


@pytest.mark.parametrize(
    ("units", "text"),
    [(0, "0"), (1, "0.000000001"), (10**9, "1"), (12_500_000_000, "12.5"), (-1_500_000_000, "-1.5")],
)
def test_format_exact(units: int, text: str) -> None:
    assert format_ntk(units) == text


@given(st.integers(0, MAX_SUPPLY_UNITS))
def test_format_then_parse_round_trips(units: int) -> None:
    text = format_ntk(units)
    assert "e" not in text.lower()
    assert parse_ntk(text) == units
