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
- Block-fetch helpers are ranked by their measured seconds per block. A helper's batch not
  served within the hedge delay (a few times the fastest peer's batch time, at least
  `MIN_HEDGE_SECONDS`) is asked of the round's own peer too, and the first answer is imported.
  A helper that loses `STALL_STRIKES` such races is stalling: it is penalised
  (`Offence.STALLING`, so a repeat offender is banned and disconnected) and rests. This is
  Bitcoin Core's stalling-peer rule for its block download window, with the wait cut short by the
  duplicate request: the slow peer's share moves to the others instead of every batch waiting
  out a timeout, and an honest helper that is merely slower is never blamed for one late batch.

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
MIN_HEDGE_SECONDS = 0.5  # a helper's batch unanswered this long is asked of the round's peer too
HEDGE_FACTOR = 4.0  # ... or this many times the fastest peer's time for such a batch, if longer
STALL_STRIKES = 2  # races lost to the round's peer before a helper is judged stalling
SPEED_WEIGHT = 0.3  # of a new measurement in a peer's moving average of seconds per block

Penalise = Callable[[str, "RejectKind | Offence", str], None]


class _Abort(Exception):
    """Ends one sync round with a peer (already penalised where due)."""


class _Race:
    """A helper's batch, maybe hedged with the round's peer: the first full answer wins."""

    def __init__(self) -> None:
        self.winner: tuple[str, list[bytes]] | None = None
        self.helper_done = trio.Event()  # it answered (in full or not) or failed


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
        self._strikes: dict[str, int] = {}  # helper -> races lost to a round's peer since it last rested
        # for metrics
        self.rounds_done = 0
        self.stalls = 0  # helper batches answered first by the round's peer (hedged requests)
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

    def _hedge_seconds(self, blocks: int) -> float:
        """How long a helper's batch may go unanswered before the round's peer is asked too."""
        fastest = min(self._seconds_per_block.values(), default=0.0)
        return max(MIN_HEDGE_SECONDS, HEDGE_FACTOR * fastest * blocks)

    def _take_slot(self, helper: str, race: _Race) -> bool:
        """Take one of `helper`'s request slots for `race` (released by `_race_helper`), if free."""
        try:
            self._slots(helper).acquire_on_behalf_of_nowait(race)
        except trio.WouldBlock:
            return False
        return True

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
            self._note_speed(source, (trio.current_time() - started) / len(blocks))
        return blocks

    def _note_speed(self, peer: str, seconds_per_block: float) -> None:
        seen = self._seconds_per_block.get(peer)
        self._seconds_per_block[peer] = seconds_per_block if seen is None else \
            seen + SPEED_WEIGHT * (seconds_per_block - seen)

    async def _fetch(
        self,
        source: str,
        peer: str,
        batch: list[bytes],
        send: trio.MemorySendChannel[tuple[str, list[bytes]]],
    ) -> None:
        """Fetch one batch from `source`, hedged with `peer` (whose headers named the blocks) when
        a helper is slow; a helper that lacks part of the batch (it may follow another branch) is
        not blamed, and `peer` is asked instead."""
        async with send:
            race = _Race()
            if source == peer or self.resting(source) or not self._take_slot(source, race):
                # the round's own peer, a helper that stalled on another batch, or one whose
                # request slots are all taken (never queue behind a helper: the hedge clock
                # starts when the request goes out)
                await send.send((peer, await self._from_peer(peer, batch)))
                return
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._race_helper, source, batch, race, nursery.cancel_scope)
                with trio.move_on_after(self._hedge_seconds(len(batch))):
                    await race.helper_done.wait()
                if race.winner is None:  # slow, or it lacks part: the round's own peer is asked too
                    nursery.start_soon(self._race_peer, peer, batch, race, nursery.cancel_scope)
            if not race.helper_done.is_set():  # still on it when the peer answered: a strike
                self._strike(source)
            await send.send(race.winner or (peer, []))

    async def _race_helper(self, source: str, batch: list[bytes], race: _Race, scope: trio.CancelScope) -> None:
        started = trio.current_time()
        try:
            blocks = await self._timed_blocks(source, batch)
            if len(blocks) == len(batch) and race.winner is None:
                race.winner = (source, blocks)
                scope.cancel()
        except PeerFault as fault:
            self._blame(source, fault)
        except trio.Cancelled:
            if race.winner is not None and race.winner[0] != source:  # lost: it takes at least this long
                self._note_speed(source, (trio.current_time() - started) / len(batch))
            raise
        finally:
            self._slots(source).release_on_behalf_of(race)
        race.helper_done.set()

    async def _race_peer(self, peer: str, batch: list[bytes], race: _Race, scope: trio.CancelScope) -> None:
        blocks = await self._from_peer(peer, batch)
        if race.winner is None:
            race.winner = (peer, blocks)
            scope.cancel()

    async def _from_peer(self, peer: str, batch: list[bytes]) -> list[bytes]:
        try:
            async with self._slots(peer):
                blocks = await self._timed_blocks(peer, batch)
            if not blocks:  # it answered, with nothing: its headers were a bluff
                self._penalise(peer, Offence.FALSE_WORK, "served none of the blocks it named")
            return blocks
        except PeerFault as fault:  # refused or gone: blamed only for a real offence
            self._blame(peer, fault)
            return []

    def _strike(self, helper: str) -> None:
        """A helper lost a race to the round's peer; `STALL_STRIKES` of them make it stalling."""
        strikes = self._strikes[helper] = self._strikes.get(helper, 0) + 1
        self.stalls += 1
        if strikes >= STALL_STRIKES and not self.resting(helper):
            self._strikes.pop(helper, None)
            self._rotate_out(helper, Offence.STALLING, f"{strikes} block batches answered later than the round's peer")

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
