"""Listings for sale (Buy Data, Buy Model, generators): the payloads and the state records.

A seller lists an artifact it holds (`Listing`: its root, what it is, the price, the license's
hash; a model also its published metrics, on what data and how they were measured); a buyer pays
the listed price with `Purchase`, naming an X25519 key the artifact is to be delivered encrypted
to; the seller may `Delist`. Delivery itself is off chain (`neurod.listings`): what the chain
records is who paid whom for which root and to which key the seller must encrypt it.

Kinds 13-15 follow the market's (2-12) in `chain.types.PAYLOAD_TYPES`. A listing's id is the id
of its Listing transaction, a purchase's the id of its Purchase transaction. What each kind does
to the state is in `chain.listing_rules`. Records live in the state trie through
`chain.records`, under the prefixes in `chain.schema`.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from typing import Any, ClassVar, NamedTuple

from chain import encoding as enc
from chain.errors import DecodeError
from chain.hashing import ADDRESS_HASH_SIZE, HASH_SIZE

MAX_AMOUNT = 2**63 - 1
DELIVERY_KEY_SIZE = 32  # an X25519 public key
MAX_METRICS = 16
MAX_METRIC_VALUE = 2**53  # micro-units: |value| / 10^6 is the metric
MAX_METHOD_CHARS = 200
METRIC_NAME = re.compile(r"[a-z0-9][a-z0-9_.-]{0,31}")
METRIC_SCALE = 10**6  # a metric is carried as an integer in millionths: no floats in consensus
MAX_RECORD_BYTES = 4_096


class ListingKind(enum.IntEnum):
    """What a listing sells."""

    DATA = 1  # a dataset (e.g. a rendered shard)
    MODEL = 2  # trained weights, with published metrics
    GENERATOR = 3  # a render spec: nodes render data sets from it (`neuro job submit generate`)


def _hash(value: Any, what: str) -> bytes:
    return enc.as_bytes(value, what, size=HASH_SIZE)


def _text(value: Any, what: str, pattern: re.Pattern[str] | None = None, max_chars: int = MAX_METHOD_CHARS) -> str:
    """A short printable-ASCII string (a metric name matches ``pattern``)."""
    if type(value) is not str:
        raise DecodeError("bad-encoding", f"{what}: expected a string, got {type(value).__name__}")
    if len(value) > max_chars or not value.isascii() or not value.isprintable():
        raise DecodeError("bad-encoding", f"{what}: printable ASCII of at most {max_chars} characters")
    if pattern is not None and not pattern.fullmatch(value):
        raise DecodeError("bad-encoding", f"{what}: {value!r} does not match {pattern.pattern}")
    return value


@dataclass(frozen=True, slots=True)
class Metric:
    """One published metric: its name (e.g. "accuracy") and value in millionths."""

    name: str
    value: int

    def to_list(self) -> list[Any]:
        return [self.name, self.value]

    @classmethod
    def from_list(cls, value: Any) -> Metric:
        name, number = enc.fields(value, "metric", 2)
        if type(number) is not int or not -MAX_METRIC_VALUE <= number <= MAX_METRIC_VALUE:
            raise DecodeError("bad-encoding", "metric.value: an integer in millionths",
                              expected=f"|value| <= {MAX_METRIC_VALUE}", got=repr(number))
        return cls(_text(name, "metric.name", METRIC_NAME, 32), number)


@dataclass(frozen=True, slots=True)
class ModelClaim:
    """What a model listing claims: its metrics, the data they were measured on (an artifact
    root, or the hash of a description of a set that is not an artifact) and how."""

    metrics: tuple[Metric, ...]
    eval_data: bytes
    eval_method: str  # e.g. "worker.evaluate classify, top-1 on 1000 real digits"

    def to_list(self) -> list[Any]:
        return [[m.to_list() for m in self.metrics], self.eval_data, self.eval_method]

    @classmethod
    def from_list(cls, value: Any) -> ModelClaim:
        metrics, data, method = enc.fields(value, "model_claim", 3)
        items = tuple(Metric.from_list(m) for m in enc.as_list(metrics, "model_claim.metrics", max_len=MAX_METRICS))
        if len({m.name for m in items}) != len(items):
            raise DecodeError("bad-encoding", "model_claim.metrics: a metric named twice")
        return cls(items, _hash(data, "model_claim.eval_data"), _text(method, "model_claim.eval_method"))


@dataclass(frozen=True, slots=True)
class Listing:
    """Offer the artifact ``root`` for ``price`` base units; the seller is the signer. A model
    listing carries its ``claim`` (metrics), any other kind none."""

    KIND: ClassVar[int] = 13
    kind: int  # ListingKind
    root: bytes  # the artifact id: what the buyer's delivery is checked against
    price: int
    license_hash: bytes  # hash of the license text the buyer accepts
    claim: ModelClaim | None

    def to_list(self) -> list[Any]:
        return [self.kind, self.root, self.price, self.license_hash, self.claim.to_list() if self.claim else []]

    @classmethod
    def from_list(cls, value: Any) -> Listing:
        kind, root, price, license_hash, claim = enc.fields(value, "listing", 5)
        kind = enc.as_int(kind, "listing.kind", 1, 255)
        if kind not in ListingKind._value2member_map_:
            raise DecodeError("bad-listing-kind", f"unknown listing kind {kind}")
        return cls(
            kind=kind, root=_hash(root, "listing.root"), price=enc.as_int(price, "listing.price", 1, MAX_AMOUNT),
            license_hash=_hash(license_hash, "listing.license_hash"),
            claim=ModelClaim.from_list(claim) if claim != [] else None,
        )


@dataclass(frozen=True, slots=True)
class Delist:
    """The seller withdraws a listing: no purchase of it is accepted from the next one on."""

    KIND: ClassVar[int] = 14
    listing_id: bytes

    def to_list(self) -> list[Any]:
        return [self.listing_id]

    @classmethod
    def from_list(cls, value: Any) -> Delist:
        (listing_id,) = enc.fields(value, "delist", 1)
        return cls(_hash(listing_id, "delist.listing_id"))


@dataclass(frozen=True, slots=True)
class Purchase:
    """Pay ``price`` (which must be the listing's: a buyer never pays what it did not sign) for a
    listing, to be delivered encrypted to ``delivery_key``, an X25519 public key whose private half
    the buyer's daemon holds (`neurod.listings.keys`)."""

    KIND: ClassVar[int] = 15
    listing_id: bytes
    price: int
    delivery_key: bytes

    def to_list(self) -> list[Any]:
        return [self.listing_id, self.price, self.delivery_key]

    @classmethod
    def from_list(cls, value: Any) -> Purchase:
        listing_id, price, key = enc.fields(value, "purchase", 3)
        key = enc.as_bytes(key, "purchase.delivery_key", size=DELIVERY_KEY_SIZE)
        if key == bytes(DELIVERY_KEY_SIZE):
            raise DecodeError("bad-delivery-key", "the all-zero X25519 key")
        return cls(_hash(listing_id, "purchase.listing_id"), enc.as_int(price, "purchase.price", 1, MAX_AMOUNT), key)


LISTING_PAYLOADS: tuple[type, ...] = (Listing, Delist, Purchase)


# --------------------------------------------------------------------------- state records


class ListingRecord(NamedTuple):
    """A listing as the state keeps it: the offer, who made it, and what became of it."""

    seller: bytes  # account id
    offer: Listing
    listed: int  # height of the Listing
    delisted: int = 0  # height of the Delist; 0 while it is for sale
    sales: int = 0

    @property
    def active(self) -> bool:
        return self.delisted == 0

    def encode(self) -> bytes:
        return enc.pack([self.seller, self.offer.to_list(), self.listed, self.delisted, self.sales])

    @classmethod
    def decode(cls, data: bytes) -> ListingRecord:
        seller, offer, listed, delisted, sales = enc.fields(
            enc.unpack(data, what="listing record", max_size=MAX_RECORD_BYTES), "listing record", 5)
        return cls(enc.as_bytes(seller, "listing.seller", size=ADDRESS_HASH_SIZE), Listing.from_list(offer),
                   enc.as_int(listed, "listing.listed"), enc.as_int(delisted, "listing.delisted"),
                   enc.as_int(sales, "listing.sales"))


class PurchaseRecord(NamedTuple):
    """A purchase: what the seller's daemon reads to know whom to deliver to, and with what key."""

    buyer: bytes  # account id
    listing_id: bytes
    price: int  # what the buyer paid
    delivery_key: bytes
    height: int

    def encode(self) -> bytes:
        return enc.pack(list(self))

    @classmethod
    def decode(cls, data: bytes) -> PurchaseRecord:
        buyer, listing_id, price, key, height = enc.fields(
            enc.unpack(data, what="purchase record", max_size=256), "purchase record", 5)
        return cls(enc.as_bytes(buyer, "purchase.buyer", size=ADDRESS_HASH_SIZE), _hash(listing_id, "purchase.listing"),
                   enc.as_int(price, "purchase.price", 1, MAX_AMOUNT),
                   enc.as_bytes(key, "purchase.key", size=DELIVERY_KEY_SIZE), enc.as_int(height, "purchase.height"))
