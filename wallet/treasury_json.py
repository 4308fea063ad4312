"""The treasury's payloads as readable JSON and back (`wallet.payload_json` delegates here).

- redeem: ``{"voucher": "ntkv1...", "redeemer": ADDRESS}`` (the ticket; its claim is signed for the
  redeemer), or as written back ``{"voucher": HEX, "claim": HEX}``; plus what the voucher says
  (id, amount, beneficiary, expiry), written for people and, when read back, checked.
- buyback-offer: ``{"currency": "USD", "price": "1.25", "cap": "1000", "expiry": 5000}``: the price
  is a decimal in the currency's units per NTK (at most 6 decimals: the chain keeps millionths),
  the cap in NTK, the expiry a block height.
- buyback-sell: ``{"offer": "<64 hex>", "amount": "12.5"}``.
"""

from __future__ import annotations

import re
from typing import Any

from chain.amounts import format_ntk
from chain.crypto import encode_address
from chain.errors import ChainError
from chain.treasury_types import (
    VOUCHER_TEXT_PREFIX,
    BuybackOffer,
    BuybackSell,
    Redeem,
    Voucher,
    VoucherTicket,
)
from wallet.keys import WalletError

PRICE_DECIMALS = 6
MICRO = 1_000_000  # 10^PRICE_DECIMALS
_PRICE = re.compile(r"\d{1,12}(\.\d{1,6})?")
REQUIRED: dict[type, tuple[str, ...]] = {
    Redeem: ("voucher",), BuybackOffer: ("currency", "price", "cap", "expiry"), BuybackSell: ("offer", "amount"),
}
OPTIONAL: dict[type, tuple[str, ...]] = {Redeem: ("claim", "redeemer", "voucher_id", "amount", "beneficiary", "expiry")}


def format_price(micro: int) -> str:
    """"1.25" for 1_250_000 millionths."""
    whole, frac = divmod(micro, MICRO)
    return f"{whole}.{frac:0{PRICE_DECIMALS}d}".rstrip("0").rstrip(".")


def parse_price(value: Any, name: str = "price") -> int:
    """Millionths of the currency from a decimal ("1.25") or a whole number."""
    text = str(value).strip() if isinstance(value, (str, int)) and not isinstance(value, bool) else ""
    if not _PRICE.fullmatch(text):
        raise WalletError(f"bad {name}: a decimal with at most {PRICE_DECIMALS} decimals, e.g. 1.25, got {value!r}",
                          reason="bad-price")
    whole, _, frac = text.partition(".")
    micro = int(whole) * MICRO + int(frac.ljust(PRICE_DECIMALS, "0") or "0")
    if micro < 1:
        raise WalletError(f"bad {name}: must be more than 0", reason="bad-price")
    return micro


def parse_voucher(text: Any) -> VoucherTicket:
    """A voucher ticket from its pasted string (`VoucherTicket.to_text`); a damaged one is named."""
    if not isinstance(text, str):
        raise WalletError("a voucher is the string that starts with ntkv1", reason="bad-voucher")
    try:
        return VoucherTicket.from_text(text)
    except ChainError as exc:
        raise WalletError(f"not a voucher: {exc.detail or exc.reason}", reason="bad-voucher") from None


def voucher_json(voucher: Voucher, hrp: str) -> dict[str, Any]:
    return {
        "voucher_id": voucher.voucher_id.hex(), "amount": format_ntk(voucher.amount),
        "beneficiary": encode_address(voucher.beneficiary, hrp) if voucher.beneficiary else None,
        "expiry": voucher.expiry,
    }


def _redeem_from_json(doc: dict[str, Any], hrp: str) -> Redeem:
    """From the ticket's string (its claim then signed for ``redeemer``, an address), or from the
    voucher's hex and the claim's (what `treasury_to_json` writes)."""
    from wallet.payload_json import address_param, hex_param

    text = doc["voucher"]
    if isinstance(text, str) and text.strip().startswith(VOUCHER_TEXT_PREFIX):
        ticket = parse_voucher(text)
        if ticket.claim_seed and doc.get("redeemer") is None:
            raise WalletError("redeem: a voucher without a beneficiary is claimed for an account: give redeemer",
                              reason="bad-tx-file")
        payload = ticket.redeem(address_param(doc["redeemer"], hrp, "redeemer") if ticket.claim_seed else b"")
    else:
        try:
            voucher = Voucher.decode(hex_param(text, "voucher"))
        except ChainError as exc:
            raise WalletError(f"redeem: not a voucher: {exc.detail or exc.reason}", reason="bad-voucher") from None
        claim = doc.get("claim")
        payload = Redeem(voucher, hex_param(claim, "claim", 64) if claim is not None else b"")
    derived = voucher_json(payload.voucher, hrp)
    wrong = [k for k in derived if k in doc and doc[k] != derived[k]]
    if wrong:
        raise WalletError(f"redeem: {', '.join(wrong)} do not match the voucher", reason="bad-tx-file")
    return payload


def treasury_to_json(payload: Redeem | BuybackOffer | BuybackSell, hrp: str) -> dict[str, Any]:
    if isinstance(payload, Redeem):
        return {"voucher": payload.voucher.encode().hex(), "claim": payload.claim.hex() or None,
                **voucher_json(payload.voucher, hrp)}
    if isinstance(payload, BuybackOffer):
        return {"currency": payload.currency.decode(), "price": format_price(payload.price),
                "cap": format_ntk(payload.cap), "expiry": payload.expiry}
    return {"offer": payload.offer_id.hex(), "amount": format_ntk(payload.amount)}


def treasury_from_json(payload_type: type, doc: dict[str, Any], hrp: str) -> Redeem | BuybackOffer | BuybackSell:
    from wallet.payload_json import hex_param, int_param, ntk_param

    if payload_type is Redeem:
        return _redeem_from_json(doc, hrp)
    if payload_type is BuybackOffer:
        currency = doc["currency"]
        if not isinstance(currency, str) or not currency.isascii():
            raise WalletError("currency must be a code such as USD", reason="bad-currency")
        return BuybackOffer(currency.strip().upper().encode(), parse_price(doc["price"]), ntk_param(doc["cap"], "cap"),
                            int_param(doc["expiry"], "expiry"))
    return BuybackSell(hex_param(doc["offer"], "offer", 32), ntk_param(doc["amount"], "amount"))
