"""Market simulation: the real pool selection and adaptive floors over a simulated market.

No network and no chain: the code under test is `neurod.market.selection.choose_pool` (every
client's choice) and `neurod.market.floor.AdaptiveFloor` (every worker's floor); everything else
is a model, stated here.

Workers (100, and a new one later). Each has a cost per quote unit (lognormal around `REF_COST`,
sd 0.3 in log), a speed in units per block (lognormal, sd 0.5 in log) and a cap on the shards one
bid offers (2 to 6). Its operator's bounds are [1.05 x cost, 4 x cost]. Its backlog (units
awarded, not yet done) drains at its speed every block. On a job it bids when it can finish at
least one shard by the deadline, for ``min(cap, shards it can finish by the deadline)`` shards, at
``max(floor, ceil(1.05 x cost))`` (the floor is its `AdaptiveFloor`'s `floor`), when that is at or
under the job's max price.

Demand. Jobs arrive per block (Poisson) in four phases of `PHASE_BLOCKS` each:
steady (~50% of the workers' capacity), surge (~140%), collapse (~15%), and steady demand again
with a cheap competitor entering (cost half the reference, the speed of ~15 workers, up to 40
shards a bid). A job has 2 to 12 shards of equal units (lognormal), a deadline of `DEADLINE`
blocks and a max price uniform in [1.4, 3] x `REF_COST`. Bids are taken in the block the job is
posted; the client buys `choose_pool` over them, or nothing when they do not cover the job.
(Uneven shards are the unit test's business: `tests/unit/neurod/test_market_selection.py`.)
After each award every worker shows its floor what the award would have paid at each level
(`AwardSeen`: its capacity then and every rival bid, as the bids topic shows them).

Figures, each with its goal:
- client cost vs the optimal assignment: over all covered jobs, what the clients paid over the
  cost of the optimal assignment of each job's shards to the bids it received, the optimum
  computed independently of `choose_pool` (scipy's `linear_sum_assignment` over the bids
  expanded into capacity slots). Goal <= 1.05.
- worker earnings, adaptive floor vs the best fixed floor in hindsight: a worker's earnings
  (payments minus its cost) in the run, over the most it would have earned with any one fixed
  level of its floor grid, replayed against the same market (every other bid as it was, its own
  backlog and capacities replayed with it). The replay is checked to reproduce each worker's
  actual earnings from its actual prices. Median, 10th percentile and the worst worker over the
  workers that any fixed level would have made money for. Goal >= 0.95 for each. The workers
  under it are counted by how many informative awards (ones where its floor's levels earned
  differently) their floor learnt from: from a few dozen no learner can promise 0.95 of the best
  fixed level (the minimax regret over K levels and n awards is about sqrt(n ln K / 2) awards'
  earnings), and the worst workers are nearly always those.
- blocks until clearing prices settle after each demand shift: the 20-block moving mean of the
  mean price paid per quote unit enters, and stays until the phase ends, within 5% of the
  phase's final level (its mean over the last 30% of the phase). Reported.
- for information: client cost vs every worker bidding its true cost (the cheapest pool over all
  workers with capacity at their cost, the same capacities), the share of the surplus that the
  floors win for the workers; no goal (the floors exist to raise it).

    .venv/bin/python bench/market_sim.py [--seed N | --seeds 7-11] [--blocks-per-phase N]

With ``--seeds``, one row of figures per seed, then each figure's worst seed against its goal.
"""

from __future__ import annotations

import argparse
import itertools
import math
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from chain.job_spec import QUOTE_UNITS, JobTerms
from chain.market_types import Service
from neurod.market.floor import AdaptiveFloor, AwardSeen
from neurod.market.selection import Offer, Pool, choose_pool

SEED = 7
WORKERS = 100
PHASE_BLOCKS = 250
PHASES = (("steady", 1.6), ("surge", 4.5), ("collapse", 0.5), ("competitor", 1.6))  # jobs per block
REF_COST = 1_000  # base units per quote unit (megapixel)
SHARD_UNITS = 20e6  # mean units of one shard (20 megapixels)
MEAN_SPEED = 4e6  # units per block of the median worker
DEADLINE = 10  # blocks
MARKUP = 1.05  # cost-based price, and the operators' min floor, over cost
MAX_FLOOR = 4.0  # the operators' max floor, over cost
SETTLE_WINDOW = 20
SETTLE_BAND = 0.05
GOAL_COST = 1.05
GOAL_EARNINGS = 0.95
INFORMATION_BANDS = (0, 30, 100, 300)  # informative awards: the bands workers under the goal are counted in
GRID_LEVELS = 36  # levels of the workers' floor grids ([1.05, 4] x cost in 4% steps), for the bound
Q = QUOTE_UNITS[Service.GENERATE]


@dataclass
class Worker:
    index: int
    cost: int
    speed: float
    max_shards: int
    floor: AdaptiveFloor
    active_from: int = 0
    backlog: float = 0.0
    earnings: float = 0.0

    @property
    def worker_id(self) -> bytes:
        return self.index.to_bytes(2, "big")  # bytes order = index order: the replay relies on it

    @property
    def cost_price(self) -> int:
        return math.ceil(self.cost * MARKUP)

    def capacity(self, units: float) -> int:
        return max(0, min(self.max_shards, int((self.speed * DEADLINE - self.backlog) // units)))


@dataclass
class JobRecord:
    block: int
    phase: int
    n: int
    units: int  # per shard
    max_price: int
    offers: list[tuple[int, int, int]]  # (worker index, unit price, capacity)
    prices: dict[int, int]  # each active worker's price on this job, bidding or not
    paid: int = 0
    optimal: int = 0
    at_cost: int = 0
    covered: bool = False
    won: dict[int, int] = field(default_factory=dict)  # worker index -> shards


def make_workers(rng: np.random.Generator) -> list[Worker]:
    workers = []
    for i in range(WORKERS):
        cost = max(1, round(REF_COST * math.exp(rng.normal(0, 0.3))))
        speed = MEAN_SPEED * math.exp(rng.normal(0, 0.5))
        workers.append(new_worker(i, cost, speed, int(rng.integers(2, 7))))
    return workers


def new_worker(index: int, cost: int, speed: float, max_shards: int, active_from: int = 0) -> Worker:
    floor = AdaptiveFloor(math.ceil(cost * MARKUP), round(cost * MAX_FLOOR), cost=cost)
    return Worker(index, cost, speed, max_shards, floor, active_from)


def run_market(seed: int, phase_blocks: int) -> tuple[list[Worker], list[JobRecord], list[float]]:
    """The market, block by block; also each phase's closing mean floor over cost (incumbents)."""
    rng = np.random.default_rng(seed)
    workers = make_workers(rng)
    entrant_block = 3 * phase_blocks
    workers.append(new_worker(WORKERS, REF_COST // 2, MEAN_SPEED * 15, 40, active_from=entrant_block))
    jobs: list[JobRecord] = []
    floors: list[float] = []
    for block in range(len(PHASES) * phase_blocks):
        phase = block // phase_blocks
        for w in workers:
            w.backlog = max(0.0, w.backlog - w.speed)
        active = [w for w in workers if w.active_from <= block]
        for _ in range(rng.poisson(PHASES[phase][1])):
            jobs.append(run_job(rng, block, phase, active))
        if (block + 1) % phase_blocks == 0:
            floors.append(float(np.mean([w.floor.floor / w.cost for w in workers[:WORKERS]])))
    return workers, jobs, floors


def run_job(rng: np.random.Generator, block: int, phase: int, active: list[Worker]) -> JobRecord:
    n = int(rng.integers(2, 13))
    units = max(1, round(SHARD_UNITS * math.exp(rng.normal(0, 0.4))))
    terms = JobTerms(Service.GENERATE, items=n * 100, units=n * units, seed=0)
    max_price = round(REF_COST * rng.uniform(1.4, 3.0))
    caps = {w.index: w.capacity(units) for w in active}
    prices = {w.index: max(w.floor.floor, w.cost_price) for w in active}
    record = JobRecord(block, phase, n, units, max_price, [], prices)
    offers = []
    for w in active:
        if caps[w.index] >= 1 and prices[w.index] <= max_price:
            offers.append(Offer(w, w.worker_id, prices[w.index], caps[w.index]))
            record.offers.append((w.index, prices[w.index], caps[w.index]))
    pool = choose_pool(terms, range(n), n, offers, max_price)
    if isinstance(pool, Pool):
        record.covered, record.paid = True, pool.cost
        record.optimal = optimal_cost(terms, n, offers)
        record.at_cost = at_cost(terms, n, active, caps)
        for offer, shards in pool.entries:
            w = offer.bid
            record.won[w.index] = len(shards)
            w.backlog += len(shards) * units
            w.earnings += sum(terms.payment(k, n, offer.unit_price) for k in shards) - len(shards) * units * w.cost / Q
    for w in active:
        rivals = tuple((p, c) for i, p, c in record.offers if i != w.index)
        w.floor = w.floor.observe(AwardSeen(block, max_price, n, units, rivals, w.max_shards,
                                            units / w.speed, DEADLINE))
    return record


def optimal_cost(terms: JobTerms, n: int, offers: list[Offer]) -> int:
    """The min-cost assignment of the n shards to capacity slots, by the Hungarian method."""
    from scipy.optimize import linear_sum_assignment

    slots = [o for o in offers for _ in range(min(o.capacity, n))]
    cost = np.array([[terms.payment(k, n, o.unit_price) for o in slots] for k in range(n)])
    rows, cols = linear_sum_assignment(cost)
    return int(cost[rows, cols].sum())


def at_cost(terms: JobTerms, n: int, active: list[Worker], caps: dict[int, int]) -> int:
    offers = [Offer(w, w.worker_id, w.cost, caps[w.index]) for w in active if caps[w.index] >= 1]
    pool = choose_pool(terms, range(n), n, offers)
    return pool.cost if isinstance(pool, Pool) else 0


def replay(workers: list[Worker], jobs: list[JobRecord]) -> np.ndarray:
    """Each worker's earnings at each fixed level of its grid (columns 0..K-1, padded with its
    top level) and at its actual prices (column K), every other bid as it was.

    The same rule as `choose_pool` on equal shards: cheapest first by (price, worker id), each
    worker up to its capacity; a job is bought only if the bids cover it."""
    grids = [w.floor.levels for w in workers]
    width = max(len(g) for g in grids)
    count = len(workers)
    levels = np.array([list(g) + [g[-1]] * (width - len(g)) + [0] for g in grids], dtype=np.int64)
    cost = np.array([w.cost for w in workers], dtype=np.float64)[:, None]
    speed = np.array([w.speed for w in workers])[:, None]
    max_shards = np.array([w.max_shards for w in workers])[:, None]
    active_from = np.array([w.active_from for w in workers])[:, None]
    index = np.arange(count, dtype=np.int64)[:, None]
    backlog = np.zeros(levels.shape)
    earned = np.zeros(levels.shape)
    last = 0
    for job in jobs:
        backlog = np.maximum(0.0, backlog - speed * (job.block - last))
        last = job.block
        price = levels.copy()
        for i, p in job.prices.items():
            price[i, -1] = p
        cap = np.clip((speed * DEADLINE - backlog) // job.units, 0, max_shards).astype(np.int64)
        cap[(active_from > job.block).ravel()] = 0
        bids = (price <= job.max_price) & (cap >= 1)
        own_key = np.full((count, 1), -1, dtype=np.int64)
        own_cap = np.zeros((count, 1), dtype=np.int64)
        order = sorted((p * 4096 + i, c) for i, p, c in job.offers)
        keys = np.array([k for k, _ in order], dtype=np.int64)
        ahead = np.concatenate([[0], np.cumsum([c for _, c in order])]).astype(np.int64)
        for i, p, c in job.offers:
            own_key[i, 0], own_cap[i, 0] = p * 4096 + i, c
        key = price * 4096 + index
        before = ahead[np.searchsorted(keys, key, side="left")] - np.where(own_key < key, own_cap, 0)
        others = ahead[-1] - own_cap
        wins = np.clip(job.n - before, 0, cap) * (bids & (others + cap >= job.n))
        earned += wins * ((job.units * price // Q) - job.units * cost / Q)
        backlog += wins * job.units
    return earned


def settle_blocks(jobs: list[JobRecord], phase_blocks: int) -> list[int | None]:
    total = len(PHASES) * phase_blocks
    paid, units = np.zeros(total), np.zeros(total)
    for job in jobs:
        if job.covered:
            paid[job.block] += job.paid
            units[job.block] += job.n * job.units / Q
    settled: list[int | None] = []
    for phase in range(len(PHASES)):
        lo, hi = phase * phase_blocks, (phase + 1) * phase_blocks
        mean = [paid[max(lo, b - SETTLE_WINDOW + 1):b + 1].sum() / max(units[max(lo, b - SETTLE_WINDOW + 1):b + 1].sum(), 1e-9)
                for b in range(lo, hi)]
        tail = int(0.7 * phase_blocks)
        target = paid[lo + tail:hi].sum() / max(units[lo + tail:hi].sum(), 1e-9)
        inside = [abs(m - target) <= SETTLE_BAND * target for m in mean]
        first = None
        for b in range(len(inside) - 1, -1, -1):
            if not inside[b]:
                break
            first = b
        settled.append(first)
    return settled


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


def verdict(value: float, goal: float, higher: bool) -> str:
    ok = value >= goal if higher else value <= goal
    return "met" if ok else "NOT met"


@dataclass
class Outcome:
    """One seed's run: the figures the report prints."""

    seed: int
    jobs: list[JobRecord]
    floors: list[float]
    settled: list[int | None]
    ratios: list[float]  # adaptive over best fixed, per worker that some fixed level pays
    informative: list[int]  # per compared worker: awards on which its floor's levels earned differently
    replay_ok: bool
    cost_ratio: float
    surplus: float
    cpu: float

    @property
    def median(self) -> float:
        return percentile(self.ratios, 50)

    @property
    def p10(self) -> float:
        return percentile(self.ratios, 10)

    @property
    def meeting(self) -> int:
        return sum(r >= GOAL_EARNINGS for r in self.ratios)



def short_by_information(ratios: list[float], informative: list[int]) -> list[int]:
    """Workers under the earnings goal, counted in each band of `INFORMATION_BANDS`."""
    short = [n for r, n in zip(ratios, informative, strict=True) if r < GOAL_EARNINGS]
    edges = [*INFORMATION_BANDS, math.inf]
    return [sum(lo <= n < hi for n in short) for lo, hi in itertools.pairwise(edges)]


def run(seed: int, phase_blocks: int) -> Outcome:
    started = time.process_time()
    workers, jobs, floors = run_market(seed, phase_blocks)
    earned = replay(workers, jobs)
    actual = np.array([w.earnings for w in workers])
    best = earned[:, :-1].max(axis=1)
    compared = [i for i in range(len(workers)) if best[i] > 0]
    covered = [j for j in jobs if j.covered]
    paid = sum(j.paid for j in covered)
    return Outcome(seed, jobs, floors, settle_blocks(jobs, phase_blocks),
                   [float(actual[i] / best[i]) for i in compared], [workers[i].floor.informative for i in compared],
                   bool(np.allclose(earned[:, -1], actual, rtol=1e-9, atol=1e-3)),
                   paid / sum(j.optimal for j in covered), paid / sum(j.at_cost for j in covered),
                   time.process_time() - started)


def few_awards_bound(awards: int, levels: int) -> float:
    """The most of the best fixed level's earnings a learner can promise from ``awards``
    informative awards over ``levels`` levels: the minimax regret of prediction with expert advice
    is about sqrt(n ln K / 2) rounds' worth of the loss range (Cesa-Bianchi and Lugosi, "Prediction,
    Learning, and Games", 2006, theorem 3.7), and the best level earns at most n rounds' worth."""
    return 1 - math.sqrt(math.log(levels) / (2 * awards))


def band_names() -> list[str]:
    edges = [*INFORMATION_BANDS, math.inf]
    return [f"{lo}-{hi - 1}" if hi < math.inf else f">={lo}" for lo, hi in itertools.pairwise(edges)]


def report_seed(out: Outcome, phase_blocks: int, workers: int) -> None:
    print(f"{'phase':<11}{'jobs':>6}{'covered':>9}{'price/cost':>12}{'floor/cost at end':>19}{'settled after':>15}")
    for p, (name, _) in enumerate(PHASES):
        mine = [j for j in out.jobs if j.phase == p]
        covered = [j for j in mine if j.covered]
        units = sum(j.n * j.units for j in covered) / Q
        price = sum(j.paid for j in covered) / units / REF_COST if units else float("nan")
        after = "never" if out.settled[p] is None else f"{out.settled[p]} blocks"
        print(f"{name:<11}{len(mine):>6}{len(covered) / max(len(mine), 1):>9.0%}{price:>12.3f}"
              f"{out.floors[p]:>19.3f}{after:>15}")
    print(f"replay reproduces every worker's market earnings: {'yes' if out.replay_ok else 'NO'}")
    print(f"workers compared: {len(out.ratios)} of {workers} (the rest earn nothing at any fixed level)")
    print(f"cpu time: {out.cpu:.1f} s, {len(out.jobs)} jobs")
    print(f"{'figure':<58}{'value':>8}  {'goal':<8}verdict")
    print(f"{'client cost vs the optimal assignment of its bids':<58}{out.cost_ratio:>8.4f}  {'<= 1.05':<8}"
          f"{verdict(out.cost_ratio, GOAL_COST, higher=False)}")
    print(f"{'worker earnings, adaptive vs best fixed floor: median':<58}{out.median:>8.3f}  {'>= 0.95':<8}"
          f"{verdict(out.median, GOAL_EARNINGS, higher=True)}")
    print(f"{'worker earnings, adaptive vs best fixed floor: 10th pct':<58}{out.p10:>8.3f}  {'>= 0.95':<8}"
          f"{verdict(out.p10, GOAL_EARNINGS, higher=True)}")
    print(f"{'worker earnings, adaptive vs best fixed floor: each worker':<58}{min(out.ratios):>8.3f}  {'>= 0.95':<8}"
          f"{verdict(min(out.ratios), GOAL_EARNINGS, higher=True)} ({out.meeting} of {len(out.ratios)} workers "
          f"at >= {GOAL_EARNINGS})")
    for p, (name, _) in enumerate(PHASES[1:], start=1):
        after = "never" if out.settled[p] is None else str(out.settled[p])
        print(f"{'blocks until clearing prices settle after: ' + name:<58}{after:>8}  {'report':<8}reported")
    print(f"{'client cost vs every worker bidding its true cost':<58}{out.surplus:>8.3f}  {'none':<8}reported")
    if out.meeting < len(out.ratios):
        explain_short(out.ratios, out.informative)
    if not out.replay_ok:
        print("replay check NOT met: the figures above are not trustworthy")


def explain_short(ratios: list[float], informative: list[int]) -> None:
    """Who falls short: by the informative awards they learnt from, and which of them no learner
    could have been sure to bring to the goal."""
    short = short_by_information(ratios, informative)
    counts = ", ".join(f"{name}: {n}" for name, n in zip(band_names(), short, strict=True))
    few = INFORMATION_BANDS[1]
    learnt = [r for r, n in zip(ratios, informative, strict=True) if n >= few]
    print(f"workers under {GOAL_EARNINGS}, by the informative awards their floor learnt from: {counts}")
    print(f"  {short[0]} of them learnt from under {few}: there no learner can promise {GOAL_EARNINGS} of the best "
          f"fixed level (the minimax regret over {GRID_LEVELS} levels allows {few_awards_bound(few, GRID_LEVELS):.2f} "
          f"at {few} awards)")
    if learnt:
        print(f"  {sum(r < GOAL_EARNINGS for r in learnt)} of the {len(learnt)} workers that learnt from {few} or more "
              f"fall short, the worst at {min(learnt):.3f}: the learner's regret, not a bound")


def report_seeds(outs: list[Outcome]) -> None:
    """One row per seed, then each figure's worst seed against its goal."""
    under = f"under 0.95 by informative awards ({'/'.join(band_names())})"
    print(f"{'seed':>5}{'client cost':>13}{'median':>8}{'p10':>8}{'worst':>8}{'>= 0.95':>10}  {under}  replay")
    for out in outs:
        short = "/".join(str(n) for n in short_by_information(out.ratios, out.informative))
        print(f"{out.seed:>5}{out.cost_ratio:>13.4f}{out.median:>8.3f}{out.p10:>8.3f}{min(out.ratios):>8.3f}"
              f"{f'{out.meeting}/{len(out.ratios)}':>10}  {short:<{len(under)}}  {'yes' if out.replay_ok else 'NO'}")
    print(f"{'figure (its worst seed)':<58}{'value':>8}  {'goal':<8}verdict")
    figures = [("client cost vs the optimal assignment of its bids", [o.cost_ratio for o in outs], GOAL_COST, False),
               ("worker earnings, adaptive vs best fixed floor: median", [o.median for o in outs], GOAL_EARNINGS, True),
               ("worker earnings, adaptive vs best fixed floor: 10th pct", [o.p10 for o in outs], GOAL_EARNINGS, True),
               ("worker earnings, adaptive vs best fixed floor: each worker", [min(o.ratios) for o in outs],
                GOAL_EARNINGS, True)]
    for name, values, goal, higher in figures:
        worst = min(values) if higher else max(values)
        passing = sum(verdict(v, goal, higher) == "met" for v in values)
        sign = ">=" if higher else "<="
        print(f"{name:<58}{worst:>8.4f}  {f'{sign} {goal}':<8}{verdict(worst, goal, higher)} "
              f"(on {passing} of {len(outs)} seeds)")
    if any(o.meeting < len(o.ratios) for o in outs):
        explain_short(list(itertools.chain.from_iterable(o.ratios for o in outs)),
                      list(itertools.chain.from_iterable(o.informative for o in outs)))
    if not all(o.replay_ok for o in outs):
        print("replay check NOT met: the figures above are not trustworthy")


def seed_list(text: str) -> list[int]:
    """``7,9`` or ``7-11`` or a mix of both."""
    seeds: list[int] = []
    for part in text.split(","):
        lo, _, hi = part.partition("-")
        seeds += range(int(lo), int(hi or lo) + 1)
    return seeds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--seeds", type=seed_list, help="several seeds, e.g. 7-11: one row each, then the worst")
    parser.add_argument("--blocks-per-phase", type=int, default=PHASE_BLOCKS)
    args = parser.parse_args()
    seeds = args.seeds or [args.seed]
    print(f"market_sim: seed{'s' if len(seeds) > 1 else ''} {','.join(map(str, seeds))}, {WORKERS} workers + 1 "
          f"entrant, {len(PHASES)} phases of {args.blocks_per_phase} blocks")
    if len(seeds) == 1:
        report_seed(run(seeds[0], args.blocks_per_phase), args.blocks_per_phase, WORKERS + 1)
    else:
        report_seeds([run(seed, args.blocks_per_phase) for seed in seeds])


if __name__ == "__main__":
    main()
