"""NTK amounts as exact decimals: 1 NTK = 10^9 base units; never a float."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from chain.errors import ChainError, RejectKind
from chain.params import MAX_SUPPLY_UNITS, UNITS_PER_NTK

DECIMALS = 9


class AmountError(ChainError):
    reason = "bad-amount"
    kind = RejectKind.MALFORMED


def parse_ntk(text: str | int) -> int:
    """Base units in an NTK amount such as "12.5" or 3; more than 9 decimals is an error."""
    if isinstance(text, bool) or not isinstance(text, (str, int)):
        raise AmountError("bad-amount", f"not an amount: {text!r}")
    try:
        value = Decimal(str(text).strip().replace("_", ""))
    except InvalidOperation:
        raise AmountError("bad-amount", f"not a number: {text!r}") from None
    if not value.is_finite() or value < 0:
        raise AmountError("bad-amount", f"{text!r} must be a finite, non-negative number")
    units = value * UNITS_PER_NTK
    if units != units.to_integral_value():
        raise AmountError("bad-amount", f"{text!r} has more than {DECIMALS} decimals")
    if units > MAX_SUPPLY_UNITS:
        raise AmountError("bad-amount", f"{text!r} exceeds the maximum supply")
    return int(units)


def format_ntk(units: int) -> str:
    """"12.5" for 12_500_000_000 units: no trailing zeros, no exponent."""
    whole, frac = divmod(abs(units), UNITS_PER_NTK)
    sign = "-" if units < 0 else ""
    if not frac:
        return f"{sign}{whole}"
    return f"{sign}{whole}.{frac:0{DECIMALS}d}".rstrip("0")
