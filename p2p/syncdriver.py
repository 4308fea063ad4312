"""The sync driver: brings our chain to the heaviest chain any peer can actually serve.

It learns each peer's `ChainStatus` from the handshake and from periodic polls. Whenever a peer
claims more cumulative work than ours, it asks for headers after our locator, lets the backend
say which blocks it lacks, fetches them in batches, imports them in order, and repeats until we
have the peer's work or the peer stops making progress. Because the locator walks back from our
tip, a node that was partitioned receives the heavier branch from the fork point and the backend
reorgs onto it. Block batches of one round are fetched from several peers at once when more than
one claims enough work, and imported in order.

No peer can hold sync still (each rule answers an attack seen on a live node):
- Rounds with different peers run at once (`MAX_ROUNDS`): a peer that stalls its own round does
  not stop another peer's round from bringing the chain forward.
- Progress is new work: a step counts only when the peer's headers named blocks we lacked and
  they imported, or our chain gained work meanwhile. A changed header proves nothing (a peer
  answering alternately [1] and [1, 2] once froze sync at height 2 while counting as progress);
  `NO_GAIN_STEPS` steps in a row without new work cost the peer `FALSE_WORK` and it is rotated
  out (no round with it for `REST_SECONDS`).
- Block-fetch helpers are ranked by their measured seconds per block, and a helper's batch that
  is not served within the stall timeout (a few times the fastest peer's batch time, at least
  `MIN_STALL_SECONDS`) goes to the round's own peer at once. The helper is penalised
  (`Offence.STALLING`), so a repeat offender is banned and disconnected, and it is not used as a
  helper again while it rests. This is Bitcoin Core's stalling-peer rule for its block download
  window: the slow peer's share moves to the others instead of every batch waiting out a timeout.

A peer that claims work it cannot serve, serves data the backend rejects, or does not answer,
is penalised through `penalise`; a peer that simply disconnects is not.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import trio

from chain.errors import RejectKind
from p2p.backend import ChainBackend, ChainStatus, Outcome
from p2p.scoring import Offence
from p2p.sync import PeerFault, SyncClient
from p2p.wire import MAX_BLOCKS, MAX_HEADERS, MAX_LOCATOR

log = logging.getLogger("neuro.p2p.sync")

MAX_IN_FLIGHT = 4
MAX_ROUNDS = 3  # sync rounds with different peers at once
NO_GAIN_STEPS = 3  # steps in a row without new work before a peer is judged to be stalling sync
REST_SECONDS = 60.0  # a peer rotated out gets no sync round (nor helper share) for this long
MIN_STALL_SECONDS = 2.0  # Bitcoin Core's BLOCK_STALLING_TIMEOUT_DEFAULT
STALL_FACTOR = 8.0  # a helper's batch may take this many times the fastest peer's before it stalls
SPEED_WEIGHT = 0.3  # of a new measurement in a peer's moving average of seconds per block

Penalise = Callable[[str, "RejectKind | Offence", str], None]


class _Abort(Exception):
    """Ends one sync round with a peer (already penalised where due)."""


class SyncDriver:
    """Service: polls peer status and pulls the heaviest chain, up to `MAX_ROUNDS` rounds at once."""

    def __init__(
        self,
        backend: ChainBackend,
        client: SyncClient,
        penalise: Penalise,
        *,
        status_interval: float,
        headers_per_request: int = MAX_HEADERS,
        blocks_per_request: int = MAX_BLOCKS,
    ) -> None:
        self._backend = backend
        self._client = client
        self._penalise = penalise
        self._status_interval = status_interval
        self._headers_limit = min(headers_per_request, MAX_HEADERS)
        self._batch = max(1, min(blocks_per_request, MAX_BLOCKS))
        self.claims: dict[str, ChainStatus] = {}
        self._wanted_send, self._wanted_recv = trio.open_memory_channel[str](256)
        # block requests in flight at once to each peer: keeps a long sync under the serving
        # peer's request rate limit instead of bursting a whole step at once, and a slow peer
        # ties up only its own requests
        self._in_flight: dict[str, trio.CapacityLimiter] = {}
        self._round_slots = trio.CapacityLimiter(MAX_ROUNDS)
        self._queued: set[str] = set()  # peers with a round waiting in the channel
        self._rounds: set[str] = set()  # peers with a round under way
        self._resting: dict[str, float] = {}  # peer -> trio time until which it gets no round
        self._seconds_per_block: dict[str, float] = {}  # moving average over full block answers
        # for metrics
        self.rounds_done = 0
        self.stalls = 0  # helper batches moved to another peer
        self.rotations = 0  # peers rotated out for bringing no new work
        self._progress = trio.Event()

    # -- events from the node ------------------------------------------------------------------

    def on_status(self, peer: str, status: ChainStatus) -> None:
        """Record what `peer` claims; schedule a round if it claims more work than ours."""
        self.claims[peer] = status
        if status.work > self._backend.status().work:
            self.request_sync(peer)

    def request_sync(self, peer: str) -> None:
        """Ask for a sync round with `peer` (e.g. a gossiped block had an unknown parent)."""
        if peer in self._queued or peer in self._rounds:
            return
        try:
            self._wanted_send.send_nowait(peer)
            self._queued.add(peer)
        except trio.WouldBlock:
            pass  # a backlog of rounds is queued already; the next poll catches up

    def forget(self, peer: str) -> None:
        self.claims.pop(peer, None)
        self._seconds_per_block.pop(peer, None)
        if peer in self._in_flight and not self._in_flight[peer].borrowed_tokens:
            del self._in_flight[peer]

    async def wait_round(self) -> None:
        """Return after the next sync round ends (whatever its outcome)."""
        await self._progress.wait()

    def resting(self, peer: str) -> bool:
        """Whether `peer` was rotated out and still rests (no round, no helper share)."""
        return self._resting.get(peer, -1.0) > trio.current_time()

    # -- service -------------------------------------------------------------------------------

    async def run(self, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._poll_loop)
            task_status.started()
            async for peer in self._wanted_recv:
                self._queued.discard(peer)
                if peer not in self.claims or peer in self._rounds or self.resting(peer):
                    self._round_ended()
                    continue
                await self._round_slots.acquire_on_behalf_of(peer)
                self._rounds.add(peer)
                nursery.start_soon(self._round_in_slot, peer)

    async def _round_in_slot(self, peer: str) -> None:
        try:
            await self._round(peer)
        finally:
            self._rounds.discard(peer)
            self._round_slots.release_on_behalf_of(peer)
            self._round_ended()

    def _round_ended(self) -> None:
        self.rounds_done += 1
        self._progress.set()
        self._progress = trio.Event()

    async def _poll_loop(self) -> None:
        while True:
            await trio.sleep(self._status_interval)
            async with trio.open_nursery() as nursery:
                for peer in list(self.claims):
                    nursery.start_soon(self._poll, peer)

    async def _poll(self, peer: str) -> None:
        try:
            status = await self._client.status(peer)
        except PeerFault as fault:
            self._blame(peer, fault)
            return
        if peer in self.claims:  # it may have left while we asked
            self.on_status(peer, status)

    def _blame(self, peer: str, fault: PeerFault) -> None:
        if fault.offence is not None:
            self._penalise(peer, fault.offence, fault.detail)
        else:
            log.debug("peer %s gone during sync: %s", peer, fault.detail)

    def _rotate_out(self, peer: str, offence: Offence, detail: str) -> None:
        self._penalise(peer, offence, detail)
        self._resting[peer] = trio.current_time() + REST_SECONDS
        self.rotations += 1
        log.info("sync: rotated out %s (%s)", peer, detail)

    # -- one sync round ------------------------------------------------------------------------

    async def _round(self, peer: str) -> None:
        try:
            claim = await self._client.status(peer)
            self.claims[peer] = claim
            last: bytes | None = None
            idle = 0
            while claim.work > self._backend.status().work:
                gained, last = await self._step(peer, last)
                idle = 0 if gained else idle + 1
                if idle >= NO_GAIN_STEPS:
                    self._rotate_out(peer, Offence.FALSE_WORK, f"{idle} answers in a row brought no new work")
                    return
        except PeerFault as fault:
            self._blame(peer, fault)
        except _Abort:
            return

    async def _step(self, peer: str, last: bytes | None) -> tuple[bool, bytes | None]:
        """One headers request and the blocks it calls for; returns (new work, last hash). New
        work: the headers named blocks we lacked and they imported, or our chain gained work
        meanwhile (another round may have imported the same blocks first)."""
        before = self._backend.status().work
        locator = ([last] if last else []) + self._backend.locator()
        headers = await self._client.headers(peer, locator[:MAX_LOCATOR], self._headers_limit)
        if not headers:  # nothing at all past our locator: its claim is a bluff
            self._rotate_out(peer, Offence.FALSE_WORK, "claimed work it did not serve")
            raise _Abort
        plan = self._backend.plan_headers(headers)
        if plan.verdict.outcome is Outcome.REJECT:
            self._penalise(peer, plan.verdict.kind, f"headers: {plan.verdict.reason}")
            raise _Abort
        if plan.verdict.outcome is Outcome.IGNORE:  # our side cannot use them now: no blame
            raise _Abort
        complete = await self._fetch_and_import(peer, plan.needed)
        gained = bool(plan.needed) or self._backend.status().work > before
        return gained, plan.last if complete else last  # incomplete: the same headers again, fewer needed

    async def _fetch_and_import(self, peer: str, needed: list[bytes]) -> bool:
        """Fetch `needed` in batches spread over every peer claiming enough work and import them
        in chain order as they arrive. True when every needed block was imported; a short
        answer (response cap) ends the step early so the next step asks again."""
        batches = [needed[i : i + self._batch] for i in range(0, len(needed), self._batch)]
        helpers = self._helpers(peer)
        sources = [helpers[i % len(helpers)] for i in range(len(batches))]
        results: list[trio.MemoryReceiveChannel[tuple[str, list[bytes]]]] = []
        outcome = "complete"
        async with trio.open_nursery() as nursery:
            for source, batch in zip(sources, batches):
                send, recv = trio.open_memory_channel[tuple[str, list[bytes]]](1)
                results.append(recv)
                nursery.start_soon(self._fetch, source, peer, batch, send)
            for batch, recv in zip(batches, results):
                served_by, blocks = await recv.receive()
                if not await self._import(served_by, blocks):
                    outcome = "abort"
                elif len(blocks) < len(batch):
                    outcome = "partial"
                if outcome != "complete":
                    nursery.cancel_scope.cancel()
                    break
        if outcome == "abort":
            raise _Abort
        return outcome == "complete"

    def _helpers(self, peer: str) -> list[str]:
        """`peer` first, then up to three others whose claim is at least as heavy, fastest first
        (a peer not yet measured is tried: its first batches measure it), none that rests."""
        target = self.claims[peer].work
        others = [p for p, s in self.claims.items() if p != peer and s.work >= target and not self.resting(p)]
        others.sort(key=lambda p: self._seconds_per_block.get(p, 0.0))
        return [peer, *others[:3]]

    def _stall_seconds(self, blocks: int) -> float:
        """How long a helper may take over a batch: a few times what the fastest measured peer
        takes, at least `MIN_STALL_SECONDS`."""
        fastest = min(self._seconds_per_block.values(), default=0.0)
        return max(MIN_STALL_SECONDS, STALL_FACTOR * fastest * blocks)

    def _slots(self, peer: str) -> trio.CapacityLimiter:
        limiter = self._in_flight.get(peer)
        if limiter is None:
            limiter = self._in_flight[peer] = trio.CapacityLimiter(MAX_IN_FLIGHT)
        return limiter

    async def _timed_blocks(self, source: str, batch: list[bytes]) -> list[bytes]:
        """One block request (the caller holds an in-flight slot), measuring the source."""
        started = trio.current_time()
        blocks = await self._client.blocks(source, batch)
        if blocks and len(blocks) == len(batch):
            took = (trio.current_time() - started) / len(blocks)
            seen = self._seconds_per_block.get(source)
            self._seconds_per_block[source] = took if seen is None else seen + SPEED_WEIGHT * (took - seen)
        return blocks

    async def _fetch(
        self,
        source: str,
        peer: str,
        batch: list[bytes],
        send: trio.MemorySendChannel[tuple[str, list[bytes]]],
    ) -> None:
        """Fetch one batch from `source`; a helper that lacks part of it (it may follow another
        branch) is not blamed and `peer`, whose headers named the blocks, is asked instead, as it
        is when the helper stalls (which is blamed, and rests)."""
        async with send:
            if source != peer:
                served = await self._from_helper(source, batch)
                if served is not None:
                    await send.send((source, served))
                    return
            try:
                async with self._slots(peer):
                    blocks = await self._timed_blocks(peer, batch)
                if not blocks:  # it answered, with nothing: its headers were a bluff
                    self._penalise(peer, Offence.FALSE_WORK, "served none of the blocks it named")
            except PeerFault as fault:  # refused or gone: blamed only for a real offence
                self._blame(peer, fault)
                blocks = []
            await send.send((peer, blocks))

    async def _from_helper(self, source: str, batch: list[bytes]) -> list[bytes] | None:
        """The whole batch from a helper, or None: it lacks part of it (no blame), failed, or
        stalled (blamed once, however many of its batches were waiting; then it rests)."""
        limit = self._stall_seconds(len(batch))
        try:
            async with self._slots(source):  # the stall clock starts once the request is sent
                if self.resting(source):  # it stalled on another batch meanwhile
                    return None
                with trio.move_on_after(limit) as waited:
                    blocks = await self._timed_blocks(source, batch)
        except PeerFault as fault:
            self._blame(source, fault)
            return None
        if waited.cancelled_caught:
            if not self.resting(source):
                self.stalls += 1
                self._rotate_out(source, Offence.STALLING, f"no answer to {len(batch)} blocks in {limit:.1f} s")
            return None
        return blocks if len(blocks) == len(batch) else None

    async def _import(self, source: str, blocks: list[bytes]) -> bool:
        """Import one fetched batch in order; False stops the round."""
        if not blocks:
            return False
        # one call: the backend checks the next blocks' signatures while it connects this one
        for verdict in await self._backend.import_blocks(blocks, source):
            if verdict.outcome is Outcome.REJECT:
                self._penalise(source, verdict.kind, f"block: {verdict.reason}")
                return False
        return True
