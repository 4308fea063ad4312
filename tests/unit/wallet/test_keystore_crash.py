"""A key file survives SIGKILL at any moment of a write: afterwards it is the old or the new file.

A child process rewrites one key file in a tight loop through the production write path
(`Keystore.rewrite`, alternating two sealings of the same key) and is killed at a random moment;
the parent then checks the file is byte-for-byte one of the two versions and still opens. Then,
so that the kill lands inside the write every time, a child dies exactly at each keystore fail
point (half the temp file written; temp file synced, not yet renamed or linked) of a rewrite and
of a create.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from chain import failpoints
from chain.devnet_keys import DEVNET_HRP, devnet_seed
from wallet.keyfile import KdfParams, KeyFile
from wallet.keys import Key
from wallet.keystore import STALE_TEMP_S, Keystore

ROUNDS = 25
PASSWORDS = ("first password", "second password")

CHILD = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from wallet.keyfile import KeyFile
    from wallet.keystore import STALE_TEMP_S, Keystore

    store = Keystore(Path(sys.argv[1]), "tntk")
    versions = [KeyFile.loads(Path(p).read_bytes()) for p in sys.argv[2:]]
    print("ready", flush=True)
    while True:
        for version in versions:
            store.rewrite(version)
    """
)


def alice_in_two_versions(tmp_path: Path) -> tuple[Keystore, bytes, bytes, list[str]]:
    """A keystore holding alice's key sealed under PASSWORDS[1]; the bytes of her file under
    PASSWORDS[0] (old) and PASSWORDS[1] (new); and files holding each version."""
    store = Keystore(tmp_path / "keystore", DEVNET_HRP, KdfParams.light())
    store.create("alice", PASSWORDS[0], Key(devnet_seed("alice")))
    old = store.file_of("alice").read_bytes()
    store.change_password("alice", PASSWORDS[0], PASSWORDS[1])
    new = store.file_of("alice").read_bytes()
    version_files = []
    for index, data in enumerate((old, new)):
        path = tmp_path / f"version{index}.json"
        path.write_bytes(data)
        version_files.append(str(path))
    return store, old, new, version_files


def test_sigkill_during_rewrites_never_leaves_a_torn_key(tmp_path: Path) -> None:
    store, old, new, version_files = alice_in_two_versions(tmp_path)

    rng = random.Random(1234)
    for _ in range(ROUNDS):
        child = subprocess.Popen(
            [sys.executable, "-c", CHILD, str(store.path), *version_files],
            stdout=subprocess.PIPE,
            cwd=Path(__file__).resolve().parents[3],
        )
        assert child.stdout is not None and child.stdout.readline() == b"ready\n"
        time.sleep(rng.uniform(0.0, 0.05))
        child.send_signal(signal.SIGKILL)
        child.wait()
        child.stdout.close()

        data = store.file_of("alice").read_bytes()
        assert data in (old, new), "the key file is neither the old nor the new version"
        password = PASSWORDS[0] if data == old else PASSWORDS[1]
        assert store.unlock("alice", password).seed == devnet_seed("alice")
        assert store.names() == ["alice"]  # leftover temp files are dot files, never keys


WRITE_CHILD = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from wallet.keyfile import KdfParams, KeyFile
    from wallet.keys import Key
    from wallet.keystore import STALE_TEMP_S, Keystore

    store = Keystore(Path(sys.argv[1]), "tntk", KdfParams.light())
    if sys.argv[2] == "rewrite":
        store.rewrite(KeyFile.loads(Path(sys.argv[3]).read_bytes()))
    else:
        store.create("bob", "bob password", Key(bytes.fromhex(sys.argv[3])))
    print("done", flush=True)
    """
)


def write_in_child(store: Keystore, action: str, argument: str, failpoint: str = "") -> int:
    done = subprocess.run(
        [sys.executable, "-c", WRITE_CHILD, str(store.path), action, argument],
        env={**os.environ, failpoints.ENV: failpoint}, capture_output=True, text=True,
        cwd=Path(__file__).resolve().parents[3], timeout=60, check=False,
    )
    assert (done.returncode == 0) == (done.stdout == "done\n"), done.stderr
    return done.returncode


def assert_only_a_hidden_temp_file_is_left(store: Keystore) -> None:
    """The dying write's temp file is a dot file, no key; the keystore sweeps it once stale."""
    litter = list(store.path.glob(".*.tmp"))
    assert len(litter) == 1
    stale = litter[0].stat().st_mtime - 2 * STALE_TEMP_S
    os.utime(litter[0], (stale, stale))
    store.ensure_dir()
    assert not list(store.path.glob(".*"))


@pytest.mark.parametrize("point", ["keystore-write-partial", "keystore-write-before-rename"])
def test_a_kill_at_a_keystore_failpoint_leaves_the_old_file_whole(tmp_path: Path, point: str) -> None:
    assert point in failpoints.POINTS
    store, old, new, (_, new_file) = alice_in_two_versions(tmp_path)
    store.rewrite(KeyFile.loads(old))

    assert write_in_child(store, "rewrite", new_file, point) == -signal.SIGKILL
    assert store.file_of("alice").read_bytes() == old
    assert store.unlock("alice", PASSWORDS[0]).seed == devnet_seed("alice")
    assert_only_a_hidden_temp_file_is_left(store)
    assert write_in_child(store, "rewrite", new_file) == 0  # the write that never crashed
    assert store.file_of("alice").read_bytes() == new

    bob = devnet_seed("bob").hex()
    assert write_in_child(store, "create", bob, point) == -signal.SIGKILL
    assert store.names() == ["alice"]  # no key, rather than a torn one
    assert_only_a_hidden_temp_file_is_left(store)
    assert write_in_child(store, "create", bob) == 0
    assert store.names() == ["alice", "bob"]
    assert store.unlock("bob", "bob password").seed == devnet_seed("bob")
