"""A key file survives SIGKILL at any moment of a rewrite: afterwards it is the old or the new file.

A child process rewrites one key file in a tight loop through the production write path
(`Keystore.rewrite`, alternating two sealings of the same key) and is killed at a random moment;
the parent then checks the file is byte-for-byte one of the two versions and still opens.
"""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from chain.devnet_keys import DEVNET_HRP, devnet_seed
from wallet.keyfile import KdfParams
from wallet.keys import Key
from wallet.keystore import Keystore

ROUNDS = 25
PASSWORDS = ("first password", "second password")

CHILD = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from wallet.keyfile import KeyFile
    from wallet.keystore import Keystore

    store = Keystore(Path(sys.argv[1]), "tntk")
    versions = [KeyFile.loads(Path(p).read_bytes()) for p in sys.argv[2:]]
    print("ready", flush=True)
    while True:
        for version in versions:
            store.rewrite(version)
    """
)


def test_sigkill_during_rewrites_never_leaves_a_torn_key(tmp_path: Path) -> None:
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
