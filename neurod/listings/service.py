"""The daemon's side of listings: what it sells, the keys it receives with, and deliveries.

Seller. `sell(root)` marks an artifact of the store as sold by this daemon (pinned, and kept in
``<datadir>/listings/selling``): from then on its plaintext is never served to peers (the
artifact backend withholds it), and a peer that asks for the sealed delivery of a purchase of a
listing of that root (`sealed_root`, the artifact protocol's `sealed` request) gets the root of
a `sealed-delivery` artifact made for the purchase's delivery key (`neurod.listings.delivery`).
Anyone may ask and fetch it: only the buyer can open it. The purchase must be on the main chain.

Buyer. Delivery keys are X25519 key pairs made by this daemon (`delivery_key`), one per
purchase, the private half kept in ``<datadir>/listings/keys/<public hex>`` (0600). Why a
dedicated key rather than one derived from the wallet's Ed25519 key: the daemon that receives
must hold the private key, and the wallet's signing key is meant to stay in the keystore (or off
the machine): a key that only opens deliveries can live with the daemon, and a fresh one per
purchase links no two purchases of one buyer. `receive(purchase)` asks the sources for the
sealed root, fetches it over the artifact protocol, opens it into the store as the listed root
(every file and the root checked, as a plaintext fetch) and reports its state as it goes.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import trio

from chain.files import write_atomic
from chain.listing_rules import listing_store_key, purchase_store_key
from chain.listing_types import ListingRecord, PurchaseRecord
from neurod.artifact_store import ArtifactStoreError
from neurod.listings.delivery import open_from_store, seal_for_purchase
from neurod.listings.sealing import DeliveryError, new_delivery_keypair
from p2p.errors import P2PError
from worker.errors import VerificationFailed

if TYPE_CHECKING:
    from neurod.node import Node

log = logging.getLogger("neuro.listings")

LISTINGS_DIR = "listings"
SEALED_ASK_TIMEOUT = 120.0  # seconds a seller may take to seal a delivery (it encrypts the whole artifact)
POLL_S = 0.2


class ListingError(Exception):
    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason


@dataclass
class Delivery:
    """A purchase being received: its state moves asking -> fetching -> opening -> done | failed
    (checking -> done when the store holds the root already and it hashes right)."""

    purchase_id: bytes
    root: bytes
    state: str = "asking"
    sealed_root: bytes = b""
    source: str = ""
    reason: str = ""
    error: str = ""
    tried: dict[str, str] = field(default_factory=dict)  # source -> why it gave no sealed root

    def to_json(self) -> dict[str, Any]:
        return {"purchase": self.purchase_id.hex(), "root": self.root.hex(), "state": self.state,
                "sealed_root": self.sealed_root.hex() or None, "source": self.source or None,
                "reason": self.reason, "error": self.error, "tried": dict(self.tried)}


class Listings:
    def __init__(self, node: Node) -> None:
        self.node = node
        self.store = node.artifacts.store
        self.folder = node.datadir / LISTINGS_DIR
        self.keys = self.folder / "keys"
        self.selling_file = self.folder / "selling"
        self.selling: set[bytes] = self._load_selling()
        self.deliveries: dict[bytes, Delivery] = {}
        self._sealing: dict[bytes, trio.Lock] = {}
        self._nursery: trio.Nursery | None = None
        node.artifacts.withheld = self.selling.__contains__
        node.artifacts.sealer = self.sealed_root

    async def run(self, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            task_status.started()
            await trio.sleep_forever()

    # ---- chain reads -------------------------------------------------------------------------

    def listing(self, listing_id: bytes) -> ListingRecord | None:
        data = self.node.chain.record(listing_store_key(listing_id))
        return ListingRecord.decode(data) if data is not None else None

    def purchase(self, purchase_id: bytes) -> PurchaseRecord | None:
        data = self.node.chain.record(purchase_store_key(purchase_id))
        return PurchaseRecord.decode(data) if data is not None else None

    # ---- seller ------------------------------------------------------------------------------

    def _load_selling(self) -> set[bytes]:
        try:
            lines = self.selling_file.read_text().split()
        except FileNotFoundError:
            return set()
        return {bytes.fromhex(line) for line in lines if len(line) == 64}

    def sell(self, root: bytes) -> None:
        """Sell ``root`` from this daemon: pinned, withheld from plaintext fetches, sealed on request."""
        self.store.pin(root)  # raises ArtifactStoreError when it is not stored
        self.selling.add(root)
        write_atomic(self.selling_file, "".join(f"{r.hex()}\n" for r in sorted(self.selling)).encode())

    async def sealed_root(self, peer: str, purchase_id: bytes) -> bytes | str:
        """The sealed delivery of a purchase on the main chain of a root this daemon sells, made
        on the first request (in a thread, one sealing per purchase at a time); else a reason."""
        purchase = self.purchase(purchase_id)
        if purchase is None:
            return "unknown-purchase"
        listing = self.listing(purchase.listing_id)
        if listing is None or listing.offer.root not in self.selling:
            return "not-selling"
        root = listing.offer.root
        lock = self._sealing.setdefault(purchase_id, trio.Lock())
        async with lock:
            try:
                sealed = await trio.to_thread.run_sync(
                    seal_for_purchase, self.store, root, purchase.delivery_key, purchase_id, purchase.listing_id)
            except (ArtifactStoreError, DeliveryError, OSError) as exc:
                log.warning("cannot seal %s for purchase %s: %s", root.hex()[:16], purchase_id.hex()[:16], exc)
                return "cannot-seal"
        log.info("sealed delivery %s of %s for purchase %s (asked by %s)", sealed.hex()[:16], root.hex()[:16],
                 purchase_id.hex()[:16], peer[-12:])
        return sealed

    # ---- buyer -------------------------------------------------------------------------------

    def delivery_key(self) -> bytes:
        """A new X25519 public key for one purchase; its private half stays in the data dir."""
        public, private = new_delivery_keypair()
        write_atomic(self.keys / public.hex(), private, overwrite=False)
        return public

    def _private_key(self, public: bytes) -> bytes:
        try:
            return (self.keys / public.hex()).read_bytes()
        except FileNotFoundError:
            raise ListingError("no-delivery-key", f"this daemon does not hold the delivery key {public.hex()[:16]}: "
                                                  "receive on the node that made it") from None

    def receive(self, purchase_id: bytes, sources: list[str]) -> Delivery:
        """Start receiving a purchase (returns at once; a running one is returned as it is)."""
        running = self.deliveries.get(purchase_id)
        if running is not None and running.state not in ("done", "failed"):
            return running
        purchase = self.purchase(purchase_id)
        if purchase is None:
            raise ListingError("unknown-purchase", f"no purchase {purchase_id.hex()} on the main chain")
        listing = self.listing(purchase.listing_id)
        assert listing is not None  # a purchase names a listing that exists (consensus)
        private = self._private_key(purchase.delivery_key)
        delivery = self.deliveries[purchase_id] = Delivery(purchase_id, listing.offer.root)
        if self._nursery is None:
            raise ListingError("not-running", "the listings service is not running")
        self._nursery.start_soon(self._receive, delivery, purchase, private, sources)
        return delivery

    async def _receive(self, delivery: Delivery, purchase: PurchaseRecord, private: bytes, sources: list[str]) -> None:
        try:
            if await self._stored_intact(delivery):
                return
            await self._ask(delivery, sources)
            delivery.state = "fetching"
            await self._fetch(delivery)
            delivery.state = "opening"
            await trio.to_thread.run_sync(
                open_from_store, self.store, self.node.artifacts, delivery.sealed_root, purchase.delivery_key,
                private, delivery.purchase_id, delivery.root)
            delivery.state = "done"
            log.info("purchase %s delivered: %s", delivery.purchase_id.hex()[:16], delivery.root.hex()[:16])
        except (ListingError, DeliveryError) as exc:
            delivery.state, delivery.reason, delivery.error = "failed", exc.reason, str(exc)
        except Exception as exc:  # a delivery must never take the node down
            log.exception("delivery of %s crashed", delivery.purchase_id.hex()[:16])
            delivery.state, delivery.reason, delivery.error = "failed", "internal-error", repr(exc)

    async def _stored_intact(self, delivery: Delivery) -> bool:
        """Whether the store already holds the bought root, every file re-hashed: a copy damaged
        on disk is not reported delivered; it is dropped and received again."""
        if not self.store.has(delivery.root):
            return False
        delivery.state = "checking"
        try:
            await trio.to_thread.run_sync(self.store.verify, delivery.root)
        except VerificationFailed as exc:
            log.warning("purchase %s: the stored copy of %s is damaged (%s): receiving it again",
                        delivery.purchase_id.hex()[:16], delivery.root.hex()[:16], exc)
            await trio.to_thread.run_sync(self.store.remove, delivery.root)
            delivery.state = "asking"
            return False
        delivery.state = "done"
        return True

    async def _ask(self, delivery: Delivery, sources: list[str]) -> None:
        p2p = self.node.p2p
        for source in sources or [view.peer_id for view in p2p.peers()]:
            try:
                delivery.sealed_root = await p2p.sealed_root(source, delivery.purchase_id, SEALED_ASK_TIMEOUT)
                delivery.source = source
                return
            except (P2PError, trio.TooSlowError) as exc:
                delivery.tried[source[-16:]] = getattr(exc, "reason", "timeout")
        why = ", ".join(f"{s}: {reason}" for s, reason in delivery.tried.items()) or "no peers to ask"
        raise ListingError("no-seller", f"no source would seal this purchase ({why})")

    async def _fetch(self, delivery: Delivery) -> None:
        p2p = self.node.p2p
        try:
            p2p.fetch_artifact(delivery.sealed_root, [delivery.source])
        except P2PError as exc:
            raise ListingError(exc.reason, str(exc)) from None
        while not self.store.has(delivery.sealed_root):
            progress = p2p.artifact_progress(delivery.sealed_root)
            if progress is not None and progress.state == "failed":
                raise ListingError(progress.reason or "fetch-failed", progress.error or "the sealed delivery's fetch failed")
            await trio.sleep(POLL_S)

