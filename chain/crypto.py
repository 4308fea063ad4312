"""Signatures and addresses.

Ed25519 is verified with libsodium (PyNaCl), whose checks are strict where OpenSSL's are not: it
rejects small-order public keys and R points, non-canonical public keys and a non-canonical S
(s >= L), so a signature cannot be malleated into a second valid encoding and a forged signature
under a small-order key is refused (`cryptography` accepts one; see shared/notes/limits.md).

Addresses are bech32m (BIP350) of the blake2b-160 of the public key, with the network's
human-readable prefix from genesis: a mistyped character is caught by the checksum.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from typing import Protocol

import nacl.bindings
import nacl.exceptions
from bech32m import codecs as _bech32

from chain.errors import ChainError, RejectKind, shown
from chain.hashing import ADDRESS_HASH_SIZE, hash160

PUBLIC_KEY_SIZE = 32
SIGNATURE_SIZE = 64
SEED_SIZE = 32


class AddressError(ChainError):
    reason = "bad-address"
    kind = RejectKind.MALFORMED


def verify(public_key: bytes, message: bytes, signature: bytes) -> bool:
    """Strict Ed25519 verification (libsodium). Never raises on bad input: returns False."""
    if len(public_key) != PUBLIC_KEY_SIZE or len(signature) != SIGNATURE_SIZE:
        return False
    try:
        nacl.bindings.crypto_sign_open(signature + message, public_key)
    except (nacl.exceptions.BadSignatureError, nacl.exceptions.ValueError, ValueError, TypeError):
        return False
    return True


MIN_POOL_BATCH = 64  # smaller batches are checked inline: a round trip would cost more


def verify_chunk(chunk: Sequence[tuple[bytes, bytes, bytes]]) -> list[bool]:
    """One pool task (module-level so that a process pool can pickle it)."""
    return [verify(pk, msg, sig) for pk, msg, sig in chunk]


class PendingVerification:
    """Signature checks running elsewhere (or already done); `result` waits for them, once."""

    def __init__(self, collect: Callable[[], list[bool]]) -> None:
        self._collect: Callable[[], list[bool]] | None = collect
        self._results: list[bool] = []

    @classmethod
    def done(cls, results: list[bool]) -> PendingVerification:
        return cls(lambda: results)

    def result(self) -> list[bool]:
        if self._collect is not None:
            self._results, self._collect = self._collect(), None
        return self._results


class Verifier(Protocol):
    """A pool that checks signatures on other cores (`chain.sigpool.SignaturePool`)."""

    def start(self, items: Sequence[tuple[bytes, bytes, bytes]]) -> PendingVerification: ...


def start_verify_many(
    items: Sequence[tuple[bytes, bytes, bytes]], pool: Executor | Verifier | None = None
) -> PendingVerification:
    """Start verifying (public key, message, signature) triples on ``pool``; returns at once.

    The caller keeps working while the pool checks: block import applies the state transition
    meanwhile and joins before it commits. A thread pool works too (libsodium releases the GIL
    during each check), but its threads need the GIL back between checks. Chunks, one per worker,
    keep the pool's own overhead out of the hot path; small batches run inline.
    """
    if pool is None or len(items) < MIN_POOL_BATCH:
        return PendingVerification.done(verify_chunk(items))
    if not isinstance(pool, Executor):
        return pool.start(items)
    workers = max(1, getattr(pool, "_max_workers", 2))
    size = -(-len(items) // workers)
    futures = [pool.submit(verify_chunk, items[i : i + size]) for i in range(0, len(items), size)]
    return PendingVerification(lambda: [ok for future in futures for ok in future.result()])


def verify_many(
    items: Sequence[tuple[bytes, bytes, bytes]], pool: Executor | Verifier | None = None
) -> list[bool]:
    """Verify (public key, message, signature) triples, on ``pool``'s workers when given."""
    return start_verify_many(items, pool).result()


def sign(seed: bytes, message: bytes) -> bytes:
    """Ed25519 signature of ``message`` by the key derived from a 32-byte ``seed``."""
    _, secret_key = nacl.bindings.crypto_sign_seed_keypair(seed)
    return nacl.bindings.crypto_sign(message, secret_key)[:SIGNATURE_SIZE]


def public_key_of(seed: bytes) -> bytes:
    return nacl.bindings.crypto_sign_seed_keypair(seed)[0]


def address_hash(public_key: bytes) -> bytes:
    """The 20-byte account id that an address encodes."""
    return hash160(public_key)


def encode_address(account: bytes, hrp: str) -> str:
    if len(account) != ADDRESS_HASH_SIZE:
        raise AddressError("bad-address", "account id must be 20 bytes", got=len(account))
    data = _bech32.convertbits(account, 8, 5, True)
    text: str = _bech32.bech32_encode(hrp, bytes(data), _bech32.Encoding.BECH32M)
    return text


def decode_address(text: str, hrp: str) -> bytes:
    """The account id in ``text``; a wrong prefix, a typo or a bech32 (not -m) string is refused."""
    if not isinstance(text, str) or not text or len(text) > 90:
        raise AddressError("bad-address", f"not an address: {shown(text)}")
    try:
        got_hrp, data, spec = _bech32.bech32_decode(text)
    except (_bech32.DecodeError, ValueError) as exc:
        why = str(exc) or "bad checksum or characters (mistyped?)"
        raise AddressError("bad-address", f"{shown(text)}: {why}") from None
    if got_hrp is None or data is None:
        raise AddressError("bad-address", f"{shown(text)}: checksum mismatch (mistyped?)")
    if spec != _bech32.Encoding.BECH32M:
        raise AddressError("bad-address", f"{shown(text)}: bech32m checksum required")
    if got_hrp != hrp:
        raise AddressError(
            "bad-address", f"{shown(text)}: prefix {got_hrp!r} is not this network's {hrp!r}"
        )
    raw = _bech32.convertbits(data, 5, 8, False)
    if raw is None or len(raw) != ADDRESS_HASH_SIZE:
        raise AddressError("bad-address", f"{shown(text)}: wrong payload length")
    return bytes(raw)
