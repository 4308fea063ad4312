"""Small files written whole: a crash leaves the old or the new file, never a short one.

Keys, the ban list, the mempool snapshot and the keystore all go through `write_atomic`: the
bytes go to a temp file beside the target, are fsynced, and the temp file is then published
under the target's name (a rename, or a hard link when an existing file must never be replaced)
and the directory fsynced, so the new name survives a power cut too. It lives in `chain`, the
package every other one may import, so that there is one of it.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from chain import failpoints

FILE_MODE = 0o600  # keys, peers we distrust, pending transactions: the owner's only


def write_atomic(
    path: Path,
    data: bytes,
    *,
    overwrite: bool = True,
    temp: Path | None = None,
    partial_point: str | None = None,
    before_rename_point: str | None = None,
) -> None:
    """Publish ``data`` at ``path`` whole, mode 0600 (its directory made 0700 if missing).

    ``overwrite=False`` publishes with a hard link, which raises FileExistsError if ``path``
    exists: creating a key can never replace another one, even in a race. ``temp`` names the
    temp file (its owner sweeps what a crash left); by default it is a fresh hidden name. The
    fail points (chain/failpoints.py) let crash tests die half-way through the temp file or
    just before it is published.
    """
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = temp or path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    flags = os.O_WRONLY | os.O_CREAT | (os.O_TRUNC if temp else os.O_EXCL)
    fd = os.open(tmp, flags, FILE_MODE)
    try:
        try:
            half = len(data) // 2
            write_all(fd, data[:half])
            if partial_point:
                failpoints.hit(partial_point)
            write_all(fd, data[half:])
            os.fsync(fd)
        finally:
            os.close(fd)
        if before_rename_point:
            failpoints.hit(before_rename_point)
        if overwrite:
            os.replace(tmp, path)
        else:
            os.link(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    fsync_dir(path.parent)


def write_all(fd: int, data: bytes) -> None:
    """`os.write` until all of ``data`` is written (a write may take less than it is given)."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def fsync_dir(directory: Path) -> None:
    """Make a rename, link or unlink in ``directory`` durable."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
