"""NTK amounts as exact decimals: 1 NTK = 10^9 base units; never a float, nor a Decimal (whose
28-digit context would round "1.0000000000000000000000000001" to a whole number of units)."""

from __future__ import annotations

import re

from chain.errors import ChainError, RejectKind
from chain.params import MAX_SUPPLY_UNITS, UNITS_PER_NTK

DECIMALS = 9
# Plain decimal notation only: no sign, exponent, "nan"/"inf" or bare dot (Decimal takes them all);
# "_" may group digits as in Python literals.
_MAX_CHARS = 64  # the maximum supply needs 20; bounds int()'s work on hostile input
_AMOUNT = re.compile(r"[0-9]+(_[0-9]+)*(\.[0-9]+(_[0-9]+)*)?")


class AmountError(ChainError):
    reason = "bad-amount"
    kind = RejectKind.MALFORMED


def parse_ntk(text: str | int) -> int:
    """Base units in an NTK amount such as "12.5" or 3; more than 9 decimals is an error."""
    if isinstance(text, bool) or not isinstance(text, (str, int)):
        raise AmountError("bad-amount", f"not an amount: {text!r}")
    clean = str(text).strip()
    if clean.startswith("-"):
        raise AmountError("bad-amount", f"{text!r} is negative")
    if len(clean) > _MAX_CHARS or not _AMOUNT.fullmatch(clean):
        raise AmountError("bad-amount", f"not a plain decimal amount: {text!r}")
    whole, _, frac = clean.replace("_", "").partition(".")
    frac = frac.rstrip("0")
    if len(frac) > DECIMALS:
        raise AmountError("bad-amount", f"{text!r} has more than {DECIMALS} decimals")
    units = int(whole) * UNITS_PER_NTK + int(frac.ljust(DECIMALS, "0"))
    if units > MAX_SUPPLY_UNITS:
        raise AmountError("bad-amount", f"{text!r} exceeds the maximum supply")
    return units


def format_ntk(units: int) -> str:
    """"12.5" for 12_500_000_000 units: no trailing zeros, no exponent."""
    whole, frac = divmod(abs(units), UNITS_PER_NTK)
    sign = "-" if units < 0 else ""
    if not frac:
        return f"{sign}{whole}"
    return f"{sign}{whole}.{frac:0{DECIMALS}d}".rstrip("0")
