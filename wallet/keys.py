"""Keys: generation, signing and addresses, on top of `chain`'s crypto.

A key is a 32-byte Ed25519 seed; everything else (public key, account id, address) derives from
it. The keystore (encrypted files) builds on this module.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field

from chain.crypto import SEED_SIZE, address_hash, encode_address, public_key_of, sign
from chain.types import Payload, Transaction


class WalletError(Exception):
    """Base of every error raised by `wallet`; ``reason`` is kebab-case and stable."""

    reason = "wallet-error"

    def __init__(self, message: str, *, reason: str | None = None) -> None:
        if reason is not None:
            self.reason = reason
        super().__init__(message)


@dataclass(frozen=True, slots=True)
class Key:
    """A signing key. ``repr`` never shows the seed."""

    seed: bytes = field(repr=False)

    def __post_init__(self) -> None:
        if len(self.seed) != SEED_SIZE:
            raise WalletError(f"a key seed is {SEED_SIZE} bytes, got {len(self.seed)}", reason="bad-key")

    @classmethod
    def generate(cls) -> Key:
        return cls(secrets.token_bytes(SEED_SIZE))

    @classmethod
    def from_hex(cls, text: str) -> Key:
        try:
            seed = bytes.fromhex(text.strip().removeprefix("0x"))
        except ValueError:
            raise WalletError("a raw key is 64 hex characters", reason="bad-key") from None
        return cls(seed)

    @property
    def public_key(self) -> bytes:
        return public_key_of(self.seed)

    @property
    def account_id(self) -> bytes:
        return address_hash(self.public_key)

    def address(self, hrp: str) -> str:
        return encode_address(self.account_id, hrp)

    def sign(self, message: bytes) -> bytes:
        return sign(self.seed, message)

    def transaction(self, chain_id: bytes, nonce: int, fee: int, payload: Payload) -> Transaction:
        """A signed transaction from this key."""
        return Transaction(chain_id, self.public_key, nonce, fee, payload).signed(self.seed)
