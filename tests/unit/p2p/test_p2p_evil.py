"""Misbehaving peers (the real-libp2p evil peer) are penalised and banned; honest ones are not,
and nothing a peer sends crashes the host."""

from __future__ import annotations

from pathlib import Path

import msgpack
import trio

from p2p.backend import ChainStatus
from p2p.config import default_rates
from p2p.node import P2P
from p2p.scoring import Rate
from p2p.wire import MAX_REQUEST_BYTES, ErrorResponse, decode_response, encode_tx_batch
from tests.support.evil_peer import EvilPeer
from tests.unit.p2p.nodes import run, start_node, wait_gossip_mesh
from tests.unit.p2p.toychain import ToyChain


async def start_evil(
    nursery: trio.Nursery,
    tmp_path: Path,
    target: P2P,
    chain: ToyChain,
    claim: ChainStatus | None = None,
) -> EvilPeer:
    """An evil peer, started and through the handshake with `target`."""
    evil = EvilPeer(tmp_path / "evil", claim, chain_id=chain.chain_id)
    await nursery.start(evil.run)
    await evil.connect(target.listen_addrs()[0])
    return evil


def test_peer_gossiping_invalid_payloads_is_banned_honest_peer_keeps_receiving(
    tmp_path: Path,
) -> None:
    async def body() -> None:
        async with trio.open_nursery() as nursery:
            target, chain = await start_node(nursery, tmp_path / "target")
            honest, honest_chain = await start_node(nursery, tmp_path / "honest")
            evil = EvilPeer(tmp_path / "evil", chain_id=chain.chain_id)
            await nursery.start(evil.run)
            addr = target.listen_addrs()[0]
            await honest.connect(addr)
            await evil.connect(addr)
            await wait_gossip_mesh([target, honest], "blocks")
            await evil.wait_subscribed(target.peer_id, "blocks")
            await evil.wait_subscribed(target.peer_id, "txs")
            await evil.publish("blocks", b"\xc1 not msgpack")
            await evil.publish("txs", encode_tx_batch([b"bad signature"]))
            assert await evil.banned_by(addr)
            assert target.is_banned(evil.peer_id) and not target.is_banned(honest.peer_id)
            assert [p.peer_id for p in target.peers()] == [honest.peer_id]
            await target.publish_block(chain.mine(1)[0])
            await honest_chain.wait_until(lambda: honest_chain.tip == chain.tip)
            assert chain.txs == []  # the invalid batch never reached the backend
            nursery.cancel_scope.cancel()

    run(body)


def test_block_failing_full_validation_blames_its_author_not_the_relay(tmp_path: Path) -> None:
    async def body() -> None:
        async with trio.open_nursery() as nursery:
            relay, chain = await start_node(nursery, tmp_path / "relay")
            far, far_chain = await start_node(nursery, tmp_path / "far")
            await far.connect(relay.listen_addrs()[0])
            await wait_gossip_mesh([relay, far], "blocks")
            evil = await start_evil(nursery, tmp_path, relay, chain)
            await evil.wait_subscribed(relay.peer_id, "blocks")
            source = ToyChain()
            for tag in ("deep-1", "deep-2"):  # pass the cheap check, fail the full import
                (block,) = source.mine(1, tag=tag, parent=source.genesis)
                await evil.publish("blocks", block)
            assert await evil.banned_by(relay.listen_addrs()[0])
            await far_chain.wait_until(lambda: far_chain.attempts >= 2)
            assert far.scores.points(relay.peer_id, trio.current_time()) == 0
            assert not far.is_banned(relay.peer_id)
            assert far_chain.tip == far_chain.genesis and chain.tip == chain.genesis
            nursery.cancel_scope.cancel()

    run(body)


def test_stale_gossip_is_ignored_without_penalty(tmp_path: Path) -> None:
    async def body() -> None:
        async with trio.open_nursery() as nursery:
            target, chain = await start_node(nursery, tmp_path / "t")
            known = chain.mine(1)[0]
            evil = await start_evil(nursery, tmp_path, target, chain)
            await evil.wait_subscribed(target.peer_id, "blocks")
            await evil.publish("blocks", known)  # valid but already known: STALE
            source = ToyChain()
            (sibling,) = source.mine(1, tag="sibling", parent=source.genesis)
            await evil.publish("blocks", sibling)  # a new block on a known parent: accepted
            # one stream delivers in order: once the second arrived, the first was judged
            await chain.wait_until(lambda: chain.attempts >= 1)
            assert chain.attempts == 1 and chain.imported[-1][1] == evil.peer_id
            assert target.scores.points(evil.peer_id, trio.current_time()) == 0
            nursery.cancel_scope.cancel()

    run(body)


def test_oversized_gossip_is_penalised(tmp_path: Path) -> None:
    async def body() -> None:
        async with trio.open_nursery() as nursery:
            target, chain = await start_node(nursery, tmp_path / "t", max_block_gossip_bytes=1000)
            evil = await start_evil(nursery, tmp_path, target, chain)
            await evil.wait_subscribed(target.peer_id, "blocks")
            await evil.publish("blocks", b"\x00" * 5000)
            await evil.publish("blocks", b"\x01" * 5000)
            assert await evil.banned_by(target.listen_addrs()[0])
            nursery.cancel_scope.cancel()

    run(body)


def test_malformed_sync_requests_get_errors_not_crashes(tmp_path: Path) -> None:
    async def body() -> None:
        async with trio.open_nursery() as nursery:
            target, chain = await start_node(nursery, tmp_path / "t", ban_threshold=1000)
            chain.mine(3)
            honest, honest_chain = await start_node(nursery, tmp_path / "h")
            evil = await start_evil(nursery, tmp_path, target, chain)
            peer = target.peer_id
            cases = {
                b"\xc1\xc1garbage": "bad-msgpack",
                msgpack.packb(["headers", "not a list", "ten"]): "bad-shape",
                msgpack.packb(["blocks", [b"short"]]): "bad-hash",
                msgpack.packb(["mine-me-a-block"]): "unknown-request",
            }
            for request, reason in cases.items():
                answer = decode_response(await evil.raw_request(peer, request))
                assert getattr(answer, "reason", None) == reason
            oversize = await evil.raw_request(peer, b"", declared=MAX_REQUEST_BYTES + 1)
            assert getattr(decode_response(oversize), "reason", None) == "oversize"
            assert target.scores.points(evil.peer_id, trio.current_time()) > 0
            # the host still serves honest peers
            await honest.connect(target.listen_addrs()[0])
            await honest_chain.wait_until(lambda: honest_chain.tip == chain.tip)
            nursery.cancel_scope.cancel()

    run(body)


def test_sync_requests_over_the_rate_are_refused_and_penalised(tmp_path: Path) -> None:
    async def body() -> None:
        rates = {**default_rates(), "requests": Rate(per_second=0.001, burst=2)}
        async with trio.open_nursery() as nursery:
            target, chain = await start_node(nursery, tmp_path / "t", rates=rates)
            # an explicit claim: a mirroring peer would spend one of our 2 tokens asking
            evil = await start_evil(nursery, tmp_path, target, chain, chain.status())
            peer = target.peer_id
            status = msgpack.packb(["status"])
            answers = [decode_response(await evil.raw_request(peer, status)) for _ in range(3)]
            assert answers[:2] == [chain.status()] * 2
            assert answers[2] == ErrorResponse("rate-limited")
            assert target.scores.points(evil.peer_id, trio.current_time()) > 0
            nursery.cancel_scope.cancel()

    run(body)


def test_peer_claiming_work_it_cannot_serve_is_banned(tmp_path: Path) -> None:
    async def body() -> None:
        async with trio.open_nursery() as nursery:
            target, chain = await start_node(nursery, tmp_path / "t")
            genesis = chain.status().genesis
            claim = ChainStatus(genesis, 10**6, b"x" * 32, 2**80)
            evil = EvilPeer(tmp_path / "evil", claim)
            evil.headers_reply = [b"\xc1 not a header"]
            await nursery.start(evil.run)
            addr = target.listen_addrs()[0]
            await evil.connect(addr)
            assert await evil.banned_by(addr)
            assert chain.status().height == 0
            nursery.cancel_scope.cancel()

    run(body)
