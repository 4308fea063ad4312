"""RPC methods of the market agents (docs/rpc.md, "Market agents"): submit a job for this node's
client agent to buy, follow it, cancel it before its award, and read the worker agent's state,
floors and earnings; and the market's recent clearing prices, read from the chain alone."""

from __future__ import annotations

import json
import statistics
from collections.abc import Awaitable, Callable, Iterable
from typing import TYPE_CHECKING, Any

from chain.amounts import format_ntk
from chain.crypto import AddressError, decode_address, encode_address
from chain.errors import ChainError
from chain.jobs import Event, Job
from chain.market_types import JobPost, Service
from neurod.market_json import QUOTE_UNIT_NAMES, amount
from neurod.rpc import INVALID_PARAMS, RpcError
from wallet.payload_json import service_name

if TYPE_CHECKING:
    from neurod.node import Node

NOT_FOUND = -32011  # as neurod.rpc_methods
BAD_ADDRESS = -32012  # as neurod.rpc_methods
NO_AGENT = -32040
JOB_REFUSED = -32041  # the job's state refuses the request (job_cancel after the award)
POST_DEFAULTS = {"bid_blocks": 6, "deadline_blocks": 100, "challenge_blocks": 30}
MAX_PRICE_JOBS = 1_000  # market_prices: newest awarded jobs read
MAX_EARNING_EVENTS = 10_000  # worker_earnings: the account's newest events read
FINISHED = ("done", "failed", "uncovered")  # a client job with nothing left to cancel


def _int(value: Any, name: str, low: int = 0, high: int = 2**63 - 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise RpcError(INVALID_PARAMS, f"{name} must be an integer in [{low}, {high}]")
    return value


def _job(value: Any) -> bytes:
    try:
        raw = bytes.fromhex(value) if isinstance(value, str) else b""
    except ValueError:
        raw = b""
    if len(raw) != 32:
        raise RpcError(INVALID_PARAMS, "job must be 64 hex characters")
    return raw


def _spread(prices: list[int]) -> dict[str, Any]:
    """low, median and high of awarded unit prices (base units per quote unit)."""
    if not prices:
        return {"low": None, "median": None, "high": None}
    return {"low": min(prices), "median": statistics.median(prices), "high": max(prices)}


def clearing_prices(jobs: Iterable[tuple[bytes, Job]], service: Service | None, last: int, hrp: str) -> dict[str, Any]:
    """The awarded unit prices of the ``last`` newest jobs (by post height) that cleared, i.e. have
    an awarded shard: one row per job, and low/median/high per service over their shards. A shard
    reopened after a slash has no worker, so only prices a worker holds now are counted."""
    cleared = [(job_id, job) for job_id, job in jobs
               if (service is None or job.service == service) and any(s.worker for s in job.shards)]
    cleared.sort(key=lambda item: (-item[1].posted, item[0]))
    rows: list[dict[str, Any]] = []
    by_service: dict[str, dict[str, Any]] = {}
    for job_id, job in cleared[:last]:
        prices = [s.price for s in job.shards if s.worker]
        name = service_name(job.service)
        quote = QUOTE_UNIT_NAMES.get(Service(job.service)) if job.service in Service._value2member_map_ else None
        rows.append({"job": job_id.hex(), "service": name, "quote_unit": quote, "status": job.status.name.lower(),
                     "client": encode_address(job.client, hrp), "posted": job.posted, "bid_end": job.bid_end,
                     "max_price": job.max_price, "shards": len(job.shards), "awarded": len(prices),
                     "prices": prices, **_spread(prices)})
        entry = by_service.setdefault(name, {"service": name, "quote_unit": quote, "jobs": 0, "prices": []})
        entry["jobs"] += 1
        entry["prices"].extend(prices)
    services = {name: {"service": name, "quote_unit": e["quote_unit"], "jobs": e["jobs"], "shards": len(e["prices"]),
                       **_spread(e["prices"])} for name, e in by_service.items()}
    return {"services": services, "jobs": rows}


def earnings(rows: list[tuple[int, Event]]) -> dict[str, Any]:
    """What an account earned and lost on the market, from its events (newest first): shard
    payments, rewards (a fraud proof's reward, a forfeited challenger's bond) and slashes, in
    total and per job. Locks, refunds and (un)bonding move its own tokens and are not counted."""
    jobs: dict[bytes, dict[str, Any]] = {}
    totals = {"paid": 0, "rewards": 0, "slashed": 0}
    for height, event in rows:
        if event.kind == "pay" and event.note == "":
            column = "paid"
        elif event.kind == "reward" or (event.kind == "pay" and event.note == "bond"):
            column = "rewards"
        elif event.kind == "slash":
            column = "slashed"
        else:
            continue
        totals[column] += event.amount
        job = jobs.setdefault(event.job_id, {"job": event.job_id.hex(), "height": height, "paid": 0, "rewards": 0,
                                             "slashed": 0, "shards": set(), "notes": set()})
        job[column] += event.amount
        if event.shard >= 0:
            job["shards"].add(event.shard)
        if event.note:
            job["notes"].add(event.note)

    def money(values: dict[str, Any]) -> dict[str, Any]:
        net = values["paid"] + values["rewards"] - values["slashed"]
        return {**amount("paid", values["paid"]), **amount("rewards", values["rewards"]),
                **amount("slashed", values["slashed"]), "net": net, "net_ntk": _signed_ntk(net)}

    return {**money(totals), "jobs": [{"job": j["job"], "height": j["height"], "shards": sorted(j["shards"]),
                                       "notes": sorted(j["notes"]), **money(j)} for j in jobs.values()]}


def _signed_ntk(units: int) -> str:
    return ("-" if units < 0 else "") + format_ntk(abs(units))


def market_methods(node: Node) -> dict[str, Callable[..., Awaitable[Any]]]:
    def client() -> Any:
        agent = node.agents.client
        if agent is None:
            raise RpcError(NO_AGENT, "this node runs no market agent: start it with --agent-key",
                           {"reason": "no-agent"})
        return agent

    async def job_submit(service: Any, spec: Any, shards: Any = 1, max_price: Any = None,
                         bid_blocks: Any = None, deadline_blocks: Any = None, challenge_blocks: Any = None) -> dict[str, Any]:
        """Post a job from this node's agent account and have its client agent buy it."""
        agent = client()
        if not isinstance(service, str) or service.upper() not in Service.__members__:
            raise RpcError(INVALID_PARAMS, f"service must be one of {', '.join(s.name.lower() for s in Service)}")
        if not isinstance(spec, dict):
            raise RpcError(INVALID_PARAMS, "spec must be a JSON object (the task document)")
        if max_price is None:
            raise RpcError(INVALID_PARAMS, "max_price is required (base units per quote unit)")
        windows = {"bid_blocks": bid_blocks, "deadline_blocks": deadline_blocks, "challenge_blocks": challenge_blocks}
        windows = {k: POST_DEFAULTS[k] if v is None else _int(v, k, 1, 10**6) for k, v in windows.items()}
        canonical = json.dumps(spec, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()
        post = JobPost(Service[service.upper()], canonical, _int(shards, "shards", 1, 4096),
                       _int(max_price, "max_price", 1), windows["bid_blocks"], windows["deadline_blocks"],
                       windows["challenge_blocks"])
        try:
            record = await agent.submit(post)
        except (ChainError, ValueError) as exc:
            raise RpcError(INVALID_PARAMS, f"job not posted: {exc}", {"reason": getattr(exc, "reason", "refused")}) from None
        return agent.status_json(bytes.fromhex(record.job))

    async def job_status(job: Any) -> dict[str, Any]:
        agent = client()
        raw = _job(job)
        if raw not in agent.jobs:
            raise RpcError(NOT_FOUND, "not a job this node's agent submitted", {"reason": "unknown-job"})
        return {**agent.status_json(raw), "height": node.chain.height}

    async def client_jobs() -> list[dict[str, Any]]:
        return client().list_json()  # type: ignore[no-any-return]

    async def worker_status() -> dict[str, Any]:
        if node.agents.worker is None:
            raise RpcError(NO_AGENT, "this node runs no worker agent: start it with --worker", {"reason": "no-worker"})
        return node.agents.worker.status_json()

    def worker() -> Any:
        if node.agents.worker is None:
            raise RpcError(NO_AGENT, "this node runs no worker agent: start it with --worker", {"reason": "no-worker"})
        return node.agents.worker

    async def job_cancel(job: Any) -> dict[str, Any]:
        """Stop buying a job before its award: Settle brings the escrow back after the bid window."""
        agent = client()
        raw = _job(job)
        record = agent.jobs.get(raw)
        if record is None:
            raise RpcError(NOT_FOUND, "not a job this node's agent submitted", {"reason": "unknown-job"})
        if record.state in FINISHED:
            raise RpcError(JOB_REFUSED, f"the job is {record.state}: nothing to cancel", {"reason": "job-finished"})
        if agent.awarded(raw):
            raise RpcError(JOB_REFUSED, "the job is under way: its shards are awarded (workers' stake is locked); "
                           "it settles by its deadline", {"reason": "job-under-way"})
        agent.cancel(raw)
        return {**agent.status_json(raw), "height": node.chain.height}

    async def market_prices(service: Any = None, last: Any = 50) -> dict[str, Any]:
        """Recent clearing prices per service, from the awards on chain (no agent needed)."""
        wanted = None
        if service is not None:
            if not isinstance(service, str) or service.upper() not in Service.__members__:
                raise RpcError(INVALID_PARAMS, f"service must be one of {', '.join(s.name.lower() for s in Service)}",
                               {"param": "service"})
            wanted = Service[service.upper()]
        last = _int(last, "last", 1, MAX_PRICE_JOBS)
        chain = node.chain
        return {"height": chain.height, "service": service, "last": last,
                **clearing_prices(chain.jobs(), wanted, last, chain.params.hrp)}

    async def worker_floor() -> dict[str, Any]:
        """The worker agent's price floor per service: now, its bounds, the mean, awards observed."""
        agent = worker()
        floors = {}
        for service, floor in agent.floors.items():
            floors[service.name.lower()] = {
                "floor": floor.floor, "min_floor": floor.min_floor, "max_floor": floor.max_floor,
                "mean_floor": round(floor.mean_floor(), 3), "rounds": floor.rounds, "levels": len(floor.levels),
                "last_award_height": floor.height or None,
                "quote_unit": QUOTE_UNIT_NAMES.get(service),
            }
        return {"address": agent.account.address(), "height": node.chain.height, "floors": floors}

    async def worker_earnings(address: Any = None, limit: Any = 1_000) -> dict[str, Any]:
        """What this node's agent account (or ``address``) was paid and slashed, from its events."""
        hrp = node.chain.params.hrp
        if address is None:
            agent = node.agents.worker or node.agents.client
            if agent is None:
                raise RpcError(NO_AGENT, "this node runs no market agent: start it with --agent-key, or pass address",
                               {"reason": "no-agent"})
            account_id = agent.account.account_id
        elif not isinstance(address, str):
            raise RpcError(INVALID_PARAMS, "address must be a string", {"param": "address"})
        else:
            try:
                account_id = decode_address(address, hrp)
            except AddressError as exc:
                raise RpcError(BAD_ADDRESS, str(exc), {"reason": exc.reason}) from None
        limit = _int(limit, "limit", 1, MAX_EARNING_EVENTS)
        rows = node.chain.events(account=account_id, limit=limit)
        return {"address": encode_address(account_id, hrp), "height": node.chain.height, "events": len(rows),
                **earnings(rows)}

    return {"job_submit": job_submit, "job_status": job_status, "client_jobs": client_jobs,
            "worker_status": worker_status, "job_cancel": job_cancel, "market_prices": market_prices,
            "worker_floor": worker_floor, "worker_earnings": worker_earnings}
