"""Market overhead: the wall time of a Generate job bought on a local devnet, against the same
render run here with the worker's own code, and where the market's time goes.

The market run: `neurod.devnet` on 127.0.0.1, node0 mining (blocks every ``--block`` s) with
alice's client agent, and ``--workers`` worker daemons (bob, carol, dave) with ``--slots`` slots
each, the same floors, stakes bonded before the clock starts. The job is timed from the
`job_submit` call to the client's `job_status` saying "done" (every shard verified and paid).

The reference, measured first in this process (so nothing else of this run competes with it):
`worker.render.shard.render_shard` over the very item ranges the chain gives the shards, one
after the other on one core, into fresh folders (what a worker's child process runs for each
shard, `neurod.market.tasks.render_shard`). The headline ratio is market wall / that serial time;
the ratio to the slowest single shard (what perfect parallelism here would take) is printed too.

Where the time goes: while the job runs, the client's `job_status` and `job_get` are polled
every ``POLL_S`` and the moment each height, each on-chain shard status and each client view
state is first seen is recorded. The milestones below are those moments (to within one poll; a
client event's ``[height] text`` is placed at the moment its height was first seen), sorted by
time, and the intervals between them are printed with their share of the wall time:
  submit, posted           the post in a block
  award sent               the client awards in the bid window's last two blocks
  all assigned on chain    the award mined
  all commits mined        render in the workers' children, artifact stored, ResultCommit mined
  first artifact fetch     the client waits one block for a commit's beacon, then fetches
  all verified             artifacts fetched peer to peer, sampled items re-rendered
  all paid on chain        by the client's Accept, or, when verification has not finished by
                           the end of the challenge window, by the workers' Settle
  client says done         the job closed and its outputs taken
When payment comes before verification the order printed shows it.

    .venv/bin/python bench/job_overhead.py [--kind digits|shelves] [--items N] [--shards N] [--keep]
"""

from __future__ import annotations

import argparse
import itertools
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from chain.devnet_keys import devnet_address
from worker.render.shard import render_shard

SPECS = {"digits": ("digits", 7, 2000), "shelves": ("shelf", 11, 40)}  # kind, seed, default items
WORKER_NAMES = ("bob", "carol", "dave")
FLOOR = 50  # base units per quote unit; the job's max price is well above it
MAX_PRICE = 1000
STAKE_NTK = 100
POLL_S = 0.1
JOB_TIMEOUT_S = 150.0
EVENT = re.compile(r"\[(\d+)\] (.*)")


def job_spec(kind: str, items: int) -> dict[str, Any]:
    spec_kind, seed, _ = SPECS[kind]
    return {"task": "render", "seed": seed, "spec": {"kind": spec_kind, "count": items}}


def shard_ranges(items: int, shards: int) -> list[tuple[int, int]]:
    """As `chain.job_spec.JobTerms.shard_range` cuts them (checked against `job_get` later)."""
    return [(k * items // shards, (k + 1) * items // shards) for k in range(shards)]


def local_reference(spec: dict[str, Any], ranges: list[tuple[int, int]]) -> list[float]:
    """Seconds per shard of the worker's render, one shard after the other, here."""
    seconds = []
    with tempfile.TemporaryDirectory(prefix="job-overhead-ref-") as tmp:
        for k, (start, stop) in enumerate(ranges):
            began = time.perf_counter()
            render_shard(spec["spec"], spec["seed"], start, stop, Path(tmp) / f"shard-{k}")
            seconds.append(time.perf_counter() - began)
    return seconds


def worker_flags(name: str, slots: int) -> list[str]:
    return ["--agent-key", f"devnet:{name}", "--worker", "--worker-services", "generate",
            "--worker-stake", str(STAKE_NTK), "--worker-floor-min", str(FLOOR), "--worker-floor-max", str(FLOOR * 4),
            "--worker-slots", str(slots)]


def rpc_client(entry: Any) -> Any:
    from neurod.devnet import client_of

    client = client_of(entry, timeout=30)
    if client is None:
        raise SystemExit(f"{entry.name} is not answering")
    return client


def wait(check: Any, seconds: float, what: str) -> None:
    ends = time.monotonic() + seconds
    while not check():
        if time.monotonic() > ends:
            raise SystemExit(f"timed out after {seconds:g} s waiting for {what}")
        time.sleep(0.2)


class Watch:
    """First-seen moments (monotonic) of heights, chain shard statuses and client view states."""

    def __init__(self) -> None:
        self.heights: dict[int, float] = {}
        self.chain: dict[tuple[int, str], float] = {}
        self.view: dict[tuple[int, str], float] = {}
        self.posted: float | None = None
        self.status: dict[str, Any] = {}
        self.job: dict[str, Any] = {}

    def poll(self, rpc: Any, job: str) -> None:
        now = time.monotonic()
        self.status = rpc.call("job_status", job=job)
        self.heights.setdefault(self.status["height"], now)
        for k, v in enumerate(self.status["views"]):
            self.view.setdefault((k, v["state"]), now)
        try:
            self.job = rpc.call("job_get", job=job)
        except Exception:  # noqa: BLE001 - not in a block yet
            return
        self.posted = self.posted or now
        for shard in self.job["shards"]:
            self.chain.setdefault((shard["index"], shard["status"]), now)

    def at_height(self, h: int) -> float:
        """When a height was first seen (the next one seen, when polling missed it)."""
        later = [t for height, t in self.heights.items() if height >= h]
        return min(later) if later else time.monotonic()

    def first(self, table: dict[tuple[int, str], float], k: int, *states: str) -> float | None:
        found = [table[(k, s)] for s in states if (k, s) in table]
        return min(found) if found else None


def run_market(args: argparse.Namespace, spec: dict[str, Any]) -> tuple[float, Watch, float]:
    """Bring a devnet up, buy the job, return (submit moment, what was watched, done moment)."""
    from neurod import devnet

    root = Path(tempfile.mkdtemp(prefix="job-overhead-"))
    names = WORKER_NAMES[: args.workers]
    extra = [["--agent-key", "devnet:alice"], *[worker_flags(n, args.slots) for n in names]]
    try:
        began = time.monotonic()
        entries = devnet.up(root, 1 + len(names), 1, args.block, fresh=True, extra=extra)
        rpc = rpc_client(entries[0])
        wait(lambda: all(float(rpc.call("stake_get", address=devnet_address(n))["bonded_ntk"]) >= STAKE_NTK
                         for n in names), 120, "the workers' stakes")
        print(f"devnet: {len(entries)} daemons up and {len(names)} stakes bonded in {time.monotonic() - began:.1f} s "
              f"(not counted)")
        watch = Watch()
        submitted = time.monotonic()
        job = rpc.call("job_submit", service="generate", spec=spec, shards=args.shards, max_price=MAX_PRICE,
                       bid_blocks=args.bid_blocks, deadline_blocks=200, challenge_blocks=30)["job"]
        ends = submitted + JOB_TIMEOUT_S
        while watch.status.get("state") not in ("done", "failed", "uncovered"):
            if time.monotonic() > ends:
                raise SystemExit(f"job not done after {JOB_TIMEOUT_S:g} s:\n" + "\n".join(watch.status["events"]))
            watch.poll(rpc, job)
            time.sleep(POLL_S)
        done = time.monotonic()
        if watch.status["state"] != "done":
            raise SystemExit(f"job ended {watch.status['state']}: {watch.status['message']}")
        watch.job = rpc.call("job_get", job=job)
        return submitted, watch, done
    finally:
        devnet.down(root)
        if args.keep:
            print(f"devnet folder kept: {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)


def events(status: dict[str, Any]) -> list[tuple[int, str]]:
    return [(int(m[1]), m[2]) for line in status["events"] if (m := EVENT.match(line))]


def milestones(submitted: float, watch: Watch, done: float) -> list[tuple[float, str]]:
    """The job's milestones, in the order they happened (heights in the labels)."""
    job, status = watch.job, watch.status
    n = len(job["shards"])
    evs = events(status)
    award_h = min((h for h, text in evs if text.startswith("award:")), default=job["bid_end"])
    accept_h = min((h for h, text in evs if text.startswith("accept:")), default=None)
    accepted = {int(k) for h, text in evs if text.startswith("accept:") for k in re.findall(r"\d+", text)}
    settled = sorted(set(range(n)) - accepted)
    verified_h = {int(m[1]): h for h, text in evs if (m := re.match(r"shard (\d+): verified", text))}
    commit_hs = [s["committed_at"] or 0 for s in job["shards"]]
    fetching = [t for k in range(n) if (t := watch.first(watch.view, k, "fetching")) is not None]
    marks = [
        (submitted, "submit"),
        (min(watch.posted or done, watch.at_height(job["posted"])), f"posted (block {job['posted']})"),
        (watch.at_height(award_h), f"award sent (block {award_h}; bid_end {job['bid_end']})"),
        (max(watch.first(watch.chain, k, "assigned", "committed", "paid") or done for k in range(n)),
         "all assigned on chain"),
        (max(watch.first(watch.chain, k, "committed", "paid") or watch.at_height(h) for k, h in enumerate(commit_hs)),
         f"all commits mined (blocks {min(commit_hs)}..{max(commit_hs)})"),
        (max(watch.first(watch.view, k, "verified") or watch.at_height(verified_h.get(k, 0)) for k in range(n)),
         f"all verified by the client (blocks {min(verified_h.values(), default=0)}..{max(verified_h.values(), default=0)})"),
        (max(watch.first(watch.chain, k, "paid") or done for k in range(n)),
         "all paid on chain (" + (f"Accept sent at {accept_h}" if accept_h is not None else "no Accept")
         + (f"; shards {settled} by workers' Settle after challenge_end" if settled else "") + ")"),
        (done, "client says done"),
    ]
    if fetching:
        marks.append((min(fetching), "first artifact fetch seen"))
    return sorted(marks, key=lambda mark: mark[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kind", choices=sorted(SPECS), default="digits")
    parser.add_argument("--items", type=int, help="items in the job (digits 2000, shelves 40)")
    parser.add_argument("--shards", type=int, default=4)
    parser.add_argument("--workers", type=int, default=2, choices=(1, 2, 3))
    parser.add_argument("--slots", type=int, default=2, help="slots per worker daemon")
    parser.add_argument("--block", type=float, default=0.5, help="block interval, seconds")
    parser.add_argument("--bid-blocks", type=int, default=6)
    parser.add_argument("--keep", action="store_true", help="keep the devnet's folder (daemon logs) and print it")
    args = parser.parse_args()
    items = args.items or SPECS[args.kind][2]
    spec = job_spec(args.kind, items)
    ranges = shard_ranges(items, args.shards)

    print(f"job: generate {args.kind}, {items} items in {args.shards} shards; {args.workers} worker daemons x "
          f"{args.slots} slots; blocks every {args.block} s; bid window {args.bid_blocks} blocks")
    ref = local_reference(spec, ranges)
    serial = sum(ref)
    print(f"reference (render_shard here, serial, one core): {serial:.2f} s "
          f"(shards {', '.join(f'{s:.2f}' for s in ref)}; slowest {max(ref):.2f} s)")

    submitted, watch, done = run_market(args, spec)
    chain_ranges = [(s["start"], s["stop"]) for s in watch.job["shards"]]
    if chain_ranges != ranges:
        print(f"note: the chain's shard ranges {chain_ranges} differ from the reference's {ranges}")
    wall = done - submitted
    print(f"\nmarket: submit -> done in {wall:.2f} s, heights {watch.job['posted']} -> "
          f"{max(watch.heights)} ({max(watch.heights) - watch.job['posted']} blocks)")
    marks = milestones(submitted, watch, done)
    width = max(len(label) for _, label in marks)
    for (t0, a), (t1, b) in itertools.pairwise(marks):
        print(f"  {a:<{width}} -> {b:<{width}} {t1 - t0:6.2f} s  {(t1 - t0) / wall:5.1%}")
    at = {label.split(" (")[0]: t for t, label in marks}
    render = at["all commits mined"] - at["all assigned on chain"]
    for k, shard in enumerate(watch.job["shards"]):
        assigned = watch.first(watch.chain, k, "assigned")
        committed = watch.first(watch.chain, k, "committed", "paid")
        span = f"{committed - assigned:.2f} s" if assigned and committed else "n/a"
        print(f"  shard {k}: {shard['worker'][:14]}.. items {shard['start']}..{shard['stop'] - 1}, assigned -> "
              f"commit seen {span} (reference {ref[k]:.2f} s), committed at {shard['committed_at']}, "
              f"paid {shard['payment']}")
    print("client events:")
    for line in watch.status["events"]:
        print(f"  {line}")
    print(f"\nfigure: market {wall:.2f} s vs local serial {serial:.2f} s: ratio {wall / serial:.2f}x "
          f"(vs slowest shard {max(ref):.2f} s: {wall / max(ref):.2f}x); "
          f"market minus assigned -> commits {wall - render:.2f} s")


if __name__ == "__main__":
    main()
