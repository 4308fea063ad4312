"""Files the p2p layer keeps in the data dir (its identity key, the ban list), written so that a
crash leaves the old or the new whole file, never a short one that stops the next start."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

FILE_MODE = 0o600  # a private key and the list of peers we distrust: the owner's only


def write_atomic(path: Path, data: bytes, *, overwrite: bool) -> None:
    """Write `data` to a temp file beside `path`, fsync it, then publish it under `path` and fsync
    the directory so the new name survives a power cut. `overwrite=False` publishes with a hard
    link, which fails (FileExistsError) if `path` exists: creating a key never replaces one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, FILE_MODE)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        if overwrite:
            os.replace(tmp, path)
        else:
            os.link(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)
    directory = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


def describe(exc: OSError) -> str:
    """The operating system's reason, without the path an OSError repeats."""
    return (exc.strerror or str(exc)).lower()
