"""Artifact transfer: a 200 MB artifact between two daemons on loopback.

Prints the fetch throughput (bytes / seconds from `artifact_fetch` to the artifact being stored,
every piece and every whole file verified), its ratio to a raw py-libp2p stream copy of the same
number of bytes between two processes built the same way (noise + yamux, 1 MiB writes) measured
in the same run (goal >= 0.8), and the verify cost: seconds of hashing per GB (each piece against
its list, then each whole file against the manifest), and as a share of the transfer time.

On a shared machine the MB/s ratio swings with what else runs, so each side's CPU time per MB is
printed too (utime + stime of its process, all threads, over the transfer: the fetch's two
daemons, the raw copy's server process and client run), with the CPU ratios raw / fetch of the
client side and of both sides together: the figure that says what the fetch costs beyond the copy.

With ``--files N``: instead, a dataset shard of N files of 400 bytes (a market shard is ~500 of a
few KB), fetched between two daemons: seconds and requests per shard, against the same files put
into a fresh local store here (hashed, copied, fsynced) measured in the same run.

    .venv/bin/python bench/artifact_transfer.py [--mb 200] [--runs 3] [--files 502]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import trio

MB = 1 << 20
SHARD_FILE = 400  # bytes per file of a --files shard
RAW_PROTOCOL = "/neuro-bench/raw/1"
POLL = 0.2  # seconds between progress polls (the seconds reported are the daemon's own)
TICK = 1 / os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """utime + stime of process `pid`, all its threads (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) * TICK


def self_cpu() -> float:
    return time.process_time()


# --------------------------------------------------------------------------- raw reference


def raw_server(key_dir: Path, total: int) -> None:
    """Serve `total` bytes in 1 MiB writes on every stream of RAW_PROTOCOL; prints its address."""
    from p2p.host import Host, load_or_create_key

    async def main() -> None:
        host = Host(load_or_create_key(key_dir / "key"), ["/ip4/127.0.0.1/tcp/0"],
                    on_connect=lambda *_: None, on_disconnect=lambda *_: None)
        block = os.urandom(MB)

        async def serve(peer: str, read: object, write: object) -> None:
            sent = 0
            while sent < total:
                chunk = block[: min(MB, total - sent)]
                await write(chunk)  # type: ignore[operator]
                sent += len(chunk)

        host.set_handler(RAW_PROTOCOL, serve)
        async with trio.open_nursery() as nursery:
            await nursery.start(host.run)
            print(host.listen_addrs()[0], flush=True)
            await trio.sleep_forever()

    trio.run(main)


async def raw_copy(addr: str, key_dir: Path, total: int, run: int, server_pid: int) -> tuple[float, float, float]:
    """Seconds to read `total` bytes from the raw server on one fresh stream, and the CPU seconds
    of the client (this process) and of the server over it; a fresh identity per run (the server
    may still hold the last run's connection, and one per peer is allowed)."""
    from p2p.host import Host, load_or_create_key

    host = Host(load_or_create_key(key_dir / f"client{run}"), ["/ip4/127.0.0.1/tcp/0"],
                on_connect=lambda *_: None, on_disconnect=lambda *_: None)
    async with trio.open_nursery() as nursery:
        await nursery.start(host.run)
        peer = await host.connect(addr, 30)
        started, client0, server0 = time.perf_counter(), self_cpu(), cpu_seconds(server_pid)
        async with host.stream_request(peer, RAW_PROTOCOL, b"go") as read:
            got = 0
            while got < total:
                data = await read(1 << 20)
                if not data:
                    raise RuntimeError(f"raw stream ended at {got} of {total}")
                got += len(data)
        seconds = time.perf_counter() - started
        client, server = self_cpu() - client0, cpu_seconds(server_pid) - server0
        nursery.cancel_scope.cancel()
    return seconds, client, server


# --------------------------------------------------------------------------- artifact


def make_artifact(folder: Path, total: int) -> bytes:
    from tests.support.artifacts import random_artifact

    return random_artifact(folder, [total // 4] * 4, kind="bench")


def verify_seconds(folder: Path) -> tuple[float, int]:
    """Hashing a fetch does per byte: every piece against its list, every file whole."""
    from blake3 import blake3

    from p2p.artifacts import PIECE_SIZE
    from worker.artifact import file_hash

    started, size = time.perf_counter(), 0
    for path in sorted(folder.glob("*.bin")):
        with open(path, "rb") as f:
            while piece := f.read(PIECE_SIZE):
                blake3(piece).digest()
                size += len(piece)
        file_hash(path)
    return time.perf_counter() - started, size


def fetch_seconds(workdir: Path, art: Path, root: bytes, run: int) -> tuple[float, float, float]:
    """Seconds of a fetch (the fetcher's own figure), and the CPU seconds of the fetching and
    the serving daemon over it."""
    found = fetch_progress(workdir, art, root, run)
    return float(found["seconds"]), float(found["cpu_fetcher"]), float(found["cpu_server"])  # type: ignore[arg-type]


def fetch_progress(workdir: Path, art: Path, root: bytes, run: int) -> dict[str, object]:
    """The final `artifact_progress` of a fetch of `art` between two fresh daemons, with the
    CPU seconds each daemon spent from the request to the answer that it is done."""
    from neurod.artifact_store import store_of
    from tests.support.daemons import Daemon, wait_until

    server = Daemon(workdir / f"server{run}").start()
    fetcher = Daemon(workdir / f"fetcher{run}", bootstrap=[server.p2p_addr]).start()
    try:
        store_of(server.datadir).put(art)
        wait_until(lambda: fetcher.peers() >= 1, 60, "peering")
        assert fetcher.proc is not None and server.proc is not None
        pids = fetcher.proc.pid, server.proc.pid
        before = [cpu_seconds(pid) for pid in pids]
        fetcher.rpc("artifact_fetch", root=root.hex(), **{"from": [server.peer_id]})
        found = wait_until(
            lambda: (p := fetcher.rpc("artifact_progress", root=root.hex()))["state"] in ("done", "failed") and p,
            600, "the fetch", interval=POLL,
        )
        found["cpu_fetcher"], found["cpu_server"] = (cpu_seconds(pid) - t for pid, t in zip(pids, before, strict=True))
        if found["state"] != "done":
            raise RuntimeError(f"fetch failed: {found}")
        return found  # type: ignore[no-any-return]
    finally:
        fetcher.stop()
        server.stop()


def shard_figure(workdir: Path, files: int, runs: int) -> None:
    from neurod.artifact_store import ArtifactStore
    from tests.support.artifacts import random_artifact

    root = random_artifact(workdir / "shard", [SHARD_FILE] * files, kind="bench")
    local = []
    for run in range(runs):
        started = time.perf_counter()
        ArtifactStore(workdir / f"local{run}").put(workdir / "shard")
        local.append(time.perf_counter() - started)
    fetched = [fetch_progress(workdir, workdir / "shard", root, run) for run in range(runs)]
    best = min(fetched, key=lambda p: float(p["seconds"]))  # type: ignore[arg-type]
    seconds = float(best["seconds"])  # type: ignore[arg-type]
    print(f"shard: {files} files of {SHARD_FILE} bytes, {runs} runs each (best of)")
    print(f"local store put:     {min(local):6.2f} s  (runs: " + ", ".join(f"{s:.2f}" for s in local) + ")")
    print(f"fetch, verified:     {seconds:6.2f} s, {best.get('requests', '?')} requests  (runs: "
          + ", ".join(f"{float(p['seconds']):.2f} s/{p.get('requests', '?')}" for p in fetched) + ")")  # type: ignore[arg-type]
    print(f"ratio fetch / local put: {seconds / min(local):.2f}; {files / seconds:.0f} files/s")


def print_cpu(total: int, raw_runs: list[tuple[float, float, float]],
              fetch_runs: list[tuple[float, float, float]]) -> None:
    """CPU ms per MB of each side (median of the runs, every run in brackets) and the ratios."""
    mb = total / 1e6

    def side(runs: list[tuple[float, float, float]], at: int) -> tuple[float, str]:
        per_mb = [r[at] * 1e3 / mb for r in runs]
        return statistics.median(per_mb), ", ".join(f"{v:.1f}" for v in per_mb)

    raw_client, raw_client_runs = side(raw_runs, 1)
    raw_server, raw_server_runs = side(raw_runs, 2)
    fetcher, fetcher_runs = side(fetch_runs, 1)
    server, server_runs = side(fetch_runs, 2)
    print(f"cpu ms/MB, raw copy:  client {raw_client:5.2f}  (runs: {raw_client_runs}), "
          f"server {raw_server:5.2f}  (runs: {raw_server_runs})")
    print(f"cpu ms/MB, fetch:     client {fetcher:5.2f}  (runs: {fetcher_runs}), "
          f"server {server:5.2f}  (runs: {server_runs})")
    print(f"cpu ratio raw / fetch: client {raw_client / fetcher:.2f}, "
          f"both sides {(raw_client + raw_server) / (fetcher + server):.2f}  (median runs)")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mb", type=int, default=200)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--files", type=int, help="a shard of this many small files instead")
    parser.add_argument("--raw-server", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--bytes", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.raw_server:
        raw_server(args.raw_server, args.bytes)
        return
    if args.files:
        with tempfile.TemporaryDirectory(prefix="bench-artifact-") as tmp:
            shard_figure(Path(tmp), args.files, args.runs)
        return
    total = args.mb * MB
    with tempfile.TemporaryDirectory(prefix="bench-artifact-") as tmp:
        workdir = Path(tmp)
        root = make_artifact(workdir / "art", total)
        server = subprocess.Popen(
            [sys.executable, __file__, "--raw-server", str(workdir), "--bytes", str(total)],
            stdout=subprocess.PIPE, text=True,
        )
        try:
            assert server.stdout is not None
            addr = server.stdout.readline().strip()
            raw_runs = [trio.run(raw_copy, addr, workdir, total, run, server.pid) for run in range(args.runs)]
        finally:
            server.terminate()
            server.wait()
        fetch_runs = [fetch_seconds(workdir, workdir / "art", root, run) for run in range(args.runs)]
        hashing, hashed = verify_seconds(workdir / "art")
    raw, fetched = [r[0] for r in raw_runs], [f[0] for f in fetch_runs]
    raw_best, fetch_best = min(raw), min(fetched)
    print(f"artifact: {total / 1e6:.0f} MB in 4 files, {args.runs} runs each (best of)")
    print(f"raw py-libp2p stream copy: {total / raw_best / 1e6:7.1f} MB/s  (runs: "
          + ", ".join(f"{total / s / 1e6:.0f}" for s in raw) + ")")
    print(f"artifact fetch, verified:  {total / fetch_best / 1e6:7.1f} MB/s  (runs: "
          + ", ".join(f"{total / s / 1e6:.0f}" for s in fetched) + ")")
    print(f"ratio fetch / raw: {raw_best / fetch_best:.2f}  (goal >= 0.8)")
    print_cpu(total, raw_runs, fetch_runs)
    per_gb = hashing / (hashed / 1e9)
    print(f"verify cost: {per_gb:.2f} s of hashing per GB (pieces + whole files), "
          f"{hashing / fetch_best:.0%} of the fetch time")


if __name__ == "__main__":
    main()
