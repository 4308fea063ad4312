"""The state transition of listings: one pure rule per kind, each refusal named.

They run inside `chain.state.apply_transaction`, dispatched by `chain.market_rules.apply_market`,
after the envelope's nonce and fee, over the block's `Ledger` (records through
`Ledger.record`/`set_record`, see `chain.records`).

Token flow: a purchase moves ``price`` from the buyer: ``price * protocol_fee_bp // 10_000`` to
the genesis treasury (burned when the genesis names none), the rest to the seller. Nothing is
escrowed: delivery is off chain and encrypted to the buyer's key, and what the buyer receives is
checked against the listed root, so the chain has nothing to hold back. Supply is untouched
except for a burned fee.

Refusals, cheapest first within each rule:
- Listing: ``listing-metrics-missing`` (a model without metrics), ``listing-metrics-not-model``.
- Delist: ``unknown-listing``, ``not-listing-seller``, ``listing-delisted``.
- Purchase: ``unknown-listing``, ``listing-delisted``, ``buy-own-listing``, ``price-too-low``
  (under the listed price), ``price-mismatch`` (over it: a buyer pays exactly what it signed
  and what is listed), ``insufficient-balance``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from chain import schema
from chain.errors import InvalidTransaction, RejectKind
from chain.jobs import Event, evolve
from chain.listing_types import (
    Delist,
    Listing,
    ListingKind,
    ListingRecord,
    Purchase,
    PurchaseRecord,
)
from chain.params import BASIS_POINTS

if TYPE_CHECKING:
    from chain.market_rules import MarketContext
    from chain.state import Ledger
    from chain.types import Transaction


def listing_store_key(listing_id: bytes) -> bytes:
    return schema.LISTING + listing_id


def purchase_store_key(purchase_id: bytes) -> bytes:
    return schema.PURCHASE + purchase_id


def sale_split(price: int, protocol_fee_bp: int) -> tuple[int, int]:
    """(to the seller, protocol fee) of a sale at ``price``."""
    fee = price * protocol_fee_bp // BASIS_POINTS
    return price - fee, fee


def read_listing(ledger: Ledger, listing_id: bytes) -> ListingRecord:
    data = ledger.record(listing_store_key(listing_id))
    if data is None:
        raise InvalidTransaction("unknown-listing", listing_id.hex(), kind=RejectKind.MISSING)
    return ListingRecord.decode(data)


def apply_listing(ledger: Ledger, ctx: MarketContext, tx: Transaction, payload: Listing) -> None:
    if payload.kind == ListingKind.MODEL and (payload.claim is None or not payload.claim.metrics):
        raise InvalidTransaction("listing-metrics-missing", "a model listing publishes its metrics")
    if payload.kind != ListingKind.MODEL and payload.claim is not None:
        raise InvalidTransaction("listing-metrics-not-model", "only a model listing carries metrics")
    record = ListingRecord(seller=tx.sender_account, offer=payload, listed=ctx.height)
    ledger.set_record(listing_store_key(tx.txid), record.encode())


def apply_delist(ledger: Ledger, ctx: MarketContext, tx: Transaction, payload: Delist) -> None:
    record = read_listing(ledger, payload.listing_id)
    if tx.sender_account != record.seller:
        raise InvalidTransaction("not-listing-seller", "only the seller may delist")
    if not record.active:
        raise InvalidTransaction("listing-delisted", f"at height {record.delisted}", kind=RejectKind.STALE)
    ledger.set_record(listing_store_key(payload.listing_id), evolve(record, delisted=ctx.height).encode())


def apply_purchase(ledger: Ledger, ctx: MarketContext, tx: Transaction, payload: Purchase) -> None:
    record = read_listing(ledger, payload.listing_id)
    if not record.active:
        raise InvalidTransaction("listing-delisted", f"at height {record.delisted}", kind=RejectKind.STALE)
    buyer = tx.sender_account
    if buyer == record.seller:
        raise InvalidTransaction("buy-own-listing", "the seller cannot buy its own listing")
    price = record.offer.price
    if payload.price < price:
        raise InvalidTransaction("price-too-low", expected=price, got=payload.price)
    if payload.price != price:
        raise InvalidTransaction("price-mismatch", "a purchase pays exactly the listed price",
                                 expected=price, got=payload.price)
    account = ledger.get(buyer)
    if price > account.balance:
        raise InvalidTransaction("insufficient-balance", "the listed price, after the fee",
                                 expected=f">= {price}", got=account.balance)
    ledger.set(buyer, evolve(account, balance=account.balance - price))
    to_seller, fee = sale_split(price, ctx.params.protocol_fee_bp)
    ledger.credit(record.seller, to_seller, "balance-overflow")
    purchase_id = tx.txid
    ledger.event(Event("pay", buyer, price, payload.listing_id, note="purchase"))
    ledger.event(Event("pay", record.seller, to_seller, payload.listing_id, note="sale"))
    if fee and ctx.treasury:
        ledger.credit(ctx.treasury, fee, "balance-overflow")
        ledger.event(Event("pay", ctx.treasury, fee, payload.listing_id, note="sale-fee"))
    elif fee:
        ledger.burned += fee
        ledger.event(Event("burn", b"", fee, payload.listing_id, note="sale-fee"))
    ledger.set_record(listing_store_key(payload.listing_id), evolve(record, sales=record.sales + 1).encode())
    ledger.set_record(purchase_store_key(purchase_id), PurchaseRecord(
        buyer=buyer, listing_id=payload.listing_id, price=price, delivery_key=payload.delivery_key,
        height=ctx.height).encode())


LISTING_RULES: dict[type, Callable[[Ledger, MarketContext, Transaction, Any], None]] = {
    Listing: apply_listing, Delist: apply_delist, Purchase: apply_purchase,
}
