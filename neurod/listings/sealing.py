"""Sealed delivery: a purchased artifact encrypted to its buyer, and opened back into the store.

Why this shape. The artifact protocol moves content-addressed files and checks each against its
root; a sealed delivery is therefore itself an artifact (kind ``sealed-delivery``) whose files
are ciphertext: it travels over the unchanged protocol (manifest, piece lists, pieces, resumable,
from any peer holding it) with every integrity check of a plaintext fetch, and confidentiality
comes from the encryption alone: any node may fetch it, only the buyer can read it.

Crypto (libsodium through PyNaCl, nothing hand-rolled):
- a fresh 32-byte content key per delivery, sealed to the buyer's X25519 delivery key with
  ``crypto_box_seal`` (ephemeral X25519 + XSalsa20-Poly1305): file ``key.sealed``, 80 bytes;
- the payload encrypted under the content key with ``crypto_secretstream_xchacha20poly1305``
  (file ``payload.bin``): the 24-byte stream header, then messages, each a 4-byte big-endian
  length and the ciphertext (plaintext + 17 bytes). Every message's additional data is
  ``b"neuro-sealed/1" || purchase id || plaintext root``, so a delivery cannot be replayed for
  another purchase or passed off as another artifact; the stream authenticates order, and the
  last message carries TAG_FINAL, so a truncated stream is refused too.

Plaintext messages: first ``msgpack([FORMAT, root, manifest bytes, [[file hash, size], ...]])``
(the manifest exactly as stored, every distinct file it delivers in hash order), then each
file's bytes in messages of at most CHUNK bytes (none for an empty file), then an empty FINAL.

Opening (`open_delivery`) decrypts into the artifact backend's partial folder and then runs the
checks of a plaintext fetch: the manifest against the listed root (every leaf, the items root,
the root), each file hashed whole as the store adopts it, the manifest stored last. A flipped
ciphertext bit fails the AEAD (``tampered``); a key that is not the buyer's fails the seal
(``wrong-key``).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import msgpack
from nacl import bindings as sodium
from nacl.exceptions import CryptoError

from p2p.artifacts import ArtifactBackend, ArtifactRejected, FileSpec
from worker.artifact import ItemDraft, write_manifest

FORMAT = "neuro-sealed/1"
SEALED_KIND = "sealed-delivery"
KEY_FILE = "key.sealed"
PAYLOAD_FILE = "payload.bin"
CHUNK = 1 << 20
MAX_HEAD_MESSAGE = 256 << 20  # the first message holds the manifest (`worker.artifact` caps it)
LENGTH = 4
ABYTES = sodium.crypto_secretstream_xchacha20poly1305_ABYTES
HEADER_BYTES = sodium.crypto_secretstream_xchacha20poly1305_HEADERBYTES
TAG_MESSAGE = sodium.crypto_secretstream_xchacha20poly1305_TAG_MESSAGE
TAG_FINAL = sodium.crypto_secretstream_xchacha20poly1305_TAG_FINAL
SEALED_KEY_BYTES = 32 + sodium.crypto_box_SEALBYTES


class DeliveryError(Exception):
    """A delivery that cannot be sealed or opened; ``reason`` is kebab-case."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True, slots=True)
class PlainFile:
    """A file the delivery carries: its hash, size and where the seller reads it."""

    hash: bytes
    size: int
    path: Path


def new_delivery_keypair() -> tuple[bytes, bytes]:
    """(public, private) X25519 keys for one purchase."""
    return sodium.crypto_box_keypair()


def additional_data(purchase_id: bytes, root: bytes) -> bytes:
    return FORMAT.encode() + purchase_id + root


# --------------------------------------------------------------------------- sealing (seller)


def seal_payload(out: BinaryIO, key: bytes, ad: bytes, root: bytes, manifest: bytes, files: Sequence[PlainFile]) -> None:
    """Write the encrypted payload of ``files`` and ``manifest`` under ``key`` to ``out``."""
    state = sodium.crypto_secretstream_xchacha20poly1305_state()
    out.write(sodium.crypto_secretstream_xchacha20poly1305_init_push(state, key))

    def push(message: bytes, tag: int = TAG_MESSAGE) -> None:
        cipher = sodium.crypto_secretstream_xchacha20poly1305_push(state, message, ad, tag)
        out.write(len(cipher).to_bytes(LENGTH, "big") + cipher)

    push(msgpack.packb([FORMAT, root, manifest, [[f.hash, f.size] for f in files]], use_bin_type=True))
    for f in files:
        with open(f.path, "rb") as data:
            left = f.size
            while left:
                chunk = data.read(min(CHUNK, left))
                if not chunk:
                    raise DeliveryError("file-short", f"{f.path} ends {left} bytes early")
                push(chunk)
                left -= len(chunk)
    push(b"", TAG_FINAL)


def seal_delivery(folder: Path, recipient: bytes, purchase_id: bytes, listing_id: bytes, root: bytes,
                  manifest: bytes, files: Sequence[PlainFile]) -> None:
    """Write the sealed-delivery artifact of ``root`` for ``recipient`` into ``folder`` (new or
    empty): the sealed content key, the payload, and its manifest (blocking: run it in a thread)."""
    key = sodium.crypto_secretstream_xchacha20poly1305_keygen()
    folder.mkdir(parents=True, exist_ok=True)
    (folder / KEY_FILE).write_bytes(sodium.crypto_box_seal(key, recipient))
    with open(folder / PAYLOAD_FILE, "wb") as out:
        seal_payload(out, key, additional_data(purchase_id, root), root, manifest, sorted(files, key=lambda f: f.hash))
    write_manifest(folder, SEALED_KIND, [ItemDraft(0, (KEY_FILE, PAYLOAD_FILE))],
                   {"format": FORMAT, "purchase": purchase_id.hex(), "listing": listing_id.hex(), "root": root.hex()})


# --------------------------------------------------------------------------- opening (buyer)


def open_content_key(sealed_key: bytes, public: bytes, private: bytes) -> bytes:
    try:
        return sodium.crypto_box_seal_open(sealed_key, public, private)
    except CryptoError:
        raise DeliveryError("wrong-key", "the content key is not sealed to this delivery key") from None


class PayloadReader:
    """The decrypted messages of a payload, one at a time, each authenticated before it is used."""

    def __init__(self, source: BinaryIO, key: bytes, ad: bytes) -> None:
        self._source, self._ad = source, ad
        self._state = sodium.crypto_secretstream_xchacha20poly1305_state()
        header = source.read(HEADER_BYTES)
        if len(header) != HEADER_BYTES:
            raise DeliveryError("truncated", "no stream header")
        sodium.crypto_secretstream_xchacha20poly1305_init_pull(self._state, header, key)
        self.finished = False

    def next(self, cap: int = CHUNK) -> bytes:
        if self.finished:
            raise DeliveryError("bad-sealed-format", "a message after the final one")
        size = int.from_bytes(self._read(LENGTH), "big")
        if not ABYTES <= size <= cap + ABYTES:
            raise DeliveryError("bad-sealed-format", f"a message of {size} bytes")
        try:
            message, tag = sodium.crypto_secretstream_xchacha20poly1305_pull(self._state, self._read(size), self._ad)
        except CryptoError:
            raise DeliveryError("tampered", "a message fails authentication") from None
        self.finished = tag == TAG_FINAL
        return message

    def _read(self, n: int) -> bytes:
        data = self._source.read(n)
        if len(data) != n:
            raise DeliveryError("truncated", f"the payload ends {n - len(data)} bytes early")
        return data


def open_delivery(key_path: Path, payload_path: Path, public: bytes, private: bytes, purchase_id: bytes, root: bytes,
                  sink: ArtifactBackend) -> None:
    """Decrypt a sealed delivery (its ``key.sealed`` and ``payload.bin`` as fetched) into ``sink``
    as the artifact ``root``, checked as a plaintext fetch is (blocking: run it in a thread)."""
    key = open_content_key(key_path.read_bytes(), public, private)
    with open(payload_path, "rb") as source:
        reader = PayloadReader(source, key, additional_data(purchase_id, root))
        manifest, files = _head(reader.next(MAX_HEAD_MESSAGE), root)
        try:
            needed = {spec.hash: spec for spec in sink.check_manifest(root, manifest)}
        except ArtifactRejected as exc:  # the seller sealed a manifest off the root
            raise DeliveryError(exc.reason, str(exc)) from None
        partial = sink.partial_dir(root)
        for file_hash, size in files:
            spec = needed.pop(file_hash, None)
            if spec is not None and spec.size != size:
                raise DeliveryError("file-size", f"{file_hash.hex()[:16]}: {size} bytes, the manifest says {spec.size}")
            _receive_file(reader, size, partial / f"{file_hash.hex()}.sealed-part", spec, sink)
        if not reader.next(0) == b"" or not reader.finished:
            raise DeliveryError("bad-sealed-format", "no final message after the files")
        if source.read(1):
            raise DeliveryError("bad-sealed-format", "bytes after the final message")
    if needed:
        raise DeliveryError("file-missing", f"{len(needed)} files of the manifest are not in the delivery")
    sink.complete(root, manifest)


def _head(message: bytes, root: bytes) -> tuple[bytes, list[tuple[bytes, int]]]:
    try:
        head = msgpack.unpackb(message, raw=False, strict_map_key=True)
        fmt, sealed_root, manifest, listed = head
        files = [(bytes(h), int(size)) for h, size in listed]
    except (ValueError, TypeError, msgpack.UnpackException):
        raise DeliveryError("bad-sealed-format", "the first message is not a delivery head") from None
    if fmt != FORMAT or not isinstance(manifest, bytes) or any(len(h) != 32 or n < 0 for h, n in files):
        raise DeliveryError("bad-sealed-format", f"not a {FORMAT} head")
    if sealed_root != root:  # cannot pass authentication with the right root; checked all the same
        raise DeliveryError("wrong-root", "the delivery is of another artifact")
    if len({h for h, _ in files}) != len(files):
        raise DeliveryError("bad-sealed-format", "a file listed twice")
    return manifest, files


def _receive_file(reader: PayloadReader, size: int, path: Path, spec: FileSpec | None, sink: ArtifactBackend) -> None:
    """Decrypt one file's messages; keep it (adopted by hash) when the store lacks it."""
    with open(path if spec is not None else os.devnull, "wb") as out:
        left = size
        while left:
            chunk = reader.next()
            if not chunk or len(chunk) > left:
                raise DeliveryError("bad-sealed-format", "a file's messages do not add up to its size")
            out.write(chunk)
            left -= len(chunk)
    if spec is not None:
        if not sink.adopt_file(spec, path):
            path.unlink(missing_ok=True)
            raise DeliveryError("file-hash", f"{path.name[:16]}: the decrypted file is not the manifest's")
        if path.exists():
            os.unlink(path)
