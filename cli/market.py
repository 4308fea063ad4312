"""`neuro job show|list` and `neuro stake show`: the market's state, read through the daemon.

Staking from a wallet key is `neuro stake add|remove`; `neuro market prices` reads the clearing
prices on chain. Writing to the market (posting, awarding, committing, challenging, settling) goes
through `neuro tx build --kind ...`, `neuro tx sign` and `neuro tx send`; a worker's bid is
signed with `neuro tx bid`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.text import Text

from cli.config import DatadirOpt, JsonOpt, KeystoreOpt, NetworkOpt, PasswordFileOpt, RpcOpt, Where
from cli.ids import resolve_id
from cli.output import CliError, fields, guarded, note, print_json, table
from cli.tx import DEFAULT_FEE_NTK, FeeOpt, WaitOpt, address_of, client
from cli.wallet import OptionalNameArg

job_app = typer.Typer(help="Market jobs: show one, list them.", no_args_is_help=True)
stake_app = typer.Typer(help="Workers' stake: bonded, locked, unbonding.", no_args_is_help=True)

STATUS_STYLES = {"paid": "green", "refunded": "yellow", "queried": "red", "committed": "cyan",
                 "assigned": "blue", "closed": "green"}
MAX_LIST = 1000


def job_call(where: Where, method: str, job: str) -> Any:
    """``method`` for the job ``job`` names: its id (of its job-post tx), or a unique prefix of 8+."""
    wanted = resolve_id(job, "job", lambda: client(where))
    return client(where).call(method, job=wanted)


def _status(name: str) -> Text:
    return Text(name, style=STATUS_STYLES.get(name, ""))


def _or_dash(value: Any) -> Any:
    return "-" if value is None else value


@job_app.command("show")
@guarded
def show(
    job: Annotated[str, typer.Argument(help="job id: 64 hex, or a unique prefix of 8+", metavar="JOB")],
    network: NetworkOpt = "main",
    datadir: DatadirOpt = None,
    rpc: RpcOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """A job: its terms, spec, escrow, and each shard's worker and state."""
    found = job_call(Where(network, datadir, None, rpc), "job_get", job)
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


def escrow_at(service: str, docs: list[dict[str, Any]], shards: int, price: int) -> int:
    """What posting ``docs`` at ``price`` locks in escrow: every shard's payment at that price."""
    import json

    from chain.job_spec import job_terms
    from chain.market_types import Service

    total = 0
    for doc in docs:
        canonical = json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()
        try:
            terms = job_terms(Service[service.upper()], canonical, len(canonical))
        except ValueError as exc:  # InvalidTransaction: the spec the chain would refuse, named
            raise CliError(f"spec: {exc}", getattr(exc, "reason", "bad-spec")) from None
        total += sum(terms.payment(k, shards, price) for k in range(shards))
    return total


def fit_budget(service: str, docs: list[dict[str, Any]], shards: int, max_price: int | None, budget: int) -> int:
    """The highest max price (at most ``max_price``, when given) whose escrow fits ``budget``."""
    low, high = 0, max_price or budget * 10**9 + 1
    while low < high:  # escrow grows with the price: the last price that fits
        mid = (low + high + 1) // 2
        low, high = (mid, high) if escrow_at(service, docs, shards, mid) <= budget else (low, mid - 1)
    if low < 1 or escrow_at(service, docs, shards, low) < 1:
        from chain.amounts import format_ntk

        raise CliError(f"a budget of {format_ntk(budget)} NTK cannot pay for this work even at 1 base unit per "
                       f"quote unit (that locks {format_ntk(escrow_at(service, docs, shards, 1))} NTK)",
                       "budget-too-small")
    return low


def follow_jobs(rpc_client: Any, statuses: list[dict[str, Any]], timeout: float, quiet: bool) -> list[dict[str, Any]]:
    """Follow jobs until each closes, with a live view of their bids, shards and events."""
    import time

    from rich.console import Group
    from rich.live import Live

    from cli.output import console

    ends = time.monotonic() + timeout
    with Live(Group(*map(_job_view, statuses)), console=console, refresh_per_second=4, transient=quiet) as live:
        while any(s["state"] not in FINAL_STATES for s in statuses):
            if time.monotonic() > ends:
                late = [s["job"][:16] for s in statuses if s["state"] not in FINAL_STATES]
                raise CliError(f"jobs {', '.join(late)} still open after {timeout:g} s", "wait-timeout")
            time.sleep(WAIT_POLL_S)
            statuses = [s if s["state"] in FINAL_STATES else rpc_client.call("job_status", job=s["job"])
                        for s in statuses]
            live.update(Group(*map(_job_view, statuses)))
    return statuses


@job_app.command("submit")
@guarded
def submit(
    service: Annotated[str, typer.Argument(help=" | ".join(SERVICES))],
    spec: Annotated[str | None, typer.Argument(
        help="the task spec, a JSON file; generate: or a bought generator's listing id or root; label: "
             "or none, with --images and --model",
        metavar="SPEC.json")] = None,
    shards: Annotated[int, typer.Option("--shards", min=1, help="shard count (workers share them)")] = 1,
    max_price: Annotated[int | None, typer.Option(
        "--max-price", min=1, help="most paid per quote unit, base units (default 1000, or what --budget allows)")
    ] = None,
    budget: Annotated[str | None, typer.Option(
        "--budget", help="most locked in escrow, NTK, all jobs together: caps the max price")] = None,
    bid_blocks: Annotated[int, typer.Option("--bid-blocks", min=1, help="blocks bids are collected")] = 6,
    deadline: Annotated[int, typer.Option("--deadline", min=2, help="blocks from the post to the results")] = 100,
    challenge_blocks: Annotated[int, typer.Option("--challenge-blocks", min=1, help="blocks to verify and challenge each result")] = 30,
    wait: Annotated[bool, typer.Option("--wait", help="follow the jobs until they close")] = False,
    real: Annotated[str | None, typer.Option(
        "--real", help="train: score each delivered model on your real set here ('mnist', a folder of class "
                       "folders, a .csv or a COCO .json) and keep the best; implies --wait")] = None,
    timeout: Annotated[float, typer.Option("--timeout", help="seconds --wait waits at most")] = 600.0,
    images: Annotated[str | None, typer.Option(
        "--images", help="label: a folder of unlabelled images (or an images artifact's folder or root)")] = None,
    model: Annotated[str | None, typer.Option(
        "--model", help="label: weights (.safetensors), a model artifact's folder, or its root (a train job's output)")
    ] = None,
    network: NetworkOpt = "main",
    datadir: DatadirOpt = None,
    rpc: RpcOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Buy work on the market: the node's agent posts the job (escrow locked), collects bids,
    awards the cheapest covering pool, verifies what is delivered, and pays or proves fraud.
    A train spec listing "architectures" posts one job per architecture (`cli.architectures`)."""
    import json
    from pathlib import Path

    from chain.amounts import format_ntk, parse_ntk
    from cli.architectures import architecture_jobs, best, score_model

    if service not in SERVICES:
        raise CliError(f"service must be one of {', '.join(SERVICES)}, not {service!r}", "bad-service")
    if service == "label":  # its images and model published to this data dir's store (`cli.label`)
        from cli.label import label_job_doc

        doc = label_job_doc(spec, images, model, Where(network, datadir, None, rpc))
    elif spec is None:
        raise CliError(f"give the {service} spec: SPEC.json", "bad-spec-file")
    elif service == "generate" and not Path(spec).exists() and len(spec.strip().removeprefix("0x")) == 64:
        from cli.listings import generator_spec

        doc = generator_spec(Where(network, datadir, None, rpc), spec)
    else:
        try:
            doc = json.loads(Path(spec).read_text())
        except (OSError, ValueError) as exc:
            raise CliError(f"{spec}: {exc}", "bad-spec-file") from None
    if not isinstance(doc, dict):
        raise CliError(f"{spec}: a task spec is a JSON object", "bad-spec-file")
    docs = architecture_jobs(doc) if service == "train" else [doc]
    if real is not None and service != "train":
        raise CliError("--real scores delivered models: train jobs only", "bad-option")
    price = max_price or 1000
    if budget is not None:
        try:
            cap = parse_ntk(budget)
        except ValueError as exc:
            raise CliError(f"--budget: {exc}", "bad-amount") from None
        price = fit_budget(service, docs, shards, max_price, cap)
        note(f"max price {price} per quote unit: {format_ntk(escrow_at(service, docs, shards, price))} NTK in escrow "
             f"of the {format_ntk(cap)} NTK budget")
    rpc_client = client(Where(network, datadir, None, rpc))
    statuses = [rpc_client.call("job_submit", service=service, spec=d, shards=shards, max_price=price,
                                bid_blocks=bid_blocks, deadline_blocks=deadline, challenge_blocks=challenge_blocks)
                for d in docs]
    if not wait and real is None:
        if json_out:
            print_json(statuses[0] if len(statuses) == 1 else statuses)
        for status in statuses if not json_out else ():
            note(f"job {status['job']} posted; follow it with `neuro job status {status['job']}`")
        return
    statuses = follow_jobs(rpc_client, statuses, timeout, json_out)
    failed = [s for s in statuses if s["state"] != "done"]
    if real is None or failed:
        if json_out:
            print_json(statuses[0] if len(statuses) == 1 else statuses)
        if failed:
            raise CliError("; ".join(f"job {s['job']}: {s['state']}: {s['message']}" for s in failed),
                           f"job-{failed[0]['state']}")
        return
    scored = [score_model(s["job"], d["train"]["model"], s["views"][0]["output"], real) for s, d in zip(statuses, docs)]
    chosen = best(scored)
    if json_out:
        print_json({"jobs": statuses, "scores": [vars(x) for x in scored], "best": vars(chosen)})
        return
    table(f"models scored on {real} (here; the real set never left this machine)",
          ("job", "architecture", chosen.metric, "model"),
          [(x.job[:16], x.model, f"{x.score:.3f}" + ("  best" if x is chosen else ""), x.output) for x in scored])


@job_app.command("status")
@guarded
def job_status(
    job: Annotated[str | None, typer.Argument(help="job id (hex, or a unique prefix of 8+); none: every job this node submitted",
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
    status = rpc_client.call("job_status", job=resolve_id(job, "job", lambda: rpc_client))
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
    """The worker agent: services, measured speeds, price floors, stake, shards, bids and its
    votes on dispute committees."""
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
    if found.get("votes"):
        table("committee votes", ("job", "shard", "state", "verdict", "detail"),
              [(v["job"][:16], v["shard"], v["state"], "-" if v["fraud"] is None else ("fraud" if v["fraud"] else "honest"),
                v["detail"]) for v in found["votes"]])


# ---- staking from a wallet key, prices, the worker's floors and earnings, a job's outputs --------

market_app = typer.Typer(help="The market: clearing prices, and listings to buy and sell (data, models, generators).",
                         no_args_is_help=True)


def _send_stake(kind: str, amount: str, sender: str | None, fee: str, wait: float | None, where: Where,
                password_file: Path | None, json_out: bool) -> None:
    """Sign and send a Stake or Unstake from a keystore key, as `neuro wallet send` sends a transfer:
    checked against what the daemon sees before the password is asked."""
    from chain.amounts import format_ntk
    from chain.market_types import Stake, Unstake
    from cli.config import read_password
    from cli.tx import online_chain_id, submit
    from wallet.payload_json import payload_from_json
    from wallet.txfile import build_unsigned, sign_unsigned

    store = where.keystore()
    keyfile = store.resolve(sender)
    payload = payload_from_json(kind, {"amount": amount}, where.hrp)  # bad-amount before any network call
    assert isinstance(payload, (Stake, Unstake))
    build_unsigned(chain_id=bytes(32), sender=keyfile.address, fee=fee, nonce=0, payload=payload)  # the fee too
    rpc_client = client(where)
    chain_id = online_chain_id(rpc_client, where)
    account = rpc_client.call("account_get", address=keyfile.address)
    unsigned = build_unsigned(chain_id=chain_id, sender=keyfile.address, fee=fee,
                              nonce=int(account["pending_nonce"]), payload=payload)
    if kind == "stake" and payload.amount + unsigned.fee > int(account["balance"]):
        raise CliError(f"{keyfile.name} has {account['balance_ntk']} NTK; staking {amount} NTK with a {fee} NTK fee "
                       "needs more", "insufficient-balance")
    free = int(account["bonded"]) - int(account["locked"])
    if kind == "unstake" and payload.amount > free:
        raise CliError(f"{keyfile.name} has {format_ntk(max(0, free))} NTK of free stake (bonded {account['bonded_ntk']}, "
                       f"locked {account['locked_ntk']} by awarded shards); cannot unstake {amount} NTK",
                       "insufficient-free-stake")
    key = store.unlock(keyfile.name, read_password(password_file))
    submit(rpc_client, sign_unsigned(unsigned, key), wait, json_out, where.hrp)


@stake_app.command("add")
@guarded
def stake_add(
    amount: Annotated[str, typer.Argument(help="NTK to bond, e.g. 100")],
    sender: Annotated[str | None, typer.Option("--from", help="key name (default: the default key)")] = None,
    fee: FeeOpt = DEFAULT_FEE_NTK,
    wait: WaitOpt = None,
    network: NetworkOpt = "main",
    datadir: DatadirOpt = None,
    keystore: KeystoreOpt = None,
    rpc: RpcOpt = None,
    password_file: PasswordFileOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Bond stake from a key's balance (a Stake transaction): a worker's bids count once bonded
    reaches the network's minimum, and awarded shards lock part of it."""
    _send_stake("stake", amount, sender, fee, wait, Where(network, datadir, keystore, rpc), password_file, json_out)


@stake_app.command("remove")
@guarded
def stake_remove(
    amount: Annotated[str, typer.Argument(help="NTK to unbond, e.g. 100")],
    sender: Annotated[str | None, typer.Option("--from", help="key name (default: the default key)")] = None,
    fee: FeeOpt = DEFAULT_FEE_NTK,
    wait: WaitOpt = None,
    network: NetworkOpt = "main",
    datadir: DatadirOpt = None,
    keystore: KeystoreOpt = None,
    rpc: RpcOpt = None,
    password_file: PasswordFileOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Unbond free stake (an Unstake transaction): it stays slashable until its release height,
    then `neuro tx build --kind release` moves it back to the balance."""
    _send_stake("unstake", amount, sender, fee, wait, Where(network, datadir, keystore, rpc), password_file, json_out)


def _prices_cell(value: Any) -> str:
    if value is None:
        return "-"
    return f"{value:,.1f}" if isinstance(value, float) and not value.is_integer() else f"{int(value):,}"


@market_app.command("prices")
@guarded
def prices(
    service: Annotated[str | None, typer.Option("--service", help=" | ".join(SERVICES))] = None,
    last: Annotated[int, typer.Option("--last", min=1, max=1000, help="newest awarded jobs read")] = 50,
    network: NetworkOpt = "main",
    datadir: DatadirOpt = None,
    rpc: RpcOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Recent clearing prices: the unit prices awarded to workers on chain, per service and per job."""
    if service is not None and service not in SERVICES:
        raise CliError(f"--service must be one of {', '.join(SERVICES)}, not {service!r}", "bad-service")
    params: dict[str, Any] = {"last": last}
    if service is not None:
        params["service"] = service
    found = client(Where(network, datadir, None, rpc)).call("market_prices", **params)
    if json_out:
        print_json(found)
        return
    if not found["jobs"]:
        note(f"no awarded jobs{' of ' + service if service else ''} on chain (height {found['height']})")
        return
    table(f"clearing prices at height {found['height']} (base units per quote unit)",
          ("service", "quote unit", "jobs", "shards", "low", "median", "high"),
          [(s["service"], s["quote_unit"] or "-", s["jobs"], s["shards"], _prices_cell(s["low"]),
            _prices_cell(s["median"]), _prices_cell(s["high"])) for s in found["services"].values()])
    table(f"{len(found['jobs'])} newest awarded jobs",
          ("job", "service", "status", "posted", "bids until", "awarded", "prices", "max price"),
          [(j["job"][:16], j["service"], _status(j["status"]), j["posted"], j["bid_end"],
            f"{j['awarded']}/{j['shards']}", ", ".join(f"{p:,}" for p in j["prices"]), f"{j['max_price']:,}")
           for j in found["jobs"]])


@worker_app.command("floor")
@guarded
def worker_floor(
    network: NetworkOpt = "main",
    datadir: DatadirOpt = None,
    rpc: RpcOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """The worker agent's price floor per service: the floor it bids at now, the operator's bounds,
    the learner's mean, and how many awards it has learned from."""
    found = client(Where(network, datadir, None, rpc)).call("worker_floor")
    if json_out:
        print_json(found)
        return
    table(f"floors of {found['address']} (base units per quote unit)",
          ("service", "floor", "min", "max", "mean", "awards seen", "last award"),
          [(name, f"{f['floor']:,}", f"{f['min_floor']:,}", f"{f['max_floor']:,}", f"{f['mean_floor']:,.1f}",
            f["rounds"], _or_dash(f["last_award_height"])) for name, f in found["floors"].items()])


@worker_app.command("earnings")
@guarded
def worker_earnings(
    address: Annotated[str | None, typer.Option("--address", help="another account (address or key name)")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=10_000, help="newest events read")] = 1000,
    network: NetworkOpt = "main",
    datadir: DatadirOpt = None,
    keystore: KeystoreOpt = None,
    rpc: RpcOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """What this node's agent account was paid, rewarded and slashed on the market, in total and per job."""
    where = Where(network, datadir, keystore, rpc)
    params: dict[str, Any] = {"limit": limit}
    if address is not None:
        params["address"] = address_of(where, address)
    found = client(where).call("worker_earnings", **params)
    if json_out:
        print_json(found)
        return
    fields(None, [("address", found["address"]), ("paid", f"{found['paid_ntk']} NTK"),
                  ("rewards", f"{found['rewards_ntk']} NTK"), ("slashed", f"{found['slashed_ntk']} NTK"),
                  ("net", f"{found['net_ntk']} NTK")])
    if found["jobs"]:
        table("per job, newest first", ("job", "height", "shards", "paid", "rewards", "slashed", "net", "notes"),
              [(j["job"][:16], j["height"], ",".join(map(str, j["shards"])), j["paid_ntk"], j["rewards_ntk"],
                Text(j["slashed_ntk"], style="red") if j["slashed"] else j["slashed_ntk"], j["net_ntk"],
                ",".join(j["notes"])) for j in found["jobs"]])


@job_app.command("fetch")
@guarded
def job_fetch(
    job: Annotated[str, typer.Argument(help="job id: 64 hex, or a unique prefix of 8+", metavar="JOB")],
    out: Annotated[str, typer.Argument(help="folder to copy the verified shards into (shard-K each)", metavar="DIR")],
    network: NetworkOpt = "main",
    datadir: DatadirOpt = None,
    rpc: RpcOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Copy the verified outputs of a job this node's client agent bought into DIR/shard-K
    (the daemon's own copies, on this machine, stay where they are)."""
    import shutil

    status = job_call(Where(network, datadir, None, rpc), "job_status", job)
    if status["state"] != "done":
        detail = f": {status['message']}" if status["message"] else ""
        raise CliError(f"job {status['job']} is {status['state']}, not done{detail}; follow it with "
                       f"`neuro job status {status['job']}`", "job-not-done")
    sources = [(k, Path(v["output"])) for k, v in enumerate(status["views"]) if v["output"]]
    if not sources:
        raise CliError(f"job {status['job']} has no verified shard outputs", "no-outputs")
    missing = [str(path) for _, path in sources if not path.is_dir()]
    if missing:
        raise CliError(f"{missing[0]} is not on this machine: run the command where the daemon runs",
                       "output-missing")
    target = Path(out).expanduser()
    clashes = [str(target / f"shard-{k}") for k, _ in sources if (target / f"shard-{k}").exists()]
    if clashes:
        raise CliError(f"{clashes[0]} exists: choose another DIR", "file-exists")
    target.mkdir(parents=True, exist_ok=True)
    copied = []
    for k, path in sources:
        shutil.copytree(path, target / f"shard-{k}")
        copied.append({"shard": k, "from": str(path), "to": str(target / f"shard-{k}"),
                       "files": sum(1 for p in (target / f"shard-{k}").rglob("*") if p.is_file())})
    skipped = [k for k, v in enumerate(status["views"]) if not v["output"]]
    result = {"job": status["job"], "dir": str(target), "shards": copied, "skipped": skipped}
    if json_out:
        print_json(result)
        return
    table(f"job {status['job'][:16]}: copied into {target}", ("shard", "files", "to"),
          [(c["shard"], c["files"], c["to"]) for c in copied])
    if skipped:
        note(f"[yellow]not copied[/yellow] (no verified output): shards {', '.join(map(str, skipped))}")


@job_app.command("cancel")
@guarded
def job_cancel(
    job: Annotated[str, typer.Argument(help="job id: 64 hex, or a unique prefix of 8+", metavar="JOB")],
    network: NetworkOpt = "main",
    datadir: DatadirOpt = None,
    rpc: RpcOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Stop buying a job before its award: the agent awards nothing and posts Settle after the bid
    window, which refunds the escrow. Once awarded, a job runs to its deadline."""
    status = job_call(Where(network, datadir, None, rpc), "job_cancel", job)
    if json_out:
        print_json(status)
        return
    note(f"job {status['job']} cancelled: {status['message']}")
