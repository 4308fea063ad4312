"""`neuro job show|list` and `neuro stake show`: the market's state, read through the daemon.

Writing to the market (staking, posting, awarding, committing, challenging, settling) goes
through `neuro tx build --kind ...`, `neuro tx sign` and `neuro tx send`; a worker's bid is
signed with `neuro tx bid`.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.text import Text

from cli.config import DatadirOpt, JsonOpt, KeystoreOpt, NetworkOpt, RpcOpt, Where
from cli.output import CliError, fields, guarded, note, print_json, table
from cli.tx import address_of, client
from cli.wallet import OptionalNameArg

job_app = typer.Typer(help="Market jobs: show one, list them.", no_args_is_help=True)
stake_app = typer.Typer(help="Workers' stake: bonded, locked, unbonding.", no_args_is_help=True)

HASH_HEX = 64
STATUS_STYLES = {"paid": "green", "refunded": "yellow", "queried": "red", "committed": "cyan",
                 "assigned": "blue", "closed": "green"}
MAX_LIST = 1000


def job_id_param(text: str) -> str:
    value = text.strip().lower().removeprefix("0x")
    if len(value) != HASH_HEX or any(c not in "0123456789abcdef" for c in value):
        raise CliError(f"{text!r} is not a job id (64 hex: the id of its job-post tx)", "bad-job-id")
    return value


def _status(name: str) -> Text:
    return Text(name, style=STATUS_STYLES.get(name, ""))


def _or_dash(value: Any) -> Any:
    return "-" if value is None else value


@job_app.command("show")
@guarded
def show(
    job: Annotated[str, typer.Argument(help="job id (hex)", metavar="JOB")],
    network: NetworkOpt = "main",
    datadir: DatadirOpt = None,
    rpc: RpcOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """A job: its terms, spec, escrow, and each shard's worker and state."""
    wanted = job_id_param(job)
    found = client(Where(network, datadir, None, rpc)).call("job_get", job=wanted)
    if json_out:
        print_json(found)
        return
    counts = ", ".join(f"{n} {name}" for name, n in found["shard_status"].items() if n)
    fields(
        f"job {found['job']}",
        [
            ("status", _status(found["status"])),
            ("client", found["client"]),
            ("service", found["service"]),
            ("items", found["items"]),
            ("units", found["units"]),
            ("max price", f"{found['max_price_ntk']} NTK per {found['quote_unit']}"),
            ("escrow", f"{found['escrow_ntk']} NTK"),
            ("posted", found["posted"]),
            ("bids until", f"{found['bid_end']}{' (open)' if found['bidding'] else ''}"),
            ("deadline", found["deadline"]),
            ("challenge", f"{found['challenge_blocks']} blocks after each commit"),
            ("spec hash", found["spec_hash"]),
            ("shards", f"{found['shard_count']}: {counts}"),
        ],
    )
    rows = [
        (
            s["index"], _status(s["status"]), f"{s['start']}..{s['stop']}", _or_dash(s["worker"]),
            f"{s['price_ntk']} NTK" if s["price"] else "-", f"{s['payment_ntk']} NTK", f"{s['stake_ntk']} NTK", _or_dash(s["deadline"]),
            (s["root"] or "-")[:16], _or_dash(s["challenge_end"]),
        )
        for s in found["shards"]
    ]
    table("shards", ("#", "status", "items", "worker", f"price/{found['quote_unit']}", "payment", "stake", "deadline", "root",
                     "challenge end"), rows)


@job_app.command("list")
@guarded
def list_jobs(
    client_address: Annotated[
        str | None, typer.Option("--client", help="jobs posted by this address or key name")
    ] = None,
    worker: Annotated[
        str | None, typer.Option("--worker", help="jobs this address or key name worked on")
    ] = None,
    status: Annotated[str | None, typer.Option("--status", help="open | closed")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=MAX_LIST, help="newest first")] = 100,
    network: NetworkOpt = "main",
    datadir: DatadirOpt = None,
    keystore: KeystoreOpt = None,
    rpc: RpcOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Jobs, newest first, by client, worker and status."""
    if status is not None and status not in ("open", "closed"):
        raise CliError(f"--status must be open or closed, not {status!r}", "bad-status")
    where = Where(network, datadir, keystore, rpc)
    params: dict[str, Any] = {"limit": limit}
    if client_address is not None:
        params["client"] = address_of(where, client_address)
    if worker is not None:
        params["worker"] = address_of(where, worker)
    if status is not None:
        params["status"] = status
    jobs = client(where).call("job_list", **params)
    if json_out:
        print_json(jobs)
        return
    if not jobs:
        note("no jobs")
        return
    rows = [
        (
            j["job"][:16], j["service"], _status(j["status"]), j["client"],
            f"{j['shard_status']['paid']}/{j['shard_count']} paid", j["items"], f"{j['escrow_ntk']} NTK",
            j["posted"], j["deadline"],
        )
        for j in jobs
    ]
    table(f"{len(rows)} jobs", ("job", "service", "status", "client", "shards", "items", "escrow", "posted",
                                "deadline"), rows)


@stake_app.command("show")
@guarded
def stake_show(
    name: OptionalNameArg = None,
    network: NetworkOpt = "main",
    datadir: DatadirOpt = None,
    keystore: KeystoreOpt = None,
    rpc: RpcOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """An account's stake: bonded, locked by awarded shards, free, unbonding."""
    where = Where(network, datadir, keystore, rpc)
    stake = client(where).call("stake_get", address=address_of(where, name))
    if json_out:
        print_json(stake)
        return
    release = "-"
    if stake["unbonding"]:
        release = f"at height {stake['release_height']}" + (" (releasable now)" if stake["releasable"] else "")
    meets = Text("yes", style="green") if stake["meets_min_stake"] else Text("no", style="red")
    fields(
        None,
        [
            ("address", stake["address"]),
            ("balance", f"{stake['balance_ntk']} NTK"),
            ("bonded", f"{stake['bonded_ntk']} NTK"),
            ("locked", f"{stake['locked_ntk']} NTK"),
            ("free", f"{stake['free_ntk']} NTK"),
            ("unbonding", f"{stake['unbonding_ntk']} NTK"),
            ("release", release),
            (f"bids count (>= {stake['min_stake_ntk']} NTK)", meets),
        ],
    )


# ---- buying: the node's client agent (neurod/market/client_agent.py) ---------------------------

worker_app = typer.Typer(help="This node's worker agent: speeds, floors, shards.", no_args_is_help=True)
SERVICES = ("generate", "train", "label", "evaluate")
FINAL_STATES = ("done", "uncovered", "failed")
WAIT_POLL_S = 0.5


def _job_view(status: dict[str, Any]) -> Any:
    """The rich view of one client job: its shards and the last events."""
    from rich.console import Group

    bids = status["bids"]
    head = Text(f"job {status['job'][:16]}  {status['service']}  {status['state']}  height {status.get('height', '-')}"
                f"  bids {len(bids)}", style="bold")
    if bids:
        head.append("  (" + ", ".join(f"{b['worker'][:12]}.. {b['price']} x{b['max_shards']}" for b in bids[:6]) + ")",
                    style="dim")
    rows = Text()
    for k, view in enumerate(status["views"]):
        rows.append(f"  shard {k}: ")
        rows.append(view["state"], style=STATUS_STYLES.get(view["state"], "cyan" if view["state"] == "verified" else ""))
        worker = view["worker"][:16] + ".." if view["worker"] else "-"
        rows.append(f"  worker {worker}  price {view['price'] or '-'}  {view['detail'][:70]}\n")
    events = Text("\n".join(status["events"][-8:]), style="dim")
    message = Text(status["message"], style="yellow") if status["message"] else Text("")
    return Group(head, rows, events, message)


@job_app.command("submit")
@guarded
def submit(
    service: Annotated[str, typer.Argument(help=" | ".join(SERVICES))],
    spec: Annotated[str, typer.Argument(help="the task spec, a JSON file", metavar="SPEC.json")],
    shards: Annotated[int, typer.Option("--shards", min=1, help="shard count (workers share them)")] = 1,
    max_price: Annotated[int, typer.Option("--max-price", min=1, help="most paid per quote unit, base units")] = 1000,
    bid_blocks: Annotated[int, typer.Option("--bid-blocks", min=1, help="blocks bids are collected")] = 6,
    deadline: Annotated[int, typer.Option("--deadline", min=2, help="blocks from the post to the results")] = 100,
    challenge_blocks: Annotated[int, typer.Option("--challenge-blocks", min=1, help="blocks to verify and challenge each result")] = 30,
    wait: Annotated[bool, typer.Option("--wait", help="follow the job until it closes")] = False,
    timeout: Annotated[float, typer.Option("--timeout", help="seconds --wait waits at most")] = 600.0,
    network: NetworkOpt = "main",
    datadir: DatadirOpt = None,
    rpc: RpcOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Buy work on the market: the node's agent posts the job (escrow locked), collects bids,
    awards the cheapest covering pool, verifies what is delivered, and pays or proves fraud."""
    import json
    import time
    from pathlib import Path

    from rich.live import Live

    from cli.output import console

    if service not in SERVICES:
        raise CliError(f"service must be one of {', '.join(SERVICES)}, not {service!r}", "bad-service")
    try:
        doc = json.loads(Path(spec).read_text())
    except (OSError, ValueError) as exc:
        raise CliError(f"{spec}: {exc}", "bad-spec-file") from None
    rpc_client = client(Where(network, datadir, None, rpc))
    status = rpc_client.call("job_submit", service=service, spec=doc, shards=shards, max_price=max_price,
                             bid_blocks=bid_blocks, deadline_blocks=deadline, challenge_blocks=challenge_blocks)
    job = status["job"]
    if not wait:
        print_json(status) if json_out else note(f"job {job} posted; follow it with `neuro job status {job}`")
        return
    ends = time.monotonic() + timeout
    with Live(_job_view(status), console=console, refresh_per_second=4, transient=json_out) as live:
        while status["state"] not in FINAL_STATES:
            if time.monotonic() > ends:
                raise CliError(f"job {job} is still {status['state']} after {timeout:g} s", "wait-timeout")
            time.sleep(WAIT_POLL_S)
            status = rpc_client.call("job_status", job=job)
            live.update(_job_view(status))
    if json_out:
        print_json(status)
    elif status["state"] != "done":
        raise CliError(f"job {job}: {status['state']}: {status['message']}", f"job-{status['state']}")


@job_app.command("status")
@guarded
def job_status(
    job: Annotated[str | None, typer.Argument(help="job id (hex); none: every job this node submitted",
                                              metavar="[JOB]")] = None,
    network: NetworkOpt = "main",
    datadir: DatadirOpt = None,
    rpc: RpcOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """What this node's client agent knows of a job it submitted: bids, shards, events."""
    from cli.output import console

    rpc_client = client(Where(network, datadir, None, rpc))
    if job is None:
        jobs = rpc_client.call("client_jobs")
        if json_out:
            print_json(jobs)
            return
        table(f"{len(jobs)} jobs submitted here", ("job", "service", "state", "shards", "paid", "message"),
              [(j["job"][:16], j["service"], j["state"], j["shards"], j["paid"], j["message"][:60]) for j in jobs])
        return
    status = rpc_client.call("job_status", job=job_id_param(job))
    if json_out:
        print_json(status)
        return
    console.print(_job_view(status))


@worker_app.command("status")
@guarded
def worker_status(
    network: NetworkOpt = "main",
    datadir: DatadirOpt = None,
    rpc: RpcOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """The worker agent: services, measured speeds, price floors, stake, shards and bids."""
    found = client(Where(network, datadir, None, rpc)).call("worker_status")
    if json_out:
        print_json(found)
        return
    fields(None, [
        ("address", found["address"]), ("services", ", ".join(found["services"])),
        ("speeds", ", ".join(f"{k} {v:,.0f} units/s" for k, v in found["speeds"].items())),
        ("floors", ", ".join(f"{k} {v.get('floor')}" for k, v in found["floors"].items())),
        ("bonded", found["bonded"]), ("slots", found["slots"]),
    ])
    if found["shards"]:
        table("shards", ("job", "shard", "state", "root", "error"),
              [(s["job"][:16], s["shard"], s["state"], (s["root"] or "-")[:16], s["error"] or "") for s in found["shards"]])
