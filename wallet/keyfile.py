"""One encrypted key file: its JSON format, scrypt + AES-256-GCM sealing, and atomic writes.

The format follows Ethereum's v3 keystore, with an AEAD cipher instead of CTR + MAC:

    {version, name, address, public_key,
     crypto: {kdf: "scrypt", kdfparams: {n, r, p, salt, dklen},
              cipher: "aes-256-gcm", nonce, ciphertext},   # ciphertext includes the 16-byte tag
     created}

The header (version, name, address, public key) is the cipher's associated data, so a file whose
header was edited or swapped with another file's fails to open exactly like a wrong password: the
GCM tag does not verify. After decryption the public key derived from the seed is compared (in
constant time) with the header's, which catches a well-formed file built for another seed.

Files are written atomically (temp file in the same directory, fsync, rename, fsync of the
directory) so a crash leaves the old or the new file, never a torn one.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import unicodedata
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from chain import files
from wallet.keys import Key, WalletError

FORMAT_VERSION = 1
KDF = "scrypt"
CIPHER = "aes-256-gcm"
SALT_SIZE = 32
NONCE_SIZE = 12
TAG_SIZE = 16
KEY_SIZE = 32
AD_DOMAIN = b"neuro-keystore-v1\x00"
# A crafted file must not make us allocate gigabytes or spin for minutes: bound what we accept.
MAX_LOG2_N = 20
MIN_LOG2_N = 10
MAX_R = 16
MAX_P = 4
MAX_FILE_BYTES = 16_384
MAX_KDF_MEMORY = 512 * 2**20  # scrypt needs 128 * n * r bytes; the standard cost uses 128 MiB


@dataclass(frozen=True, slots=True)
class KdfParams:
    """scrypt cost. `standard()` for every real key; `light()` exists only for tests."""

    n: int
    r: int
    p: int
    salt: bytes = field(repr=False)
    dklen: int = KEY_SIZE

    @classmethod
    def standard(cls) -> KdfParams:
        """n=2^17, r=8, p=1: Ethereum's "standard" cost, about 0.3 s and 128 MiB per attempt."""
        return cls(n=2**17, r=8, p=1, salt=secrets.token_bytes(SALT_SIZE))

    @classmethod
    def light(cls) -> KdfParams:
        """n=2^10: milliseconds per attempt. Offers no protection; for test suites only."""
        return cls(n=2**10, r=8, p=1, salt=secrets.token_bytes(SALT_SIZE))

    def fresh(self) -> KdfParams:
        """Same cost, new salt: re-encrypting a key never reuses a derived key."""
        return KdfParams(self.n, self.r, self.p, secrets.token_bytes(SALT_SIZE), self.dklen)

    def check(self) -> None:
        log2_n = self.n.bit_length() - 1
        if self.n != 1 << log2_n or not MIN_LOG2_N <= log2_n <= MAX_LOG2_N:
            raise _bad_file(f"scrypt n must be a power of two in 2^{MIN_LOG2_N}..2^{MAX_LOG2_N}")
        if not 1 <= self.r <= MAX_R or not 1 <= self.p <= MAX_P:
            raise _bad_file(f"scrypt r must be in 1..{MAX_R} and p in 1..{MAX_P}")
        if 128 * self.n * self.r > MAX_KDF_MEMORY:
            raise _bad_file(f"scrypt n * r needs more than {MAX_KDF_MEMORY >> 20} MiB")
        if self.dklen != KEY_SIZE or len(self.salt) < 16:
            raise _bad_file("scrypt dklen must be 32 and the salt at least 16 bytes")

    def derive(self, password: str) -> bytes:
        """The AES key for ``password`` (NFKC-normalised so the same text types the same bytes)."""
        self.check()
        secret = unicodedata.normalize("NFKC", password).encode()
        maxmem = 128 * self.r * (self.n + self.p + 2) + (1 << 20)
        return hashlib.scrypt(
            secret, salt=self.salt, n=self.n, r=self.r, p=self.p, maxmem=maxmem, dklen=self.dklen
        )

    def to_json(self) -> dict[str, Any]:
        return {"n": self.n, "r": self.r, "p": self.p, "salt": self.salt.hex(), "dklen": self.dklen}

    @classmethod
    def from_json(cls, doc: Any) -> KdfParams:
        if not isinstance(doc, dict) or set(doc) != {"n", "r", "p", "salt", "dklen"}:
            raise _bad_file("kdfparams must be {n, r, p, salt, dklen}")
        for name in ("n", "r", "p", "dklen"):
            if type(doc[name]) is not int:
                raise _bad_file(f"kdfparams.{name} must be an integer")
        params = cls(
            doc["n"], doc["r"], doc["p"], _hex(doc["salt"], "kdfparams.salt"), doc["dklen"]
        )
        params.check()
        return params


@dataclass(frozen=True, slots=True)
class KeyFile:
    """A key as stored: public header plus the sealed seed. Never holds the seed in clear."""

    name: str
    address: str
    public_key: bytes
    kdf: KdfParams
    nonce: bytes
    ciphertext: bytes = field(repr=False)
    created: str

    def associated_data(self) -> bytes:
        header = [FORMAT_VERSION, self.name, self.address, self.public_key.hex()]
        return AD_DOMAIN + json.dumps(header, separators=(",", ":")).encode()

    def to_json(self) -> dict[str, Any]:
        return {
            "version": FORMAT_VERSION,
            "name": self.name,
            "address": self.address,
            "public_key": self.public_key.hex(),
            "crypto": {
                "kdf": KDF,
                "kdfparams": self.kdf.to_json(),
                "cipher": CIPHER,
                "nonce": self.nonce.hex(),
                "ciphertext": self.ciphertext.hex(),
            },
            "created": self.created,
        }

    def dumps(self) -> bytes:
        return (json.dumps(self.to_json(), indent=2) + "\n").encode()

    @classmethod
    def from_json(cls, doc: Any) -> KeyFile:
        """Check the structure of a parsed key file; a bad one is `bad-keyfile`."""
        fields = {"version", "name", "address", "public_key", "crypto", "created"}
        if not isinstance(doc, dict) or set(doc) != fields:
            raise _bad_file(f"expected the fields {', '.join(sorted(fields))}")
        if doc["version"] != FORMAT_VERSION:
            raise _bad_file(
                f"unsupported version {doc['version']!r} (this wallet reads {FORMAT_VERSION})"
            )
        for name in ("name", "address", "created"):
            if not isinstance(doc[name], str):
                raise _bad_file(f"{name} must be a string")
        crypto = doc["crypto"]
        if not isinstance(crypto, dict) or set(crypto) != {
            "kdf",
            "kdfparams",
            "cipher",
            "nonce",
            "ciphertext",
        }:
            raise _bad_file("crypto must be {kdf, kdfparams, cipher, nonce, ciphertext}")
        if crypto["kdf"] != KDF or crypto["cipher"] != CIPHER:
            raise _bad_file(f"only {KDF} with {CIPHER} is supported")
        public_key = _hex(doc["public_key"], "public_key")
        nonce = _hex(crypto["nonce"], "crypto.nonce")
        ciphertext = _hex(crypto["ciphertext"], "crypto.ciphertext")
        if (
            len(public_key) != 32
            or len(nonce) != NONCE_SIZE
            or len(ciphertext) != KEY_SIZE + TAG_SIZE
        ):
            raise _bad_file("public_key, nonce or ciphertext has the wrong length")
        return cls(
            name=doc["name"],
            address=doc["address"],
            public_key=public_key,
            kdf=KdfParams.from_json(crypto["kdfparams"]),
            nonce=nonce,
            ciphertext=ciphertext,
            created=doc["created"],
        )

    @classmethod
    def loads(cls, data: bytes, where: str = "key file") -> KeyFile:
        if len(data) > MAX_FILE_BYTES:
            raise _bad_file(f"{where} is too large to be a key file")
        try:
            doc = json.loads(data)
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise _bad_file(f"{where} is not JSON") from None
        try:
            return cls.from_json(doc)
        except WalletError as exc:
            raise WalletError(f"{where}: {exc}", reason=exc.reason) from None


def seal(key: Key, name: str, hrp: str, password: str, kdf: KdfParams) -> KeyFile:
    """Encrypt ``key`` under ``password``; the header becomes associated data."""
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    unsealed = KeyFile(
        name=name,
        address=key.address(hrp),
        public_key=key.public_key,
        kdf=kdf.fresh(),
        nonce=secrets.token_bytes(NONCE_SIZE),
        ciphertext=b"",
        created=datetime.now(UTC).replace(microsecond=0).isoformat(),
    )
    aead = AESGCM(unsealed.kdf.derive(password))
    ciphertext = aead.encrypt(unsealed.nonce, key.seed, unsealed.associated_data())
    return KeyFile(
        unsealed.name,
        unsealed.address,
        unsealed.public_key,
        unsealed.kdf,
        unsealed.nonce,
        ciphertext,
        unsealed.created,
    )


def unseal(keyfile: KeyFile, password: str) -> Key:
    """The key in ``keyfile``; a wrong password and a tampered file are both `wrong-password`.

    GCM cannot tell them apart, and saying which would help an attacker probing edits.
    """
    from cryptography.exceptions import InvalidTag
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    aead = AESGCM(keyfile.kdf.derive(password))
    try:
        seed = aead.decrypt(keyfile.nonce, keyfile.ciphertext, keyfile.associated_data())
    except InvalidTag:
        raise WalletError(
            f"wrong password for key {keyfile.name!r} (or the key file was modified)",
            reason="wrong-password",
        ) from None
    key = Key(seed)
    if not hmac.compare_digest(key.public_key, keyfile.public_key):
        raise WalletError(
            f"key file {keyfile.name!r} does not match its public key", reason="bad-keyfile"
        )
    return key


def reseal(
    keyfile: KeyFile, old_password: str, new_password: str, name: str | None = None
) -> KeyFile:
    """The same key under a new password and/or name, with a fresh salt and nonce."""
    key = unseal(keyfile, old_password)
    hrp = keyfile.address.rpartition("1")[0]
    resealed = seal(key, name or keyfile.name, hrp, new_password, keyfile.kdf)
    return KeyFile(
        resealed.name,
        resealed.address,
        resealed.public_key,
        resealed.kdf,
        resealed.nonce,
        resealed.ciphertext,
        keyfile.created,
    )


def write_atomic(path: Path, data: bytes, *, overwrite: bool) -> None:
    """`chain.files.write_atomic` with the keystore's fail points; ``overwrite=False`` refuses
    to replace an existing key file (`key-exists`), even in a race."""
    try:
        files.write_atomic(
            path, data, overwrite=overwrite,
            partial_point="keystore-write-partial", before_rename_point="keystore-write-before-rename",
        )
    except FileExistsError:
        raise WalletError(f"{path} already exists", reason="key-exists") from None


def _hex(value: Any, where: str) -> bytes:
    if not isinstance(value, str):
        raise _bad_file(f"{where} must be a hex string")
    try:
        return bytes.fromhex(value)
    except ValueError:
        raise _bad_file(f"{where} is not hex") from None


def _bad_file(message: str) -> WalletError:
    return WalletError(message, reason="bad-keyfile")
