"""The sync driver against in-process peers (the real SyncServer answering from toy chains):
pipelining across peers, short answers under the response cap, and blame for lying peers."""

from __future__ import annotations

from typing import Any

import trio
import trio.testing

from chain.errors import RejectKind
from p2p.backend import ChainStatus
from p2p.scoring import Offence
from p2p.sync import PeerFault, SyncServer
from p2p.syncdriver import MIN_HEDGE_SECONDS, NO_GAIN_STEPS, STALL_STRIKES, SyncDriver
from p2p.wire import BlocksRequest, HeadersRequest, ItemsResponse, StatusRequest
from tests.unit.p2p.nodes import run
from tests.unit.p2p.toychain import ToyChain


class InProcessPeers:
    """Stands in for SyncClient: each peer id is answered by a SyncServer over a toy chain."""

    def __init__(self, chains: dict[str, ToyChain], max_response_bytes: int = 1 << 20) -> None:
        self.servers = {
            peer: SyncServer(chain, lambda *a: None, lambda *a: True, max_response_bytes)
            for peer, chain in chains.items()
        }
        self.asked: list[tuple[str, str]] = []

    def _answer(self, peer: str, request: Any) -> Any:
        self.asked.append((peer, type(request).__name__))
        if peer not in self.servers:
            raise PeerFault(None, "gone")
        return self.servers[peer].answer(request)

    async def status(self, peer: str, timeout: float | None = None) -> ChainStatus:
        await trio.lowlevel.checkpoint()
        return self._answer(peer, StatusRequest())  # type: ignore[no-any-return]

    async def headers(self, peer: str, locator: list[bytes], limit: int) -> list[bytes]:
        await trio.lowlevel.checkpoint()
        answer: ItemsResponse = self._answer(peer, HeadersRequest(tuple(locator), limit))
        return list(answer.items)

    async def blocks(self, peer: str, hashes: list[bytes]) -> list[bytes]:
        await trio.lowlevel.checkpoint()
        answer: ItemsResponse = self._answer(peer, BlocksRequest(tuple(hashes)))
        return list(answer.items)


def _driver(chain: ToyChain, peers: InProcessPeers, blame: list[Any], batch: int) -> SyncDriver:
    return SyncDriver(
        chain,
        peers,  # type: ignore[arg-type]
        lambda peer, cause, reason: blame.append((peer, cause)),
        status_interval=3600,
        blocks_per_request=batch,
    )


async def _drive(driver: SyncDriver, claims: dict[str, ChainStatus], done: Any) -> None:
    """Run `driver`, announce `claims`, and stop once `await done()` returns."""
    async with trio.open_nursery() as nursery:
        await nursery.start(driver.run)
        for peer, status in claims.items():
            driver.on_status(peer, status)
        await done()
        nursery.cancel_scope.cancel()


def test_blocks_are_fetched_from_every_peer_with_enough_work() -> None:
    async def body() -> None:
        source = ToyChain()
        source.mine(120)
        mirror = ToyChain()
        for block in source.blocks.values():
            await mirror.import_block(block, None)
        fresh = ToyChain()
        blame: list[Any] = []
        peers = InProcessPeers({"a": source, "b": mirror})
        driver = _driver(fresh, peers, blame, batch=10)
        claims = {"a": source.status(), "b": mirror.status()}
        await _drive(driver, claims, lambda: fresh.wait_until(lambda: fresh.tip == source.tip))
        block_requests = {peer for peer, kind in peers.asked if kind == "BlocksRequest"}
        assert block_requests == {"a", "b"} and blame == []
        assert {origin for _, origin in fresh.imported} == {"a", "b"}

    run(body)


def test_answers_cut_by_the_response_cap_still_complete_the_sync() -> None:
    async def body() -> None:
        source, fresh = ToyChain(), ToyChain()
        blame: list[Any] = []
        source.mine(40)
        peers = InProcessPeers({"a": source}, max_response_bytes=600)  # a few blocks per answer
        driver = _driver(fresh, peers, blame, batch=32)
        claims = {"a": source.status()}
        await _drive(driver, claims, lambda: fresh.wait_until(lambda: fresh.tip == source.tip))
        assert blame == []

    run(body)


def test_peer_serving_an_invalid_block_is_blamed_and_the_good_prefix_kept() -> None:
    async def body() -> None:
        liar, fresh = ToyChain(), ToyChain()
        blame: list[Any] = []
        liar.mine(2)
        liar.mine(1, tag="invalid")  # breaks a rule, on top of two good blocks
        driver = _driver(fresh, InProcessPeers({"liar": liar}), blame, batch=8)
        await _drive(driver, {"liar": liar.status()}, driver.wait_round)
        assert fresh.tip == liar.main[2]
        assert blame == [("liar", RejectKind.INVALID)]

    run(body)


class Boaster(ToyChain):
    """Claims far more work than its chain has."""

    def status(self) -> ChainStatus:
        return ChainStatus(self.genesis, 1000, b"x" * 32, 10**12)


def test_peer_claiming_work_it_does_not_serve_is_blamed() -> None:
    async def body() -> None:
        boaster, fresh = Boaster(), ToyChain()
        blame: list[Any] = []
        driver = _driver(fresh, InProcessPeers({"boaster": boaster}), blame, batch=8)
        await _drive(driver, {"boaster": boaster.status()}, driver.wait_round)
        assert blame == [("boaster", Offence.FALSE_WORK)]
        assert fresh.tip == fresh.genesis

    run(body)


# ---- peers that try to hold sync still (issue: network hardening) ------------------------------


class Alternator(InProcessPeers):
    """Claims far more work, then answers header requests alternately with the first block and
    the first two blocks of a real chain, and serves those blocks: a changed answer, no new work."""

    def __init__(self, chains: dict[str, ToyChain], liar: str) -> None:
        super().__init__(chains)
        self.liar, self.chain = liar, chains[liar]
        self.header_requests = 0

    async def status(self, peer: str, timeout: float | None = None) -> ChainStatus:
        status = await super().status(peer, timeout)
        return ChainStatus(status.genesis, 10**6, status.tip, 10**12) if peer == self.liar else status

    async def headers(self, peer: str, locator: list[bytes], limit: int) -> list[bytes]:
        if peer != self.liar:
            return await super().headers(peer, locator, limit)
        self.header_requests += 1
        await trio.lowlevel.checkpoint()
        return [self.chain.headers[k] for k in self.chain.main[1 : 2 + self.header_requests % 2]]


class SlowPeers(InProcessPeers):
    """Peers in `slow` answer block requests only after `delay` seconds (a trickling peer)."""

    def __init__(self, chains: dict[str, ToyChain], slow: set[str], delay: float = 25.0) -> None:
        super().__init__(chains)
        self.slow, self.delay = slow, delay

    async def blocks(self, peer: str, hashes: list[bytes]) -> list[bytes]:
        if peer in self.slow:
            await trio.sleep(self.delay)
        return await super().blocks(peer, hashes)


async def copy_of(source: ToyChain) -> ToyChain:
    mirror = ToyChain()
    for key in source.main[1:]:
        await mirror.import_block(source.blocks[key], None)
    return mirror


def test_an_alternating_peer_is_rotated_out_after_a_few_answers_without_new_work() -> None:
    async def body() -> None:
        real, fresh = ToyChain(), ToyChain()
        real.mine(2)
        blame: list[Any] = []
        peers = Alternator({"alternator": real}, "alternator")
        driver = _driver(fresh, peers, blame, batch=8)
        await _drive(driver, {"alternator": await peers.status("alternator")}, driver.wait_round)
        assert fresh.tip == real.main[2]  # what it served is kept
        assert blame == [("alternator", Offence.FALSE_WORK)]
        assert peers.header_requests <= NO_GAIN_STEPS + 2 and driver.rotations == 1
        assert driver.resting("alternator")
        driver.request_sync("alternator")  # its next claim gets no round while it rests
        rounds = driver.rounds_done
        await _drive(driver, {}, trio.testing.wait_all_tasks_blocked)
        assert driver.rounds_done > rounds
        assert peers.header_requests <= NO_GAIN_STEPS + 2

    run(body)


def test_an_alternating_peer_does_not_hold_an_honest_peers_round() -> None:
    async def body() -> None:
        honest, fresh = ToyChain(), ToyChain()
        honest.mine(150)
        blame: list[Any] = []
        peers = Alternator({"alternator": honest, "honest": honest}, "alternator")
        driver = _driver(fresh, peers, blame, batch=16)
        claims = {"alternator": await peers.status("alternator"), "honest": honest.status()}
        await _drive(driver, claims, lambda: fresh.wait_until(lambda: fresh.tip == honest.tip))
        assert ("honest", Offence.FALSE_WORK) not in blame

    run(body)


def test_a_slow_helper_is_hedged_at_once_and_judged_stalling_once() -> None:
    async def body() -> None:
        source = ToyChain()
        source.mine(200)
        fresh = ToyChain()
        blame: list[Any] = []
        peers = SlowPeers({"fast": source, "slow": await copy_of(source)}, slow={"slow"})
        driver = _driver(fresh, peers, blame, batch=10)
        started = trio.current_time()
        # both claim the work: the slow one is a helper of the fast one's round from the start
        await _drive(driver, {"fast": source.status(), "slow": source.status()},
                     lambda: fresh.wait_until(lambda: fresh.tip == source.tip))
        elapsed = trio.current_time() - started
        assert blame == [("slow", Offence.STALLING)] and driver.stalls >= STALL_STRIKES  # judged once
        assert elapsed < 3 * MIN_HEDGE_SECONDS  # virtual time: hedged at once, not a timeout per batch
        assert {origin for _, origin in fresh.imported} == {"fast"}

    trio.run(_on_mock_clock, body, clock=trio.testing.MockClock(autojump_threshold=0))


async def _on_mock_clock(fn: Any) -> None:
    with trio.fail_after(600):
        await fn()


def test_a_helper_that_is_merely_slower_is_used_and_never_blamed() -> None:
    async def body() -> None:
        source = ToyChain()
        source.mine(200)
        fresh = ToyChain()
        blame: list[Any] = []
        peers = SlowPeers({"fast": source, "slower": await copy_of(source)}, slow={"slower"},
                          delay=MIN_HEDGE_SECONDS / 2)
        driver = _driver(fresh, peers, blame, batch=10)
        await _drive(driver, {"fast": source.status(), "slower": source.status()},
                     lambda: fresh.wait_until(lambda: fresh.tip == source.tip))
        assert blame == [] and driver.stalls == 0
        assert "slower" in {origin for _, origin in fresh.imported}

    trio.run(_on_mock_clock, body, clock=trio.testing.MockClock(autojump_threshold=0))
