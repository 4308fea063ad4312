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

The learner is FlipFlop (de Rooij, van Erven, Grunwald, Koolen, "Follow the Leader If You Can,
Hedge If You Must", JMLR 2014, Algorithm 2). It plays in one of two regimes and keeps, for each,
the regret it ran up there (its mixability gap):
- *lead*: the leader, the level that would have earned most (the lowest on a tie, so a fresh
  floor bids the operator's minimum until an award tells the levels apart). Markets are mostly
  stationary between demand shifts, and there the leader's regret stays bounded;
- *hedge*: a draw from AdaHedge's weights ``exp(-eta * cumulative loss)``, ``eta = ln(levels) /
  (the hedge regime's gap)``, whose regret is O(sqrt(L* ln K)) whatever the market does, without
  knowing the scale of earnings (jobs differ by orders of magnitude in units) or how many jobs
  are ahead.
It hedges once leading's regret passes AdaHedge's worst-case bound on the same rounds
(`adahedge_bound`), and leads again once hedging's passes ``ALPHA`` times leading's. The paper
switches when leading's regret passes a multiple of hedging's *so far*; measured against the
bound instead, leading pays nothing for hedging in a market where it works, and where it does
not its regret stops at the bound plus one round, so the total stays within a constant factor of
AdaHedge's worst case as FlipFlop's does (a market that alternates the best level to exploit a
leader is held to that: `tests/unit/neurod/test_price_floor.py` checks it on such markets). In
`bench/market_sim.py` (seeds 12-21) the paper's switch hedged on many awards and cost the workers
about 0.03 of median and of 10th-percentile earnings over the best fixed floor: the leader's
regret there is real, but every worker drawing makes the market noisier for all. Drawing alone
did worse still (seeds 7-11: 10th percentile 0.76-0.87, leading 0.88-1.01).

The losses and both gaps are discounted, a memory of ``MEMORY`` informative awards (ones where the
levels' earnings differed), so after demand moves (a surge, a new cheap competitor) the leader
follows in about that many awards instead of needing as many as it had seen before; the
guarantee then holds over that window, which is what tracking a moving market needs (``memory =
0`` keeps everything: the guarantee over the whole run, the tracking lost). In
`bench/market_sim.py`, seeds 12-21, a memory of 35 against 50 gave a median of 1.175 against
1.168, a 10th percentile of 0.942 against 0.949 and a worst worker of 0.68 against 0.58 (means
over the seeds); 70 and 150 were worse on all three, 0 lost the median (1.01).

The first awards' leader is averaged over its neighbours (`AdaptiveFloor.leader`): the least loss
over triangular weights on ``EARLY_WIDTH`` levels each side, one fewer every ``EARLY_AWARDS``
informative awards, the plain leader from 40 on. Why: a level earns up to the price where a
rival or the job's max price cuts it off and nothing above, so after one or two awards the plain
leader sits on the edge of the one cutoff seen, and the next job's cutoff, a little lower, pays it
nothing; and each level's virtual machine is busy at different times, so early on one lucky level
among equals leads. Workers that learn from few awards (dear ones, paid only in a surge) lose most
of what they lose there. Nothing new is persisted: the width follows from ``informative``. In
`bench/market_sim.py` (seeds 7-11, against the plain leader): workers under 0.95 of the best
fixed floor 51 -> 36 of 505, 10th percentile 0.921-0.994 -> 0.947-0.997, median 1.137-1.237 ->
1.111-1.244 (seed 7 1.193 -> 1.139), the worst worker 0.536-0.824 -> 0.509-0.732. The goal of
0.95 for every worker is not met: see `bench/market_sim.py`'s diagnosis; the best fixed level is
the best of 36 levels' virtual machines, each path-dependent (which jobs find it free), and for
a worker paid in one phase the best of them beats a near-optimal level by about as much as the
shortfall.

The hedge regime's draw comes from a hash of the state: the module stays pure and the floor a
function of its state, and workers hedging on the same awards draw independently (they hold
different losses). An agent that wants a draw of its own passes it to `floor_for`.

Pure: every input is an argument, nothing reads a clock; `observe` returns a new state, and
`to_json` / `from_json` persist it.
"""

from __future__ import annotations

import hashlib
import math
import struct
from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass, replace
from functools import lru_cache
from itertools import accumulate
from typing import Any

STEP = 1.04  # ratio of neighbouring levels: the floor is within 4% of any price in the bounds
MAX_LEVELS = 256  # wider bounds get coarser steps: the update costs O(levels)
MEMORY = 35  # informative awards: losses this old weigh 1/e (0 keeps everything)
EARLY_WIDTH = 4  # levels each side the first awards' leader is averaged over: +-17% of price on the 4% grid
EARLY_AWARDS = 10  # informative awards per level the averaging narrows by: exact leader from 40 on
ALPHA = 1.243  # FlipFlop's (the paper's choice): lead again once hedging's regret passes ALPHA x leading's
JSON_VERSION = 2


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
        fits = (self.deadline - backlog) / self.shard_blocks  # inf for a vanishing shard: the cap
        return self.max_shards if fits >= self.max_shards else 0 if fits < 1 else math.floor(fits)


@lru_cache(maxsize=1024)
def price_levels(min_floor: int, max_floor: int, step: float = STEP) -> tuple[int, ...]:
    """The grid: integers from ``min_floor`` to ``max_floor`` (both included), ``step`` apart
    in ratio (coarser when that would pass `MAX_LEVELS`), at least 1 apart."""
    if min_floor == max_floor:
        return (min_floor,)
    low = max(min_floor, 1)
    count = math.ceil(math.log(max_floor / low) / math.log(step)) + 1
    count = max(2, min(count, MAX_LEVELS))  # 2: bounds of 0 and 1 are two levels
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


def adahedge_bound(rounds: float, scale: float, count: int) -> float:
    """AdaHedge's worst-case regret over ``rounds`` rounds of ``count`` levels whose losses span
    at most ``scale``: ``scale * (sqrt(rounds * ln K) + 16/3 ln K + 2)`` (de Rooij et al. 2014,
    theorem 8, with L*(T - L*)/T at its largest, T/4)."""
    ln_k = math.log(count) if count > 1 else 0.0
    return scale * (math.sqrt(rounds * ln_k) + 16 / 3 * ln_k + 2)


def mix_loss(losses: Sequence[float], eta: float) -> float:
    """Hedge's potential ``-ln(mean(exp(-eta * losses))) / eta`` (the minimum when eta is
    infinite): its change over a round is the round's mix loss, and computed this way it neither
    overflows nor underflows however large eta grows."""
    low = min(losses)
    if math.isinf(eta):
        return low
    return low - math.log(sum(math.exp(-eta * (x - low)) for x in losses) / len(losses)) / eta


@dataclass(frozen=True, slots=True)
class AdaptiveFloor:
    """The learner's state for one service. ``AdaptiveFloor(min_floor, max_floor)`` starts
    leading, with every level's loss 0 (so at the operator's minimum) and every level's virtual
    machine idle."""

    min_floor: int  # the operator's bounds, base units per quote unit: the floor stays in them
    max_floor: int
    cost: int | None = None  # the worker's own cost per quote unit; None: the operator's min floor
    step: float = STEP
    memory: int = MEMORY
    losses: tuple[float, ...] = ()  # discounted cumulative loss per level, the least 0 (empty: all 0)
    gap: float = 0.0  # the hedge regime's discounted mixability gap (AdaHedge's)
    rounds: int = 0  # awards observed
    backlog: tuple[float, ...] = ()  # per level: blocks of work its virtual machine has left
    height: int = 0  # block of the last award observed
    lead_gap: float = 0.0  # the lead regime's discounted regret (FlipFlop's FTL gap)
    hedging: bool = False  # the regime: False leads, True draws from the weights
    informative: int = 0  # awards on which the levels' earnings differed: the rounds learnt from
    window: float = 0.0  # the discounted count of informative awards: the rounds the gaps span
    scale: float = 0.0  # the widest loss range (best level's earnings - worst's) in that window

    def __post_init__(self) -> None:
        if not 0 <= self.min_floor <= self.max_floor:
            raise ValueError(f"floor bounds must satisfy 0 <= min <= max, got {self.min_floor}, {self.max_floor}")
        count = len(self.levels)
        if (self.losses and len(self.losses) != count) or (self.backlog and len(self.backlog) != count):
            raise ValueError(f"losses and backlogs must have one entry for each of the {count} levels")
        if self.step <= 1 or self.memory < 0 or self.gap < 0 or self.rounds < 0 or self.informative < 0:
            raise ValueError("step must exceed 1; memory, gap, rounds and informative are at least 0")
        if self.window < 0 or self.scale < 0:
            raise ValueError("window and scale are at least 0")
        if not all(math.isfinite(x) for x in (*self.losses, self.gap, self.lead_gap, self.window, self.scale)):
            raise ValueError("losses and gaps must be finite")

    @property
    def levels(self) -> tuple[int, ...]:
        return price_levels(self.min_floor, self.max_floor, self.step)

    @property
    def reservation(self) -> int:
        return self.min_floor if self.cost is None else self.cost

    def _losses(self) -> tuple[float, ...]:
        return self.losses or (0.0,) * len(self.levels)

    def _eta(self) -> float:
        """AdaHedge's learning rate: infinite (the leaders alone) until the hedge regime has a gap."""
        count = len(self.levels)
        return math.log(count) / self.gap if self.gap > 0 and count > 1 else math.inf

    def weights(self) -> list[float]:
        """The hedge regime's probability of each level: exp(-eta * loss), normalised."""
        losses = self._losses()
        eta, best = self._eta(), min(losses)
        raw = [float(x == best) if math.isinf(eta) else math.exp(-eta * (x - best)) for x in losses]
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

    def floor_for(self, draw: float) -> int:
        """The floor to bid at now, given a uniform ``draw`` in [0, 1) for the hedge regime: the
        operator's minimum before any informative award, then the regime's choice."""
        if not self.losses:
            return self.levels[0]
        return self.floor_at(draw) if self.hedging else self.levels[self.leader()]

    def leader(self) -> int:
        """The lead regime's level: the least loss averaged (triangular weights) over the levels
        within `smoothing` of it, the lowest on a tie; the plain least loss once that is 0."""
        losses, width = self._losses(), self.smoothing()
        if width == 0:
            return losses.index(min(losses))
        count, best, lead = len(losses), math.inf, 0
        for i in range(count):
            near = range(max(0, i - width), min(count, i + width + 1))
            weights = [width + 1 - abs(i - j) for j in near]
            mean = sum(w * losses[j] for w, j in zip(weights, near, strict=True)) / sum(weights)
            if mean < best:
                best, lead = mean, i
        return lead

    def smoothing(self) -> int:
        """Levels each side the leader is averaged over: `EARLY_WIDTH`, one fewer every
        `EARLY_AWARDS` informative awards."""
        return max(0, EARLY_WIDTH - self.informative // EARLY_AWARDS)

    @property
    def floor(self) -> int:
        """The floor to bid at now, the hedge regime drawing from a hash of the state."""
        return self.floor_for(self.state_draw())

    def state_draw(self) -> float:
        """A uniform draw in [0, 1) made from the state: the same while the state is, unrelated
        between states, and between workers (whose losses differ) on the same awards."""
        digest = hashlib.blake2b(struct.pack(f"<{len(self.losses)}dq", *self.losses, self.informative),
                                 digest_size=8).digest()
        return int.from_bytes(digest, "little") / 2**64

    def mean_floor(self) -> float:
        """The mean level of the hedge regime's weights, for display."""
        return sum(w * level for w, level in zip(self.weights(), self.levels, strict=True))

    def observe(self, seen: AwardSeen) -> AdaptiveFloor:
        """The state after one award: each level's virtual machine bids at that level, and what
        it earns moves the level's loss."""
        levels = self.levels
        drain = max(0, seen.height - self.height)
        backlog = [max(0.0, b - drain) for b in (self.backlog or (0.0,) * len(levels))]
        won = shards_won(levels, [seen.capacity(b) for b in backlog], seen)
        cost = self.reservation
        earned = [float((level - cost) * k * seen.units) for level, k in zip(levels, won, strict=True)]
        busy = tuple(b + k * seen.shard_blocks for b, k in zip(backlog, won, strict=True))
        return replace(self.update(earned), backlog=busy, height=max(self.height, seen.height))

    def update(self, earnings: Sequence[float]) -> AdaptiveFloor:
        """FlipFlop's step for one round of per-level ``earnings``: the regime in play adds the
        regret of what it played (the leader's loss, or the weights' mean loss) over the round's
        mix loss to its gap, and the gaps decide the next round's regime."""
        levels = self.levels
        if len(earnings) != len(levels):
            raise ValueError(f"{len(earnings)} earnings for {len(levels)} levels")
        if not all(math.isfinite(e) for e in earnings):
            raise ValueError("earnings must be finite")
        top = max(earnings)
        loss = [top - e for e in earnings]
        if top == min(earnings):  # every level earned the same: nothing to learn
            return replace(self, rounds=self.rounds + 1)
        past = self._losses()
        after = [old + x for old, x in zip(past, loss, strict=True)]
        if self.hedging:
            eta = self._eta()
            played = sum(w * x for w, x in zip(self.weights(), loss, strict=True))
        else:
            eta = math.inf
            played = loss[self.leader()]
        regret = played - (mix_loss(after, eta) - mix_loss(past, eta))
        fade = 1.0 - 1.0 / self.memory if self.memory else 1.0
        gap, lead_gap = fade * self.gap, fade * self.lead_gap
        if self.hedging:
            gap += max(regret, 0.0)  # >= 0 but for rounding: the mix loss is at most the mean
        else:
            lead_gap += regret  # >= 0: the leader's loss is at least the round's rise in the least loss
        window, scale = fade * self.window + 1, max(fade * self.scale, top - min(earnings))
        if self.hedging:
            hedging = gap <= ALPHA * lead_gap
        else:
            hedging = lead_gap > adahedge_bound(window, scale, len(levels))
        cumulative = [fade * old + x for old, x in zip(past, loss, strict=True)]
        low = min(cumulative)  # shift so the leader is at 0: keeps the numbers small forever
        return replace(self, losses=tuple(x - low for x in cumulative), gap=gap, lead_gap=lead_gap,
                       hedging=hedging, rounds=self.rounds + 1, informative=self.informative + 1,
                       window=window, scale=scale)

    def to_json(self) -> dict[str, Any]:
        return {"version": JSON_VERSION, "min_floor": self.min_floor, "max_floor": self.max_floor,
                "cost": self.cost, "step": self.step, "memory": self.memory,
                "losses": list(self.losses), "gap": self.gap, "rounds": self.rounds,
                "backlog": list(self.backlog), "height": self.height, "lead_gap": self.lead_gap,
                "hedging": self.hedging, "informative": self.informative, "window": self.window,
                "scale": self.scale,
                "floor": self.floor, "mean_floor": round(self.mean_floor(), 3)}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> AdaptiveFloor:
        """The state `to_json` wrote; ValueError if it is not one (its bounds checked again). A
        version 1 state (the leader alone, no regimes) goes on leading from its losses."""
        try:
            version = data["version"]
            if version not in (1, JSON_VERSION):
                raise ValueError(f"floor state version {version}, expected {JSON_VERSION}")
            cost = data["cost"]
            hedging = data.get("hedging", False)
            if not isinstance(hedging, bool):
                raise TypeError(f"hedging must be a boolean, got {hedging!r}")
            return cls(int(data["min_floor"]), int(data["max_floor"]), None if cost is None else int(cost),
                       float(data["step"]), int(data["memory"]), tuple(float(x) for x in data["losses"]),
                       float(data["gap"]), int(data["rounds"]), tuple(float(x) for x in data["backlog"]),
                       int(data["height"]), float(data.get("lead_gap", 0.0)), hedging,
                       int(data.get("informative", data["rounds"])), float(data.get("window", 0.0)),
                       float(data.get("scale", 0.0)))
        except (KeyError, TypeError) as exc:
            raise ValueError(f"not a floor state: {exc!r}") from None

    def with_bounds(self, min_floor: int, max_floor: int) -> AdaptiveFloor:
        """The operator moved its bounds: the same state if unchanged, else a fresh start on the
        new grid (what the old levels earned says little about levels they did not include)."""
        if (min_floor, max_floor) == (self.min_floor, self.max_floor):
            return self
        return AdaptiveFloor(min_floor, max_floor, self.cost, self.step, self.memory)
