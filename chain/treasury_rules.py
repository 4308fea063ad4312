"""The treasury's state transition: voucher redemption and buybacks, each refusal named.

These run like the market rules (`chain.market_rules.apply_market` dispatches to `TREASURY_RULES`)
after the envelope's nonce, through the block's `Ledger`; the treasury is the genesis account
named "treasury" (`MarketContext.treasury`).

- Redeem: the voucher must be for this chain, signed by the treasury's key, unexpired, not
  redeemed before, and redeemed by its beneficiary, or with a claim that its claim key signed
  for the sender (so a voucher seen in a relayed transaction cannot be redeemed by another
  account: `chain.treasury_types.Voucher`). Its amount leaves the
  treasury's balance; the fee is paid out of it and the rest lands in the sender's account, so a
  new user with an empty account can redeem. The voucher id is recorded for good
  (`schema.VOUCHER_REDEEMED`); a reorg that undoes the block undoes the record, and the voucher
  may then be redeemed again on the new branch, once.
- BuybackOffer: only the treasury posts one; it records the offer (its id is the tx id).
- BuybackSell: the sold amount is burned (supply: issued - burned falls) and a `Claim` is
  recorded for the treasury to settle off chain at the offer's reference price.
Supply still holds: balances + escrow + bonded + unbonding = issued - burned, after every block.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from chain import schema
from chain.crypto import address_hash, verify
from chain.errors import InvalidTransaction, RejectKind
from chain.jobs import Event, evolve
from chain.treasury_types import BuybackOffer, BuybackSell, Claim, Offer, Redeem, Redemption

if TYPE_CHECKING:
    from chain.market_rules import MarketContext
    from chain.state import Ledger
    from chain.types import Transaction


def _fail(reason: str, detail: str = "", **kw: Any) -> InvalidTransaction:
    return InvalidTransaction(reason, detail, **kw)


def _treasury(ctx: MarketContext) -> bytes:
    if not ctx.treasury:
        raise _fail("no-treasury", "this network's genesis names no treasury account")
    return ctx.treasury


def voucher_key(voucher_id: bytes) -> bytes:
    return schema.VOUCHER_REDEEMED + voucher_id


def offer_key(offer_id: bytes) -> bytes:
    return schema.BUYBACK_OFFER + offer_id


def claim_key(claim_id: bytes) -> bytes:
    return schema.BUYBACK_CLAIM + claim_id


def apply_redeem(ledger: Ledger, ctx: MarketContext, tx: Transaction, payload: Redeem) -> None:
    voucher = payload.voucher
    if voucher.chain_id != ctx.chain_id:
        raise _fail("voucher-wrong-chain", "the voucher pays on another network",
                    expected=ctx.chain_id.hex()[:16], got=voucher.chain_id.hex()[:16])
    treasury = _treasury(ctx)
    if address_hash(voucher.treasury) != treasury or not verify(
        voucher.treasury, voucher.signing_message(), voucher.signature
    ):
        raise _fail("voucher-forged", "not signed by the treasury's key")
    if ctx.height > voucher.expiry:
        raise _fail("voucher-expired", expected=f"<= {voucher.expiry}", got=ctx.height, kind=RejectKind.STALE)
    redeemer = tx.sender_account
    if voucher.beneficiary and voucher.beneficiary != redeemer:
        raise _fail("voucher-beneficiary-mismatch", "the voucher names another account",
                    expected=voucher.beneficiary.hex(), got=redeemer.hex())
    if voucher.claim_key and not verify(voucher.claim_key, voucher.claim_message(redeemer), payload.claim):
        raise _fail("voucher-claim-invalid", "the claim does not name this sender: only the holder of the "
                    "voucher's secret can redeem it")
    if voucher.beneficiary and payload.claim:
        raise _fail("voucher-claim-invalid", "a voucher for a beneficiary takes no claim")
    key = voucher_key(voucher.voucher_id)
    if ledger.record(key) is not None:
        raise _fail("voucher-already-redeemed", voucher.voucher_id.hex(), kind=RejectKind.STALE)
    if tx.fee > voucher.amount:
        raise _fail("fee-above-voucher", "the fee is paid out of the voucher", expected=f"<= {voucher.amount}",
                    got=tx.fee)
    account = ledger.get(treasury)
    if account.balance < voucher.amount:
        raise _fail("treasury-balance-short", expected=f">= {voucher.amount}", got=account.balance)
    ledger.set(treasury, evolve(account, balance=account.balance - voucher.amount))
    ledger.credit(redeemer, voucher.amount - tx.fee, "balance-overflow")
    ledger.set_record(key, Redemption(ctx.height, redeemer, voucher.amount, tx.fee).encode())
    note = f"voucher {voucher.voucher_id.hex()}"
    ledger.event(Event("voucher", treasury, voucher.amount, note=note))
    ledger.event(Event("redeem", redeemer, voucher.amount - tx.fee, note=note))


def apply_offer(ledger: Ledger, ctx: MarketContext, tx: Transaction, payload: BuybackOffer) -> None:
    if tx.sender_account != _treasury(ctx):
        raise _fail("not-treasury", "only the treasury posts buyback offers")
    if payload.expiry < ctx.height:
        raise _fail("offer-expiry-past", expected=f">= {ctx.height}", got=payload.expiry)
    offer = Offer(payload.currency, payload.price, payload.cap, 0, payload.expiry, ctx.height)
    ledger.set_record(offer_key(tx.txid), offer.encode())


def apply_sell(ledger: Ledger, ctx: MarketContext, tx: Transaction, payload: BuybackSell) -> None:
    stored = ledger.record(offer_key(payload.offer_id))
    if stored is None:
        raise _fail("unknown-offer", payload.offer_id.hex(), kind=RejectKind.MISSING)
    offer = Offer.decode(stored)
    if ctx.height > offer.expiry:
        raise _fail("offer-expired", expected=f"<= {offer.expiry}", got=ctx.height, kind=RejectKind.STALE)
    seller = tx.sender_account
    if seller == _treasury(ctx):
        raise _fail("treasury-cannot-sell", "the treasury would owe itself")
    if payload.amount > offer.remaining:
        raise _fail("offer-over-cap", "the offer buys no more than its cap", expected=f"<= {offer.remaining}",
                    got=payload.amount, kind=RejectKind.STALE)
    account = ledger.get(seller)
    if payload.amount > account.balance:
        raise _fail("insufficient-balance", expected=f">= {payload.amount}", got=account.balance)
    ledger.set(seller, evolve(account, balance=account.balance - payload.amount))
    ledger.set_record(offer_key(payload.offer_id), replace(offer, sold=offer.sold + payload.amount).encode())
    claim = Claim(seller, payload.offer_id, payload.amount, offer.price, offer.currency, ctx.height)
    ledger.set_record(claim_key(tx.txid), claim.encode())
    ledger.event(Event("sell", seller, payload.amount, note=f"buyback {payload.offer_id.hex()}"))
    ledger.burn(payload.amount, b"", -1, "buyback")


TREASURY_RULES: dict[type, Callable[[Ledger, MarketContext, Transaction, Any], None]] = {
    Redeem: apply_redeem, BuybackOffer: apply_offer, BuybackSell: apply_sell,
}
