"""The node's own transactions are announced again, less and less often, until they leave the mempool."""

from __future__ import annotations

from neurod.unbroadcast import Unbroadcast

A, B, C = b"a" * 32, b"b" * 32, b"c" * 32


def test_an_announced_transaction_is_announced_again_at_doubling_intervals_up_to_the_cap() -> None:
    own = Unbroadcast(first=2.0, cap=8.0)
    own.add(A, now=0.0)
    pooled = {A}.__contains__
    times = [t for t in range(40) if own.take_due(float(t), pooled)]
    assert times == [2, 6, 14, 22, 30, 38]  # +4, +8, then the cap


def test_a_restored_transaction_is_due_at_once_and_one_mined_is_forgotten() -> None:
    own = Unbroadcast(first=2.0, cap=8.0)
    own.add_all([A, B], now=10.0)
    own.add(A, now=10.0)  # known already: its schedule is kept
    assert own.take_due(10.0, {A, B}.__contains__) == [A, B]
    assert own.take_due(14.0, {A}.__contains__) == [A]  # B was mined
    assert len(own) == 1
    assert own.take_due(100.0, set().__contains__) == [] and len(own) == 0


def test_the_oldest_goes_when_the_set_is_full() -> None:
    own = Unbroadcast(limit=2)
    for txid in (A, B, C):
        own.add(txid, now=0.0, announced=False)
    assert own.take_due(0.0, {A, B, C}.__contains__) == [B, C]
