"""Sealed delivery on real artifact stores: round trip, tampering, wrong keys, another purchase.

A seller's store seals an artifact to a buyer's X25519 key; the buyer's store opens it through
the same backend calls a plaintext fetch makes, so what lands is checked file by file and
against the root. Every failure must leave the buyer's store without the artifact.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from neurod.artifact_backend import StoreArtifacts
from neurod.artifact_store import ArtifactStore
from neurod.listings.delivery import open_from_store, seal_for_purchase, sealed_root_of
from neurod.listings.sealing import (
    CHUNK,
    KEY_FILE,
    PAYLOAD_FILE,
    DeliveryError,
    new_delivery_keypair,
    open_delivery,
)
from tests.support.artifacts import random_artifact

PURCHASE = bytes([1]) * 32
LISTING = bytes([2]) * 32


@pytest.fixture
def stores(tmp_path: Path) -> tuple[ArtifactStore, ArtifactStore, bytes]:
    """A seller's store holding an artifact (a multi-chunk file, small ones, an empty one) and an
    empty buyer's store; the artifact's root."""
    seller = ArtifactStore(tmp_path / "seller")
    root = random_artifact(tmp_path / "art", [3 * CHUNK + 5, 100, 0, 4096])
    seller.put(tmp_path / "art")
    return seller, ArtifactStore(tmp_path / "buyer"), root


def _sealed_files(seller: ArtifactStore, sealed: bytes) -> tuple[Path, Path]:
    paths = seller.manifest(sealed).hashes_by_path()
    return seller.blob_path(paths[KEY_FILE]), seller.blob_path(paths[PAYLOAD_FILE])


def _copy_sealed(seller: ArtifactStore, sealed: bytes, out: Path) -> tuple[Path, Path]:
    """Writable copies of the sealed files (the store's blobs are read-only)."""
    out.mkdir()
    key, payload = _sealed_files(seller, sealed)
    return Path(shutil.copy(key, out / KEY_FILE)), Path(shutil.copy(payload, out / PAYLOAD_FILE))


def test_round_trip_lands_the_listed_root(stores: tuple[ArtifactStore, ArtifactStore, bytes], tmp_path: Path) -> None:
    seller, buyer, root = stores
    public, private = new_delivery_keypair()
    sealed = seal_for_purchase(seller, root, public, PURCHASE, LISTING)
    assert sealed != root and seller.manifest(sealed).kind == "sealed-delivery"
    assert seal_for_purchase(seller, root, public, PURCHASE, LISTING) == sealed == sealed_root_of(seller, PURCHASE)
    # the buyer fetched the sealed artifact (here: the store import a fetch ends with)
    seller.export(sealed, tmp_path / "fetched")
    buyer.put(tmp_path / "fetched")
    open_from_store(buyer, StoreArtifacts(buyer), sealed, public, private, PURCHASE, root)
    assert buyer.has(root)
    buyer.export(root, tmp_path / "out")  # every file and the root checked again
    plain = {f.hash for f in seller.manifest(root).files}
    assert {f.hash for f in buyer.manifest(root).files} == plain
    payload = _sealed_files(seller, sealed)[1].read_bytes()
    for entry in seller.manifest(root).files:  # no plaintext file appears in the ciphertext
        data = seller.blob_path(entry.hash).read_bytes()
        assert len(data) < 64 or data[:64] not in payload


def test_another_key_cannot_open_it(stores: tuple[ArtifactStore, ArtifactStore, bytes]) -> None:
    seller, buyer, root = stores
    public, _ = new_delivery_keypair()
    third_public, third_private = new_delivery_keypair()
    key, payload = _sealed_files(seller, seal_for_purchase(seller, root, public, PURCHASE, LISTING))
    with pytest.raises(DeliveryError) as info:
        open_delivery(key, payload, third_public, third_private, PURCHASE, root, StoreArtifacts(buyer))
    assert info.value.reason == "wrong-key"
    assert not buyer.has(root)


@pytest.mark.parametrize("where", ["head", "file", "final", "length"])
def test_tampered_ciphertext_is_refused(stores: tuple[ArtifactStore, ArtifactStore, bytes], tmp_path: Path,
                                        where: str) -> None:
    seller, buyer, root = stores
    public, private = new_delivery_keypair()
    key, payload = _copy_sealed(seller, seal_for_purchase(seller, root, public, PURCHASE, LISTING), tmp_path / "s")
    data = bytearray(payload.read_bytes())
    offset = {"head": 24 + 4 + 10, "file": len(data) // 2, "final": len(data) - 1, "length": 24 + 1}[where]
    data[offset] ^= 0x01
    payload.write_bytes(bytes(data))
    with pytest.raises(DeliveryError) as info:
        open_delivery(key, payload, public, private, PURCHASE, root, StoreArtifacts(buyer))
    # a changed length prefix makes the reader take other bytes as the message: no MAC holds
    assert info.value.reason == "tampered" if where != "length" else info.value.reason in ("tampered", "truncated")
    assert not buyer.has(root)


def test_a_truncated_stream_is_refused(stores: tuple[ArtifactStore, ArtifactStore, bytes], tmp_path: Path) -> None:
    seller, buyer, root = stores
    public, private = new_delivery_keypair()
    key, payload = _copy_sealed(seller, seal_for_purchase(seller, root, public, PURCHASE, LISTING), tmp_path / "s")
    data = payload.read_bytes()
    payload.write_bytes(data[:-(4 + 17)])  # the FINAL message dropped whole
    with pytest.raises(DeliveryError) as info:
        open_delivery(key, payload, public, private, PURCHASE, root, StoreArtifacts(buyer))
    assert info.value.reason == "truncated"
    assert not buyer.has(root)


def test_a_delivery_for_another_purchase_or_root_does_not_open(
        stores: tuple[ArtifactStore, ArtifactStore, bytes]) -> None:
    seller, buyer, root = stores
    public, private = new_delivery_keypair()
    key, payload = _sealed_files(seller, seal_for_purchase(seller, root, public, PURCHASE, LISTING))
    for purchase, wanted in ((bytes([3]) * 32, root), (PURCHASE, bytes([4]) * 32)):
        with pytest.raises(DeliveryError) as info:
            open_delivery(key, payload, public, private, purchase, wanted, StoreArtifacts(buyer))
        assert info.value.reason == "tampered"  # the additional data names the purchase and the root
    assert not buyer.has(root)


def test_a_seller_sealing_other_bytes_is_caught_by_the_root(stores: tuple[ArtifactStore, ArtifactStore, bytes],
                                                            tmp_path: Path) -> None:
    """Well-encrypted but wrong content (a seller that lies under the AEAD) fails the file checks."""
    from neurod.listings.sealing import PlainFile, seal_delivery

    seller, buyer, root = stores
    public, private = new_delivery_keypair()
    manifest = seller.manifest(root)
    bogus = tmp_path / "bogus"
    files = []
    for entry in manifest.files:
        path = tmp_path / f"f-{entry.hash.hex()}"
        path.write_bytes(b"\x00" * entry.size)  # same sizes, other bytes
        files.append(PlainFile(entry.hash, entry.size, path))
    seal_delivery(bogus, public, PURCHASE, LISTING, root, manifest.encode(), files)
    with pytest.raises(DeliveryError) as info:
        open_delivery(bogus / KEY_FILE, bogus / PAYLOAD_FILE, public, private, PURCHASE, root, StoreArtifacts(buyer))
    assert info.value.reason == "file-hash"
    assert not buyer.has(root)


# ---- a buyer's own copies, tampered with -----------------------------------------------------


def _fetched(seller: ArtifactStore, buyer: ArtifactStore, sealed: bytes, tmp_path: Path) -> None:
    """The buyer's store holds the sealed delivery, as a finished fetch leaves it."""
    seller.export(sealed, tmp_path / "fetched")
    buyer.put(tmp_path / "fetched")


def _flip(path: Path, offset: int) -> bytes:
    """Flip one byte of ``path`` (a read-only blob made writable); the original bytes."""
    original = path.read_bytes()
    data = bytearray(original)
    data[offset] ^= 0x01
    path.chmod(0o600)
    path.write_bytes(bytes(data))
    return original


def test_a_sealed_copy_damaged_in_the_buyers_store_fails_authentication_and_leaves_nothing(
        stores: tuple[ArtifactStore, ArtifactStore, bytes], tmp_path: Path) -> None:
    """Bytes changed after the fetch's hash checks (a disk, a meddling user) still meet the AEAD."""
    seller, buyer, root = stores
    public, private = new_delivery_keypair()
    sealed = seal_for_purchase(seller, root, public, PURCHASE, LISTING)
    _fetched(seller, buyer, sealed, tmp_path)
    payload = buyer.blob_path(buyer.manifest(sealed).hashes_by_path()[PAYLOAD_FILE])
    original = _flip(payload, payload.stat().st_size // 2)
    with pytest.raises(DeliveryError) as info:
        open_from_store(buyer, StoreArtifacts(buyer), sealed, public, private, PURCHASE, root)
    assert info.value.reason == "tampered"
    assert not buyer.has(root) and not any(buyer.partial_dir(root).glob("*"))
    payload.write_bytes(original)  # repaired: the next try opens it from a clean start
    open_from_store(buyer, StoreArtifacts(buyer), sealed, public, private, PURCHASE, root)
    assert buyer.verify(root).root == root


def test_a_sealed_delivery_with_a_file_added_is_refused(stores: tuple[ArtifactStore, ArtifactStore, bytes],
                                                        tmp_path: Path) -> None:
    from neurod.listings.sealing import FORMAT, SEALED_KIND
    from worker.artifact import ItemDraft, write_manifest

    seller, buyer, root = stores
    public, private = new_delivery_keypair()
    sealed = seal_for_purchase(seller, root, public, PURCHASE, LISTING)
    grown = tmp_path / "grown"
    seller.export(sealed, grown)
    (grown / "manifest.json").unlink()
    (grown / "extra.bin").write_bytes(b"not sealed")  # e.g. plaintext slipped in beside the ciphertext
    write_manifest(grown, SEALED_KIND, [ItemDraft(0, (KEY_FILE, PAYLOAD_FILE, "extra.bin"))],
                   {"format": FORMAT, "purchase": PURCHASE.hex(), "listing": LISTING.hex(), "root": root.hex()})
    grown_root = buyer.put(grown).root
    with pytest.raises(DeliveryError) as info:
        open_from_store(buyer, StoreArtifacts(buyer), grown_root, public, private, PURCHASE, root)
    assert info.value.reason == "bad-sealed-format"
    assert not buyer.has(root)


@pytest.mark.parametrize("damage, reason", [("flip", "file-hash"), ("truncate", "file-size"),
                                            ("add", "extra-file"), ("remove", "file-missing")])
def test_opened_files_changed_by_the_buyer_fail_the_root_check(stores: tuple[ArtifactStore, ArtifactStore, bytes],
                                                               tmp_path: Path, damage: str, reason: str) -> None:
    """What was bought is the listed root: an exported copy changed afterwards is not it, and
    neither is a stored copy with a flipped byte."""
    from worker.artifact import verify_files
    from worker.errors import VerificationFailed

    seller, buyer, root = stores
    public, private = new_delivery_keypair()
    _fetched(seller, buyer, seal_for_purchase(seller, root, public, PURCHASE, LISTING), tmp_path)
    open_from_store(buyer, StoreArtifacts(buyer), buyer.list()[0].root, public, private, PURCHASE, root)
    out = tmp_path / "bought"
    buyer.export(root, out)
    largest = max(buyer.manifest(root).files, key=lambda f: f.size)
    target = out / largest.path
    if damage == "flip":
        _flip(target, largest.size // 2)
    elif damage == "truncate":
        target.write_bytes(target.read_bytes()[:-1])
    elif damage == "add":
        (out / "bonus.bin").write_bytes(b"\x00")
    else:
        target.unlink()
    with pytest.raises(VerificationFailed) as caught:
        verify_files(out, expected_root=root)
    assert caught.value.reason == reason

    _flip(buyer.blob_path(largest.hash), 0)  # the store's own copy
    with pytest.raises(VerificationFailed) as stored:
        buyer.verify(root)
    assert stored.value.reason == "file-hash" and largest.path in str(stored.value)
    with pytest.raises(VerificationFailed):
        buyer.export(root, tmp_path / "again")  # a damaged store never exports it as the root
