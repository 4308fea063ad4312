"""Artifacts a job names, made local: fetched by root from peers, then exported for a child task.

A train job may name its data by artifact roots (`worker.tasks.envelope.ArtifactsSource`: the
shards of a generate job bought earlier); a label job names its images and its model so
(`worker.label_job`). The trainer, the client replaying its proof of learning
and a committee member judging a dispute all need those files; each fetches the roots it lacks
from its peers (any peer holding them serves them: the client that bought them, the workers that
rendered them), checked piece by piece against the root (`p2p.artifact_fetch`), and exports them
into a folder of its own for the child process. The child checks every file against its root
again before training on it (`worker.tasks.data.load_rendered`), so a folder damaged on disk in
between is refused, never learned from.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

import trio

if TYPE_CHECKING:
    from neurod.node import Node

POLL_S = 0.2


class InputsUnavailable(Exception):
    """The job's own inputs could not be had or are damaged here: no verdict on the worker's
    result can be drawn from that, so the check is retried, never held against the worker."""


def check_inputs(folders: dict[str, str]) -> None:
    """Each exported input against its root (in the child, before a replay): raises
    `InputsUnavailable` naming the one that differs."""
    from worker.errors import WorkerError
    from worker.render.delivered import open_render_artifact

    for root, folder in folders.items():
        try:
            open_render_artifact(folder, bytes.fromhex(root))
        except WorkerError as exc:
            raise InputsUnavailable(f"the job's input {root[:16]} in {folder}: {exc}") from None


async def fetch_root(node: Node, root: bytes, sources: list[str]) -> None:
    """Fetch ``root`` into the node's artifact store from ``sources`` (peer ids or multiaddrs;
    none: every connected peer); returns once it is stored, raises when the fetch fails."""
    if node.artifacts.store.has(root):
        return
    p2p = node.p2p
    p2p.fetch_artifact(root, sources)
    while True:
        progress = p2p.artifact_progress(root)
        if node.artifacts.store.has(root):
            return
        if progress is not None and progress.state == "failed":
            raise RuntimeError(progress.error or progress.reason or "fetch failed")
        await trio.sleep(POLL_S)


def named_roots(spec: dict[str, Any]) -> list[str]:
    """The artifact roots (hex) a task spec reads, in order, without repeats."""
    roots: list[str] = []
    for key in ("data", "validation"):
        source = spec.get(key)
        if isinstance(source, dict) and source.get("source") == "artifacts":
            roots += [r for r in source.get("roots", []) if isinstance(r, str) and r not in roots]
    for key in ("images_root", "weights_root"):  # a label job's images and model (`worker.label_job`)
        if isinstance(spec.get(key), str) and spec[key] not in roots:
            roots.append(spec[key])
    return roots


async def local_inputs(node: Node, spec_json: str, folder: Path) -> dict[str, str]:
    """Every root the spec names, fetched if missing and exported under ``folder`` (emptied
    first); root (hex) -> its folder, for `worker.tasks.data.artifact_folders`. Raises
    `InputsUnavailable` when one cannot be fetched or exported."""
    roots = named_roots(json.loads(spec_json))
    shutil.rmtree(folder, ignore_errors=True)
    folders: dict[str, str] = {}
    for root in roots:
        target = folder / root
        try:
            await fetch_root(node, bytes.fromhex(root), [])
            await trio.to_thread.run_sync(node.artifacts.store.export, bytes.fromhex(root), target)
        except Exception as exc:  # noqa: BLE001 - a fetch, a store or a disk error: named, retried later
            raise InputsUnavailable(f"the job's input {root[:16]}: {exc}") from None
        folders[root] = str(target)
    return folders
