"""The adaptive price floor: it stays in the operator's bounds and follows what pays."""

from __future__ import annotations

import itertools
import json
import random

import pytest

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


def test_the_floor_stays_in_the_bounds_whatever_the_market_does() -> None:
    rng = random.Random(9)
    floor = AdaptiveFloor(LOW, HIGH)
    for height in range(400):
        rivals = tuple((rng.randint(1, 2_000), rng.randint(0, 3)) for _ in range(rng.randint(0, 5)))
        floor = floor.observe(award(height, rivals, max_price=rng.randint(1, 2_000), shards=rng.randint(1, 6)))
        assert LOW <= floor.floor <= HIGH
        assert all(LOW <= floor.floor_at(u / 10) <= HIGH for u in range(10))


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
    bad = AdaptiveFloor(LOW, HIGH).to_json() | {"losses": [0.0, 1.0]}
    with pytest.raises(ValueError):
        AdaptiveFloor.from_json(bad)


def test_bounds_out_of_order_are_refused() -> None:
    with pytest.raises(ValueError):
        AdaptiveFloor(500, 100)


def test_new_operator_bounds_start_afresh_and_unchanged_ones_keep_the_state() -> None:
    floor = run(AdaptiveFloor(LOW, HIGH), [award(h, ((50, 1),)) for h in range(20)])
    assert floor.with_bounds(LOW, HIGH) is floor
    moved = floor.with_bounds(120, 300)
    assert (moved.min_floor, moved.max_floor, moved.rounds) == (120, 300, 0)
    assert 120 <= moved.floor <= 300
