"""Application-level peer scoring, bans and rate limits: pure logic, the clock passed in as `now`.

A peer collects misbehaviour points for what it sends (bitcoind's "ban score"). Points decay
exponentially, so an honest peer that once relayed a bad block recovers; a peer that crosses
`threshold` is disconnected and banned for `ban_seconds`. Bans live in a JSON file in the data
dir, written atomically, so a restart does not forgive a hostile peer. Each penalty and ban is
also told to a `PolicyObserver` (neurod counts them in its metrics: p2p never imports neurod).

GossipSub's own peer scoring is left off (its thresholds default to -infinity and its invalid-
message penalty grows without bound); everything about blame is decided here.
"""

from __future__ import annotations

import enum
import json
import logging
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from chain.errors import RejectKind
from chain.files import write_atomic
from p2p.errors import ConfigError
from p2p.files import describe

log = logging.getLogger("neuro.p2p")


class Offence(enum.Enum):
    """Misbehaviour the peer layer itself observes, beyond a chain `RejectKind`."""

    OVERSIZE = "oversize"  # a message or frame over its cap
    RATE_LIMIT = "rate-limit"  # more messages or requests than its token bucket allows
    BAD_REQUEST = "bad-request"  # a sync request that breaks the wire schema
    BAD_RESPONSE = "bad-response"  # a sync response that breaks the schema or our request
    TIMEOUT = "timeout"  # no answer to a sync request in time
    FALSE_WORK = "false-work"  # claimed more work than it could serve
    STALLING = "stalling"  # held up sync: a block batch not served within the stall timeout
    BAD_ARTIFACT = "bad-artifact"  # artifact bytes that fail their hash (manifest, piece, file)


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
    Offence.STALLING: 35.0,  # three stalls within a half-life: banned, disconnected
    Offence.BAD_ARTIFACT: 60.0,
}
DEFAULT_THRESHOLD = 100.0
DEFAULT_HALF_LIFE = 600.0  # seconds for misbehaviour points to halve
MANUAL_BAN = "manual"  # the reason of a ban asked for through `P2P.ban`, not earned by points
BAD_FILE_SUFFIX = ".bad"  # a ban file that is not a ban list is set aside under this suffix


class PolicyObserver(Protocol):
    """Told of each penalty and ban as the peer policy decides it.

    `reason` is a kebab-case offence: a `RejectKind` or `Offence` value for a penalty and for the
    ban it triggered, `MANUAL_BAN` for a ban asked for. It is a small fixed set, so it can label
    a metric. Called on the event loop: it must return at once and must not raise."""

    def peer_penalised(self, reason: str) -> None: ...

    def peer_banned(self, reason: str) -> None: ...


class Unobserved:
    """The observer of a peer policy that nobody watches (tests, tools)."""

    def peer_penalised(self, reason: str) -> None:
        pass

    def peer_banned(self, reason: str) -> None:
        pass


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
        """Read the ban file if present; expired bans are dropped.

        A file that is not a ban list (garbage, the wrong shape) is set aside as `<name>.bad`
        with a one-line warning, and the node starts with no bans, as bitcoind does with a bad
        banlist.json: bans are a cache of past verdicts, not worth refusing to start over, and
        the set-aside file keeps them for a look. A file that cannot be read at all (permissions,
        a directory) is `ConfigError("bad-ban-file")`: that is the operator's to fix."""
        if self._path is None:
            return
        try:
            raw = self._path.read_bytes()
        except FileNotFoundError:
            return
        except OSError as exc:
            raise ConfigError("bad-ban-file", f"{self._path}: cannot be read ({describe(exc)})") from None
        try:
            entries = _decode_bans(raw)
        except (ValueError, TypeError, RecursionError) as exc:
            self._set_aside(self._path, " ".join(str(exc).split()) or type(exc).__name__)
            return
        self._until = {peer: until for peer, until in entries.items() if until > now}

    def _set_aside(self, path: Path, why: str) -> None:
        bad = path.with_name(path.name + BAD_FILE_SUFFIX)
        try:
            os.replace(path, bad)
        except OSError as exc:
            raise ConfigError(
                "bad-ban-file", f"{path}: not a ban list ({why}), and cannot be set aside ({describe(exc)})"
            ) from None
        log.warning("%s is not a ban list (%s): set aside as %s; starting with no bans", path, why, bad.name)
        self.save()

    def save(self) -> None:
        """Write atomically: a crash leaves the old or the new list."""
        if self._path is None:
            return
        body = json.dumps({"bans": self._until}, indent=1, sort_keys=True)
        write_atomic(self._path, body.encode(), overwrite=True)

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


def _decode_bans(raw: bytes) -> dict[str, float]:
    """`{"bans": {peer id: expiry as a Unix time}}`; ValueError or TypeError saying what is not."""
    doc = json.loads(raw)
    bans = doc.get("bans") if isinstance(doc, dict) else None
    if not isinstance(bans, dict):
        raise TypeError('not a JSON object with a "bans" object')
    for peer, until in bans.items():
        if isinstance(until, bool) or not isinstance(until, int | float):
            raise TypeError(f"the expiry of {peer[:64]!r} is not a number")
    return {peer: float(until) for peer, until in bans.items()}


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
