"""Checks shared by the marketplace's consensus tests (listings, the treasury): refusals pinned exactly.

A decoding refusal (`test_listing_types`, `test_treasury_types`) is pinned as the whole text of
the error (reason, detail, expected and got: what a peer or a user is shown), and its kind must be
MALFORMED: bytes that do not decode are the sender's fault whatever the field.

A rule's refusal (`test_listings`, `test_treasury`) is pinned as the mempool's check gives it,
kind included: the kind decides whether the peer that relayed the transaction is penalised.
What a rule moves is read from the block's effects (`block_events`), burns of nobody's account
included, which the event index does not keep.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from chain import encoding as enc
from chain.assembly import check_against_tip
from chain.chainstate import ChainState, _StateView
from chain.errors import DecodeError, InvalidBlock, InvalidTransaction, RejectKind
from chain.jobs import Event
from chain.params import MAX_SUPPLY_UNITS
from chain.state import Account, BlockEffects, apply_block
from chain.store import Overlay
from chain.types import Transaction
from tests.support.chain_builders import make_block
from tests.support.market import refusal


def refusal_text(decode: Callable[[Any], Any], value: Any) -> str:
    """The text of the DecodeError ``decode(value)`` raises (which must be MALFORMED)."""
    with pytest.raises(DecodeError) as info:
        decode(value)
    assert info.value.kind is RejectKind.MALFORMED, info.value
    return str(info.value)


def out_of_range(field: str, got: int, lo: int = 0, hi: int = enc.MAX_INT) -> str:
    """The text of `chain.encoding.as_int`'s refusal of ``got`` for ``field``."""
    return f"bad-encoding: {field}: out of range (expected '[{lo}, {hi}]', got {got})"


def wrong_length(field: str, expected: int, got: int) -> str:
    """The text of `chain.encoding.as_bytes`' refusal of bytes of the wrong length."""
    return f"bad-encoding: {field}: wrong length (expected {expected}, got {got})"


def swap(fields: list[Any], index: int, value: Any) -> list[Any]:
    """``fields`` with the one at ``index`` replaced."""
    return [value if i == index else f for i, f in enumerate(fields)]


def packed(decode: Callable[[bytes], Any]) -> Callable[[list[Any]], Any]:
    """``decode`` of a record, fed the canonical encoding of a list of fields."""
    return lambda fields: decode(enc.pack(fields))


def rejection(chain: ChainState, transaction: Transaction) -> tuple[str, str, Any, Any, RejectKind]:
    """(reason, detail, expected, got, kind) of the mempool's refusal of ``transaction``; a block
    carrying it must be refused (moving nothing) with the same reason and details."""
    in_block = refusal(chain, transaction)
    with pytest.raises(InvalidTransaction) as info:
        check_against_tip(chain, transaction)
    error = info.value
    where = f"tx 0 ({transaction.txid.hex()[:16]})"
    assert (in_block.detail, in_block.expected, in_block.got) == (
        f"{where}: {error.detail}" if error.detail else where, error.expected, error.got)
    return error.reason, error.detail, error.expected, error.got, error.kind


class _Holding:
    """A chain's state in which the account ``rich`` holds all a balance may: unreachable from a
    consistent state (balances sum to the capped supply), it is how a credit that would overflow
    is reached (as `test_rejections.test_balance_overflow` does for a transfer)."""

    def __init__(self, state: _StateView, rich: bytes) -> None:
        self.state, self.rich = state, rich

    def account(self, account_id: bytes) -> Account | None:
        return Account(MAX_SUPPLY_UNITS, 0) if account_id == self.rich else self.state.account(account_id)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.state, name)


def _effects(chain: ChainState, txs: tuple[Transaction, ...], rich: bytes | None = None) -> BlockEffects:
    state = _StateView(Overlay(chain.kv), chain.decoded_accounts, chain.decoded_jobs)
    reader = state if rich is None else _Holding(state, rich)
    return apply_block(chain.params, reader, make_block(chain, txs), chain.supply, chain_id=chain.chain_id,
                       adjudicator=chain.adjudicator, treasury=chain.treasury)


def block_events(chain: ChainState, *txs: Transaction) -> tuple[Event, ...]:
    """The events of a block with ``txs`` on the tip, as `chain.state.apply_block` gives them (the
    chain itself does not move)."""
    return _effects(chain, txs).events


def overflow_refusal(chain: ChainState, transaction: Transaction, rich: bytes) -> str:
    """The reason a block with ``transaction`` is refused for when the account ``rich`` already
    holds the most a balance may."""
    with pytest.raises(InvalidBlock) as info:
        _effects(chain, (transaction,), rich)
    assert (info.value.detail, info.value.expected) == ("balance overflows", f"<= {MAX_SUPPLY_UNITS}")
    return info.value.reason
