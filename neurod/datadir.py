"""The data dir: what neurod keeps in it, the checks made before anything in it is opened, and
the lock that keeps a second neurod out.

Every entry neurod keeps is listed in `LAYOUT` with the kind it must be, what it holds and what an
operator should do when it is unusable. `prepare_datadir` runs before the config, the log or the
store is opened, so that a wrong kind (a `.cookie` that is a directory, a `chain` that is a file),
a link to something missing (a `chain` on a disk that is not mounted), an entry this user may not
read or write, or a data dir that is itself a file is one `DataDirError`: the path, what is wrong,
and what to do, printed as one line. Bad *contents* are found where each file is parsed
(`node_key` here, `config.toml` in neurod.config, `p2p_key` and the ban list in p2p) and reported
the same way. Nothing here deletes or rewrites an entry: a damaged file may be the only
copy of a key, so the operator decides.
"""

from __future__ import annotations

import errno
import fcntl
import os
import stat
from dataclasses import dataclass
from pathlib import Path

from chain.crypto import SEED_SIZE
from chain.files import write_atomic
from neurod.config import CONFIG_FILE
from neurod.rpc import COOKIE_FILE
from p2p.config import BAN_FILE, KEY_FILE
from wallet.keys import Key

PRIVATE_DIR_MODE = 0o700  # keys and the RPC cookie live here: no one else may list or read it
CHAIN_DIR = "chain"
NODE_KEY_FILE = "node_key"  # 32-byte Ed25519 seed: default mining reward account
NODE_INFO_FILE = "node.json"
LOCK_FILE = ".lock"
LOG_FILE = "neurod.log"

_RW = os.R_OK | os.W_OK
_RWX = os.R_OK | os.W_OK | os.X_OK
_WRITTEN_AT_START = "delete it: neurod writes a new one at every start"


class DataDirError(Exception):
    """A data dir entry neurod cannot use, in one line: its path, what is wrong, what to do."""

    reason = "bad-datadir"

    def __init__(self, path: Path, problem: str, remedy: str) -> None:
        self.path, self.problem, self.remedy = path, problem, remedy
        super().__init__(f"{path}: {problem}; {remedy}")

    @classmethod
    def from_os_error(cls, path: Path, exc: OSError) -> DataDirError:
        """An open, read or write of `path` that the operating system refused."""
        if exc.errno in (errno.EACCES, errno.EPERM):
            return cls(path, f"permission denied to uid {os.geteuid()}", PERMISSION_REMEDY)
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            return cls(path, "no space left on the device", "free some space")
        if exc.errno == errno.EROFS:
            return cls(path, "is on a read-only file system", "remount it read-write or choose another --datadir")
        return cls(path, describe(exc), "check the disk, and the owner and mode of the file")


def describe(exc: OSError) -> str:
    """The operating system's reason, without the path an OSError repeats."""
    return (exc.strerror or str(exc)).lower()


PERMISSION_REMEDY = "fix its owner or mode (chown/chmod), or run neurod as the user that owns the data dir"
DATADIR_REMEDY = "choose another --datadir, or move what is there out of the way"


@dataclass(frozen=True, slots=True)
class Entry:
    """One thing neurod keeps in the data dir."""

    name: str
    holds: str  # what it is, for messages
    remedy: str  # what the operator should do when it is damaged or of the wrong kind
    is_dir: bool = False
    access: int = os.R_OK  # what neurod does with it (0: only replaces it by a rename)


CHAIN = Entry(
    CHAIN_DIR, "the chain database",
    "move it aside (neurod then creates an empty chain and syncs it from peers)", is_dir=True, access=_RWX,
)
NODE_KEY = Entry(
    NODE_KEY_FILE, "the node key",
    "restore it from a backup: it holds this node's mining rewards"
    " (moved aside, a new key and reward account are made)",
)
P2P_KEY = Entry(
    KEY_FILE, "the p2p identity key", "restore it from a backup, or delete it to start under a new peer id"
)
BANS = Entry(BAN_FILE, "the peer ban list", "delete it (the node then starts with no bans)")
CONFIG = Entry(CONFIG_FILE, "the node configuration", "fix it, or move it aside to run with the defaults")
COOKIE = Entry(COOKIE_FILE, "the RPC cookie", _WRITTEN_AT_START, access=0)
NODE_INFO = Entry(NODE_INFO_FILE, "the running node's addresses", _WRITTEN_AT_START, access=0)
LOCK = Entry(LOCK_FILE, "the data dir lock", _WRITTEN_AT_START, access=_RW)
LOG = Entry(LOG_FILE, "the node log", "move it aside (neurod starts a new one)", access=os.W_OK)

LAYOUT: tuple[Entry, ...] = (CHAIN, NODE_KEY, P2P_KEY, BANS, CONFIG, COOKIE, NODE_INFO, LOCK, LOG)
DATADIR = Entry("", "the data dir", DATADIR_REMEDY, is_dir=True, access=_RWX)


def make_private_dir(path: Path) -> None:
    """Create `path` (and any missing parents) if needed; a directory created here is 0700."""
    path.mkdir(parents=True, exist_ok=True, mode=PRIVATE_DIR_MODE)


def prepare_datadir(datadir: Path) -> None:
    """Create the data dir if it is missing, then check it and every entry of `LAYOUT` in it."""
    fault = _fault(datadir, DATADIR)
    if fault is not None:
        raise fault
    try:
        make_private_dir(datadir)
    except OSError as exc:
        raise DataDirError(datadir, f"cannot be created ({describe(exc)})", DATADIR_REMEDY) from None
    for entry in LAYOUT:
        fault = _fault(datadir / entry.name, entry)
        if fault is not None:
            raise fault


def load_or_create_node_key(path: Path) -> Key:
    """The node's own key, made on first start. It is written atomically (never a short file
    after a crash) and never replaced: a file that is not a seed may be the only copy of the key
    to this node's mining rewards, so it stops the start with `DataDirError` instead."""
    try:
        seed = path.read_bytes()
    except FileNotFoundError:
        key = Key.generate()
        write_atomic(path, key.seed, overwrite=False)
        return key
    except OSError as exc:
        raise DataDirError.from_os_error(path, exc) from None
    if len(seed) != SEED_SIZE:
        problem = f"is {len(seed)} bytes, but a node key is a {SEED_SIZE}-byte Ed25519 seed"
        raise DataDirError(path, problem, NODE_KEY.remedy)
    return Key(seed)


def check_keys(datadir: Path) -> None:
    """Read (or make) the node key and the p2p key before the store is opened: the cheap files
    that can stop a start are checked first, not after a store check, and a bad one is the only
    line on stderr. The node reads them again where it uses them."""
    from p2p.host import load_or_create_key  # libp2p: the node imports it next anyway

    load_or_create_node_key(datadir / NODE_KEY_FILE)
    load_or_create_key(datadir / KEY_FILE)


def lock_datadir(datadir: Path) -> int:
    """An exclusive lock on the data dir for the life of the process (released by the kernel)."""
    try:
        fd = os.open(datadir / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as exc:
        raise DataDirError.from_os_error(datadir / LOCK_FILE, exc) from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        other = os.read(fd, 32).decode(errors="replace").strip() or "?"
        problem = f"is in use by another neurod (pid {other})"
        raise DataDirError(datadir, problem, "stop that one first, or choose another --datadir") from None
    os.ftruncate(fd, 0)
    os.write(fd, str(os.getpid()).encode())
    return fd


def _fault(path: Path, entry: Entry) -> DataDirError | None:
    """What makes `path` unusable as `entry`, or None (also when it is missing: it is created)."""
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        if path.is_symlink():
            return DataDirError(
                path, f"is a link to {os.readlink(path)}, which does not exist",
                "mount or restore what it points to, or remove the link",
            )
        return None
    except OSError as exc:
        return DataDirError.from_os_error(path, exc)
    if stat.S_ISDIR(mode) != entry.is_dir or not (entry.is_dir or stat.S_ISREG(mode)):
        want = "a directory" if entry.is_dir else "a regular file"
        return DataDirError(path, f"is {_kind(mode)}, but {entry.holds} must be {want}", entry.remedy)
    missing = [bit for bit in (os.R_OK, os.W_OK, os.X_OK) if entry.access & bit and not os.access(path, bit)]
    if missing:
        return DataDirError(path, f"is not {_rights(missing)} by uid {os.geteuid()}", PERMISSION_REMEDY)
    return None


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISREG(mode):
        return "a regular file"
    if stat.S_ISFIFO(mode):
        return "a named pipe"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "a device"


def _rights(bits: list[int]) -> str:
    """Access bits in words: "writable", "readable and writable", "readable, writable and searchable"."""
    words = [{os.R_OK: "readable", os.W_OK: "writable", os.X_OK: "searchable"}[bit] for bit in bits]
    return " and ".join(words) if len(words) < 3 else f"{', '.join(words[:-1])} and {words[-1]}"
