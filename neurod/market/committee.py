"""The committee member: a worker daemon's seat on the dispute committees of training results
and of labels (a label shard is disputed and judged the same way, its check being the images the
dispute's beacon samples re-labelled: `neurod.market.label_check`).

Why: a training result cannot be re-run in consensus (worker/README.md, Training disputes), so a
client whose proof-of-learning replay fails disputes it, and the block after the dispute (the
beacon, unknown when the trainer committed) draws stakers in proportion to their bonded stake
(`chain.market_rules.committee_draw`, `drawn`: Algorand's sortition, so splitting stake gains
nothing). Only their votes count, and only within the window of `vote_blocks` after the beacon;
without them every dispute lapses. Every worker agent sits, whatever services it sells: its
bonded stake is what earns it the seat.

On every new block (`WorkerAgent.step` calls `step`) the member
- finds open disputes from the claim-less Challenges of the new blocks (and, on start, of the
  last window's worth);
- for each it checks its seat (`committee_seat`, the conditions `apply_vote` checks: not a party,
  bonded at least `min_stake`, the beacon mined, drawn, not voted yet: the chain's ``voters``
  remembers across restarts), and when seated, in the agent's nursery (never in the step):
- fetches the committed artifact from any peer, exports it, and replays it in a child process
  with the client's own check (`neurod.market.tasks.verify_train_delivery`, the dispute's beacon
  choosing the segments), then submits `Vote(fraud=not ok)`. A result it cannot fetch before the
  window's last block counts as fraud (the trainer withholds it); a replay that cannot finish in
  the window, or data the job names that it cannot get, is no vote at all.
Each (job, shard, dispute) is voted on once; a vote the node refuses is tried again while the
window lasts. The window is a few blocks, so the member's child process is started, with torch
imported, as soon as a staked member sees a training result committed (`warm_replay`) and kept.
The recent votes are in `neuro worker status`.
"""

from __future__ import annotations

import logging
import shutil
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import trio

from chain.jobs import Job, ShardStatus
from chain.market_rules import COMMITTEE_SERVICES, committee_draw, drawn, terms_of
from chain.market_types import Challenge, ResultCommit, Service, Vote
from chain.params import MarketParams
from neurod.market.account import AgentAccount
from neurod.market.client_agent import TRAIN_SAMPLES
from neurod.market.inputs import fetch_root, local_inputs
from neurod.procpool import process_pool

if TYPE_CHECKING:
    from neurod.node import Node

log = logging.getLogger("neuro.market.committee")
FETCH_RETRY_S = 1.0  # a fetch no peer could serve is tried again until the window's cutoff
KEPT_VOTES = 64  # recent votes shown by `neuro worker status`
TOO_LATE = object()


def committee_seat(params: MarketParams, job_id: bytes, job: Job, k: int, member: bytes, bonded: int,
                   staked: int, beacon: bytes | None, height: int) -> str | None:
    """Why ``member`` (``bonded`` of the ``staked`` total) cannot vote on shard ``k``'s dispute in
    the block after ``height``, named as `apply_vote` names its refusal; None when it sits on the
    committee and has not voted. ``beacon`` is the hash of the dispute's beacon block, None while
    it is not mined."""
    shard = job.shards[k]
    if shard.status is not ShardStatus.DISPUTED:
        return "shard-not-disputed"
    if height + 1 > shard.query_deadline:
        return "vote-too-late"
    if member in (shard.worker, shard.challenger, job.client):
        return "party-cannot-vote"
    if member in shard.voters:
        return "already-voted"
    if bonded < params.min_stake:
        return "voter-stake-below-minimum"
    if beacon is None:
        return "vote-before-beacon"
    if not drawn(committee_draw(beacon, job_id, k, member), bonded, staked, params.committee_size):
        return "not-drawn"
    return None


def warm_replay() -> None:
    """In the member's child process, once a training result is committed (a dispute may
    follow): the imports a replay needs (torch among them: seconds on a busy machine) are paid
    before any beacon, not inside a vote window."""
    import torch  # noqa: F401

    import worker.label_job
    import worker.tasks.infer
    import worker.train.replay
    import worker.verify  # noqa: F401


def beacon_height(params: MarketParams, query_deadline: int) -> int:
    """The block whose hash draws a dispute's committee: the one after the dispute's."""
    return query_deadline - params.vote_blocks


@dataclass
class VoteRecord:
    """This member's part in one dispute."""

    job_id: bytes
    shard: int
    deadline: int  # the window's last block: a vote must be in it or before
    state: str = "judging"  # judging | judged (verdict ready, vote not accepted yet) | voted | missed | failed
    fraud: bool | None = None
    detail: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"job": self.job_id.hex(), "shard": self.shard, "fraud": self.fraud, "detail": self.detail,
                "state": self.state}


class CommitteeMember:
    def __init__(self, node: Node, account: AgentAccount) -> None:
        self.node = node
        self.account = account
        self.dir = node.datadir / "market" / "committee"
        self.scanned: int | None = None  # last height searched for disputes
        self.disputes: set[tuple[bytes, int]] = set()  # (job, shard) seen disputed, window not over
        self.votes: dict[tuple[bytes, int, int], VoteRecord] = {}  # (job, shard, deadline)
        self._passed: set[tuple[bytes, int, int, str]] = set()  # seats refused, logged once
        self._pool: ProcessPoolExecutor | None = None

    async def step(self, nursery: trio.Nursery) -> None:
        """Judge, in ``nursery``, every dispute this member newly sits on; retry refused votes."""
        chain = self.node.chain
        trained = self._scan()
        h, mp = chain.height, chain.params.market
        me, bonded, staked = self.account.account_id, self.account.bonded(), chain.totals().staked
        if trained and bonded >= mp.min_stake:
            self._child()  # a dispute of it may follow, with a short window: be ready
        for job_id, k in sorted(self.disputes):
            job = chain.job(job_id)
            shard = job.shards[k] if job is not None and k < len(job.shards) else None
            if job is None or shard is None or shard.status is not ShardStatus.DISPUTED or h >= shard.query_deadline:
                self.disputes.discard((job_id, k))
                continue
            key = (job_id, k, shard.query_deadline)
            record = self.votes.get(key)
            if record is not None:
                if record.state == "judged":
                    await self._cast(record)
                continue
            at = beacon_height(mp, shard.query_deadline)
            beacon = chain.hash_at(at) if h >= at else None
            why = committee_seat(mp, job_id, job, k, me, bonded, staked, beacon, h)
            if why is None:
                self._remember(VoteRecord(job_id, k, shard.query_deadline))
                log.info("job %s shard %d: drawn for the dispute's committee, replaying", job_id.hex()[:12], k)
                nursery.start_soon(self._judge, self.votes[key], shard.root, beacon)
            elif why == "vote-before-beacon":
                self._child()  # seated or not, the beacon says next block: be ready
            elif (*key, why) not in self._passed:
                self._passed.add((*key, why))
                log.info("job %s shard %d: disputed; not voting (%s)", job_id.hex()[:12], k, why)

    def votes_json(self) -> list[dict[str, Any]]:
        return [record.to_json() for record in self.votes.values()]

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)

    # ---- finding disputes --------------------------------------------------------------------

    def _scan(self) -> bool:
        """Note the disputes of the new blocks; whether a training result was committed in them."""
        chain = self.node.chain
        trained = False
        if self.scanned is None:  # on start: disputes whose window may still be open
            self.scanned = max(0, chain.height - chain.params.market.vote_blocks - 1)
        for height in range(self.scanned + 1, chain.height + 1):
            block_hash = chain.hash_at(height)
            if block_hash is None:
                continue
            for tx in chain.block(block_hash).txs:
                if type(tx.payload) is Challenge and tx.payload.claim is None:  # a query, or a dispute
                    self.disputes.add((tx.payload.job_id, tx.payload.shard))
                elif type(tx.payload) is ResultCommit and not trained:
                    job = chain.job(tx.payload.job_id)
                    trained = job is not None and job.service in COMMITTEE_SERVICES
        self.scanned = chain.height
        return trained

    def _remember(self, record: VoteRecord) -> None:
        self.votes[(record.job_id, record.shard, record.deadline)] = record
        while len(self.votes) > KEPT_VOTES:
            del self.votes[next(iter(self.votes))]

    # ---- judging -----------------------------------------------------------------------------

    async def _judge(self, record: VoteRecord, root: bytes, beacon: bytes) -> None:
        name = f"{record.job_id.hex()[:16]}-{record.shard}"
        out, inputs_dir = self.dir / name, self.dir / f"{name}-inputs"
        started, seated_at = time.monotonic(), self.node.chain.height
        try:
            # the vote of the window's last block must still reach a miner: fetching stops a block early
            cutoff = record.deadline - 1
            fetched = self.node.artifacts.store.has(root) or (
                await self._before(cutoff, self._fetch, root) is not TOO_LATE)
            if not fetched and cutoff <= seated_at + 1:  # (a restart late in the window) no fair try
                record.state, record.detail = "missed", "seated too late in the window to fetch the result"
                return
            if not fetched:
                record.fraud, record.detail = True, "not delivered: the result could not be fetched in the window"
            else:
                shutil.rmtree(out, ignore_errors=True)
                out.parent.mkdir(parents=True, exist_ok=True)
                await trio.to_thread.run_sync(self.node.artifacts.store.export, root, out)
                fetched_in = time.monotonic() - started
                verdict = await self._before(record.deadline, self._replay, record.job_id, record.shard, out, inputs_dir,
                                            beacon)
                if verdict is TOO_LATE:
                    record.state, record.detail = "missed", "the replay did not finish within the vote window"
                    log.warning("job %s shard %d: %s", record.job_id.hex()[:12], record.shard, record.detail)
                    return
                record.fraud = not verdict.ok
                record.detail = verdict.detail if verdict.ok else f"{verdict.reason}: {verdict.detail}"
                log.info("job %s shard %d: fetched in %.1f s, replayed in %.1f s", record.job_id.hex()[:12],
                         record.shard, fetched_in, time.monotonic() - started - fetched_in)
        except Exception as exc:  # noqa: BLE001 - no verdict (say, the job's data is unreachable): no vote
            record.state, record.detail = "failed", f"could not judge: {exc}"
            log.warning("job %s shard %d: %s", record.job_id.hex()[:12], record.shard, record.detail)
            return
        finally:
            shutil.rmtree(out, ignore_errors=True)
            shutil.rmtree(inputs_dir, ignore_errors=True)
        record.state = "judged"
        await self._cast(record)

    async def _fetch(self, root: bytes) -> None:
        while True:
            try:
                await fetch_root(self.node, root, [])
                return
            except Exception as exc:  # noqa: BLE001 - no peer served it (yet): tried again until the cutoff
                log.info("artifact %s: fetch failed (%s), retrying", root.hex()[:16], exc)
                await trio.sleep(FETCH_RETRY_S)

    async def _replay(self, job_id: bytes, shard: int, out: Path, inputs_dir: Path, beacon: bytes) -> Any:
        from neurod.market import tasks

        chain = self.node.chain
        spec, job = chain.job_spec(job_id), chain.job(job_id)
        assert spec is not None and job is not None, "the spec of a job on chain is stored with it"
        inputs = await local_inputs(self.node, spec.decode(), inputs_dir)
        if job.service == Service.LABEL:  # the dispute's beacon picks the images re-labelled
            from neurod.market.label_check import SAMPLES, verify_label_delivery

            start, stop = terms_of(job).shard_range(shard, len(job.shards))
            future = self._child().submit(verify_label_delivery, str(out), spec.decode(), start, stop, beacon, SAMPLES,
                                          inputs)
        else:
            future = self._child().submit(tasks.verify_train_delivery, str(out), spec.decode(), beacon, TRAIN_SAMPLES,
                                          inputs)
        return await trio.to_thread.run_sync(future.result, abandon_on_cancel=True)

    def _child(self) -> ProcessPoolExecutor:
        """The member's child process, started (and warmed) on first use, kept for the next dispute."""
        if self._pool is None:
            self._pool = process_pool(1)
            self._pool.submit(warm_replay)
        return self._pool

    async def _before(self, height: int, fn: Callable[..., Awaitable[Any]], *args: Any) -> Any:
        """``await fn(*args)``, given up once the tip reaches ``height``: its result, or TOO_LATE."""
        result: Any = TOO_LATE
        chain = self.node.chain
        async with trio.open_nursery() as nursery:

            async def work() -> None:
                nonlocal result
                result = await fn(*args)
                nursery.cancel_scope.cancel()

            async def watch() -> None:
                while True:
                    tip = chain.tip_hash
                    if chain.height >= height:
                        nursery.cancel_scope.cancel()
                        return
                    await self.node.wait_tip_change(tip)

            nursery.start_soon(work)
            nursery.start_soon(watch)
        return result

    async def _cast(self, record: VoteRecord) -> None:
        if self.node.chain.height >= record.deadline:
            record.state = "missed"
            return
        assert record.fraud is not None
        if await self.account.submit(Vote(record.job_id, record.shard, record.fraud)) is None:
            return  # refused now (the reason is logged): tried again on the next block
        record.state = "voted"
        log.info("job %s shard %d: voted %s (%s)", record.job_id.hex()[:12], record.shard,
                 "fraud" if record.fraud else "honest", record.detail)
