"""The worker agent: a daemon that sells its compute on the market (strategy, not consensus).

On every new block it
- keeps its stake bonded (the operator's `worker_stake`);
- watches JobPosts of the services it offers and bids, at its price floor, on every job whose
  max price reaches the floor and whose shards its measured speed can finish before the
  deadline (reopened shards of a slashed worker included);
- runs the shards it is awarded in child processes (`neurod.market.tasks`), one per slot, puts
  each result in the artifact store (which serves it to the client and to verifiers) and posts
  its ResultCommit;
- answers a query of one of its items with the leaf and its path (the withholding rule);
- posts Settle for its own shards once their challenge window is over, should the client go
  silent.
A restart forgets nothing that matters: the chain says which shards are assigned to it, and
specs are deterministic, so an unfinished shard is simply run again.

Speed is measured at start-up (`tasks.calibrate_*`, persisted in `market/speed.json`); the
floor adapts per service (`neurod.market.floor`) within the operator's bounds.
"""

from __future__ import annotations

import json
import logging
import shutil
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import trio

from chain.errors import ChainError
from chain.job_spec import QUOTE_UNITS
from chain.jobs import Job, JobStatus, ShardStatus
from chain.market_rules import terms_of
from chain.market_types import (
    Bid,
    JobPost,
    LeafClaim,
    Respond,
    ResultCommit,
    Service,
    Settle,
    Stake,
)
from neurod.market.account import AgentAccount
from neurod.market.bids import BidNotice
from neurod.market.committee import CommitteeMember
from neurod.market.inputs import local_inputs
from neurod.procpool import process_pool

if TYPE_CHECKING:
    from neurod.node import Node

log = logging.getLogger("neuro.market.worker")
SPEED_FILE = "speed.json"
FLOORS_FILE = "floors.json"
MAX_BID_SHARDS = 64
SERVICE_NAMES = {"generate": Service.GENERATE, "train": Service.TRAIN, "label": Service.LABEL}


@dataclass(frozen=True)
class WorkerSettings:
    services: tuple[Service, ...] = (Service.GENERATE,)
    floor_min: int = 1  # base units per quote unit: the operator's bounds on the adaptive floor
    floor_max: int = 10**9
    slots: int = 1  # shards run at once on the CPU (child processes), when no GPU is in use
    devices: str = "auto"  # auto: one slot per CUDA GPU, else `slots` CPU slots | cpu | "cuda:0,cuda:1"
    stake: int = 0  # bonded stake to keep (base units); 0: whatever is bonded already
    fault: str | None = None  # test only (devnet): "corrupt-item" | "skip-training" | "random-labels"


@dataclass
class ShardRun:
    """One awarded shard as this worker sees it."""

    job_id: bytes
    shard: int
    deadline: int  # of the award it runs for: a shard reopened and awarded to us again runs anew
    state: str = "running"  # running | committed | failed
    root: bytes = b""
    error: str = ""


@dataclass
class WorkerState:
    bids: dict[bytes, tuple[int, int, int]] = field(default_factory=dict)  # job -> (expiry, price, shards) bid
    runs: dict[tuple[bytes, int], ShardRun] = field(default_factory=dict)
    settled: dict[bytes, int] = field(default_factory=dict)  # job -> height we last posted Settle
    awards_seen: set[bytes] = field(default_factory=set)  # jobs whose award moved a floor


class WorkerAgent:
    def __init__(self, node: Node, account: AgentAccount, settings: WorkerSettings) -> None:
        from neurod.market.floor import AdaptiveFloor

        self.node = node
        self.account = account
        self.settings = settings
        self.dir = node.datadir / "market"
        self.dir.mkdir(exist_ok=True)
        self.state = WorkerState()
        self.speeds: dict[Service, float] = {}
        self.devices: list[str] = ["cpu"] * settings.slots  # resolved at start (`_resolve_devices`)
        self._free_devices: set[str] = set()
        self._device_freed = trio.Event()
        self.floors = {s: AdaptiveFloor(settings.floor_min, settings.floor_max) for s in settings.services}
        self._load_floors()
        self.watch: set[bytes] = set()
        self.scanned = node.chain.height
        self._pool: ProcessPoolExecutor | None = None
        self._responded: set[tuple[bytes, int, int]] = set()
        self.committee = CommitteeMember(node, account)  # its stake seats it on disputes, whatever it sells
        self._specs_checked: dict[bytes, bool] = {}  # job -> whether our task runner accepts its spec

    # ---- loop ------------------------------------------------------------------------------

    async def run(self, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        self.devices = await self._resolve_devices()
        self._free_devices = set(self.devices)
        self.speeds = await self._speeds()
        log.info("worker agent %s: services %s, speeds %s units/s", self.account.address(),
                 ",".join(s.name.lower() for s in self.settings.services),
                 {s.name.lower(): round(v) for s, v in self.speeds.items()})
        self.scanned = max(0, self.node.chain.height - self.node.chain.params.market.max_job_blocks)
        self.scanned = max(self.scanned, self.node.chain.height - 200)  # recent posts after a restart
        task_status.started()
        try:
            async with trio.open_nursery() as nursery:
                tip = b""
                while True:
                    tip = self.node.chain.tip_hash
                    try:
                        await self.step(nursery)
                    except Exception:  # a bug in the agent must not take the node down
                        log.exception("worker agent: step failed")
                    await self.node.wait_tip_change(tip)
        finally:
            if self._pool is not None:
                self._pool.shutdown(wait=False, cancel_futures=True)
            self.committee.close()

    async def step(self, nursery: trio.Nursery) -> None:
        chain = self.node.chain
        await self._keep_stake()
        self._scan_posts()
        h = chain.height
        for job_id in sorted(self.watch):
            job = chain.job(job_id)
            if job is None or job.status is JobStatus.CLOSED:
                self.watch.discard(job_id)
                self._specs_checked.pop(job_id, None)
                continue
            await self._maybe_bid(job_id, job, h)
            await self._own_shards(nursery, job_id, job, h)
        await self.committee.step(nursery)

    # ---- stake, speed ----------------------------------------------------------------------

    async def _keep_stake(self) -> None:
        want, bonded = self.settings.stake, self.account.bonded()
        if want > bonded and not self.account.pending() and self.account.balance() > want - bonded:
            await self.account.submit(Stake(want - bonded))

    async def _speeds(self) -> dict[Service, float]:
        from neurod.market import tasks

        path = self.dir / SPEED_FILE
        try:
            saved = {Service[k.upper()]: float(v) for k, v in json.loads(path.read_text()).items() if k != "device"}
        except (OSError, ValueError, KeyError):
            saved = {}
        measured_on = json.loads(path.read_text()).get("device") if saved else None
        if measured_on != self.devices[0]:  # a speed is the device's: another device is measured anew
            saved.pop(Service.TRAIN, None)
        from neurod.market.label_check import calibrate_label

        measure = {Service.GENERATE: (tasks.calibrate_render,), Service.TRAIN: (tasks.calibrate_train, self.devices[0]),
                   Service.LABEL: (calibrate_label,)}
        for service in self.settings.services:
            if service not in saved and service in measure:
                saved[service] = await self._in_child(*measure[service])
        path.write_text(json.dumps({**{s.name.lower(): v for s, v in saved.items()}, "device": self.devices[0]}))
        return saved

    async def _resolve_devices(self) -> list[str]:
        """The worker's slots: one per CUDA GPU (`devices = "auto"` on a GPU box, or as listed),
        else `slots` CPU slots. A listed GPU that is not there is refused at start."""
        from neurod.market import tasks

        wanted = self.settings.devices
        if wanted == "cpu":
            return ["cpu"] * self.settings.slots
        present = await self._in_child(tasks.cuda_devices)
        if wanted == "auto":
            return present or ["cpu"] * self.settings.slots
        listed = wanted.split(",")
        missing = [d for d in listed if d not in present]
        if missing:
            raise RuntimeError(f"worker_devices lists {', '.join(missing)}, not present here "
                               f"({', '.join(present) or 'no CUDA device'})")
        return listed

    async def _device(self) -> str:
        """A free slot, waited for (an award may come while our slots are busy)."""
        while not self._free_devices:
            await self._device_freed.wait()
        return self._free_devices.pop()

    def _release(self, device: str) -> None:
        self._free_devices.add(device)
        self._device_freed.set()
        self._device_freed = trio.Event()

    async def _in_child(self, fn: Any, *args: Any) -> Any:
        if self._pool is None:
            self._pool = process_pool(max(1, len(self.devices)))
        future = self._pool.submit(fn, *args)
        return await trio.to_thread.run_sync(future.result, abandon_on_cancel=True)

    # ---- bidding ---------------------------------------------------------------------------

    def _scan_posts(self) -> None:
        chain = self.node.chain
        for height in range(self.scanned + 1, chain.height + 1):
            block_hash = chain.hash_at(height)
            if block_hash is None:
                continue
            for tx in chain.block(block_hash).txs:
                if type(tx.payload) is JobPost and tx.payload.service in self.settings.services:
                    self.watch.add(tx.txid)
        self.scanned = chain.height

    def floor(self, service: Service) -> int:
        """The floor to bid at: the operator's minimum until an award has been seen (a new worker
        learns from winning, not from pricing itself out), then the learner's (always within the
        operator's bounds)."""
        floor = self.floors[service]
        return floor.floor if floor.rounds else floor.min_floor

    def capacity(self, job: Job, h: int, awardable: list[int]) -> int:
        """Shards this worker offers: one per free slot, when its measured speed finishes a shard
        before the deadline (none otherwise)."""
        speed = self.speeds.get(Service(job.service), 0.0)
        if speed <= 0 or not awardable:
            return 0
        terms = terms_of(job)
        units = max(terms.shard_units(k, len(job.shards)) for k in awardable)
        reopened = any(job.shards[k].deadline for k in awardable)  # redone: a fresh job's length of work
        deadline = h + 1 + (job.deadline - job.bid_end) if reopened else job.deadline
        seconds = max(0, deadline - h - 1) * self.node.chain.params.target_block_time
        per_slot = int(seconds * speed // max(units, 1))
        if per_slot < 1:
            return 0  # too slow for this deadline
        running = sum(r.state == "running" for r in self.state.runs.values())
        # offer what the free slots run at once: each shard then finishes as soon as it can, and a
        # job larger than one machine is shared out across a pool
        return max(0, min(len(awardable), len(self.devices) - running, MAX_BID_SHARDS))

    def _runnable(self, job_id: bytes) -> bool:
        """Whether this worker's task runner accepts the job's spec: the chain checks only what
        sets the price, so a spec it cannot run (an unknown field, a malformed root) gets no bid
        rather than an award this worker would fail."""
        if job_id not in self._specs_checked:
            from worker.errors import WorkerError
            from worker.label_job import is_label_job, parse_label_job
            from worker.tasks import parse_task

            spec = self.node.chain.job_spec(job_id)
            try:
                doc = json.loads(spec or b"null")
                (parse_label_job if is_label_job(doc) else parse_task)(doc)
                self._specs_checked[job_id] = True
            except (WorkerError, ValueError) as exc:
                log.info("job %s: not bidding, its spec is not one we run: %s", job_id.hex()[:12], exc)
                self._specs_checked[job_id] = False
        return self._specs_checked[job_id]

    async def _maybe_bid(self, job_id: bytes, job: Job, h: int) -> None:
        service = Service(job.service)
        if service not in self.settings.services:
            return
        nxt = h + 1
        awardable = [k for k, s in enumerate(job.shards) if s.status is ShardStatus.OPEN
                     and nxt <= job.award_end(s)]
        if not awardable or job.client == self.account.account_id or not self._runnable(job_id):
            return
        price = self.floor(service)
        if price > job.max_price:
            log.info("job %s: max price %d is below our floor %d", job_id.hex()[:12], job.max_price, price)
            return
        capacity = self.capacity(job, h, awardable)
        live = self.state.bids.get(job_id)
        if capacity < 1 or (live is not None and live[0] >= nxt and live[2] >= capacity):
            return  # nothing to offer, or our live bid already offers it (more reopened: bid again)
        expiry = max(job.award_end(job.shards[k]) for k in awardable)  # the last block an award may take one
        bid = Bid(self.node.chain.chain_id, job_id, self.account.key.public_key, price, capacity, expiry)
        signed = Bid(bid.chain_id, bid.job_id, bid.worker, bid.unit_price, bid.max_shards, bid.expiry,
                     self.account.key.sign(bid.signing_message()))
        notice = BidNotice(signed, self.node.p2p.peer_id, tuple(self.node.p2p.listen_addrs()))
        try:
            await self.node.submit_bid(notice)
        except ChainError as exc:  # refused by our own checks (stake, window): logged, tried again later
            log.info("job %s: bid not published: %s", job_id.hex()[:12], exc)
            return
        self.state.bids[job_id] = (expiry, price, capacity)
        log.info("bid on job %s: %d per quote unit, up to %d shards, until block %d",
                 job_id.hex()[:12], price, capacity, expiry)

    # ---- our shards ------------------------------------------------------------------------

    async def _own_shards(self, nursery: trio.Nursery, job_id: bytes, job: Job, h: int) -> None:
        me = self.account.account_id
        for k, shard in enumerate(job.shards):
            if shard.worker != me:
                continue
            run = self.state.runs.get((job_id, k))
            fresh = run is None or run.state == "failed" or run.deadline != shard.deadline
            if shard.status is ShardStatus.ASSIGNED and fresh and h < shard.deadline:
                self.state.runs[(job_id, k)] = ShardRun(job_id, k, shard.deadline)
                nursery.start_soon(self._run_shard, job_id, job, k)
            elif shard.status is ShardStatus.QUERIED:
                log.info("job %s shard %d: item %d queried, answering", job_id.hex()[:12], k, shard.query_index)
                await self._answer(job_id, job, k, shard.query_index)
            elif (((shard.status is ShardStatus.COMMITTED and h > shard.challenge_end)
                   or (shard.status is ShardStatus.DISPUTED and h > shard.query_deadline))  # the verdict
                  and self.state.settled.get(job_id, -1) < h - 2):
                self.state.settled[job_id] = h
                await self.account.submit(Settle(job_id))
        self._observe(job_id, job)

    def _observe(self, job_id: bytes, job: Job) -> None:
        """Learn from the award: what every floor level would have earned against the bids it was
        up against (`neurod.market.floor`), then persist the floors."""
        from neurod.market.floor import AwardSeen

        awarded = [k for k, s in enumerate(job.shards) if s.worker]
        if job_id not in self.state.bids or not awarded or job_id in self.state.awards_seen:
            return
        self.state.awards_seen.add(job_id)
        me = self.account.account_id
        rivals = tuple((n.bid.unit_price, n.bid.max_shards) for n in self.node.bids.for_job(job_id)
                       if n.bid.worker_account != me)
        terms = terms_of(job)
        units = sum(terms.shard_units(k, len(job.shards)) for k in awarded) // len(awarded)
        quote_units = max(1, units // max(1, QUOTE_UNITS[Service(job.service)]))
        _, _, capacity = self.state.bids[job_id]
        service = Service(job.service)
        h = self.node.chain.height
        seconds = units / max(self.speeds.get(service, 0.0), 1e-9)
        seen = AwardSeen(height=h, max_price=job.max_price, shards=len(awarded), units=quote_units, rivals=rivals,
                         max_shards=capacity, shard_blocks=seconds / self.node.chain.params.target_block_time,
                         deadline=max(0, job.deadline - h))
        self.floors[service] = self.floors[service].observe(seen)
        self._save_floors()

    def _save_floors(self) -> None:
        (self.dir / FLOORS_FILE).write_text(json.dumps({s.name.lower(): f.to_json() for s, f in self.floors.items()}))

    def _load_floors(self) -> None:
        from neurod.market.floor import AdaptiveFloor

        try:
            saved = json.loads((self.dir / FLOORS_FILE).read_text())
        except (OSError, ValueError):
            return
        for service in self.settings.services:
            if service.name.lower() in saved:
                try:
                    floor = AdaptiveFloor.from_json(saved[service.name.lower()])
                    self.floors[service] = floor.with_bounds(self.settings.floor_min, self.settings.floor_max)
                except (ValueError, KeyError, TypeError):
                    pass  # a floor file from other bounds or a bad one: start afresh

    async def _run_shard(self, job_id: bytes, job: Job, k: int) -> None:
        run = self.state.runs[(job_id, k)]
        chain = self.node.chain
        spec = chain.job_spec(job_id)
        n = len(job.shards)
        out = self.dir / "work" / f"{job_id.hex()[:16]}-{k}"
        inputs_dir = out.with_name(out.name + "-inputs")  # the artifacts a train or label job names, exported
        shutil.rmtree(out, ignore_errors=True)
        out.parent.mkdir(parents=True, exist_ok=True)
        from neurod.market import tasks

        device = await self._device()
        try:
            assert spec is not None, "the spec of a job on chain is stored with it"
            if Service(job.service) is Service.GENERATE:
                start, stop = terms_of(job).shard_range(k, n)
                log.info("job %s shard %d: rendering items %d..%d", job_id.hex()[:12], k, start, stop - 1)
                root = bytes.fromhex(await self._in_child(
                    tasks.render_shard, spec.decode(), start, stop, str(out), self.settings.fault))
                items = stop - start
            elif Service(job.service) is Service.LABEL:
                from neurod.market.label_check import label_shard

                start, stop = terms_of(job).shard_range(k, n)
                inputs = await local_inputs(self.node, spec.decode(), inputs_dir)
                log.info("job %s shard %d: labelling images %d..%d on %s", job_id.hex()[:12], k, start, stop - 1, device)
                root = bytes.fromhex(await self._in_child(label_shard, spec.decode(), start, stop, str(out), inputs,
                                                          self.settings.fault, device))
                items = stop - start
            else:
                inputs = await local_inputs(self.node, spec.decode(), inputs_dir)
                log.info("job %s: training on %s%s", job_id.hex()[:12], device,
                         f", data: {len(inputs)} artifacts" if inputs else "")
                root = bytes.fromhex(await self._in_child(tasks.train, spec.decode(), str(out), inputs,
                                                          self.settings.fault, device))
                items = 1
            self.node.artifacts.store.put(out, pin=True)
            shutil.rmtree(out, ignore_errors=True)
            shutil.rmtree(inputs_dir, ignore_errors=True)
        except Exception as exc:  # noqa: BLE001 - a failed shard is retried on the next block
            run.state, run.error = "failed", str(exc)
            log.warning("job %s shard %d failed: %s", job_id.hex()[:12], k, exc)
            return
        finally:
            self._release(device)
        run.root = root
        if await self.account.submit(ResultCommit(job_id, k, root, items)) is None:
            run.state = "failed"
            return
        run.state = "committed"
        log.info("job %s shard %d: committed root %s", job_id.hex()[:12], k, root.hex()[:16])

    async def _answer(self, job_id: bytes, job: Job, k: int, index: int) -> None:
        key = (job_id, k, index)
        if key in self._responded:
            return
        from worker.artifact import leaf_proof

        shard = job.shards[k]
        start = terms_of(job).shard_range(k, len(job.shards))[0] if job.service != Service.TRAIN else 0
        try:
            manifest = self.node.artifacts.store.manifest(shard.root)
        except Exception as exc:  # noqa: BLE001 - nothing to answer with: the stake is lost
            log.warning("job %s shard %d queried but our artifact is gone: %s", job_id.hex()[:12], k, exc)
            return
        proof = leaf_proof(manifest, index - start)
        claim = LeafClaim(proof.check, proof.labels, proof.files, proof.path.siblings, proof.items_root,
                          proof.header_hash)
        if await self.account.submit(Respond(job_id, k, claim)) is not None:
            self._responded.add(key)
            log.info("job %s shard %d: answered the query of item %d", job_id.hex()[:12], k, index)

    # ---- reads (RPC) -----------------------------------------------------------------------

    def status_json(self) -> dict[str, Any]:
        return {
            "address": self.account.address(),
            "services": [s.name.lower() for s in self.settings.services],
            "speeds": {s.name.lower(): v for s, v in self.speeds.items()},
            "floors": {s.name.lower(): f.to_json() for s, f in self.floors.items()},
            "slots": len(self.devices),
            "devices": self.devices,
            "bonded": self.account.bonded(),
            "shards": [{"job": r.job_id.hex(), "shard": r.shard, "state": r.state, "root": r.root.hex() or None,
                        "error": r.error or None} for r in self.state.runs.values()],
            "bids": [{"job": j.hex(), "expiry": e, "price": p, "shards": c} for j, (e, p, c) in self.state.bids.items()],
            "votes": self.committee.votes_json(),
        }
