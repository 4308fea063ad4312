"""A worker's adaptive price floor for one service: no-regret learning over price levels.

Strategy, not consensus: each worker may run its own; this one aims at the tokens the worker
earns over time, within the operator's bounds, which always hold.

The choice. A floor is a price level on a geometric grid between the operator's bounds (steps of
``STEP``, so every level is within a few percent of any price in the range). Each job a worker
bid on ends in an award it sees on chain, and the bids it was up against are on the bids topic,
so it knows, for *every* level, what that level would have earned on that job (full
information): at level ``L`` it would have bid ``L`` and won ``min(capacity, shards - rival shards
priced at or under L)`` shards, each earning ``(L - cost) * units``, and nothing above the job's
max price. Idle time is in that term: a level that loses leaves the machine idle and earns 0 for
the job, however high its margin; a level that wins a lot earns the volume. With only the
clearing price (`AwardSeen.from_clearing`), a level at or under it wins the worker's capacity.

The learner is Hedge with AdaHedge's step size (de Rooij, van Erven, Grunwald, Koolen, "Follow
the Leader If You Can, Hedge If You Must", JMLR 2014): weights ``exp(-eta * cumulative loss)``
with ``eta = ln(levels) / (mixability gaps so far)``. Why this one:
- its regret against the best fixed level in hindsight is O(sqrt(L* ln K)) without knowing the
  scale of earnings (jobs differ by orders of magnitude in units) or the number of jobs ahead;
- when one level is plainly best it behaves like follow-the-leader, whose regret then stays
  bounded, which is the usual case in a market that is not moving;
- the losses are discounted (a memory of ``MEMORY`` awards that told it something), so after
  demand moves (a surge, a new cheap competitor) the weights follow in about that many awards
  instead of needing as many as they had seen before; `bench/market_sim.py` measures what this costs against the best fixed
  floor in hindsight and what it gains after a shift.
The floor played is the leader, the level of greatest weight (lowest discounted loss; the lowest
such level on a tie, so a fresh floor starts at the operator's minimum). Hedge's bound is for a
draw from the weights, and `floor_at` gives such a draw for an agent that wants it; the leader
is the default because it earned more in `bench/market_sim.py` (10th percentile of workers'
earnings over the best fixed floor, seeds 7-11: 0.88-1.01 playing the leader, 0.78-0.94 drawing):
between demand shifts the best level stays put, and a draw keeps paying for levels that are
merely plausible. What the leader gives up is the guarantee against a market that alternates
the best level to exploit it, which would cost that market as much as it costs the worker.

Pure: every input is an argument, nothing reads a clock; `observe` returns a new state, and
`to_json` / `from_json` persist it.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass, replace
from functools import lru_cache
from itertools import accumulate
from typing import Any

STEP = 1.04  # ratio of neighbouring levels: the floor is within 4% of any price in the bounds
MAX_LEVELS = 256  # wider bounds get coarser steps: the update costs O(levels)
MEMORY = 50  # informative awards: losses this old weigh 1/e (0 keeps everything)
JSON_VERSION = 1


@dataclass(frozen=True, slots=True)
class AwardSeen:
    """One job's award as a worker saw it, and what its machine could have taken of it."""

    height: int  # the award's block: the levels' virtual machines work off their backlog until then
    max_price: int  # the job's max unit price: a level above it could not have bid
    shards: int  # shards the award gave out
    units: int  # compute units of one shard (the mean, where the job's shards differ by an item)
    rivals: tuple[tuple[int, int], ...]  # (unit price, shards it could take) of every other bid
    max_shards: int  # the most shards this worker offers in one bid (slots, operator's cap)
    shard_blocks: float  # blocks of this worker's machine one shard takes (units / its speed)
    deadline: int  # blocks from the award to the job's deadline

    @classmethod
    def from_clearing(cls, clearing_price: int, **machine: Any) -> AwardSeen:
        """When only the award is known: a level at or under its highest price would have won,
        a level above it nothing (a rival just above the clearing price takes every shard).
        ``machine`` holds every other field but ``rivals``."""
        return cls(rivals=((clearing_price + 1, machine["shards"]),), **machine)

    def capacity(self, backlog: float) -> int:
        """Shards a machine with ``backlog`` blocks of work still to do finishes by the deadline."""
        if self.shard_blocks <= 0:
            return self.max_shards
        return max(0, min(self.max_shards, math.floor((self.deadline - backlog) / self.shard_blocks)))


@lru_cache(maxsize=1024)
def price_levels(min_floor: int, max_floor: int, step: float = STEP) -> tuple[int, ...]:
    """The grid: integers from ``min_floor`` to ``max_floor`` (both included), ``step`` apart
    in ratio (coarser when that would pass `MAX_LEVELS`), at least 1 apart."""
    if min_floor == max_floor:
        return (min_floor,)
    low = max(min_floor, 1)
    count = math.ceil(math.log(max_floor / low) / math.log(step)) + 1
    count = min(count, MAX_LEVELS)
    ratio = (max_floor / low) ** (1 / (count - 1))
    levels = {min_floor, max_floor} | {min(max_floor, round(low * ratio**i)) for i in range(count)}
    return tuple(sorted(levels))


def shards_won(levels: Sequence[int], capacities: Sequence[int], seen: AwardSeen) -> list[int]:
    """Shards a bid at each level, for that level's capacity, would have won, the rivals' bids
    unchanged: what the rivals priced at or under it leave, if the bids cover the job at all.

    Rivals at the level's own price count as ahead of it (ties are broken by worker id, which
    a worker cannot turn to its favour, so it assumes the worst)."""
    rivals = sorted((p, max(c, 0)) for p, c in seen.rivals)
    prices = [p for p, _ in rivals]
    ahead = [0, *accumulate(c for _, c in rivals)]
    supply = ahead[bisect_right(prices, seen.max_price)]
    won = []
    for level, capacity in zip(levels, capacities, strict=True):
        if level > seen.max_price or capacity <= 0 or supply + capacity < seen.shards:
            won.append(0)  # cannot bid, busy, or the client buys no pool that leaves a shard out
        else:
            won.append(min(capacity, max(0, seen.shards - ahead[bisect_right(prices, level)])))
    return won


@dataclass(frozen=True, slots=True)
class AdaptiveFloor:
    """The learner's state for one service. ``AdaptiveFloor(min_floor, max_floor)`` starts with
    every level equally likely and every level's virtual machine idle."""

    min_floor: int  # the operator's bounds, base units per quote unit: the floor stays in them
    max_floor: int
    cost: int | None = None  # the worker's own cost per quote unit; None: the operator's min floor
    step: float = STEP
    memory: int = MEMORY
    losses: tuple[float, ...] = ()  # discounted cumulative loss per level (empty: all zero)
    gap: float = 0.0  # AdaHedge's discounted cumulative mixability gap
    rounds: int = 0  # awards observed
    backlog: tuple[float, ...] = ()  # per level: blocks of work its virtual machine has left
    height: int = 0  # block of the last award observed

    def __post_init__(self) -> None:
        if not 0 <= self.min_floor <= self.max_floor:
            raise ValueError(f"floor bounds must satisfy 0 <= min <= max, got {self.min_floor}, {self.max_floor}")
        count = len(self.levels)
        if (self.losses and len(self.losses) != count) or (self.backlog and len(self.backlog) != count):
            raise ValueError(f"losses and backlogs must have one entry for each of the {count} levels")
        if self.step <= 1 or self.memory < 0 or self.gap < 0 or self.rounds < 0:
            raise ValueError("step must exceed 1; memory, gap and rounds are at least 0")

    @property
    def levels(self) -> tuple[int, ...]:
        return price_levels(self.min_floor, self.max_floor, self.step)

    @property
    def reservation(self) -> int:
        return self.min_floor if self.cost is None else self.cost

    def weights(self) -> list[float]:
        """Each level's probability: exp(-eta * loss), normalised; eta infinite (follow the
        leader) until the levels' losses have disagreed."""
        count = len(self.levels)
        losses = self.losses or (0.0,) * count
        best = min(losses)
        if self.gap <= 0:
            raw = [1.0 if x == best else 0.0 for x in losses]
        else:
            eta = math.log(count) / self.gap if count > 1 else 0.0
            raw = [math.exp(-eta * (x - best)) for x in losses]
        total = sum(raw)
        return [w / total for w in raw]

    def floor_at(self, draw: float) -> int:
        """The level at quantile ``draw`` (0 <= draw < 1) of the weights."""
        cumulative = 0.0
        weights = self.weights()
        for level, weight in zip(self.levels, weights, strict=True):
            cumulative += weight
            if draw < cumulative:
                return level
        return self.levels[max(i for i, w in enumerate(weights) if w > 0)]

    @property
    def floor(self) -> int:
        """The floor to bid at now: the leader (see the module docstring)."""
        losses = self.losses or (0.0,) * len(self.levels)
        return self.levels[losses.index(min(losses))]

    def mean_floor(self) -> float:
        """The weights' mean level, for display (the floor played is the leader, see the module)."""
        return sum(w * level for w, level in zip(self.weights(), self.levels, strict=True))

    def observe(self, seen: AwardSeen) -> AdaptiveFloor:
        """The state after one award: each level's virtual machine bids at that level, and what
        it earns moves the level's weight."""
        levels = self.levels
        drain = max(0, seen.height - self.height)
        backlog = [max(0.0, b - drain) for b in (self.backlog or (0.0,) * len(levels))]
        won = shards_won(levels, [seen.capacity(b) for b in backlog], seen)
        cost = self.reservation
        earned = [float((level - cost) * k * seen.units) for level, k in zip(levels, won, strict=True)]
        busy = tuple(b + k * seen.shard_blocks for b, k in zip(backlog, won, strict=True))
        return replace(self.update(earned), backlog=busy, height=max(self.height, seen.height))

    def update(self, earnings: Sequence[float]) -> AdaptiveFloor:
        """The AdaHedge step for one round of per-level ``earnings``."""
        levels = self.levels
        if len(earnings) != len(levels):
            raise ValueError(f"{len(earnings)} earnings for {len(levels)} levels")
        top = max(earnings)
        loss = [top - e for e in earnings]
        if top == min(earnings):  # every level earned the same: nothing to learn
            return replace(self, rounds=self.rounds + 1)
        weights = self.weights()
        mixed = sum(w * x for w, x in zip(weights, loss, strict=True))
        if self.gap <= 0:  # follow the leader: the mix loss is the leaders' best
            mix = min(x for w, x in zip(weights, loss, strict=True) if w > 0)
        else:
            eta = math.log(len(levels)) / self.gap
            support = [(w, x) for w, x in zip(weights, loss, strict=True) if w > 0]
            low = min(x for _, x in support)
            mix = low - math.log(sum(w * math.exp(-eta * (x - low)) for w, x in support)) / eta
        fade = 1.0 - 1.0 / self.memory if self.memory else 1.0
        past = self.losses or (0.0,) * len(levels)
        cumulative = [fade * old + x for old, x in zip(past, loss, strict=True)]
        low = min(cumulative)  # shift so the leader is at 0: keeps the numbers small forever
        return replace(self, losses=tuple(x - low for x in cumulative),
                       gap=fade * self.gap + max(mixed - mix, 0.0), rounds=self.rounds + 1)

    def to_json(self) -> dict[str, Any]:
        return {"version": JSON_VERSION, "min_floor": self.min_floor, "max_floor": self.max_floor,
                "cost": self.cost, "step": self.step, "memory": self.memory,
                "losses": list(self.losses), "gap": self.gap, "rounds": self.rounds,
                "backlog": list(self.backlog), "height": self.height, "floor": self.floor, "mean_floor": round(self.mean_floor(), 3)}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> AdaptiveFloor:
        """The state `to_json` wrote; ValueError if it is not one (its bounds checked again)."""
        try:
            if data["version"] != JSON_VERSION:
                raise ValueError(f"floor state version {data['version']}, expected {JSON_VERSION}")
            cost = data["cost"]
            return cls(int(data["min_floor"]), int(data["max_floor"]), None if cost is None else int(cost),
                       float(data["step"]), int(data["memory"]), tuple(float(x) for x in data["losses"]),
                       float(data["gap"]), int(data["rounds"]), tuple(float(x) for x in data["backlog"]),
                       int(data["height"]))
        except (KeyError, TypeError) as exc:
            raise ValueError(f"not a floor state: {exc!r}") from None

    def with_bounds(self, min_floor: int, max_floor: int) -> AdaptiveFloor:
        """The operator moved its bounds: the same state if unchanged, else a fresh start on the
        new grid (what the old levels earned says little about levels they did not include)."""
        if (min_floor, max_floor) == (self.min_floor, self.max_floor):
            return self
        return AdaptiveFloor(min_floor, max_floor, self.cost, self.step, self.memory)
