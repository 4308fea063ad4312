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
