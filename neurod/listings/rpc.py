"""RPC methods of listings (docs/rpc.md, "Listings"): read listings and purchases from the chain,
mark an artifact as sold by this daemon, make a delivery key, and receive a purchase."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import trio

from chain import schema
from chain.amounts import format_ntk
from chain.crypto import AddressError, decode_address, encode_address
from chain.listing_types import ListingKind, ListingRecord, PurchaseRecord
from neurod.artifact_store import ArtifactStoreError
from neurod.listings.service import ListingError, Listings
from neurod.rpc import INVALID_PARAMS, RpcError, id_param
from wallet.listing_json import claim_json

if TYPE_CHECKING:
    from neurod.node import Node

NOT_FOUND = -32011  # as neurod.rpc_methods
BAD_ADDRESS = -32012
LISTING_REFUSED = -32050  # this daemon cannot do what was asked (no such artifact, no delivery key)
MAX_LISTINGS = 1_000
MAX_SOURCES = 32


def listing_json(node: Node, listing_id: bytes, record: ListingRecord) -> dict[str, Any]:
    hrp = node.chain.params.hrp
    offer = record.offer
    return {
        "listing": listing_id.hex(), "seller": encode_address(record.seller, hrp),
        "kind": ListingKind(offer.kind).name.lower(), "root": offer.root.hex(),
        "price": offer.price, "price_ntk": format_ntk(offer.price), "license_hash": offer.license_hash.hex(),
        "listed": record.listed, "delisted": record.delisted or None, "active": record.active, "sales": record.sales,
        "claim": claim_json(offer.claim) or None,
        "selling_here": offer.root in node.listings.selling, "stored_here": node.artifacts.has(offer.root),
    }


def purchase_json(node: Node, purchase_id: bytes, record: PurchaseRecord) -> dict[str, Any]:
    return {
        "purchase": purchase_id.hex(), "buyer": encode_address(record.buyer, node.chain.params.hrp),
        "listing": record.listing_id.hex(), "price": record.price, "price_ntk": format_ntk(record.price),
        "delivery_key": record.delivery_key.hex(), "height": record.height,
    }


def listing_methods(node: Node) -> dict[str, Callable[..., Awaitable[Any]]]:
    # read at call time: the methods table is built before (and without) every service
    def service() -> Listings:
        return node.listings

    def _listing(listing: Any) -> tuple[bytes, ListingRecord]:
        listing_id = id_param(listing, "listing")
        record = service().listing(listing_id)
        if record is None:
            raise RpcError(NOT_FOUND, f"no listing {listing_id.hex()} on the main chain", {"reason": "unknown-listing"})
        return listing_id, record

    async def listing_list(status: Any = "active", seller: Any = None, kind: Any = None) -> list[dict[str, Any]]:
        """Listings on the main chain, newest first: ``status`` "active" (default) or "all"."""
        if status not in ("active", "all"):  # an unhashable list or dict compares unequal, no TypeError
            raise RpcError(INVALID_PARAMS, "status must be active or all", {"param": "status"})
        if kind is not None and kind not in [k.name.lower() for k in ListingKind]:
            raise RpcError(INVALID_PARAMS, "kind must be data, model or generator", {"param": "kind"})
        seller_id = None
        if seller is not None:
            try:
                seller_id = decode_address(seller, node.chain.params.hrp)
            except AddressError as exc:
                raise RpcError(BAD_ADDRESS, str(exc), {"param": "seller", "reason": exc.reason}) from None
        rows = []
        for listing_id, data in node.chain.records(schema.LISTING):
            record = ListingRecord.decode(data)
            if (status == "active" and not record.active) or (seller_id is not None and record.seller != seller_id):
                continue
            if kind is not None and ListingKind(record.offer.kind).name.lower() != kind:
                continue
            rows.append(listing_json(node, listing_id, record))
        rows.sort(key=lambda r: (-r["listed"], r["listing"]))
        return rows[:MAX_LISTINGS]

    async def listing_get(listing: Any) -> dict[str, Any]:
        listing_id, record = _listing(listing)
        purchases = [purchase_json(node, pid, p) for pid, p in _purchases() if p.listing_id == listing_id]
        return {**listing_json(node, listing_id, record), "purchases": purchases[:MAX_LISTINGS]}

    def _purchases() -> list[tuple[bytes, PurchaseRecord]]:
        return [(pid, PurchaseRecord.decode(data)) for pid, data in node.chain.records(schema.PURCHASE)]

    async def listing_sell(root: Any) -> dict[str, Any]:
        """Sell an artifact of this daemon's store: pinned, its plaintext withheld from peers,
        sealed to each buyer on request. The Listing transaction itself is the seller's to sign."""
        raw = id_param(root, "root")
        try:
            service().sell(raw)
            info = node.artifacts.store.info(raw)
        except ArtifactStoreError as exc:
            raise RpcError(LISTING_REFUSED, str(exc), {"reason": exc.reason}) from None
        return {**info.to_json(), "selling": True}

    async def listing_delivery_key() -> dict[str, Any]:
        """A new X25519 key for one purchase; this daemon keeps its private half to open the delivery."""
        return {"delivery_key": (await trio.to_thread.run_sync(service().delivery_key)).hex()}

    async def purchase_get(purchase: Any) -> dict[str, Any]:
        purchase_id = id_param(purchase, "purchase")
        record = service().purchase(purchase_id)
        if record is None:
            raise RpcError(NOT_FOUND, f"no purchase {purchase_id.hex()} on the main chain",
                           {"reason": "unknown-purchase"})
        return purchase_json(node, purchase_id, record)

    def _delivery_json(purchase_id: bytes) -> dict[str, Any]:
        delivery = service().deliveries.get(purchase_id)
        if delivery is None:
            raise RpcError(NOT_FOUND, f"no delivery of {purchase_id.hex()} on this node", {"reason": "unknown-delivery"})
        out = delivery.to_json()
        progress = node.p2p.artifact_progress(delivery.sealed_root) if delivery.sealed_root else None
        done = delivery.state in ("opening", "done")
        fetched = progress.to_json(trio.current_time()) if progress is not None else {}
        out["bytes_total"] = fetched.get("bytes_total", 0)
        out["bytes_done"] = fetched.get("bytes_total", 0) if done else fetched.get("bytes_done", 0)
        return out

    async def listing_receive(purchase: Any, **named: Any) -> dict[str, Any]:
        """Receive a purchase made with a delivery key of this daemon: ask the seller (``from``:
        multiaddrs or peer ids; none: every peer) for the sealed delivery, fetch it, open it into
        the store as the listed root. Returns at once; follow it with listing_delivery."""
        if set(named) - {"from"}:
            raise RpcError(INVALID_PARAMS, f"unknown params: {', '.join(sorted(set(named) - {'from'}))}")
        sources = named.get("from")
        sources = [] if sources is None else sources  # 0, "" or {} are not "every peer"
        if not isinstance(sources, list) or len(sources) > MAX_SOURCES or not all(
                isinstance(s, str) and 0 < len(s) <= 512 for s in sources):
            raise RpcError(INVALID_PARAMS, f"from must be a list of up to {MAX_SOURCES} multiaddrs or peer ids")
        purchase_id = id_param(purchase, "purchase")
        try:
            service().receive(purchase_id, sources)
        except ListingError as exc:
            raise RpcError(LISTING_REFUSED, str(exc), {"reason": exc.reason}) from None
        return _delivery_json(purchase_id)

    async def listing_delivery(purchase: Any) -> dict[str, Any]:
        return _delivery_json(id_param(purchase, "purchase"))

    return {
        "listing_list": listing_list, "listing_get": listing_get, "listing_sell": listing_sell,
        "listing_delivery_key": listing_delivery_key, "listing_receive": listing_receive,
        "listing_delivery": listing_delivery, "purchase_get": purchase_get,
    }
