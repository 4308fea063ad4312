"""Pool selection: the cheapest assignment of a job's open shards to the bids a client holds.

Strategy, not consensus: the chain checks whatever award a client posts (prices, capacities,
stakes); which bids to buy is the client's choice, and this is the choice that pays least.

The problem. Each offer (a bid) has a unit price and a capacity, the shards it may still take
(``min(bid.max_shards - already used, what the worker finishes before the deadline)``, computed
by the caller). Shard ``k`` of ``n`` costs ``terms.payment(k, n, price)``: its units times the
price, rounded down to base units. Every listed shard must go to some offer; the total payment
is to be as small as possible.

Several offers of one worker (a re-bid at a new price) share the worker's one machine: the
worker takes at most the largest of their capacities in all, since each capacity already says
what that machine can finish by the deadline. The chain would accept more (it counts per bid);
counting per worker keeps an award from overloading a worker that bid twice.

Why cheapest-first is exact here, rounding included (the brute force in
`tests/unit/neurod/test_market_selection.py` checks it on thousands of small cases):

1. Which offers take how many shards. The sets of shards-per-slot an award may use (a slot is one
   shard's place at one offer) are the independent sets of a laminar matroid (offer capacities
   nested inside worker capacities), truncated at the shard count. Filling slots cheapest first
   yields a basis whose i-th cheapest price is at most the i-th cheapest price of any other basis
   (Gale, 1968). Take any optimal award and keep its shard-to-rank mapping while moving each
   shard to the greedy basis's slot of the same rank: ``payment`` never decreases in the price,
   so no shard costs more. The greedy slots are therefore part of an optimal award.
2. Which shard goes in which slot. ``JobTerms.shard_range`` splits items into ranges whose sizes
   differ by at most one, so a job's shards have at most two unit counts, small and big. With
   the slots fixed the small/big choice is all that is left: the cost is the sum of every slot's
   small-shard payment plus, for the slots holding a big shard, the extra ``payment(big) -
   payment(small)`` at that slot's price. Giving the big shards to the slots with the smallest
   extras is therefore optimal. (Without rounding this is "the biggest shards to the cheapest
   bids"; with rounding the smallest extra need not sit at the lowest price.)

Ties are broken by price, then worker id, then the offers' order in the input, and equal
shards go in ascending order, so every node picks the same pool from the same bids.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from chain.job_spec import JobTerms

NO_BIDS = "no-bids"  # nothing offered at all
TOO_DEAR = "too-dear"  # the offers seen would cover the job, but only above its max price
TOO_FEW = "too-few"  # the offers seen cannot cover the job at any price

PoolEntry = tuple["Offer", tuple[int, ...]]  # an offer and the shards it wins, ascending


@dataclass(frozen=True, slots=True)
class Offer:
    """One bid as the selection sees it."""

    bid: Any  # the caller's handle (a `Bid`, a `BidNotice`, an index): returned untouched
    worker: bytes  # whose machine: offers of one worker share its capacity
    unit_price: int  # base units per quote unit
    capacity: int  # shards it may take: min(bid's max shards left, what finishes by the deadline)


@dataclass(frozen=True, slots=True)
class Pool:
    """The cheapest award: each used offer with its shards, and the total payment."""

    entries: tuple[PoolEntry, ...]  # cheapest offer first; every listed shard exactly once
    cost: int  # sum of terms.payment(k, n, offer.unit_price) over every awarded shard


@dataclass(frozen=True, slots=True)
class Uncovered:
    """Why no pool covers the shards, and what would have."""

    reason: str  # NO_BIDS, TOO_DEAR or TOO_FEW
    shards: int  # shards to cover
    capacity: int  # shards the offers at or under the max price could take together
    covering_price: int | None  # the lowest max price at which the offers seen cover every shard

    @property
    def short(self) -> int:
        """Shards no offer at or under the max price could take."""
        return self.shards - self.capacity

    def describe(self) -> str:
        """One sentence for the client: what went wrong and what would fix it."""
        if self.reason == NO_BIDS:
            return (f"no bids for {self.shards} shards: raise the max price or lengthen the "
                    "deadline so that workers' floors and speeds can reach it")
        if self.reason == TOO_DEAR:
            return (f"the bids at or under the max price cover {self.capacity} of {self.shards} "
                    f"shards ({self.short} short); a max price of {self.covering_price} would cover "
                    "them all with the bids seen")
        return (f"the bids seen cover {self.capacity} of {self.shards} shards ({self.short} short) "
                "at any price: lengthen the deadline or split the job into fewer shards")


def choose_pool(terms: JobTerms, shards: Sequence[int], n: int, offers: Sequence[Offer],
                max_price: int | None = None) -> Pool | Uncovered:
    """The cheapest award of ``shards`` (indices of the job's ``n``) to ``offers``.

    Offers priced above ``max_price`` (when given) are left out of the pool; they still count
    towards ``Uncovered.covering_price``. Raises ValueError on a caller's bug (a shard out of
    range or listed twice, a negative capacity or price)."""
    _check(shards, n, offers)
    order = sorted(range(len(offers)), key=lambda i: (offers[i].unit_price, offers[i].worker, i))
    ranked = [offers[i] for i in order if offers[i].capacity > 0]
    eligible = [o for o in ranked if max_price is None or o.unit_price <= max_price]
    slots = _fill(eligible, len(shards))
    if len(slots) < len(shards):
        return _uncovered(ranked, len(shards), len(slots))
    placed = _place(terms, sorted(shards), n, [eligible[i].unit_price for i in slots])
    won: dict[int, list[int]] = {}
    for slot, shard in zip(slots, placed, strict=True):
        won.setdefault(slot, []).append(shard)
    entries = tuple((eligible[i], tuple(sorted(won[i]))) for i in sorted(won))
    cost = sum(terms.payment(k, n, offer.unit_price) for offer, ks in entries for k in ks)
    return Pool(entries, cost)


def _check(shards: Sequence[int], n: int, offers: Sequence[Offer]) -> None:
    if len(set(shards)) != len(shards):
        raise ValueError("a shard is listed twice")
    if any(not 0 <= k < n for k in shards):
        raise ValueError(f"shard indices must be 0..{n - 1}")
    if any(o.capacity < 0 or o.unit_price < 0 for o in offers):
        raise ValueError("offers need a capacity and a price of at least 0")


def _fill(ranked: Sequence[Offer], wanted: int) -> list[int]:
    """Slots cheapest first (the matroid greedy of step 1): for each slot, its offer's index in
    ``ranked``; stops at ``wanted`` slots."""
    left = {}
    for offer in ranked:
        left[offer.worker] = max(left.get(offer.worker, 0), offer.capacity)
    slots: list[int] = []
    for i, offer in enumerate(ranked):
        take = min(offer.capacity, left[offer.worker], wanted - len(slots))
        left[offer.worker] -= take
        slots.extend([i] * take)
        if len(slots) == wanted:
            break
    return slots


def _uncovered(ranked: Sequence[Offer], wanted: int, capacity: int) -> Uncovered:
    """Why the eligible offers fall short. The covering price is the first offer price at which
    the offers at or under it fill every slot (a worker's capacity counts only its offers at or
    under the price, as in the pool itself, so it is found by trying each price)."""
    if not ranked:
        return Uncovered(NO_BIDS, wanted, 0, None)
    for price in sorted({o.unit_price for o in ranked}):
        if len(_fill([o for o in ranked if o.unit_price <= price], wanted)) == wanted:
            return Uncovered(TOO_DEAR, wanted, capacity, price)
    return Uncovered(TOO_FEW, wanted, capacity, None)


def _place(terms: JobTerms, shards: list[int], n: int, prices: list[int]) -> list[int]:
    """The shard for each slot, given the slots' prices (step 2): the big shards go to the slots
    where they cost least extra. ``prices`` come cheapest first, so ties go to the cheaper slot."""
    units = {k: terms.shard_units(k, n) for k in shards}
    sizes = sorted(set(units.values()))
    if len(sizes) <= 1:
        return shards
    if len(sizes) > 2:  # shard_range sizes differ by at most one item: never happens
        raise ValueError("a job's shards have at most two sizes")
    small = [k for k in shards if units[k] == sizes[0]]
    big = [k for k in shards if units[k] == sizes[1]]
    big_k, small_k = big[0], small[0]  # shards of one size pay alike at one price
    extra = [terms.payment(big_k, n, p) - terms.payment(small_k, n, p) for p in prices]
    takes_big = set(sorted(range(len(prices)), key=lambda pos: (extra[pos], pos))[:len(big)])
    big_iter, small_iter = iter(big), iter(small)
    return [next(big_iter) if pos in takes_big else next(small_iter) for pos in range(len(prices))]
