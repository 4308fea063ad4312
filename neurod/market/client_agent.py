"""The client agent: a daemon that buys work for its owner (`neuro job submit`).

For each job it posts, on every new block it
- collects the bids gossiped for the job and, in the last blocks of the bid window, awards the
  cheapest pool that covers every shard (`neurod.market.selection.choose_pool`); when nothing
  covers the job it says why and what max price would, and lets the escrow come back by Settle;
- fetches each committed shard from its worker as soon as it is committed, and verifies it as a
  buyer would: the files against the committed root (the fetch), the artifact bound to this
  job's spec and item range, and the items the next block's hash samples re-rendered (a model:
  proof-of-learning segments replayed; labels: images re-labelled, `neurod.market.label_check`);
- posts a fraud proof for a render shard that fails (the worker is slashed on chain and the shard
  reopens), a dispute for a model or labels that fail (a drawn committee votes), a query for a shard it cannot fetch (the worker must answer on chain or lose its
  stake), and Accept once every committed shard is verified;
- re-awards reopened shards (a slashed or a no-show worker) and posts Settle for what is due;
- when the job closes, leaves the verified shards in `<datadir>/market/jobs/<job>/shard-<k>`.
Its records (`market/client_jobs.json`) are what `neuro job status` shows.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import trio

from chain.crypto import decode_address, encode_address
from chain.jobs import Job, JobStatus, ShardStatus
from chain.market_rules import COMMITTEE_SERVICES, terms_of
from chain.market_types import (
    Accept,
    AwardEntry,
    Challenge,
    JobAward,
    JobPost,
    LeafClaim,
    Service,
    Settle,
)
from neurod.market.account import AgentAccount
from neurod.market.inputs import InputsUnavailable, fetch_root, local_inputs
from neurod.procpool import process_pool

if TYPE_CHECKING:
    from neurod.node import Node

log = logging.getLogger("neuro.market.client")
RECORDS_FILE = "client_jobs.json"
SAMPLES = 16  # items re-rendered per shard
TRAIN_SAMPLES = 1  # proof-of-learning segments replayed per model, besides the final one


@dataclass
class ShardView:
    worker: str = ""  # address
    price: int = 0
    peer: str = ""  # the worker node's peer id (from its bid)
    addrs: list[str] = field(default_factory=list)
    state: str = "open"  # open | awarded | committed | fetching | verified | challenged | queried | paid | refunded
    root: str = ""
    detail: str = ""
    output: str = ""
    paid: int = 0  # what the chain paid for it (set once)


@dataclass
class ClientJob:
    job: str  # id hex
    service: str
    shards: int
    max_price: int
    state: str = "posted"  # posted | bidding | awarded | cancelled | done | uncovered | failed
    message: str = ""
    posted_at: float = field(default_factory=time.time)
    bids: list[dict[str, Any]] = field(default_factory=list)
    views: list[ShardView] = field(default_factory=list)
    events: list[str] = field(default_factory=list)
    paid: int = 0
    refunded: int = 0
    convicted: list[str] = field(default_factory=list)  # workers this client proved fraud against
    closed: bool = False  # the job closed on chain and its outputs were taken: nothing left to do

    def note(self, height: int, text: str) -> None:
        self.events.append(f"[{height}] {text}")
        log.info("job %s: %s", self.job[:12], text)


class ClientAgent:
    def __init__(self, node: Node, account: AgentAccount) -> None:
        self.node = node
        self.account = account
        self.dir = node.datadir / "market"
        self.dir.mkdir(exist_ok=True)
        self.jobs: dict[bytes, ClientJob] = self._load()
        self._pool: ProcessPoolExecutor | None = None
        self._busy: set[tuple[bytes, int]] = set()
        self._sent: dict[tuple[bytes, str], int] = {}  # (job, action) -> height sent

    # ---- records ---------------------------------------------------------------------------

    def _load(self) -> dict[bytes, ClientJob]:
        try:
            docs = json.loads((self.dir / RECORDS_FILE).read_text())
        except (OSError, ValueError):
            return {}
        jobs = {}
        for doc in docs:
            views = [ShardView(**v) for v in doc.pop("views", [])]
            jobs[bytes.fromhex(doc["job"])] = ClientJob(**doc, views=views)
        return jobs

    def save(self) -> None:
        path = self.dir / RECORDS_FILE
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps([asdict(j) for j in self.jobs.values()], indent=1))
        tmp.replace(path)

    # ---- submit ----------------------------------------------------------------------------

    async def submit(self, post: JobPost) -> ClientJob:
        txid = await self.account.submit(post)
        if txid is None:
            raise ValueError("the node refused the job post (see its log)")
        record = ClientJob(txid.hex(), Service(post.service).name.lower(), post.shards, post.max_price,
                           views=[ShardView() for _ in range(post.shards)])
        record.note(self.node.chain.height, f"posted: {post.shards} shards, max price {post.max_price} per quote unit")
        self.jobs[txid] = record
        self.save()
        return record

    # ---- loop ------------------------------------------------------------------------------

    async def run(self, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        try:
            async with trio.open_nursery() as nursery:
                while True:
                    tip = self.node.chain.tip_hash
                    for job_id, record in list(self.jobs.items()):
                        if not record.closed and record.state not in ("done", "failed"):
                            try:
                                await self.step(nursery, job_id, record)
                            except Exception:  # one job's trouble must not stop the others
                                log.exception("job %s: step failed", job_id.hex()[:12])
                    self.save()
                    await self.node.wait_tip_change(tip)
        finally:
            if self._pool is not None:
                self._pool.shutdown(wait=False, cancel_futures=True)

    async def step(self, nursery: trio.Nursery, job_id: bytes, record: ClientJob) -> None:
        chain = self.node.chain
        h, nxt = chain.height, chain.height + 1
        job = chain.job(job_id)
        if job is None:
            if time.time() - record.posted_at > 600:
                record.state, record.message = "failed", "the job post was never mined"
            return
        self._follow(job, record, h)
        if job.status is JobStatus.CLOSED:
            # a shard paid before we checked it (its worker settled when the window closed) is
            # still fetched and checked: the buyer gets its files and a verdict either way
            unchecked = [k for k, s in enumerate(job.shards) if s.status is ShardStatus.PAID and not record.views[k].output
                         and record.views[k].detail[:13] != "not delivered"]
            for k in unchecked:
                if (job_id, k) not in self._busy:
                    self._busy.add((job_id, k))
                    nursery.start_soon(self._check_shard, job_id, job, k, record)
            if not unchecked:
                self._finish(job_id, job, record, h)
            return
        if record.state != "cancelled":  # a cancelled job is never awarded: Settle refunds it
            await self._award(job_id, job, record, h, nxt)
        for k, shard in enumerate(job.shards):
            due = shard.status is ShardStatus.COMMITTED and h > shard.committed_at  # its beacon exists
            if due and record.views[k].state not in ("verified", "challenged", "disputed") \
                    and (job_id, k) not in self._busy:
                self._busy.add((job_id, k))
                nursery.start_soon(self._check_shard, job_id, job, k, record)
        committed = [k for k, s in enumerate(job.shards) if s.status is ShardStatus.COMMITTED]
        if committed and all(record.views[k].state == "verified" for k in committed):
            await self._once(job_id, "accept", h, Accept(job_id), record, f"accept: pays shards {committed}")
        if self._settle_due(job, nxt):
            await self._once(job_id, "settle", h, Settle(job_id), record, "settle: no-shows, refunds, unanswered queries")

    # ---- award -----------------------------------------------------------------------------

    async def _award(self, job_id: bytes, job: Job, record: ClientJob, h: int, nxt: int) -> None:
        from neurod.market.selection import Offer, Uncovered, choose_pool

        awardable = [k for k, s in enumerate(job.shards) if s.status is ShardStatus.OPEN
                     and nxt <= job.award_end(s)]
        notices = [n for n in self.node.bids.for_job(job_id) if n.bid.expiry >= nxt]
        if notices:
            record.bids = [{"worker": encode_address(n.bid.worker_account, self.node.chain.params.hrp),
                            "price": n.bid.unit_price, "max_shards": n.bid.max_shards, "expiry": n.bid.expiry}
                           for n in notices]
        if not awardable:
            return
        reopened = any(job.shards[k].deadline for k in awardable)
        if not reopened and nxt < job.bid_end - 1:
            record.state = "bidding"
            return  # collect bids for the window; award in its last two blocks
        slashed = self._convicted(job_id)
        used: dict[bytes, int] = {}
        for s in job.shards:
            if s.bid_id and s.status is not ShardStatus.OPEN:
                used[s.bid_id] = used.get(s.bid_id, 0) + 1
        offers = [Offer(n, n.bid.worker_account, n.bid.unit_price, n.bid.max_shards - used.get(n.bid.bid_id, 0))
                  for n in notices if n.bid.worker_account not in slashed]
        offers = [o for o in offers if o.capacity > 0]
        result = choose_pool(terms_of(job), awardable, len(job.shards), offers, max_price=job.max_price)
        if isinstance(result, Uncovered) and reopened and result.capacity > 0:
            # a reopened shard waits for nobody: re-award what the bids seen can take now
            result = choose_pool(terms_of(job), awardable[: result.capacity], len(job.shards), offers,
                                 max_price=job.max_price)
        if isinstance(result, Uncovered):
            last_chance = nxt >= min(job.award_end(job.shards[k]) for k in awardable)
            record.message = result.describe()
            if last_chance and self._sent.get((job_id, "uncovered")) is None:
                self._sent[(job_id, "uncovered")] = h
                record.note(h, f"not covered: {result.describe()}")
            if last_chance and not any(s.status is not ShardStatus.OPEN for s in job.shards):
                record.state = "uncovered"  # nothing was awarded: the escrow comes back by Settle
            return
        record.message = ""
        entries = tuple(AwardEntry(offer.bid.bid, tuple(shards)) for offer, shards in result.entries)
        note = ", ".join(f"{encode_address(o.worker, self.node.chain.params.hrp)[:14]}.. x{len(ks)} at {o.unit_price}"
                         for o, ks in result.entries)
        if await self._once(job_id, "award", h, JobAward(job_id, entries), record, f"award: {note}"):
            for offer, shards in result.entries:
                for k in shards:
                    view = record.views[k]
                    view.peer, view.addrs = offer.bid.peer_id, list(offer.bid.addrs)
            record.state = "awarded"

    def _convicted(self, job_id: bytes) -> set[bytes]:
        """Workers this node caught cheating on the job (never awarded again)."""
        hrp = self.node.chain.params.hrp
        return {decode_address(worker, hrp) for worker in self.jobs[job_id].convicted}

    # ---- delivery --------------------------------------------------------------------------

    async def _check_shard(self, job_id: bytes, job: Job, k: int, record: ClientJob) -> None:
        from neurod.market import tasks

        view = record.views[k]
        shard = job.shards[k]
        chain = self.node.chain
        try:
            out = self.dir / "jobs" / job_id.hex()[:16] / f"shard-{k}"
            if not self.node.artifacts.store.has(shard.root):
                view.state = "fetching"
                sources = [view.peer] if view.peer else []
                sources += view.addrs
                await fetch_root(self.node, shard.root, sources)
            shutil.rmtree(out, ignore_errors=True)
            out.parent.mkdir(parents=True, exist_ok=True)
            self.node.artifacts.store.export(shard.root, out)
            beacon = chain.hash_at(shard.committed_at + 1)
            assert beacon is not None
            spec = chain.job_spec(job_id)
            assert spec is not None
            if job.service == Service.TRAIN:
                inputs = await local_inputs(self.node, spec.decode(), out.parent / f"inputs-{k}")
                verdict = await self._in_child(tasks.verify_train_delivery, str(out), spec.decode(), beacon,
                                               TRAIN_SAMPLES, inputs)
            elif job.service == Service.LABEL:  # the sampled images re-labelled here (`label_check`)
                from neurod.market.label_check import SAMPLES as LABEL_SAMPLES
                from neurod.market.label_check import verify_label_delivery

                start, stop = terms_of(job).shard_range(k, len(job.shards))
                inputs = await local_inputs(self.node, spec.decode(), out.parent / f"inputs-{k}")
                verdict = await self._in_child(verify_label_delivery, str(out), spec.decode(), start, stop, beacon,
                                               LABEL_SAMPLES, inputs)
            else:
                start, stop = terms_of(job).shard_range(k, len(job.shards))
                verdict = await self._in_child(tasks.verify_delivery, str(out), spec.decode(), start, stop, beacon,
                                               SAMPLES)
        except InputsUnavailable as exc:  # our own copy of the job's data: checked again next block
            if view.detail != f"cannot check yet: {exc}":  # said once, not every block it is retried
                view.detail = f"cannot check yet: {exc}"
                record.note(chain.height, f"shard {k}: {view.detail}")
            self._busy.discard((job_id, k))
            return
        except Exception as exc:  # noqa: BLE001 - undeliverable: the worker must answer a query on chain
            view.detail = f"not delivered: {exc}"
            if shard.status is ShardStatus.PAID:
                record.note(chain.height, f"shard {k}: {view.detail}")
                self._busy.discard((job_id, k))
                return
            start = terms_of(job).shard_range(k, len(job.shards))[0]
            record.note(chain.height, f"shard {k}: {view.detail}; querying item {start}")
            if await self._once(job_id, f"query-{k}", chain.height, Challenge(job_id, k, start, None), record,
                                f"shard {k}: query"):
                view.state = "queried"
            self._busy.discard((job_id, k))
            return
        if verdict.ok:
            view.state = "paid" if view.paid or shard.status is ShardStatus.PAID else "verified"
            view.detail, view.output = verdict.detail, str(out)
            record.note(chain.height, f"shard {k}: verified ({verdict.detail})")
        elif verdict.proof is not None:
            proof = verdict.proof
            claim = LeafClaim(proof.check, proof.labels, proof.files, proof.path.siblings, proof.items_root,
                              proof.header_hash)
            view.detail = f"{verdict.reason}: {verdict.detail}"
            if await self._once(job_id, f"fraud-{k}", chain.height, Challenge(job_id, k, verdict.index, claim), record,
                                f"shard {k}: fraud proof on item {verdict.index} ({verdict.detail})"):
                view.state = "challenged"
                if view.worker not in record.convicted:
                    record.convicted.append(view.worker)
        elif job.service in COMMITTEE_SERVICES:  # no fraud proof for training or labels: the committee decides
            view.detail = f"{verdict.reason}: {verdict.detail}"
            index = 0  # a training dispute names no item; a label dispute, the image that agreed least
            if job.service == Service.LABEL:
                index = verdict.index if verdict.index >= 0 else terms_of(job).shard_range(k, len(job.shards))[0]
            if await self._once(job_id, f"dispute-{k}", chain.height, Challenge(job_id, k, index, None), record,
                                f"shard {k}: disputed ({view.detail})"):
                view.state = "disputed"
        else:
            view.detail = f"{verdict.reason}: {verdict.detail}"
            record.note(chain.height, f"shard {k}: {view.detail}")
        self._busy.discard((job_id, k))

    async def _in_child(self, fn: Any, *args: Any) -> Any:
        if self._pool is None:
            self._pool = process_pool(1)
        future = self._pool.submit(fn, *args)
        return await trio.to_thread.run_sync(future.result, abandon_on_cancel=True)

    # ---- bookkeeping -----------------------------------------------------------------------

    async def _once(self, job_id: bytes, action: str, h: int, payload: Any, record: ClientJob, note: str) -> bool:
        """Submit ``payload`` unless the same action went out in the last 3 blocks (it may still
        be on its way into one)."""
        last = self._sent.get((job_id, action))
        if last is not None and h - last < 3:
            return False
        if await self.account.submit(payload) is None:
            return False
        self._sent[(job_id, action)] = h
        record.note(h, note)
        return True

    @staticmethod
    def _settle_due(job: Job, nxt: int) -> bool:
        for shard in job.shards:
            if shard.status is ShardStatus.ASSIGNED and nxt > shard.deadline:
                return True
            if shard.status is ShardStatus.QUERIED and nxt > shard.query_deadline:
                return True
            if shard.status is ShardStatus.OPEN and nxt > job.award_end(shard):
                return True
            if shard.status is ShardStatus.DISPUTED and nxt > shard.query_deadline:
                return True
        return False

    def _follow(self, job: Job, record: ClientJob, h: int) -> None:
        hrp = self.node.chain.params.hrp
        record.paid = sum(s.payment for s in job.shards if s.status is ShardStatus.PAID)
        for k, shard in enumerate(job.shards):
            view = record.views[k]
            view.worker = encode_address(shard.worker, hrp) if shard.worker else view.worker
            view.price = shard.price or view.price
            view.root = shard.root.hex() if shard.root else view.root
            if shard.status is ShardStatus.PAID and not view.paid:
                view.state, view.paid = "paid", shard.payment
                record.note(h, f"shard {k}: paid {shard.payment} to {view.worker[:14]}..")
            elif shard.status is ShardStatus.REFUNDED:
                view.state = "refunded"
            elif shard.status is ShardStatus.ASSIGNED and view.state in ("open", "challenged", "queried"):
                view.state = "awarded"
            elif shard.status is ShardStatus.OPEN and view.state in ("challenged", "queried", "disputed", "awarded",
                                                                        "committed"):
                record.note(h, f"shard {k}: reopened (worker {view.worker[:14]}.. slashed)")
                view.state = "open"
                if view.worker and view.worker not in record.convicted:  # fraud, withholding or no-show
                    record.convicted.append(view.worker)
            elif shard.status is ShardStatus.COMMITTED and view.state == "awarded":
                view.state = "committed"

    def _finish(self, job_id: bytes, job: Job, record: ClientJob, h: int) -> None:
        record.closed = True
        if record.state == "cancelled":  # final, so the loop lets it be
            record.state, record.message = "failed", "cancelled before the award; the escrow was refunded"
            record.note(h, f"closed: {record.message}")
            return
        paid = sum(1 for s in job.shards if s.status is ShardStatus.PAID)
        record.state = "done" if paid == len(job.shards) else ("uncovered" if not paid else "done")
        record.message = (f"{paid}/{len(job.shards)} shards paid; outputs in "
                          f"{self.dir / 'jobs' / job_id.hex()[:16]}")
        record.note(h, f"closed: {record.message}")

    # ---- cancel (`neuro job cancel`) -------------------------------------------------------

    def awarded(self, job_id: bytes) -> bool:
        """Whether an award of the job went out (mined or on its way): too late to cancel."""
        job = self.node.chain.job(job_id)
        on_chain = job is not None and any(s.status is not ShardStatus.OPEN for s in job.shards)
        return on_chain or (job_id, "award") in self._sent or self.jobs[job_id].state == "awarded"

    def cancel(self, job_id: bytes) -> None:
        """Award nothing more for the job; `step` still posts Settle once the bid window is over,
        which refunds the escrow and closes it. The caller checks `awarded` first."""
        record = self.jobs[job_id]
        if record.state != "cancelled":
            record.state, record.message = "cancelled", "cancelled: the escrow comes back by Settle after the bid window"
            record.note(self.node.chain.height, "cancelled by the owner before the award")
            self.save()

    def status_json(self, job_id: bytes) -> dict[str, Any]:
        record = self.jobs[job_id]
        return asdict(record)

    def list_json(self) -> list[dict[str, Any]]:
        return [{"job": r.job, "service": r.service, "state": r.state, "shards": r.shards, "paid": r.paid,
                 "message": r.message} for r in self.jobs.values()]

