"""The keystore: sealing round trip, wrong passwords and tampering, permissions, and key management."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

import pytest

from chain.devnet_keys import DEVNET_HRP, devnet_address, devnet_seed
from wallet.keyfile import KdfParams, KeyFile, seal, unseal, write_atomic
from wallet.keys import Key, WalletError
from wallet.keystore import Keystore, check_address

PASSWORD = "correct horse battery staple"


@pytest.fixture
def store(tmp_path: Path) -> Keystore:
    return Keystore(tmp_path / "keystore", DEVNET_HRP, KdfParams.light())


def edited(keyfile: KeyFile, edit: Any) -> KeyFile:
    doc = keyfile.to_json()
    edit(doc)
    return KeyFile.from_json(doc)


def flip_hex(text: str, index: int) -> str:
    raw = bytearray(bytes.fromhex(text))
    raw[index] ^= 0x01
    return raw.hex()


def test_seal_unseal_round_trip() -> None:
    key = Key(devnet_seed("alice"))
    keyfile = seal(key, "alice", DEVNET_HRP, PASSWORD, KdfParams.light())
    assert keyfile.address == devnet_address("alice")
    reread = KeyFile.loads(keyfile.dumps())
    assert reread == keyfile
    assert unseal(reread, PASSWORD).seed == key.seed
    assert key.seed.hex() not in keyfile.dumps().decode()


def test_wrong_password_is_a_clear_error() -> None:
    keyfile = seal(Key.generate(), "k", DEVNET_HRP, PASSWORD, KdfParams.light())
    with pytest.raises(WalletError) as caught:
        unseal(keyfile, PASSWORD + "!")
    assert caught.value.reason == "wrong-password"
    assert "wrong password" in str(caught.value)


@pytest.mark.parametrize(
    "edit",
    [
        pytest.param(
            lambda d: d["crypto"].update(ciphertext=flip_hex(d["crypto"]["ciphertext"], 3)),
            id="ciphertext",
        ),
        pytest.param(
            lambda d: d["crypto"].update(ciphertext=flip_hex(d["crypto"]["ciphertext"], 40)),
            id="tag",
        ),
        pytest.param(
            lambda d: d["crypto"].update(nonce=flip_hex(d["crypto"]["nonce"], 0)), id="nonce"
        ),
        pytest.param(
            lambda d: d["crypto"]["kdfparams"].update(
                salt=flip_hex(d["crypto"]["kdfparams"]["salt"], 5)
            ),
            id="salt",
        ),
        pytest.param(lambda d: d.update(name="mallory"), id="header-name"),
        pytest.param(lambda d: d.update(address=devnet_address("bob")), id="header-address"),
        pytest.param(
            lambda d: d.update(public_key=Key(devnet_seed("bob")).public_key.hex()),
            id="header-public-key",
        ),
    ],
)
def test_tampered_file_is_rejected(edit: Any) -> None:
    keyfile = seal(Key(devnet_seed("alice")), "alice", DEVNET_HRP, PASSWORD, KdfParams.light())
    with pytest.raises(WalletError) as caught:
        unseal(edited(keyfile, edit), PASSWORD)
    assert caught.value.reason == "wrong-password"


def test_swapped_headers_between_two_files_are_rejected() -> None:
    alice = seal(Key(devnet_seed("alice")), "alice", DEVNET_HRP, PASSWORD, KdfParams.light())
    bob = seal(Key(devnet_seed("bob")), "bob", DEVNET_HRP, PASSWORD, KdfParams.light())
    spliced = edited(alice, lambda d: d.update(crypto=bob.to_json()["crypto"]))
    with pytest.raises(WalletError, match="wrong password"):
        unseal(spliced, PASSWORD)


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda d: d.pop("created"), "expected the fields"),
        (lambda d: d.update(version=2), "unsupported version"),
        (lambda d: d["crypto"].update(kdf="pbkdf2"), "only scrypt"),
        (lambda d: d["crypto"].update(ciphertext="zz"), "not hex"),
        (lambda d: d["crypto"].update(nonce="00"), "wrong length"),
        (lambda d: d["crypto"]["kdfparams"].update(n=2**24), "power of two"),
        (lambda d: d["crypto"]["kdfparams"].update(n=3000), "power of two"),
        (lambda d: d["crypto"]["kdfparams"].update(r=1000), "scrypt r"),
        (lambda d: d["crypto"]["kdfparams"].update(n=2**20, r=16), "MiB"),
    ],
)
def test_malformed_file_is_bad_keyfile(edit: Any, message: str) -> None:
    doc = seal(Key.generate(), "k", DEVNET_HRP, PASSWORD, KdfParams.light()).to_json()
    edit(doc)
    with pytest.raises(WalletError, match=message) as caught:
        KeyFile.loads(json.dumps(doc).encode())
    assert caught.value.reason == "bad-keyfile"


def test_not_json_and_oversized_files_are_bad_keyfile() -> None:
    for data in (b"{not json", b" " * 20_000, "\u00ff".encode("latin-1")):
        with pytest.raises(WalletError) as caught:
            KeyFile.loads(data)
        assert caught.value.reason == "bad-keyfile"


def test_real_keys_use_the_standard_cost_and_light_only_when_asked(tmp_path: Path) -> None:
    standard = Keystore(tmp_path, DEVNET_HRP).kdf
    assert (standard.n, standard.r, standard.p, standard.dklen) == (2**17, 8, 1, 32)
    assert KdfParams.light().n == 2**10
    assert KdfParams.light().salt != KdfParams.light().salt


def test_files_are_owner_only(store: Keystore) -> None:
    store.create("alice", PASSWORD)
    assert stat.S_IMODE(store.path.stat().st_mode) == 0o700
    assert stat.S_IMODE(store.file_of("alice").stat().st_mode) == 0o600
    assert stat.S_IMODE((store.path / "default").stat().st_mode) == 0o600


def test_loose_directory_is_tightened(store: Keystore) -> None:
    store.path.mkdir(mode=0o755)
    store.path.chmod(0o755)
    store.create("alice", PASSWORD)
    assert stat.S_IMODE(store.path.stat().st_mode) == 0o700


def test_create_list_default_and_unlock(store: Keystore) -> None:
    assert store.names() == [] and store.default_name() is None
    first = store.create("alice", PASSWORD)
    store.create("bob", PASSWORD)
    assert store.names() == ["alice", "bob"]
    assert store.default_name() == "alice"  # the first key becomes the default
    store.set_default("bob")
    assert store.resolve(None).name == "bob"
    assert store.find(first.address).name == "alice"
    assert store.unlock("alice", PASSWORD).address(DEVNET_HRP) == first.address


def test_create_never_replaces_a_key(store: Keystore) -> None:
    store.create("alice", PASSWORD, Key(devnet_seed("alice")))
    with pytest.raises(WalletError, match="already exists") as caught:
        store.create("alice", PASSWORD)
    assert caught.value.reason == "key-exists"
    with pytest.raises(WalletError, match="already in the keystore as 'alice'"):
        store.create("alice2", PASSWORD, Key(devnet_seed("alice")))
    assert store.unlock("alice", PASSWORD).seed == devnet_seed("alice")


@pytest.mark.parametrize("name", ["", "-x", ".hidden", "a/b", "default", "x" * 65, "sp ace"])
def test_bad_names_are_refused(store: Keystore, name: str) -> None:
    with pytest.raises(WalletError) as caught:
        store.create(name, PASSWORD)
    assert caught.value.reason == "bad-key-name"


def test_empty_password_is_refused(store: Keystore) -> None:
    with pytest.raises(WalletError) as caught:
        store.create("alice", "")
    assert caught.value.reason == "empty-password"


def test_unknown_key_lists_the_known_ones(store: Keystore) -> None:
    store.create("alice", PASSWORD)
    with pytest.raises(WalletError, match="keys: alice") as caught:
        store.load("bob")
    assert caught.value.reason == "unknown-key"
    with pytest.raises(WalletError) as no_default:
        Keystore(store.path / "empty", DEVNET_HRP).resolve(None)
    assert no_default.value.reason == "no-default-key"


def test_export_then_import_elsewhere(store: Keystore, tmp_path: Path) -> None:
    created = store.create("alice", PASSWORD)
    exported = tmp_path / "alice-backup.json"
    exported.write_bytes(store.export_file("alice"))
    other = Keystore(tmp_path / "other", DEVNET_HRP, KdfParams.light())
    imported = other.import_file("savings", exported, PASSWORD)
    assert imported.name == "savings" and imported.address == created.address
    assert other.unlock("savings", PASSWORD).seed == store.unlock("alice", PASSWORD).seed
    with pytest.raises(WalletError) as caught:
        other.import_file("again", exported, "not the password")
    assert caught.value.reason == "wrong-password"


def test_rename_moves_key_and_default(store: Keystore) -> None:
    created = store.create("alice", PASSWORD)
    store.create("bob", PASSWORD)
    store.rename("alice", "carol", PASSWORD)
    assert store.names() == ["bob", "carol"]
    assert store.default_name() == "carol"
    assert store.load("carol").address == created.address
    with pytest.raises(WalletError) as exists:
        store.rename("carol", "bob", PASSWORD)
    assert exists.value.reason == "key-exists"
    with pytest.raises(WalletError) as wrong:
        store.rename("carol", "dave", "nope")
    assert wrong.value.reason == "wrong-password"
    assert store.names() == ["bob", "carol"]


def test_a_file_renamed_by_hand_is_detected(store: Keystore) -> None:
    store.create("alice", PASSWORD)
    store.file_of("alice").rename(store.path / "eve.json")
    with pytest.raises(WalletError, match="holds key 'alice'") as caught:
        store.load("eve")
    assert caught.value.reason == "bad-keyfile"


def test_change_password(store: Keystore) -> None:
    store.create("alice", PASSWORD, Key(devnet_seed("alice")))
    before = store.load("alice")
    store.change_password("alice", PASSWORD, "new password")
    after = store.load("alice")
    assert after.created == before.created and after.kdf.salt != before.kdf.salt
    assert store.unlock("alice", "new password").seed == devnet_seed("alice")
    with pytest.raises(WalletError, match="wrong password"):
        store.unlock("alice", PASSWORD)


def test_write_atomic_without_overwrite_keeps_the_old_file(tmp_path: Path) -> None:
    target = tmp_path / "k.json"
    write_atomic(target, b"old", overwrite=False)
    with pytest.raises(WalletError) as caught:
        write_atomic(target, b"new", overwrite=False)
    assert caught.value.reason == "key-exists"
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["k.json"]  # no temp file left behind
    write_atomic(target, b"new", overwrite=True)
    assert target.read_bytes() == b"new"


def test_check_address_uses_the_checksum_and_prefix() -> None:
    good = devnet_address("bob")
    assert len(check_address(good, DEVNET_HRP)) == 20
    typo = good[:-1] + ("q" if good[-1] != "q" else "p")
    for bad in (typo, good.replace("tntk1", "ntk1"), "", "hello"):
        with pytest.raises(WalletError) as caught:
            check_address(bad, DEVNET_HRP)
        assert caught.value.reason == "bad-address"


def test_stale_temp_files_of_interrupted_writes_are_swept(store: Keystore) -> None:
    store.create("alice", PASSWORD)
    stale, fresh = store.path / ".alice.json.aaaa.tmp", store.path / ".alice.json.bbbb.tmp"
    stale.write_bytes(b"half")
    fresh.write_bytes(b"half")
    os.utime(stale, (0, 0))
    store.change_password("alice", PASSWORD, "other")
    assert not stale.exists() and fresh.exists()
