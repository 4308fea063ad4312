"""The dashboard's sections, rendered from the node's own JSON-RPC methods.

The dashboard reads the node through the same methods `neuro` calls, in process (no HTTP), and
only through `READS`: a fixed list of read-only methods. Nothing here can post, sign or submit,
and what the page shows is what `neuro ... --json` shows. A method that refuses (this node runs
no worker agent, say) turns its section into a one-line note instead of an error page.

Each render reads what it needs once (`Reader` memoises a call per render): the jobs list feeds
the jobs, bids and workers sections alike.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

from chain.amounts import format_ntk
from neurod.rpc import Method, RpcError
from neurod.ui.chart import price_chart
from neurod.ui.html import Markup, join, short, table, tag

READS = frozenset({
    "node_status", "chain_head", "chain_block", "mempool_info", "mempool_list", "node_peers", "node_bans",
    "job_list", "job_get", "bid_list", "market_prices", "worker_floor", "worker_earnings", "client_jobs",
    "job_status",
})
RECENT_BLOCKS = 10
RECENT_JOBS = 20
MEMPOOL_SHOWN = 10
PRICE_JOBS = 200  # jobs plotted
EARNERS = 10  # workers whose earnings are shown
OWN_JOBS = 10
DONE_VIEWS = ("verified", "paid")  # a shard of one's own job that needs nothing more


class Unavailable(Exception):
    """A read the node refused; its message is shown in place of the section."""


class Reader:
    """Calls of `READS` methods, each made at most once per render."""

    def __init__(self, methods: dict[str, Method]) -> None:
        self._methods = methods
        self._seen: dict[tuple[str, tuple[tuple[str, Any], ...]], Any] = {}

    async def __call__(self, name: str, **params: Any) -> Any:
        if name not in READS:
            raise ValueError(f"{name} is not a read the dashboard may make")
        key = (name, tuple(sorted(params.items())))
        if key not in self._seen:
            try:
                self._seen[key] = await self._methods[name](**params)
            except RpcError as exc:
                self._seen[key] = Unavailable(exc.message)
        found = self._seen[key]
        if isinstance(found, Unavailable):
            raise found
        return found


def ago(timestamp: int, now: float) -> str:
    seconds = max(0, int(now - timestamp))
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= 2 * size:
            return f"{seconds // size} {unit} ago"
    return f"{seconds} s ago"


def ntk(units: Any) -> str:
    return f"{format_ntk(int(units))} NTK"


def fields(pairs: list[tuple[str, Any]]) -> Markup:
    return tag("dl", *(join([tag("dt", name), tag("dd", value)]) for name, value in pairs), class_="fields")


# ---- sections ---------------------------------------------------------------------------------


async def chain_section(read: Reader) -> Markup:
    status = await read("node_status")
    now = time.time()
    rows = []
    for height in range(status["height"], max(-1, status["height"] - RECENT_BLOCKS), -1):
        block = await read("chain_block", id=height)
        header = block["header"]
        rows.append((height, short(block["hash"], 16), ago(header["timestamp"], now), len(block["txs"]),
                     f"{block['size']:,} B", short(header["miner"], 16)))
    summary = fields([
        ("network", status["network"]), ("height", status["height"]), ("tip", short(status["tip"], 24)),
        ("peers", status["peers"]), ("mempool", f"{status['mempool']} txs"),
        ("mining", "yes" if status["mining"] else "no"), ("version", status["version"]),
    ])
    return join([summary, tag("h3", "recent blocks"),
                 table(("height", "hash", "time", "txs", "size", "miner"), rows, id="blocks")])


async def mempool_section(read: Reader) -> Markup:
    info = await read("mempool_info")
    listed = await read("mempool_list", limit=MEMPOOL_SHOWN)
    summary = fields([
        ("transactions", f"{info['count']} of at most {info['max_txs']:,}"), ("bytes", f"{info['bytes']:,}"),
        ("pending", info["pending"]), ("queued (nonce gap)", info["queued"]), ("min fee", ntk(info["min_fee"])),
    ])
    return join([summary, table(("txid",), [(short(txid, 64),) for txid in listed["txs"]], "the mempool is empty")])


async def peers_section(read: Reader) -> Markup:
    peers = await read("node_peers")
    bans = await read("node_bans")
    rows = [(short(p["peer_id"], 20), p["direction"], f"{p['score']:.1f}", p["height"], join(p["addrs"], ", "))
            for p in peers]
    banned = [(short(b["peer_id"], 20), f"{b['seconds_left']:.0f} s") for b in bans]
    return join([table(("peer", "direction", "score", "height", "addresses"), rows, "no peers connected", id="peers"),
                 tag("h3", "bans"), table(("peer", "banned for"), banned, "no peer is banned")])


def _shards(job: dict[str, Any]) -> Markup:
    return join(tag("span", f"{s['index']}:{s['status']}", class_=f"shard {s['status']}",
                    title=f"worker {s['worker'] or '-'}, price {s['price']}") for s in job["shards"])


async def jobs_section(read: Reader) -> Markup:
    rows = []
    for summary in await read("job_list", limit=RECENT_JOBS):
        job = await read("job_get", job=summary["job"])
        rows.append((short(job["job"]), job["service"], job["status"] + (" (bidding)" if job["bidding"] else ""),
                     _shards(job), job["posted"], job["deadline"], f"{job['max_price']:,} / {job['quote_unit']}",
                     ntk(job["escrow"]), short(job["client"], 16)))
    return table(("job", "service", "status", "shards", "posted", "deadline", "max price", "escrow", "client"),
                 rows, "no job posted yet", id="jobs")


async def bids_section(read: Reader) -> Markup:
    rows: list[tuple[Any, ...]] = []
    for summary in await read("job_list", limit=RECENT_JOBS):
        if summary["bidding"]:
            rows.extend((short(summary["job"]), short(b["worker"], 16), f"{b['unit_price']:,}", b["max_shards"],
                         b["expiry"], short(b["peer_id"], 20)) for b in await read("bid_list", job=summary["job"]))
    return table(("job", "worker", "unit price", "max shards", "expiry", "from peer"), rows,
                 "no bids: no job is in its bid window", id="bids")


async def prices_section(read: Reader) -> Markup:
    prices = await read("market_prices", last=PRICE_JOBS)
    rows = [(s["service"], s["jobs"], s["shards"], s["low"], s["median"], s["high"], s["quote_unit"])
            for s in prices["services"].values()]
    return join([price_chart(prices["jobs"]),
                 table(("service", "jobs", "shards", "low", "median", "high", "per"), rows, "")])


async def _earners(read: Reader) -> list[str]:
    """This node's worker, then the workers of recent jobs: at most `EARNERS` addresses."""
    found: list[str] = []
    try:
        found.append((await read("worker_floor"))["address"])
    except Unavailable:
        pass
    for summary in await read("job_list", limit=RECENT_JOBS):
        for shard in (await read("job_get", job=summary["job"]))["shards"]:
            if shard["worker"] and shard["worker"] not in found:
                found.append(shard["worker"])
    return found[:EARNERS]


async def workers_section(read: Reader) -> Markup:
    try:
        floor = await read("worker_floor")
        floors = table(("service", "floor", "min", "max", "mean", "rounds", "last award"),
                       [(name, f["floor"], f["min_floor"], f["max_floor"], f["mean_floor"], f["rounds"],
                         f["last_award_height"]) for name, f in floor["floors"].items()])
        own = join([tag("p", "this node's worker ", short(floor["address"], 20), ": price floor per service"), floors])
    except Unavailable as exc:
        own = tag("p", exc, class_="muted")
    rows = []
    for address in await _earners(read):
        earned = await read("worker_earnings", address=address)
        rows.append((short(address, 20), ntk(earned["paid"]), ntk(earned["rewards"]), ntk(earned["slashed"]),
                     f"{earned['net_ntk']} NTK", len(earned["jobs"])))
    return join([own, tag("h3", "earnings"),
                 table(("worker", "paid", "rewards", "slashed", "net", "jobs"), rows, "no worker has earned yet")])


async def own_jobs_section(read: Reader) -> Markup:
    rows = []
    for listed in list(reversed(await read("client_jobs")))[:OWN_JOBS]:
        status = await read("job_status", job=listed["job"])
        done = sum(view["state"] in DONE_VIEWS for view in status["views"])
        bar = tag("progress", value=done, max=max(1, listed["shards"]))
        rows.append((short(listed["job"]), listed["service"], listed["state"],
                     join([bar, f" {done}/{listed['shards']} shards"]), ntk(listed["paid"]), listed["message"]))
    return table(("job", "service", "state", "progress", "paid", "message"), rows,
                 "this node's agent has posted no job", id="own-jobs")


SECTIONS: tuple[tuple[str, str, Callable[[Reader], Awaitable[Markup]]], ...] = (
    ("chain", "Chain", chain_section),
    ("mempool", "Mempool", mempool_section),
    ("peers", "Peers", peers_section),
    ("jobs", "Jobs", jobs_section),
    ("bids", "Bids", bids_section),
    ("prices", "Clearing prices", prices_section),
    ("workers", "Workers", workers_section),
    ("own", "This node's jobs", own_jobs_section),
)


async def render_sections(methods: dict[str, Method]) -> Markup:
    """Every section, in order, from one consistent set of reads."""
    read = Reader(methods)
    parts = []
    for key, title, build in SECTIONS:
        try:
            body = await build(read)
        except Unavailable as exc:
            body = tag("p", exc, class_="muted")
        parts.append(tag("section", tag("h2", title), body, id=f"section-{key}"))
    return join(parts)

