"""Artifacts of random bytes, for transfer tests and benchmarks (no task needs to run)."""

from __future__ import annotations

import os
from pathlib import Path

from worker.artifact import ItemDraft, write_manifest

MB = 1 << 20


def random_artifact(folder: Path, sizes: list[int], kind: str = "test") -> bytes:
    """An artifact of one random file per item (``sizes`` in bytes) in a new ``folder``;
    returns its root. Files are written 8 MB at a time, so a large one costs no memory."""
    folder.mkdir(parents=True)
    drafts = []
    for index, size in enumerate(sizes):
        path = f"part-{index}.bin"
        with open(folder / path, "wb") as f:
            left = size
            while left:
                chunk = min(left, 8 * MB)
                f.write(os.urandom(chunk))
                left -= chunk
        drafts.append(ItemDraft(index, (path,), labels=b"{}"))
    return write_manifest(folder, kind, drafts, {kind: "random"}).root
