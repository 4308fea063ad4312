"""The adaptive price floor: it stays in the operator's bounds and follows what pays."""

from __future__ import annotations

import itertools
import json
import math
import random
from collections.abc import Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from neurod.market.floor import AdaptiveFloor, AwardSeen, price_levels, shards_won

LOW, HIGH = 100, 400


def award(height: int, rivals: tuple[tuple[int, int], ...], *, max_price: int = 1_000, shards: int = 4,
          max_shards: int = 2, shard_blocks: float = 0.0) -> AwardSeen:
    return AwardSeen(height=height, max_price=max_price, shards=shards, units=1_000_000, rivals=rivals,
                     max_shards=max_shards, shard_blocks=shard_blocks, deadline=10)


def run(floor: AdaptiveFloor, awards: list[AwardSeen]) -> AdaptiveFloor:
    for seen in awards:
        floor = floor.observe(seen)
    return floor


def test_the_grid_spans_the_operators_bounds_in_small_steps() -> None:
    levels = price_levels(LOW, HIGH)
    assert levels[0] == LOW and levels[-1] == HIGH
    assert all(b / a <= 1.05 for a, b in itertools.pairwise(levels))
    assert price_levels(7, 7) == (7,)
    assert price_levels(0, 1) == (0, 1)


def regret_of(floor: AdaptiveFloor, rounds: Sequence[Sequence[float]]) -> tuple[float, AdaptiveFloor]:
    """What the floor lost to the best fixed level over ``rounds`` of per-level earnings: the
    loss of the level it leads with, or the weights' mean loss while it hedges (the expectation
    of its draw), as in FlipFlop's analysis."""
    lost, totals = 0.0, [0.0] * len(floor.levels)
    for earnings in rounds:
        loss = [max(earnings) - e for e in earnings]
        if floor.hedging:
            lost += sum(w * x for w, x in zip(floor.weights(), loss, strict=True))
        else:
            lost += loss[floor.levels.index(floor.floor)]
        totals = [t + x for t, x in zip(totals, loss, strict=True)]
        floor = floor.update(earnings)
    return lost - min(totals), floor


def flipflop_bound(rounds: int, levels: int) -> float:
    """A generous form of FlipFlop's worst-case bound for earnings in [0, 1]: a constant factor of
    AdaHedge's sqrt(T ln K) plus a constant times ln K (de Rooij et al. 2014, theorem 15)."""
    return 6 * math.sqrt(rounds * math.log(levels)) + 40 * math.log(levels) + 20


def test_the_floor_stays_in_the_bounds_whatever_the_market_does() -> None:
    rng = random.Random(9)
    floor = AdaptiveFloor(LOW, HIGH)
    for height in range(400):
        rivals = tuple((rng.randint(1, 2_000), rng.randint(0, 3)) for _ in range(rng.randint(0, 5)))
        floor = floor.observe(award(height, rivals, max_price=rng.randint(1, 2_000), shards=rng.randint(1, 6)))
        assert LOW <= floor.floor <= HIGH
        assert all(LOW <= floor.floor_at(u / 10) <= HIGH and LOW <= floor.floor_for(u / 10) <= HIGH for u in range(10))


rival_bids = st.lists(st.tuples(st.integers(0, 5_000), st.integers(0, 8)), max_size=6).map(tuple)
awards = st.builds(AwardSeen, height=st.integers(0, 50), max_price=st.integers(0, 5_000), shards=st.integers(1, 12),
                   units=st.integers(1, 10**9), rivals=rival_bids, max_shards=st.integers(1, 8),
                   shard_blocks=st.floats(0, 20), deadline=st.integers(0, 30))


@settings(max_examples=150, deadline=None)
@given(low=st.integers(0, 3_000), span=st.integers(0, 3_000), cost=st.none() | st.integers(0, 3_000),
       memory=st.integers(0, 60), seen=st.lists(awards, max_size=25), draw=st.floats(0, 1, exclude_max=True))
def test_the_operators_bounds_always_hold(low: int, span: int, cost: int | None, memory: int,
                                          seen: list[AwardSeen], draw: float) -> None:
    floor = AdaptiveFloor(low, low + span, cost, memory=memory)
    for height, one in enumerate(seen):
        floor = floor.observe(AwardSeen(floor.height + height, *(getattr(one, f) for f in AwardSeen.__slots__[1:])))
        assert low <= floor.floor <= low + span and low <= floor.floor_for(draw) <= low + span
        assert all(low <= level <= low + span for level in floor.levels)
    assert AdaptiveFloor.from_json(json.loads(json.dumps(floor.to_json()))) == floor


def test_a_market_that_alternates_the_best_level_cannot_exploit_it() -> None:
    # the sequence that ruins a leader: whichever level leads loses the next round, the other wins
    rounds = [[0.0, 0.5]] + [[0.0, 1.0] if t % 2 else [1.0, 0.0] for t in range(1_999)]
    floor = AdaptiveFloor(LOW, int(LOW * 1.04), memory=0)
    assert len(floor.levels) == 2
    regret, after = regret_of(floor, rounds)
    assert regret <= flipflop_bound(len(rounds), 2) < 500  # a leader would lose ~1000
    assert after.hedging


@settings(max_examples=60, deadline=None)
@given(st.lists(st.lists(st.floats(0, 1), min_size=6, max_size=6), min_size=1, max_size=120))
def test_regret_against_the_best_fixed_level_is_bounded_on_any_sequence(rounds: list[list[float]]) -> None:
    floor = AdaptiveFloor(100, 120, memory=0)
    assert len(floor.levels) == 6
    regret, _ = regret_of(floor, rounds)
    assert regret <= flipflop_bound(len(rounds), 6)


def test_adversarial_sequences_against_many_levels_stay_under_the_bound() -> None:
    # a market that reads the floor before each round and pays every level but the one it plays
    rng = random.Random(5)
    floor = AdaptiveFloor(LOW, HIGH, memory=0)
    count, lost, totals = len(floor.levels), 0.0, [0.0] * len(floor.levels)
    for _ in range(1_500):
        target = floor.levels.index(floor.floor)
        earnings = [0.0 if i == target else rng.uniform(0.6, 1.0) for i in range(count)]
        loss = [max(earnings) - e for e in earnings]
        if floor.hedging:
            lost += sum(w * x for w, x in zip(floor.weights(), loss, strict=True))
        else:
            lost += loss[target]
        totals = [t + x for t, x in zip(totals, loss, strict=True)]
        floor = floor.update(earnings)
    assert lost - min(totals) <= flipflop_bound(1_500, count)


def test_a_fresh_floor_bids_the_operators_minimum_until_the_levels_disagree() -> None:
    floor = run(AdaptiveFloor(LOW, HIGH), [award(h, ((10, 4),), max_price=50) for h in range(5)])
    assert (floor.rounds, floor.informative, floor.floor) == (5, 0, LOW)
    assert floor.floor_for(0.99) == LOW


def test_it_climbs_to_the_top_when_every_level_wins() -> None:
    # the one rival cannot take more than one of the three shards: every level wins two
    floor = run(AdaptiveFloor(LOW, HIGH), [award(h, ((50, 1),), shards=3) for h in range(60)])
    assert floor.floor == HIGH
    assert floor.mean_floor() > 0.95 * HIGH


def test_it_sinks_to_the_bottom_when_only_the_bottom_wins() -> None:
    # a rival takes every shard at any price from 101 up: only the lowest level ever wins
    floor = run(AdaptiveFloor(LOW, HIGH, cost=50), [award(h, ((101, 4),)) for h in range(60)])
    assert floor.floor == LOW
    assert floor.mean_floor() < 1.05 * LOW


def test_it_settles_just_under_the_rivals_price() -> None:
    floor = run(AdaptiveFloor(LOW, HIGH), [award(h, ((250, 4),)) for h in range(100)])
    below = max(level for level in floor.levels if level < 250)
    assert floor.floor == below


def test_the_first_awards_do_not_put_the_floor_on_the_edge_of_losing() -> None:
    # one award says every level under 250 wins: the plain leader bids just under 250, where
    # the next rival a little cheaper takes the job; the early leader keeps a margin under it
    first = run(AdaptiveFloor(LOW, HIGH), [award(0, ((250, 4),))])
    edge = max(level for level in first.levels if level < 250)
    assert first.smoothing() > 0 and LOW < first.floor < edge
    # once the evidence is in, the margin goes: it settles just under the rivals' price
    settled = run(first, [award(h, ((250, 4),)) for h in range(1, 60)])
    assert settled.smoothing() == 0 and settled.floor == edge


def test_a_market_where_leading_works_never_pays_for_hedging() -> None:
    rng = random.Random(3)
    awards = [award(h, ((rng.choice((240, 250, 260)), 4),)) for h in range(300)]
    floor = AdaptiveFloor(LOW, HIGH)
    for seen in awards:
        floor = floor.observe(seen)
        assert not floor.hedging


def test_while_hedging_the_floor_is_a_draw_from_the_weights() -> None:
    rounds = [[0.0, 0.5]] + [[0.0, 1.0] if t % 2 else [1.0, 0.0] for t in range(200)]
    floor = AdaptiveFloor(LOW, int(LOW * 1.04), memory=0)
    for earnings in rounds:
        floor = floor.update(earnings)
        if floor.hedging and 0.2 < floor.weights()[0] < 0.8:
            break
    assert floor.hedging
    low_weight = floor.weights()[0]
    assert floor.floor_for(low_weight / 2) == floor.levels[0]
    assert floor.floor_for((1 + low_weight) / 2) == floor.levels[1]
    assert floor.floor in floor.levels and floor.floor == floor.floor_for(floor.state_draw())


def test_it_learns_nothing_from_a_job_it_could_not_have_won_at_any_level() -> None:
    start = AdaptiveFloor(LOW, HIGH)
    after = run(start, [award(h, ((10, 4),), max_price=50) for h in range(10)])
    assert after.weights() == start.weights()


def test_a_busy_machine_prefers_the_price_that_keeps_it_free_for_dearer_jobs() -> None:
    # cheap jobs (rivals at 150) come every block, a rich one (no rivals, max 400) every 10th;
    # a shard keeps the machine busy 10 blocks: winning the cheap jobs would miss the rich ones
    awards = [award(h, () if h % 10 == 0 else ((150, 4),), max_price=400 if h % 10 == 0 else 1_000,
                    shards=2, max_shards=2, shard_blocks=5.0) for h in range(300)]
    floor = run(AdaptiveFloor(LOW, HIGH), awards)
    assert floor.floor > 150


def test_rivals_at_the_same_price_count_as_ahead() -> None:
    seen = award(0, ((200, 3),), shards=4)
    assert shards_won([199, 200, 201], [2, 2, 2], seen) == [2, 1, 1]


def test_a_job_the_bids_do_not_cover_pays_nobody() -> None:
    seen = award(0, ((200, 1),), shards=4)
    assert shards_won([100], [2], seen) == [0]


def test_the_state_round_trips_through_json() -> None:
    rng = random.Random(2)
    floor = AdaptiveFloor(LOW, HIGH, cost=90)
    for height in range(50):
        floor = floor.observe(award(height, ((rng.randint(100, 400), 2),), shard_blocks=3.0))
    text = json.dumps(floor.to_json())
    again = AdaptiveFloor.from_json(json.loads(text))
    assert again == floor
    assert again.floor == floor.floor


def test_a_state_that_is_not_one_is_refused() -> None:
    with pytest.raises(ValueError):
        AdaptiveFloor.from_json({"version": 1, "min_floor": 5})
    good = AdaptiveFloor(LOW, HIGH).to_json()
    for bad in ({"losses": [0.0, 1.0]}, {"version": 9}, {"hedging": "yes"}, {"gap": "nan"}):
        with pytest.raises(ValueError):
            AdaptiveFloor.from_json(good | bad)


def test_a_version_1_state_goes_on_leading_from_its_losses() -> None:
    learned = run(AdaptiveFloor(LOW, HIGH), [award(h, ((250, 4),)) for h in range(30)])
    old = {k: v for k, v in learned.to_json().items() if k not in ("lead_gap", "hedging", "informative")}
    again = AdaptiveFloor.from_json(old | {"version": 1})
    assert again.losses == learned.losses and not again.hedging and again.informative == learned.rounds


def test_bounds_out_of_order_are_refused() -> None:
    with pytest.raises(ValueError):
        AdaptiveFloor(500, 100)


def test_new_operator_bounds_start_afresh_and_unchanged_ones_keep_the_state() -> None:
    floor = run(AdaptiveFloor(LOW, HIGH), [award(h, ((50, 1),)) for h in range(20)])
    assert floor.with_bounds(LOW, HIGH) is floor
    moved = floor.with_bounds(120, 300)
    assert (moved.min_floor, moved.max_floor, moved.rounds) == (120, 300, 0)
    assert 120 <= moved.floor <= 300
