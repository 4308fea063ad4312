"""The keystore: a directory with one encrypted key file per account, and a default account.

Layout: `<dir>/<name>.json` per key (mode 0600, directory 0700) and `<dir>/default` holding the
default key's name. Names are short identifiers so they are safe file names on every system.
Every write goes through `keyfile.write_atomic`: a crash never leaves a truncated key.
"""

from __future__ import annotations

import os
import re
import stat
import time
from dataclasses import dataclass, field
from pathlib import Path

from chain.crypto import AddressError, decode_address
from chain.files import fsync_dir
from wallet.keyfile import KdfParams, KeyFile, reseal, seal, unseal, write_atomic
from wallet.keys import Key, WalletError

NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
DEFAULT_FILE = "default"
DIR_MODE = 0o700
SUFFIX = ".json"
STALE_TEMP_S = 3600.0


def check_name(name: str) -> str:
    """A key name: letters, digits, `_`, `.` and `-`, at most 64, not starting with a symbol."""
    if not NAME_PATTERN.fullmatch(name) or name == DEFAULT_FILE:
        raise WalletError(
            f"bad key name {name!r}: use 1-64 letters, digits, '_', '.', '-' (not starting with a symbol)",
            reason="bad-key-name",
        )
    return name


@dataclass(frozen=True, slots=True)
class Keystore:
    """Keys of one network (addresses use ``hrp``) in ``path``."""

    path: Path
    hrp: str
    kdf: KdfParams = field(default_factory=KdfParams.standard, repr=False)

    def ensure_dir(self) -> None:
        """Create the directory owner-only; tighten it if it exists with looser permissions."""
        self.path.mkdir(parents=True, exist_ok=True, mode=DIR_MODE)
        if stat.S_IMODE(self.path.stat().st_mode) & 0o077:
            os.chmod(self.path, DIR_MODE)
        self._sweep_temp_files()

    def _sweep_temp_files(self) -> None:
        """Remove temp files of writes interrupted long ago (a live writer's are seconds old)."""
        cutoff = time.time() - STALE_TEMP_S
        for entry in self.path.glob(".*.tmp"):
            try:
                if entry.stat().st_mtime < cutoff:
                    entry.unlink()
            except FileNotFoundError:
                pass

    def file_of(self, name: str) -> Path:
        return self.path / f"{check_name(name)}{SUFFIX}"

    def names(self) -> list[str]:
        """Key names, sorted; temp files of interrupted writes (dot files) are not keys."""
        if not self.path.is_dir():
            return []
        return sorted(
            entry.name[: -len(SUFFIX)]
            for entry in self.path.iterdir()
            if entry.name.endswith(SUFFIX) and NAME_PATTERN.fullmatch(entry.name[: -len(SUFFIX)])
        )

    def load(self, name: str) -> KeyFile:
        path = self.file_of(name)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            known = ", ".join(self.names()) or "none"
            raise WalletError(
                f"no key named {name!r} in {self.path} (keys: {known})", reason="unknown-key"
            ) from None
        keyfile = KeyFile.loads(data, str(path))
        if keyfile.name != name:
            raise WalletError(
                f"{path} holds key {keyfile.name!r}, not {name!r}: rename the file back",
                reason="bad-keyfile",
            )
        return keyfile

    def list(self) -> list[KeyFile]:
        return [self.load(name) for name in self.names()]

    def find(self, name_or_address: str) -> KeyFile:
        """A key by name, or by its address."""
        if (
            NAME_PATTERN.fullmatch(name_or_address)
            and (self.path / f"{name_or_address}{SUFFIX}").exists()
        ):
            return self.load(name_or_address)
        for keyfile in self.list():
            if keyfile.address == name_or_address:
                return keyfile
        return self.load(name_or_address)

    def unlock(self, name: str, password: str) -> Key:
        return unseal(self.load(name), password)

    def create(self, name: str, password: str, key: Key | None = None) -> KeyFile:
        """Store ``key`` (a new random one by default) as ``name``; never replaces a key.

        The first key of a keystore becomes its default.
        """
        check_password(password)
        key = key or Key.generate()
        address = key.address(self.hrp)
        for existing in self.list():
            if existing.address == address:
                raise WalletError(
                    f"this key is already in the keystore as {existing.name!r}", reason="key-exists"
                )
        self.ensure_dir()
        keyfile = seal(key, check_name(name), self.hrp, password, self.kdf)
        try:
            write_atomic(self.file_of(name), keyfile.dumps(), overwrite=False)
        except WalletError as exc:
            raise WalletError(f"a key named {name!r} already exists", reason=exc.reason) from None
        if self.default_name() is None:
            self.set_default(name)
        return keyfile

    def import_file(self, name: str, source: Path, password: str) -> KeyFile:
        """Import a key file exported from any keystore; it is re-sealed under ``name``."""
        try:
            data = source.read_bytes()
        except OSError as exc:
            raise WalletError(f"cannot read {source}: {exc.strerror}", reason="io-error") from None
        key = unseal(KeyFile.loads(data, str(source)), password)
        return self.create(name, password, key)

    def rewrite(self, keyfile: KeyFile) -> None:
        """Replace the stored file of ``keyfile.name`` atomically (password change)."""
        self.ensure_dir()
        write_atomic(self.file_of(keyfile.name), keyfile.dumps(), overwrite=True)

    def change_password(self, name: str, old_password: str, new_password: str) -> KeyFile:
        check_password(new_password)
        keyfile = reseal(self.load(name), old_password, new_password)
        self.rewrite(keyfile)
        return keyfile

    def rename(self, old: str, new: str, password: str) -> KeyFile:
        """Give a key a new name. The name is authenticated, so the key is re-sealed.

        The new file is published before the old one is removed: a crash in between leaves two
        copies of the key, never none.
        """
        check_name(new)
        keyfile = reseal(self.load(old), password, password, name=new)
        try:
            write_atomic(self.file_of(new), keyfile.dumps(), overwrite=False)
        except WalletError:
            raise WalletError(f"a key named {new!r} already exists", reason="key-exists") from None
        if self.default_name() == old:
            self.set_default(new)
        self.file_of(old).unlink()
        fsync_dir(self.path)
        return keyfile

    def export_file(self, name: str) -> bytes:
        """The key's encrypted file, byte for byte: safe to copy anywhere."""
        return self.load(name).dumps()

    def default_name(self) -> str | None:
        """The default key's name, or None when unset or when that key is gone."""
        try:
            name = (self.path / DEFAULT_FILE).read_text().strip()
        except FileNotFoundError:
            return None
        return name if NAME_PATTERN.fullmatch(name) and name in self.names() else None

    def set_default(self, name: str) -> None:
        self.load(name)
        self.ensure_dir()
        write_atomic(self.path / DEFAULT_FILE, f"{name}\n".encode(), overwrite=True)

    def resolve(self, name: str | None) -> KeyFile:
        """``name``'s key, or the default key when ``name`` is None."""
        if name is not None:
            return self.find(name)
        default = self.default_name()
        if default is None:
            raise WalletError(
                f"no default key in {self.path}: pass a key name or create one with `neuro wallet new`",
                reason="no-default-key",
            )
        return self.load(default)


def check_password(password: str) -> None:
    if not password:
        raise WalletError("the password must not be empty", reason="empty-password")


def check_address(text: str, hrp: str) -> bytes:
    """The account id of ``text``, checked by its bech32m checksum for this network's prefix."""
    try:
        return decode_address(text.strip(), hrp)
    except AddressError as exc:
        raise WalletError(f"bad address {exc.detail}", reason="bad-address") from None
