"""The sync driver: brings our chain to the heaviest chain any peer can actually serve.

It learns each peer's `ChainStatus` from the handshake and from periodic polls. Whenever a peer
claims more cumulative work than ours, it asks for headers after our locator, lets the backend
say which blocks it lacks, fetches them in batches, imports them in order, and repeats until we
have the peer's work or the peer stops making progress. Because the locator walks back from our
tip, a node that was partitioned receives the heavier branch from the fork point and the backend
reorgs onto it. Block batches of one round are fetched from several peers at once when more than
one claims enough work, and imported in order.

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

Penalise = Callable[[str, "RejectKind | Offence", str], None]


class _Abort(Exception):
    """Ends one sync round with a peer (already penalised where due)."""


class SyncDriver:
    """Service: polls peer status and pulls the heaviest chain. One sync round at a time."""

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
        # block requests in flight at once, over all peers: keeps a long sync under the
        # serving peers' request rate limits instead of bursting a whole step at once
        self._in_flight = trio.CapacityLimiter(MAX_IN_FLIGHT)
        self._queued: set[str] = set()  # peers with a round waiting in the channel
        self.rounds_done = 0  # sync rounds finished, for metrics
        self._progress = trio.Event()

    # -- events from the node ------------------------------------------------------------------

    def on_status(self, peer: str, status: ChainStatus) -> None:
        """Record what `peer` claims; schedule a round if it claims more work than ours."""
        self.claims[peer] = status
        if status.work > self._backend.status().work:
            self.request_sync(peer)

    def request_sync(self, peer: str) -> None:
        """Ask for a sync round with `peer` (e.g. a gossiped block had an unknown parent)."""
        if peer in self._queued:
            return
        try:
            self._wanted_send.send_nowait(peer)
            self._queued.add(peer)
        except trio.WouldBlock:
            pass  # a backlog of rounds is queued already; the next poll catches up

    def forget(self, peer: str) -> None:
        self.claims.pop(peer, None)

    async def wait_round(self) -> None:
        """Return after the next sync round ends (whatever its outcome)."""
        await self._progress.wait()

    # -- service -------------------------------------------------------------------------------

    async def run(self, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._poll_loop)
            task_status.started()
            async for peer in self._wanted_recv:
                self._queued.discard(peer)
                if peer in self.claims:
                    await self._round(peer)
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

    # -- one sync round ------------------------------------------------------------------------

    async def _round(self, peer: str) -> None:
        try:
            claim = await self._client.status(peer)
            self.claims[peer] = claim
            last: bytes | None = None
            while claim.work > self._backend.status().work:
                advanced, last = await self._step(peer, last)
                if not advanced:
                    self._penalise(peer, Offence.FALSE_WORK, "claimed work it did not serve")
                    return
        except PeerFault as fault:
            self._blame(peer, fault)
        except _Abort:
            return

    async def _step(self, peer: str, last: bytes | None) -> tuple[bool, bytes | None]:
        """One headers request and the blocks it calls for; returns (made progress, last hash)."""
        before = self._backend.status()
        locator = ([last] if last else []) + self._backend.locator()
        headers = await self._client.headers(peer, locator[:MAX_LOCATOR], self._headers_limit)
        if not headers:
            return False, last
        plan = self._backend.plan_headers(headers)
        if plan.verdict.outcome is Outcome.REJECT:
            self._penalise(peer, plan.verdict.kind, f"headers: {plan.verdict.reason}")
            raise _Abort
        if plan.verdict.outcome is Outcome.IGNORE:  # our side cannot use them now: no blame
            raise _Abort
        complete = await self._fetch_and_import(peer, plan.needed)
        after = self._backend.status()
        moved = after.work != before.work or after.tip != before.tip
        if not complete:
            return moved, last  # ask for the same headers again; the plan shrinks
        return moved or plan.last != last, plan.last

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
        """`peer` first, then up to three others whose claim is at least as heavy."""
        target = self.claims[peer].work
        others = [p for p, s in self.claims.items() if p != peer and s.work >= target]
        return [peer, *others[:3]]

    async def _fetch(
        self,
        source: str,
        peer: str,
        batch: list[bytes],
        send: trio.MemorySendChannel[tuple[str, list[bytes]]],
    ) -> None:
        """Fetch one batch from `source`; a helper that lacks part of it (it may follow another
        branch) is not blamed and `peer`, whose headers named the blocks, is asked instead."""
        async with send:
            if source != peer:
                try:
                    async with self._in_flight:
                        blocks = await self._client.blocks(source, batch)
                    if len(blocks) == len(batch):
                        await send.send((source, blocks))
                        return
                except PeerFault as fault:
                    self._blame(source, fault)
            try:
                async with self._in_flight:
                    blocks = await self._client.blocks(peer, batch)
                if not blocks:  # it answered, with nothing: its headers were a bluff
                    self._penalise(peer, Offence.FALSE_WORK, "served none of the blocks it named")
            except PeerFault as fault:  # refused or gone: blamed only for a real offence
                self._blame(peer, fault)
                blocks = []
            await send.send((peer, blocks))

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
