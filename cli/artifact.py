"""`neuro artifact list|show|verify|import|export|pin|unpin|rm|fetch`: the data dir's artifact store.

The store is a folder of the data dir (`neurod/artifact_store.py`), shared with a running
daemon through a lock file, so these commands work with or without one; `fetch` asks the
daemon to fetch an artifact from its peers (RPC `artifact_fetch`, `artifact_progress`).
"""

from __future__ import annotations

import datetime
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from cli.config import DatadirOpt, JsonOpt, NetworkOpt, RpcOpt, Where
from cli.output import CliError, fields, guarded, note, print_json, table

if TYPE_CHECKING:
    from neurod.artifact_store import ArtifactStore, StoredArtifact

artifact_app = typer.Typer(help="Artifacts (datasets, models, labels) kept by content.", no_args_is_help=True)

RootArg = Annotated[str, typer.Argument(help="artifact root: 64 hex digits, or a unique prefix of 8+ of a stored one")]


def open_store(network: str, datadir: Path | None) -> ArtifactStore:
    from neurod.artifact_store import store_of
    from neurod.config import ConfigError, load_config

    where = Where(network, datadir)
    try:
        budget = load_config(where.datadir, {}).artifact_budget_mb << 20
    except ConfigError as exc:
        raise CliError(str(exc), "bad-config") from None
    return store_of(where.datadir, budget)


def as_cli_errors(action):  # type: ignore[no-untyped-def]
    """Store and verification failures as one-line CLI errors with their reasons."""
    from neurod.artifact_store import ArtifactStoreError
    from worker.errors import WorkerError

    try:
        return action()
    except ArtifactStoreError as exc:
        raise CliError(str(exc), exc.reason) from None
    except WorkerError as exc:
        raise CliError(str(exc), exc.reason) from None


def _root(text: str, store: ArtifactStore | None = None) -> bytes:
    """A root: 64 hex, or a unique prefix of 8+ among ``store``'s (a fetch from peers needs it whole)."""
    from chain.id_prefix import HEX_DIGITS, ID_HEX, MIN_PREFIX_HEX
    from cli.ids import resolve_local
    from neurod.artifact_store import parse_root

    value = text.strip().lower().removeprefix("0x")
    if store is None or len(value) == ID_HEX or not (MIN_PREFIX_HEX <= len(value) and set(value) <= HEX_DIGITS):
        return as_cli_errors(lambda: parse_root(text))  # type: ignore[no-any-return]  # its own bad-root error
    return resolve_local(text, "artifact root", lambda: [found.root for found in store.list()])


def _when(stamp: float) -> str:
    return datetime.datetime.fromtimestamp(stamp, datetime.UTC).strftime("%Y-%m-%d %H:%M:%S") if stamp else "-"


def _show(found: StoredArtifact, title: str) -> None:
    fields(title, [
        ("root", found.root.hex()), ("kind", found.kind), ("items", found.items), ("files", found.files),
        ("size", f"{found.size:,} bytes"), ("pinned", "yes" if found.pinned else "no"),
        ("added", _when(found.added)), ("last used", _when(found.last_used)),
    ])


@artifact_app.command("list")
@guarded
def list_(network: NetworkOpt = "main", datadir: DatadirOpt = None, json_out: JsonOpt = False) -> None:
    """Every stored artifact, and the store's use of its budget."""
    store = open_store(network, datadir)
    found = as_cli_errors(store.list)
    if json_out:
        print_json({"artifacts": [a.to_json() for a in found], "bytes": store.usage(), "budget": store.budget_bytes})
        return
    if not found:
        note(f"no artifacts in {store.path}")
        return
    rows = [(a.root.hex(), a.kind, a.items, f"{a.size:,}", "yes" if a.pinned else "", _when(a.last_used)) for a in found]
    table(
        f"{len(rows)} artifacts, {store.usage():,} of {store.budget_bytes:,} bytes",
        ("root", "kind", "items", "bytes", "pinned", "last used"), rows,
    )


@artifact_app.command("show")
@guarded
def show(root: RootArg, network: NetworkOpt = "main", datadir: DatadirOpt = None, json_out: JsonOpt = False) -> None:
    """One artifact: kind, items, files, size, pin and use times."""
    store = open_store(network, datadir)
    found = as_cli_errors(lambda: store.info(_root(root, store)))
    if json_out:
        manifest = store.manifest(found.root)
        print_json({**found.to_json(), "meta": manifest.meta, "file_list": [
            {"path": f.path, "size": f.size, "hash": f.hash.hex()} for f in manifest.files]})
        return
    _show(found, "artifact")


@artifact_app.command("verify")
@guarded
def verify(root: RootArg, network: NetworkOpt = "main", datadir: DatadirOpt = None, json_out: JsonOpt = False) -> None:
    """Re-hash every stored file of an artifact against its manifest; exit 1 on any difference."""
    store = open_store(network, datadir)
    manifest = as_cli_errors(lambda: store.verify(_root(root, store)))
    if json_out:
        print_json({"root": manifest.root.hex(), "ok": True, "files": len(manifest.files)})
    else:
        note(f"ok: {manifest.root.hex()}: {len(manifest.files)} files match their hashes")


@artifact_app.command("import")
@guarded
def import_(
    folder: Annotated[Path, typer.Argument(help="an artifact folder (with manifest.json)")],
    pin: Annotated[bool, typer.Option("--pin", help="never evict it")] = False,
    network: NetworkOpt = "main",
    datadir: DatadirOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Check every file of an artifact folder against its manifest, then store it by content."""
    store = open_store(network, datadir)
    found = as_cli_errors(lambda: store.put(folder, pin=pin))
    if json_out:
        print_json(found.to_json())
    else:
        _show(found, "imported")


@artifact_app.command("export")
@guarded
def export(
    root: RootArg,
    out: Annotated[Path, typer.Argument(help="folder to write (new or empty)")],
    network: NetworkOpt = "main",
    datadir: DatadirOpt = None,
) -> None:
    """Write an artifact's files and manifest to a folder, then check them against the root."""
    store = open_store(network, datadir)
    manifest = as_cli_errors(lambda: store.export(_root(root, store), out))
    note(f"exported {manifest.root.hex()} to {out}: {len(manifest.files)} files, checked")


@artifact_app.command("pin")
@guarded
def pin(
    root: RootArg,
    unpin: Annotated[bool, typer.Option("--unpin", help="allow evicting it again")] = False,
    network: NetworkOpt = "main",
    datadir: DatadirOpt = None,
) -> None:
    """Keep an artifact out of eviction (or, with --unpin, let it go again)."""
    store = open_store(network, datadir)
    found = as_cli_errors(lambda: store.pin(_root(root, store), not unpin))
    note(f"{found.root.hex()} {'pinned' if found.pinned else 'unpinned'}")


@artifact_app.command("rm")
@guarded
def rm(root: RootArg, network: NetworkOpt = "main", datadir: DatadirOpt = None) -> None:
    """Remove an artifact (files other artifacts deliver too are kept)."""
    store = open_store(network, datadir)
    parsed = _root(root, store)
    as_cli_errors(lambda: store.remove(parsed))
    note(f"removed {parsed.hex()}")


FETCH_POLL_S = 0.25
STALL_TIMEOUT_S = 600.0  # no byte verified for this long while fetching: give up waiting


@artifact_app.command("fetch")
@guarded
def fetch(
    root: RootArg,
    sources: Annotated[
        list[str] | None,
        typer.Option("--from", help="a peer to fetch from: multiaddr or connected peer id (repeatable); default: every peer"),
    ] = None,
    network: NetworkOpt = "main",
    datadir: DatadirOpt = None,
    rpc: RpcOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Fetch an artifact from peers into the daemon's store, every piece checked on arrival.
    A fetch cut short (either side killed) resumes from its verified pieces when run again."""
    from cli.tx import client

    parsed = _root(root)
    rpc_client = client(Where(network, datadir, None, rpc))
    found = rpc_client.call("artifact_fetch", root=parsed.hex(), **{"from": list(sources or [])})
    found = _follow(rpc_client, parsed.hex(), found, quiet=json_out)
    if json_out:
        print_json(found)
    if found["state"] != "done":
        raise CliError(f"fetch of {parsed.hex()} failed: {found['error'] or found['reason']}", found["reason"] or "fetch-failed")
    if not json_out:
        took = found["seconds"]
        moved = found["bytes_done"] - found["bytes_resumed"]
        rate = f", {moved / took / 1e6:.1f} MB/s" if took > 0 and moved else ""
        resumed = f" ({found['bytes_resumed']:,} resumed)" if found["bytes_resumed"] else ""
        note(f"fetched {parsed.hex()}: {found['bytes_total']:,} bytes{resumed} in {took:.1f} s{rate}; verified and stored")


def _follow(rpc_client, root: str, found: dict, *, quiet: bool) -> dict:  # type: ignore[no-untyped-def, type-arg]
    """Poll `artifact_progress` until the fetch ends, drawing a progress bar (rate, ETA)."""
    return follow_progress(
        lambda: rpc_client.call("artifact_progress", root=root), found,
        lambda f: f"{root[:16]}.. {f['state']}, {len(f['sources']) - len(f['dropped'])} sources", f"fetch of {root}",
        quiet=quiet,
    )


def follow_progress(poll: Callable[[], dict[str, Any]], found: dict[str, Any], describe: Callable[[dict[str, Any]], str],
                    what: str, *, quiet: bool) -> dict[str, Any]:
    """Poll a transfer (``poll``: its `bytes_total`, `bytes_done` and `state`) until it is done or
    failed, drawing a progress bar (rate, ETA); a transfer that moves no byte for STALL_TIMEOUT_S
    is given up (``what`` names it)."""
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    from cli.output import errors

    columns = (TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
               TimeRemainingColumn())
    last_done, last_move = -1, time.monotonic()
    with Progress(*columns, console=errors, transient=True, disable=quiet) as bar:
        task = bar.add_task(describe(found), total=None)
        while found["state"] not in ("done", "failed"):
            bar.update(task, total=found["bytes_total"] or None, completed=found["bytes_done"], description=describe(found))
            if found["bytes_done"] != last_done:
                last_done, last_move = found["bytes_done"], time.monotonic()
            elif time.monotonic() - last_move > STALL_TIMEOUT_S:
                raise CliError(f"{what} made no progress for {STALL_TIMEOUT_S:.0f} s", "fetch-stalled")
            time.sleep(FETCH_POLL_S)
            found = poll()
        bar.update(task, total=found["bytes_total"] or 1, completed=found["bytes_done"] or 1)
    return found
