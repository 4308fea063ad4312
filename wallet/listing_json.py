"""Listing payloads as readable JSON and back (`wallet.payload_json` delegates here).

- listing: ``{"kind": "data"|"model"|"generator", "root": hex, "price": "3.5", "license_hash": hex}``;
  a model listing adds ``"metrics": {"accuracy": "0.9731", ...}`` (decimals, at most 6 places:
  the chain keeps millionths), ``"eval_data": hex`` (an artifact root, or the hash of a
  description of the set) and ``"eval_method": "how they were measured"``.
- delist: ``{"listing": hex}``.
- purchase: ``{"listing": hex, "price": "3.5", "delivery_key": hex}`` (an X25519 public key).
"""

from __future__ import annotations

import re
from typing import Any

from chain.amounts import format_ntk
from chain.listing_types import (
    METRIC_SCALE,
    Delist,
    Listing,
    ListingKind,
    Metric,
    ModelClaim,
    Purchase,
)
from wallet.keys import WalletError

_METRIC = re.compile(r"-?\d{1,9}(\.\d{1,6})?")
MODEL_FIELDS = ("metrics", "eval_data", "eval_method")
REQUIRED: dict[type, tuple[str, ...]] = {
    Listing: ("kind", "root", "price", "license_hash"), Delist: ("listing",),
    Purchase: ("listing", "price", "delivery_key"),
}
OPTIONAL: dict[type, tuple[str, ...]] = {Listing: MODEL_FIELDS}


def format_metric(value: int) -> str:
    """"0.9731" for 973_100 millionths."""
    sign = "-" if value < 0 else ""
    whole, frac = divmod(abs(value), METRIC_SCALE)
    return f"{sign}{whole}.{frac:06d}".rstrip("0").rstrip(".")


def parse_metric(value: Any, name: str) -> int:
    """Millionths from a decimal string or number with at most 6 decimals."""
    text = str(value).strip() if isinstance(value, (str, int, float)) and not isinstance(value, bool) else ""
    if isinstance(value, float):
        text = f"{value:.6f}".rstrip("0").rstrip(".")
    if not _METRIC.fullmatch(text):
        raise WalletError(f"metric {name}: a decimal with at most 6 decimals, got {value!r}", reason="bad-metric")
    negative = text.startswith("-")
    whole, _, frac = text.lstrip("-").partition(".")
    micro = int(whole) * METRIC_SCALE + int(frac.ljust(6, "0") or "0")
    return -micro if negative else micro


def kind_of(value: Any) -> int:
    try:
        return int(ListingKind[str(value).strip().upper()])
    except KeyError:
        raise WalletError(f"listing kind must be one of {', '.join(k.name.lower() for k in ListingKind)}, "
                          f"not {value!r}", reason="bad-listing-kind") from None


def claim_json(claim: ModelClaim | None) -> dict[str, Any]:
    if claim is None:
        return {}
    return {"metrics": {m.name: format_metric(m.value) for m in claim.metrics}, "eval_data": claim.eval_data.hex(),
            "eval_method": claim.eval_method}


def listing_to_json(payload: Listing | Delist | Purchase) -> dict[str, Any]:
    if isinstance(payload, Listing):
        return {"kind": ListingKind(payload.kind).name.lower(), "root": payload.root.hex(),
                "price": format_ntk(payload.price), "license_hash": payload.license_hash.hex(),
                **claim_json(payload.claim)}
    if isinstance(payload, Delist):
        return {"listing": payload.listing_id.hex()}
    return {"listing": payload.listing_id.hex(), "price": format_ntk(payload.price),
            "delivery_key": payload.delivery_key.hex()}


def listing_from_json(payload_type: type, doc: dict[str, Any]) -> Listing | Delist | Purchase:
    from wallet.payload_json import hex_param, ntk_param

    if payload_type is Delist:
        return Delist(hex_param(doc["listing"], "listing", 32))
    if payload_type is Purchase:
        return Purchase(hex_param(doc["listing"], "listing", 32), ntk_param(doc["price"], "price"),
                        hex_param(doc["delivery_key"], "delivery_key", 32))
    claim = None
    if any(k in doc for k in MODEL_FIELDS):
        missing = [k for k in MODEL_FIELDS if k not in doc]
        if missing:
            raise WalletError(f"listing: a model's claim needs {', '.join(missing)} too", reason="bad-listing")
        metrics = doc["metrics"]
        if not isinstance(metrics, dict):
            raise WalletError("listing: metrics is an object of name -> value", reason="bad-metric")
        claim = ModelClaim(tuple(Metric(str(k), parse_metric(v, str(k))) for k, v in sorted(metrics.items())),
                           hex_param(doc["eval_data"], "eval_data", 32), str(doc["eval_method"]))
    return Listing(kind_of(doc["kind"]), hex_param(doc["root"], "root", 32), ntk_param(doc["price"], "price"),
                   hex_param(doc["license_hash"], "license_hash", 32), claim)
