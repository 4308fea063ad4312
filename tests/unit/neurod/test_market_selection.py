"""Pool selection: the cheapest pool, proven against brute force; why a job is not covered."""

from __future__ import annotations

import itertools
import random

import pytest

from chain.job_spec import JobTerms
from chain.market_types import Service
from neurod.market.selection import NO_BIDS, TOO_DEAR, TOO_FEW, Offer, Pool, Uncovered, choose_pool

# 7 items over up to 5 shards: shards of 1 and 2 items, so uneven units; a few units per quote
# unit, so that payment() rounds down hard and the cheapest price is not always the cheapest slot
UNEVEN = JobTerms(Service.GENERATE, items=7, units=7_300_001, seed=0)


def brute_force(terms: JobTerms, shards: list[int], n: int, offers: list[Offer]) -> int | None:
    """The least total payment over every assignment of shards to offers that respects each
    offer's capacity and each worker's (the largest of its offers'); None if none is feasible."""
    best = None
    worker_cap: dict[bytes, int] = {}
    for o in offers:
        worker_cap[o.worker] = max(worker_cap.get(o.worker, 0), o.capacity)
    for choice in itertools.product(range(len(offers)), repeat=len(shards)):
        per_offer = [choice.count(i) for i in range(len(offers))]
        if any(count > o.capacity for count, o in zip(per_offer, offers)):
            continue
        per_worker: dict[bytes, int] = {}
        for i, count in enumerate(per_offer):
            per_worker[offers[i].worker] = per_worker.get(offers[i].worker, 0) + count
        if any(count > worker_cap[w] for w, count in per_worker.items()):
            continue
        cost = sum(terms.payment(k, n, offers[i].unit_price) for k, i in zip(shards, choice))
        best = cost if best is None else min(best, cost)
    return best


def random_case(rng: random.Random) -> tuple[list[int], int, list[Offer]]:
    n = rng.randint(1, 5)
    shards = sorted(rng.sample(range(n), rng.randint(1, n)))
    workers = [bytes([w]) for w in range(rng.randint(1, 4))]
    offers = [Offer(bid=i, worker=rng.choice(workers), unit_price=rng.randint(1, 12), capacity=rng.randint(1, 3))
              for i in range(rng.randint(0, 5))]
    return shards, n, offers


def assert_valid(pool: Pool, terms: JobTerms, shards: list[int], n: int, offers: list[Offer]) -> None:
    awarded = [k for _, ks in pool.entries for k in ks]
    assert sorted(awarded) == sorted(shards)
    for offer, ks in pool.entries:
        assert list(ks) == sorted(ks) and 0 < len(ks) <= offer.capacity
    taken: dict[bytes, int] = {}
    for offer, ks in pool.entries:
        taken[offer.worker] = taken.get(offer.worker, 0) + len(ks)
    for worker, count in taken.items():
        assert count <= max(o.capacity for o in offers if o.worker == worker)
    assert pool.cost == sum(terms.payment(k, n, o.unit_price) for o, ks in pool.entries for k in ks)


def test_the_pool_is_as_cheap_as_brute_force_on_random_small_jobs() -> None:
    rng = random.Random(14)
    covered = 0
    for _ in range(1500):
        shards, n, offers = random_case(rng)
        best = brute_force(UNEVEN, shards, n, offers)
        result = choose_pool(UNEVEN, shards, n, offers)
        if best is None:
            assert isinstance(result, Uncovered)
            continue
        covered += 1
        assert isinstance(result, Pool)
        assert_valid(result, UNEVEN, shards, n, offers)
        assert result.cost == best
    assert covered > 800  # the cases mostly have a pool: the comparison is not vacuous


def test_rounding_can_make_the_dearer_bid_the_better_home_for_the_big_shard() -> None:
    # shard 0 has 97,736 units, shard 1 has 130,315: at 10 per quote unit the big one pays 1 and
    # the small one 0; at 23 they pay 2 and 2. Big at the cheaper bid costs 1 + 2, at the dearer 0 + 2.
    terms = JobTerms(Service.GENERATE, items=7, units=228_052, seed=0)
    result = choose_pool(terms, [0, 1], 2, [Offer("cheap", b"a", 10, 1), Offer("dear", b"b", 23, 1)])
    assert isinstance(result, Pool)
    assert [(o.bid, ks) for o, ks in result.entries] == [("cheap", (0,)), ("dear", (1,))]
    assert result.cost == 2


def test_a_worker_that_bid_twice_takes_no_more_than_its_largest_bid() -> None:
    terms = JobTerms(Service.GENERATE, items=4, units=4_000_000, seed=0)
    offers = [Offer("cheap", b"w", 1, 2), Offer("again", b"w", 2, 2), Offer("other", b"x", 5, 4)]
    result = choose_pool(terms, [0, 1, 2, 3], 4, offers)
    assert isinstance(result, Pool)
    assert [(o.bid, ks) for o, ks in result.entries] == [("cheap", (0, 1)), ("other", (2, 3))]


def test_ties_go_to_the_lower_price_then_the_lower_worker_id_whatever_the_order_given() -> None:
    terms = JobTerms(Service.GENERATE, items=2, units=2_000_000, seed=0)
    offers = [Offer("z", b"z", 7, 1), Offer("b", b"b", 7, 1), Offer("a", b"a", 7, 1), Offer("dear", b"0", 8, 2)]
    for order in itertools.permutations(offers):
        result = choose_pool(terms, [0, 1], 2, list(order))
        assert isinstance(result, Pool)
        assert [(o.bid, ks) for o, ks in result.entries] == [("a", (0,)), ("b", (1,))]


def test_the_same_bids_always_give_the_same_pool() -> None:
    rng = random.Random(3)
    for _ in range(200):
        shards, n, offers = random_case(rng)
        assert choose_pool(UNEVEN, shards, n, offers) == choose_pool(UNEVEN, shards, n, list(offers))


def test_no_bids_says_so() -> None:
    result = choose_pool(UNEVEN, [0, 1], 2, [])
    assert result == Uncovered(NO_BIDS, 2, 0, None)
    assert "no bids" in result.describe()


def test_too_few_bids_at_any_price_says_how_many_shards_are_short() -> None:
    result = choose_pool(UNEVEN, [0, 1, 2, 3], 4, [Offer(1, b"a", 5, 1), Offer(2, b"b", 9, 2)])
    assert isinstance(result, Uncovered)
    assert (result.reason, result.short, result.covering_price) == (TOO_FEW, 1, None)
    assert "1 short" in result.describe()


def test_too_dear_names_the_max_price_that_covers_and_that_price_does_cover() -> None:
    rng = random.Random(5)
    checked = 0
    for _ in range(500):
        shards, n, offers = random_case(rng)
        max_price = rng.randint(1, 12)
        result = choose_pool(UNEVEN, shards, n, offers, max_price=max_price)
        if not (isinstance(result, Uncovered) and result.reason == TOO_DEAR):
            continue
        checked += 1
        price = result.covering_price
        assert price is not None and price > max_price
        assert result.short > 0
        assert isinstance(choose_pool(UNEVEN, shards, n, offers, max_price=price), Pool)
        assert isinstance(choose_pool(UNEVEN, shards, n, offers, max_price=price - 1), Uncovered)
    assert checked > 30


def test_offers_above_the_max_price_are_never_in_the_pool() -> None:
    offers = [Offer("dear", b"a", 10, 3), Offer("fair", b"b", 6, 3)]
    result = choose_pool(UNEVEN, [0, 1, 2], 3, offers, max_price=8)
    assert isinstance(result, Pool)
    assert [o.bid for o, _ in result.entries] == ["fair"]


def test_nothing_to_award_is_an_empty_pool() -> None:
    assert choose_pool(UNEVEN, [], 3, [Offer(1, b"a", 5, 1)]) == Pool((), 0)


@pytest.mark.parametrize("shards, n", [([0, 0], 2), ([2], 2), ([-1], 2)])
def test_a_bad_shard_list_is_the_callers_bug(shards: list[int], n: int) -> None:
    with pytest.raises(ValueError):
        choose_pool(UNEVEN, shards, n, [Offer(1, b"a", 5, 3)])
