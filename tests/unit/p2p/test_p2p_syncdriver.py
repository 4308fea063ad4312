"""The sync driver against in-process peers (the real SyncServer answering from toy chains):
pipelining across peers, short answers under the response cap, and blame for lying peers."""

from __future__ import annotations

from typing import Any

import trio

from chain.errors import RejectKind
from p2p.backend import ChainStatus
from p2p.scoring import Offence
from p2p.sync import PeerFault, SyncServer
from p2p.syncdriver import SyncDriver
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
