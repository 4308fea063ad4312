"""Application-level peer scoring, bans and rate limits: pure logic, the clock passed in as `now`.

A peer collects misbehaviour points for what it sends (bitcoind's "ban score"). Points decay
exponentially, so an honest peer that once relayed a bad block recovers; a peer that crosses
`threshold` is disconnected and banned for `ban_seconds`. Bans live in a JSON file in the data
dir, written atomically, so a restart does not forgive a hostile peer.

GossipSub's own peer scoring is left off (its thresholds default to -infinity and its invalid-
message penalty grows without bound); everything about blame is decided here.
"""

from __future__ import annotations

import enum
import json
import math
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from chain.errors import RejectKind
from p2p.errors import ConfigError


class Offence(enum.Enum):
    """Misbehaviour the peer layer itself observes, beyond a chain `RejectKind`."""

    OVERSIZE = "oversize"  # a message or frame over its cap
    RATE_LIMIT = "rate-limit"  # more messages or requests than its token bucket allows
    BAD_REQUEST = "bad-request"  # a sync request that breaks the wire schema
    BAD_RESPONSE = "bad-response"  # a sync response that breaks the schema or our request
    TIMEOUT = "timeout"  # no answer to a sync request in time
    FALSE_WORK = "false-work"  # claimed more work than it could serve


# Points per offence. 100 crosses the default threshold: one provably invalid or undecodable
# payload costs 60, so a second one within a few minutes bans the peer that keeps sending them,
# while an honest peer that once relayed a bad block recovers.
KIND_PENALTY: dict[RejectKind, float] = {
    RejectKind.MALFORMED: 60.0,
    RejectKind.INVALID: 60.0,
    RejectKind.STALE: 0.0,
    RejectKind.MISSING: 0.0,
    RejectKind.LOCAL: 0.0,
}
OFFENCE_PENALTY: dict[Offence, float] = {
    Offence.OVERSIZE: 60.0,
    Offence.RATE_LIMIT: 10.0,
    Offence.BAD_REQUEST: 25.0,
    Offence.BAD_RESPONSE: 60.0,
    Offence.TIMEOUT: 10.0,
    Offence.FALSE_WORK: 25.0,
}
DEFAULT_THRESHOLD = 100.0
DEFAULT_HALF_LIFE = 600.0  # seconds for misbehaviour points to halve


def penalty(cause: RejectKind | Offence) -> float:
    """Points a peer earns for one occurrence of `cause`."""
    if isinstance(cause, RejectKind):
        return KIND_PENALTY[cause]
    return OFFENCE_PENALTY[cause]


@dataclass(slots=True)
class _Points:
    value: float
    at: float


@dataclass(slots=True)
class PeerScores:
    """Decaying misbehaviour points per peer id; `add` says when a peer crosses the threshold."""

    threshold: float = DEFAULT_THRESHOLD
    half_life: float = DEFAULT_HALF_LIFE
    _points: dict[str, _Points] = field(default_factory=dict)

    def points(self, peer: str, now: float) -> float:
        """Current misbehaviour points of `peer` (0 for a peer never penalised)."""
        entry = self._points.get(peer)
        if entry is None:
            return 0.0
        elapsed = max(0.0, now - entry.at)
        return entry.value * math.pow(0.5, elapsed / self.half_life)

    def score(self, peer: str, now: float) -> float:
        """Reported score: 0 is clean, more negative is worse, -threshold means banned."""
        return -self.points(peer, now)

    def add(self, peer: str, amount: float, now: float) -> bool:
        """Add points; True when the peer is now at or past the ban threshold."""
        if amount <= 0:
            return False
        value = self.points(peer, now) + amount
        self._points[peer] = _Points(value, now)
        return value >= self.threshold

    def forget(self, peer: str) -> None:
        self._points.pop(peer, None)

    def prune(self, now: float, floor: float = 0.5) -> None:
        """Drop peers whose points decayed below `floor`, so the table does not grow forever."""
        for peer in [p for p in self._points if self.points(p, now) < floor]:
            del self._points[peer]


class BanList:
    """Banned peer ids with their expiry time (wall clock), persisted as JSON in the data dir."""

    def __init__(self, path: Path | None) -> None:
        self._path = path
        self._until: dict[str, float] = {}

    def load(self, now: float) -> None:
        """Read the ban file if present; expired bans are dropped. A corrupt file is an error."""
        if self._path is None or not self._path.exists():
            return
        try:
            raw = json.loads(self._path.read_text())
            entries = {str(k): float(v) for k, v in dict(raw["bans"]).items()}
        except (ValueError, KeyError, TypeError) as exc:
            raise ConfigError("bad-ban-file", f"{self._path}: {exc}") from exc
        self._until = {peer: until for peer, until in entries.items() if until > now}

    def save(self) -> None:
        """Write atomically (temp file, fsync, rename): a crash leaves the old or the new list."""
        if self._path is None:
            return
        self._path.parent.mkdir(parents=True, exist_ok=True)
        body = json.dumps({"bans": self._until}, indent=1, sort_keys=True)
        fd, tmp = tempfile.mkstemp(dir=self._path.parent, prefix=".bans.", suffix=".tmp")
        try:
            with os.fdopen(fd, "w") as handle:
                handle.write(body)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, self._path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def ban(self, peer: str, until: float) -> None:
        """Ban `peer` until `until` (a later expiry wins) and persist."""
        self._until[peer] = max(until, self._until.get(peer, 0.0))
        self.save()

    def unban(self, peer: str) -> None:
        if self._until.pop(peer, None) is not None:
            self.save()

    def is_banned(self, peer: str, now: float) -> bool:
        until = self._until.get(peer)
        return until is not None and until > now

    def banned(self, now: float) -> dict[str, float]:
        """Peers banned at `now` with their expiry."""
        return {peer: until for peer, until in self._until.items() if until > now}


@dataclass(slots=True)
class TokenBucket:
    """Classic token bucket: `rate` tokens per second, at most `burst` stored."""

    rate: float
    burst: float
    tokens: float = -1.0
    at: float = 0.0

    def take(self, now: float, cost: float = 1.0) -> bool:
        """Spend `cost` tokens if available; False means the caller is over its rate."""
        if self.tokens < 0:
            self.tokens, self.at = self.burst, now
        self.tokens = min(self.burst, self.tokens + max(0.0, now - self.at) * self.rate)
        self.at = now
        if self.tokens < cost:
            return False
        self.tokens -= cost
        return True


@dataclass(frozen=True, slots=True)
class Rate:
    """A per-peer allowance: sustained `per_second`, with bursts up to `burst`."""

    per_second: float
    burst: float


class RateLimiter:
    """One token bucket per (peer, kind of message); kinds are free-form names like "blocks"."""

    def __init__(self, rates: dict[str, Rate]) -> None:
        self._rates = rates
        self._buckets: dict[tuple[str, str], TokenBucket] = {}

    def allow(self, peer: str, kind: str, now: float, cost: float = 1.0) -> bool:
        rate = self._rates[kind]
        bucket = self._buckets.get((peer, kind))
        if bucket is None:
            bucket = self._buckets[(peer, kind)] = TokenBucket(rate.per_second, rate.burst)
        return bucket.take(now, cost)

    def forget(self, peer: str) -> None:
        for key in [k for k in self._buckets if k[0] == peer]:
            del self._buckets[key]
