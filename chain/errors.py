"""The one error base of `chain`, and the rejection vocabulary the peer layer turns into penalties.

A rejection carries a short kebab-case ``reason`` (as bitcoind's "high-hash", "bad-txnmrklroot"),
a ``kind`` that says how bad it is for the peer that sent it, and optional expected/got details.
"""

from __future__ import annotations

import enum
from typing import Any

SHOWN_CHARS = 80  # of a caller's value echoed in an error: a 10 MB string is not repeated back


def shown(value: Any, limit: int = SHOWN_CHARS) -> str:
    """``value``'s repr for an error message, cut to ``limit`` characters with its full length."""
    text = repr(value)
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} characters)"


class RejectKind(enum.Enum):
    """How the peer layer should treat the sender of rejected data."""

    MALFORMED = "malformed"  # cannot be decoded: the sender is broken or hostile
    INVALID = "invalid"  # decodes but breaks a consensus rule: provably bad
    STALE = "stale"  # valid once, useless now (old nonce, known block): ignore, no penalty
    MISSING = "missing"  # depends on data we do not have yet (unknown parent): no penalty
    LOCAL = "local"  # our own limits (mempool full): no penalty


class ChainError(Exception):
    """Base of every error raised by `chain`."""

    reason: str = "chain-error"
    kind: RejectKind = RejectKind.INVALID

    def __init__(
        self,
        reason: str | None = None,
        detail: str = "",
        *,
        kind: RejectKind | None = None,
        expected: Any = None,
        got: Any = None,
    ) -> None:
        if reason is not None:
            self.reason = reason
        if kind is not None:
            self.kind = kind
        self.detail = detail
        self.expected = expected
        self.got = got
        super().__init__(self.describe())

    def describe(self) -> str:
        text = self.reason
        if self.detail:
            text += f": {self.detail}"
        shown_parts = [f"{name} {value!r}" for name, value in (("expected", self.expected), ("got", self.got))
                       if value is not None]
        if shown_parts:  # only what is known: "expected None" would read as a requirement
            text += f" ({', '.join(shown_parts)})"
        return text


class DecodeError(ChainError):
    """Bytes that are not the canonical encoding of the expected type."""

    reason = "bad-encoding"
    kind = RejectKind.MALFORMED


class InvalidTransaction(ChainError):
    reason = "bad-tx"


class InvalidBlock(ChainError):
    reason = "bad-block"


class GenesisError(ChainError):
    reason = "bad-genesis"


class StoreError(ChainError):
    reason = "store-error"
    kind = RejectKind.LOCAL
