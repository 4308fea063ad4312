"""Wire and state types of the treasury: vouchers and their redemption, buyback offers and claims.

The treasury sells tokens off chain (card, bank) and hands the buyer a `VoucherTicket`, one
string: a `Voucher` (the treasury key's signature over chain, id, amount, expiry, and either a
beneficiary account or a claim key) and, without a beneficiary, the claim key's secret. The buyer
redeems it on chain with a `Redeem` transaction that carries the voucher and the claim key's
signature of the buyer's own account (never the secret), so a relaying node that copies the
voucher cannot redeem it for itself. The amount moves from the treasury's balance, and the fee
comes out of it (a new user holds nothing). The treasury buys tokens back with a `BuybackOffer`; a holder
sells into it with a `BuybackSell`, whose tokens are burned and whose claim (seller, offer, amount,
reference price) the treasury settles off chain. The rules are `chain.treasury_rules`.

Kinds 22-24: ten above the market's last kind (12), so that kinds added meanwhile elsewhere
(listings take 13 on) do not clash.

Vouchers expire at a block height, not a time: every node judges a height the same way in every
block, whereas a block's timestamp is the miner's word within two hours of drift, and every other
window of the chain (bids, jobs) is counted in blocks. The issuing command converts a duration to
a height with the network's block time.
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass, replace
from typing import Any, ClassVar

from chain import encoding as enc
from chain.crypto import PUBLIC_KEY_SIZE, SIGNATURE_SIZE, public_key_of, sign
from chain.errors import DecodeError
from chain.hashing import ADDRESS_HASH_SIZE, HASH_SIZE, hash256

MAX_AMOUNT = 2**63 - 1
MAX_HEIGHT = 2**63 - 1
VOUCHER_ID_SIZE = 16
VOUCHER_SIGN_DOMAIN = b"neuro-voucher-v1"
VOUCHER_CLAIM_DOMAIN = b"neuro-voucher-claim-v1"
VOUCHER_TEXT_PREFIX = "ntkv1"  # then base64url (no padding) of the encoding and a 4-byte check
VOUCHER_CHECK_PERSON = b"neuro-vouchertxt"
VOUCHER_CHECK_SIZE = 4
MAX_VOUCHER_BYTES = 320
CLAIM_SEED_SIZE = 32  # the secret of a voucher's claim key, in a ticket
CURRENCY = re.compile(rb"[A-Z]{3,8}")  # ISO 4217 codes, or a longer ticker


def _amount(value: Any, what: str) -> int:
    return enc.as_int(value, what, 1, MAX_AMOUNT)


def _currency(value: Any, what: str) -> bytes:
    code = enc.as_bytes(value, what, max_size=8)
    if not CURRENCY.fullmatch(code):
        raise DecodeError("bad-currency", f"{what}: 3 to 8 capital letters A-Z (e.g. USD)", got=code.hex())
    return code


@dataclass(frozen=True, slots=True)
class Voucher:
    """A treasury-signed promise of ``amount`` base units, redeemable once through ``expiry``.

    It is bound to its redeemer in one of two ways, never none: a ``beneficiary`` account that
    alone may redeem it, or a ``claim_key`` whose secret half the buyer holds (in its
    `VoucherTicket`) and signs the redeemer's account with. The voucher itself travels in the
    Redeem transaction, in public, before it is mined: were it redeemable by whoever sends it,
    any node that relays it could send it again from its own account first."""

    chain_id: bytes  # the network it pays on: a voucher for another chain is refused by name
    voucher_id: bytes  # 16 random bytes chosen by the issuer: the chain refuses a second redemption
    amount: int  # base units, the redeemer's fee included
    beneficiary: bytes  # 20-byte account id that alone may redeem it, or b""
    expiry: int  # last block height at which it may be redeemed
    treasury: bytes  # Ed25519 public key of the signer; its account must be the genesis treasury
    claim_key: bytes  # Ed25519 public key whose signature names the redeemer, or b"" (a beneficiary)
    signature: bytes = b""

    def _unsigned(self) -> list[Any]:
        return [self.chain_id, self.voucher_id, self.amount, self.beneficiary, self.expiry, self.treasury,
                self.claim_key]

    def signing_message(self) -> bytes:
        return VOUCHER_SIGN_DOMAIN + enc.pack(self._unsigned())

    def claim_message(self, redeemer: bytes) -> bytes:
        """What the claim key signs to let the account ``redeemer`` redeem this voucher."""
        return VOUCHER_CLAIM_DOMAIN + enc.pack([self.chain_id, self.voucher_id, redeemer])

    def to_list(self) -> list[Any]:
        return [*self._unsigned(), self.signature]

    def encode(self) -> bytes:
        return enc.pack(self.to_list())

    def signed(self, seed: bytes) -> Voucher:
        return replace(self, signature=sign(seed, self.signing_message()))

    @classmethod
    def from_list(cls, value: Any) -> Voucher:
        chain_id, voucher_id, amount, beneficiary, expiry, treasury, claim_key, signature = enc.fields(
            value, "voucher", 8)
        beneficiary = enc.as_bytes(beneficiary, "voucher.beneficiary", max_size=ADDRESS_HASH_SIZE)
        claim_key = enc.as_bytes(claim_key, "voucher.claim_key", max_size=PUBLIC_KEY_SIZE)
        if len(beneficiary) not in (0, ADDRESS_HASH_SIZE) or len(claim_key) not in (0, PUBLIC_KEY_SIZE):
            raise DecodeError("bad-encoding", "voucher: a beneficiary is an account id (20 bytes), a claim key "
                              "a public key (32 bytes)")
        if bool(beneficiary) == bool(claim_key):
            raise DecodeError("bad-voucher", "a voucher names either a beneficiary or a claim key")
        return cls(
            chain_id=enc.as_bytes(chain_id, "voucher.chain_id", size=HASH_SIZE),
            voucher_id=enc.as_bytes(voucher_id, "voucher.id", size=VOUCHER_ID_SIZE),
            amount=_amount(amount, "voucher.amount"),
            beneficiary=beneficiary,
            expiry=enc.as_int(expiry, "voucher.expiry", 0, MAX_HEIGHT),
            treasury=enc.as_bytes(treasury, "voucher.treasury", size=PUBLIC_KEY_SIZE),
            claim_key=claim_key,
            signature=enc.as_bytes(signature, "voucher.signature", size=SIGNATURE_SIZE),
        )

    @classmethod
    def decode(cls, data: bytes) -> Voucher:
        return cls.from_list(enc.unpack(data, what="voucher", max_size=MAX_VOUCHER_BYTES))


@dataclass(frozen=True, slots=True)
class VoucherTicket:
    """What the buyer is handed: the voucher and, for one without a beneficiary, the secret seed
    of its claim key. Never on chain: a Redeem carries the voucher and the claim's signature."""

    voucher: Voucher
    claim_seed: bytes = b""  # CLAIM_SEED_SIZE bytes when the voucher has a claim key; b"" for a beneficiary's

    def redeem(self, redeemer: bytes) -> Redeem:
        """The Redeem payload for the account ``redeemer`` (the sender of the transaction)."""
        claim = sign(self.claim_seed, self.voucher.claim_message(redeemer)) if self.claim_seed else b""
        return Redeem(self.voucher, claim)

    def to_text(self) -> str:
        """One string to paste: the prefix, then base64url of the encoding and a short check
        (a mistyped string is told apart from a forged one before anything is sent)."""
        data = enc.pack([self.voucher.to_list(), self.claim_seed])
        check = hash256(data, person=VOUCHER_CHECK_PERSON)[:VOUCHER_CHECK_SIZE]
        return VOUCHER_TEXT_PREFIX + base64.urlsafe_b64encode(data + check).decode().rstrip("=")

    @classmethod
    def from_text(cls, text: str) -> VoucherTicket:
        clean = "".join(text.split())
        if not clean.startswith(VOUCHER_TEXT_PREFIX):
            raise DecodeError("bad-voucher", f"a voucher starts with {VOUCHER_TEXT_PREFIX!r}")
        body = clean[len(VOUCHER_TEXT_PREFIX):]
        try:
            raw = base64.b64decode(body + "=" * (-len(body) % 4), altchars=b"-_", validate=True)
        except ValueError:
            raise DecodeError("bad-voucher", "not base64url after the prefix (mistyped?)") from None
        data, check = raw[:-VOUCHER_CHECK_SIZE], raw[-VOUCHER_CHECK_SIZE:]
        if len(raw) <= VOUCHER_CHECK_SIZE or hash256(data, person=VOUCHER_CHECK_PERSON)[:VOUCHER_CHECK_SIZE] != check:
            raise DecodeError("bad-voucher", "check mismatch: the string is damaged or mistyped")
        voucher, seed = enc.fields(enc.unpack(data, what="voucher ticket", max_size=MAX_VOUCHER_BYTES + 40),
                                   "voucher ticket", 2)
        decoded = Voucher.from_list(voucher)
        # a claim key's voucher carries its 32-byte secret, a beneficiary's none: a short seed
        # beside a beneficiary passed the key check below and failed at signing, as a crash
        seed_size = CLAIM_SEED_SIZE if decoded.claim_key else 0
        ticket = cls(decoded, enc.as_bytes(seed, "voucher ticket.claim_seed", size=seed_size))
        if seed_size and public_key_of(ticket.claim_seed) != decoded.claim_key:
            raise DecodeError("bad-voucher", "the claim secret does not match the voucher's claim key")
        return ticket


@dataclass(frozen=True, slots=True)
class Redeem:
    """Redeem ``voucher`` into the sender's account: the sender must be its beneficiary, or
    ``claim`` the claim key's signature of the sender's account. The fee is paid out of the
    voucher, so the sender needs no balance."""

    KIND: ClassVar[int] = 22
    voucher: Voucher
    claim: bytes = b""  # 64-byte signature, or b"" for a voucher with a beneficiary

    def to_list(self) -> list[Any]:
        return [self.voucher.to_list(), self.claim]

    @classmethod
    def from_list(cls, value: Any) -> Redeem:
        voucher, claim = enc.fields(value, "redeem", 2)
        claim = enc.as_bytes(claim, "redeem.claim", max_size=SIGNATURE_SIZE)
        if len(claim) not in (0, SIGNATURE_SIZE):
            raise DecodeError("bad-encoding", "redeem.claim: a signature (64 bytes) or none", got=len(claim))
        return cls(Voucher.from_list(voucher), claim)


@dataclass(frozen=True, slots=True)
class BuybackOffer:
    """The treasury's standing offer to buy up to ``cap`` base units at ``price`` millionths of
    ``currency`` per NTK, through block ``expiry``. Its id is this transaction's id."""

    KIND: ClassVar[int] = 23
    currency: bytes  # e.g. b"USD"
    price: int  # micro-units of the currency per NTK (1_250_000: 1.25 USD)
    cap: int  # base units the offer buys at most
    expiry: int  # last height at which a sell may be included

    def to_list(self) -> list[Any]:
        return [self.currency, self.price, self.cap, self.expiry]

    @classmethod
    def from_list(cls, value: Any) -> BuybackOffer:
        currency, price, cap, expiry = enc.fields(value, "buyback_offer", 4)
        return cls(_currency(currency, "buyback_offer.currency"), _amount(price, "buyback_offer.price"),
                   _amount(cap, "buyback_offer.cap"), enc.as_int(expiry, "buyback_offer.expiry", 0, MAX_HEIGHT))


@dataclass(frozen=True, slots=True)
class BuybackSell:
    """Sell ``amount`` base units into an open offer: they are burned, and a claim is recorded."""

    KIND: ClassVar[int] = 24
    offer_id: bytes
    amount: int

    def to_list(self) -> list[Any]:
        return [self.offer_id, self.amount]

    @classmethod
    def from_list(cls, value: Any) -> BuybackSell:
        offer_id, amount = enc.fields(value, "buyback_sell", 2)
        return cls(enc.as_bytes(offer_id, "buyback_sell.offer_id", size=HASH_SIZE), _amount(amount, "buyback_sell.amount"))


TREASURY_PAYLOADS: tuple[type, ...] = (Redeem, BuybackOffer, BuybackSell)


# --------------------------------------------------------------------------- state records


@dataclass(frozen=True, slots=True)
class Redemption:
    """A redeemed voucher: when, by whom, and how much (its fee included)."""

    height: int
    account: bytes
    amount: int
    fee: int

    def encode(self) -> bytes:
        return enc.pack([self.height, self.account, self.amount, self.fee])

    @classmethod
    def decode(cls, data: bytes) -> Redemption:
        height, account, amount, fee = enc.fields(enc.unpack(data, what="redemption", max_size=64), "redemption", 4)
        return cls(enc.as_int(height, "redemption.height"),
                   enc.as_bytes(account, "redemption.account", size=ADDRESS_HASH_SIZE),
                   enc.as_int(amount, "redemption.amount"), enc.as_int(fee, "redemption.fee"))


@dataclass(frozen=True, slots=True)
class Offer:
    """A posted buyback offer and how much of its cap was sold into it."""

    currency: bytes
    price: int
    cap: int
    sold: int
    expiry: int
    posted: int  # height of the BuybackOffer

    @property
    def remaining(self) -> int:
        return self.cap - self.sold

    def encode(self) -> bytes:
        return enc.pack([self.currency, self.price, self.cap, self.sold, self.expiry, self.posted])

    @classmethod
    def decode(cls, data: bytes) -> Offer:
        currency, price, cap, sold, expiry, posted = enc.fields(enc.unpack(data, what="offer", max_size=96), "offer", 6)
        return cls(_currency(currency, "offer.currency"), enc.as_int(price, "offer.price"),
                   enc.as_int(cap, "offer.cap"), enc.as_int(sold, "offer.sold", 0, cap),
                   enc.as_int(expiry, "offer.expiry"), enc.as_int(posted, "offer.posted"))


@dataclass(frozen=True, slots=True)
class Claim:
    """What the treasury owes off chain for tokens burned into an offer, at the offer's price."""

    seller: bytes
    offer_id: bytes
    amount: int  # base units burned
    price: int  # micro-units of ``currency`` per NTK, as the offer said
    currency: bytes
    height: int

    @property
    def value_micro(self) -> int:
        """What it is worth in millionths of the currency, rounded down."""
        return self.amount * self.price // 10**9

    def encode(self) -> bytes:
        return enc.pack([self.seller, self.offer_id, self.amount, self.price, self.currency, self.height])

    @classmethod
    def decode(cls, data: bytes) -> Claim:
        seller, offer_id, amount, price, currency, height = enc.fields(
            enc.unpack(data, what="claim", max_size=128), "claim", 6)
        return cls(enc.as_bytes(seller, "claim.seller", size=ADDRESS_HASH_SIZE),
                   enc.as_bytes(offer_id, "claim.offer_id", size=HASH_SIZE), enc.as_int(amount, "claim.amount"),
                   enc.as_int(price, "claim.price"), _currency(currency, "claim.currency"),
                   enc.as_int(height, "claim.height"))
