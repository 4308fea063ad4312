"""Sealed deliveries in the artifact store: the seller seals a purchased artifact from its store
into a `sealed-delivery` artifact (`neurod.listings.sealing`); the buyer opens a fetched one back
into its store as the listed root.

The seller keeps each purchase's sealed root in ``<store>/sealed/<purchase id hex>``, so a buyer
that asks again (a resumed fetch, a restarted daemon) gets the same ciphertext and its fetch
resumes, instead of a new sealing with a new key each time.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from neurod.artifact_store import ArtifactStore, ArtifactStoreError
from neurod.listings.sealing import (
    FORMAT,
    KEY_FILE,
    PAYLOAD_FILE,
    SEALED_KIND,
    DeliveryError,
    PlainFile,
    open_delivery,
    seal_delivery,
)
from p2p.artifacts import ArtifactBackend


def _sealed_record(store: ArtifactStore, purchase_id: bytes) -> Path:
    return store.path / "sealed" / purchase_id.hex()


def sealed_root_of(store: ArtifactStore, purchase_id: bytes) -> bytes | None:
    """The sealed root already made for a purchase, if it is still stored."""
    try:
        root = _sealed_record(store, purchase_id).read_bytes()
    except FileNotFoundError:
        return None
    return root if len(root) == 32 and store.has(root) else None


def seal_for_purchase(store: ArtifactStore, root: bytes, recipient: bytes, purchase_id: bytes,
                      listing_id: bytes) -> bytes:
    """The sealed-delivery root of ``root`` for one purchase, made (and pinned) the first time it
    is asked for (blocking: run it in a thread)."""
    known = sealed_root_of(store, purchase_id)
    if known is not None:
        return known
    manifest = store.manifest(root)
    files = {f.hash: PlainFile(f.hash, f.size, store.blob_path(f.hash)) for f in manifest.files}
    work = store.path / "incoming" / f"seal-{purchase_id.hex()}"
    shutil.rmtree(work, ignore_errors=True)
    try:
        seal_delivery(work, recipient, purchase_id, listing_id, root, manifest.encode(), list(files.values()))
        sealed = store.put(work, pin=True).root
    finally:
        shutil.rmtree(work, ignore_errors=True)
    record = _sealed_record(store, purchase_id)
    record.parent.mkdir(exist_ok=True, mode=0o700)
    record.write_bytes(sealed)
    return sealed


def open_from_store(store: ArtifactStore, backend: ArtifactBackend, sealed_root: bytes, public: bytes,
                    private: bytes, purchase_id: bytes, root: bytes) -> None:
    """Open the fetched sealed delivery ``sealed_root`` into the store as ``root`` (blocking)."""
    try:
        manifest = store.manifest(sealed_root)
    except ArtifactStoreError as exc:
        raise DeliveryError("not-fetched", str(exc)) from None
    meta = manifest.meta
    if manifest.kind != SEALED_KIND or meta.get("format") != FORMAT or meta.get("purchase") != purchase_id.hex():
        raise DeliveryError("not-this-delivery", f"{sealed_root.hex()[:16]} is no sealed delivery of this purchase")
    paths = manifest.hashes_by_path()
    if set(paths) != {KEY_FILE, PAYLOAD_FILE}:
        raise DeliveryError("bad-sealed-format", f"a sealed delivery holds {KEY_FILE} and {PAYLOAD_FILE}")
    try:
        open_delivery(store.blob_path(paths[KEY_FILE]), store.blob_path(paths[PAYLOAD_FILE]), public, private,
                      purchase_id, root, backend)
    except (DeliveryError, OSError):
        store.drop_partial(root)  # what was decrypted is not kept: the next try starts clean
        raise
