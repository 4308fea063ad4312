"""Signatures and addresses.

Ed25519 is verified with libsodium (PyNaCl), whose checks are strict where OpenSSL's are not: it
rejects small-order public keys and R points, non-canonical public keys and a non-canonical S
(s >= L), so a signature cannot be malleated into a second valid encoding and a forged signature
under a small-order key is refused (`cryptography` accepts one; see shared/notes/limits.md).

Addresses are bech32m (BIP350) of the blake2b-160 of the public key, with the network's
human-readable prefix from genesis: a mistyped character is caught by the checksum.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import Executor, Future

import nacl.bindings
import nacl.exceptions
from bech32m import codecs as _bech32

from chain.errors import ChainError, RejectKind
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


def _verify_chunk(chunk: Sequence[tuple[bytes, bytes, bytes]]) -> list[bool]:
    """One pool task (module-level so that a process pool can pickle it)."""
    return [verify(pk, msg, sig) for pk, msg, sig in chunk]


class PendingVerification:
    """Signature checks running on an executor (or already done); `result` waits for them."""

    def __init__(self, futures: list[Future[list[bool]]], done: list[bool] | None = None) -> None:
        self._futures = futures
        self._results = done

    def result(self) -> list[bool]:
        if self._results is None:
            self._results = [ok for future in self._futures for ok in future.result()]
        return self._results


def start_verify_many(
    items: Sequence[tuple[bytes, bytes, bytes]], pool: Executor | None = None
) -> PendingVerification:
    """Start verifying (public key, message, signature) triples on ``pool``; returns at once.

    The caller keeps working while the pool checks: block import applies the state transition
    meanwhile and joins before it commits. With a process pool the checks share no GIL with the
    caller's Python; with a thread pool libsodium still releases the GIL during each check. Chunks,
    one per worker, keep the executor's own overhead out of the hot path; small batches run inline.
    """
    if pool is None or len(items) < 64:
        return PendingVerification([], _verify_chunk(items))
    workers = max(1, getattr(pool, "_max_workers", 2))
    size = -(-len(items) // workers)
    return PendingVerification(
        [pool.submit(_verify_chunk, items[i : i + size]) for i in range(0, len(items), size)]
    )


def verify_many(
    items: Sequence[tuple[bytes, bytes, bytes]], pool: Executor | None = None
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
        raise AddressError("bad-address", f"not an address: {text!r}")
    try:
        got_hrp, data, spec = _bech32.bech32_decode(text)
    except (_bech32.DecodeError, ValueError) as exc:
        why = str(exc) or "bad checksum or characters (mistyped?)"
        raise AddressError("bad-address", f"{text!r}: {why}") from None
    if got_hrp is None or data is None:
        raise AddressError("bad-address", f"{text!r}: checksum mismatch (mistyped?)")
    if spec != _bech32.Encoding.BECH32M:
        raise AddressError("bad-address", f"{text!r}: bech32m checksum required")
    if got_hrp != hrp:
        raise AddressError(
            "bad-address", f"{text!r}: prefix {got_hrp!r} is not this network's {hrp!r}"
        )
    raw = _bech32.convertbits(data, 5, 8, False)
    if raw is None or len(raw) != ADDRESS_HASH_SIZE:
        raise AddressError("bad-address", f"{text!r}: wrong payload length")
    return bytes(raw)
