"""RPC reads of the treasury's records (docs/rpc.md, "Treasury and supply"): the supply split into
issued, burned and circulating; a voucher's status by id (or by its string); buyback offers and
the claims sold into them. Everything is read from the chain state at the tip."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from chain import schema
from chain.crypto import AddressError, decode_address, encode_address
from chain.errors import ChainError
from chain.treasury_rules import offer_key, voucher_key
from chain.treasury_types import (
    VOUCHER_ID_SIZE,
    VOUCHER_TEXT_PREFIX,
    Claim,
    Offer,
    Redemption,
    Voucher,
)
from neurod.market_json import address_or_none, amount
from neurod.rpc import INVALID_PARAMS, RpcError, id_param
from wallet.treasury_json import format_price

if TYPE_CHECKING:
    from chain.chainstate import ChainState
    from neurod.node import Node

NOT_FOUND = -32011  # as neurod.rpc_methods
BAD_ADDRESS = -32012  # as neurod.rpc_methods
MAX_CLAIMS = 1_000


def supply_json(chain: ChainState) -> dict[str, Any]:
    """Issued (genesis allocations + block rewards), burned (slashes, fees, buybacks), and
    circulating = issued - burned, with the treasury's balance (unsold tokens it holds)."""
    totals = chain.totals()
    genesis = chain.genesis.supply
    treasury = chain.genesis.names.get("treasury", b"")
    held = chain.account(treasury) if treasury else None
    return {
        "height": chain.height, **amount("supply", chain.supply), **amount("issued", totals.issued),
        **amount("genesis", genesis), **amount("rewards", totals.issued - genesis),
        **amount("burned", totals.burned), **amount("circulating", totals.issued - totals.burned),
        **amount("staked", totals.staked),
        "treasury": encode_address(treasury, chain.params.hrp) if treasury else None,
        **amount("treasury_balance", held.balance if held else 0),
    }


def _voucher_id(value: Any) -> tuple[bytes, Voucher | None]:
    """A voucher id from 32 hex characters, or from the hex of a whole voucher (then also the
    voucher; never the buyer's ticket string, whose claim secret has no business here)."""
    wanted = f"voucher must be its id ({VOUCHER_ID_SIZE * 2} hex) or the hex of the voucher"
    if isinstance(value, str) and value.strip().startswith(VOUCHER_TEXT_PREFIX):
        raise RpcError(INVALID_PARAMS, f"{wanted}, not the {VOUCHER_TEXT_PREFIX} string (its claim secret stays "
                       "with its holder)", {"param": "voucher", "reason": "bad-voucher"})
    try:
        raw = bytes.fromhex(value) if isinstance(value, str) else None
    except ValueError:
        raw = None
    if raw is None:
        raise RpcError(INVALID_PARAMS, f"{wanted}: not a hex string", {"param": "voucher", "reason": "bad-voucher"})
    if len(raw) == VOUCHER_ID_SIZE:
        return raw, None
    try:
        voucher = Voucher.decode(raw)
    except ChainError as exc:
        raise RpcError(INVALID_PARAMS, f"{wanted} ({exc.detail or exc.reason})",
                       {"param": "voucher", "reason": "bad-voucher"}) from None
    return voucher.voucher_id, voucher


def offer_json(offer_id: bytes, offer: Offer, height: int) -> dict[str, Any]:
    return {
        "offer": offer_id.hex(), "currency": offer.currency.decode(), "price": format_price(offer.price),
        "price_micro": offer.price, **amount("cap", offer.cap), **amount("sold", offer.sold),
        **amount("remaining", offer.remaining), "expiry": offer.expiry, "posted": offer.posted,
        "open": height < offer.expiry and offer.remaining > 0,
    }


def claim_json(claim_id: bytes, claim: Claim, hrp: str) -> dict[str, Any]:
    return {
        "claim": claim_id.hex(), "seller": encode_address(claim.seller, hrp), "offer": claim.offer_id.hex(),
        **amount("amount", claim.amount), "currency": claim.currency.decode(), "price": format_price(claim.price),
        "value": format_price(claim.value_micro), "value_micro": claim.value_micro, "height": claim.height,
    }


def treasury_methods(node: Node) -> dict[str, Callable[..., Awaitable[Any]]]:
    chain = node.chain
    hrp = chain.params.hrp

    async def voucher_status(voucher: Any) -> dict[str, Any]:
        """Whether a voucher was redeemed on the main chain, where and by whom; given the voucher,
        also what it says and whether it is still good at the next block."""
        voucher_id, decoded = _voucher_id(voucher)
        stored = chain.record(voucher_key(voucher_id))
        found = Redemption.decode(stored) if stored is not None else None
        out: dict[str, Any] = {
            "voucher_id": voucher_id.hex(), "redeemed": found is not None,
            "height": found.height if found else None,
            "account": address_or_none(found.account, hrp) if found else None,
            **amount("amount", found.amount if found else 0), **amount("fee", found.fee if found else 0),
        }
        if decoded is not None:
            out.update({
                **amount("amount", decoded.amount), "expiry": decoded.expiry,
                "beneficiary": address_or_none(decoded.beneficiary, hrp),
                "this_chain": decoded.chain_id == chain.chain_id,
                "expired": chain.height + 1 > decoded.expiry,
            })
        return out

    async def buyback_offers(open_only: Any = False) -> list[dict[str, Any]]:
        """Every buyback offer, newest first (``open_only``: unexpired and not sold out)."""
        if not isinstance(open_only, bool):  # "false" or 1 would otherwise mean "all", silently
            raise RpcError(INVALID_PARAMS, "open_only must be true or false", {"param": "open_only"})
        rows = [offer_json(offer_id, Offer.decode(data), chain.height)
                for offer_id, data in chain.records(schema.BUYBACK_OFFER)]
        rows.sort(key=lambda row: (-row["posted"], row["offer"]))
        return [row for row in rows if row["open"] or not open_only]

    async def buyback_offer(offer: Any) -> dict[str, Any]:
        offer_id = id_param(offer, "offer")
        stored = chain.record(offer_key(offer_id))
        if stored is None:
            raise RpcError(NOT_FOUND, f"unknown buyback offer {offer_id.hex()}", {"reason": "unknown-offer"})
        return offer_json(offer_id, Offer.decode(stored), chain.height)

    async def buyback_claims(offer: Any = None, seller: Any = None, limit: Any = 100) -> list[dict[str, Any]]:
        """Claims the treasury owes, newest first, filtered by offer and by seller."""
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_CLAIMS:
            raise RpcError(INVALID_PARAMS, f"limit must be an integer in [1, {MAX_CLAIMS}]", {"param": "limit"})
        # the offer as bytes: compared as text, "0x"-prefixed or upper-case hex matched nothing
        offer_id = id_param(offer, "offer") if offer is not None else None
        seller_id = None
        if seller is not None:
            try:
                seller_id = decode_address(seller, hrp)
            except AddressError as exc:
                raise RpcError(BAD_ADDRESS, str(exc), {"param": "seller", "reason": exc.reason}) from None
        claims = [(claim_id, Claim.decode(data)) for claim_id, data in chain.records(schema.BUYBACK_CLAIM)]
        rows = [claim_json(claim_id, claim, hrp) for claim_id, claim in claims
                if offer_id in (None, claim.offer_id) and seller_id in (None, claim.seller)]
        rows.sort(key=lambda row: (-row["height"], row["claim"]))
        return rows[:limit]

    return {"voucher_status": voucher_status, "buyback_offers": buyback_offers, "buyback_offer": buyback_offer,
            "buyback_claims": buyback_claims}
