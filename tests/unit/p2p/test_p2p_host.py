"""Host-level behaviour: the chain-id handshake, persistent identity, bans on connect."""

from __future__ import annotations

import socket
import stat
from pathlib import Path
from typing import Any

import pytest
import trio
from libp2p.peer.id import ID

from p2p.config import KEY_FILE
from p2p.errors import ConfigError, P2PError
from p2p.node import P2P
from tests.unit.p2p.nodes import fast_config, run, start_node, wait_gossip_mesh
from tests.unit.p2p.toychain import ToyChain


def test_node_of_another_chain_does_not_peer(tmp_path: Path) -> None:
    async def body() -> None:
        async with trio.open_nursery() as nursery:
            a, _ = await start_node(nursery, tmp_path / "a", ToyChain("devnet"))
            b, _ = await start_node(nursery, tmp_path / "b", ToyChain("othernet"))
            c, _ = await start_node(nursery, tmp_path / "c", ToyChain("devnet"))
            with pytest.raises(P2PError):
                await b.connect(a.listen_addrs()[0])
            # same chain still peers, so the refusal above is about the chain id
            await c.connect(a.listen_addrs()[0])
            await a.wait_for_peers(1)
            assert [p.peer_id for p in a.peers()] == [c.peer_id]
            assert b.peers() == []
            assert not a._host.is_connected(b.peer_id)
            nursery.cancel_scope.cancel()

    run(body)


async def _start_and_stop(data_dir: Path) -> str:
    async with trio.open_nursery() as nursery:
        node, _ = await start_node(nursery, data_dir)
        assert all(addr.endswith(f"/p2p/{node.peer_id}") for addr in node.listen_addrs())
        nursery.cancel_scope.cancel()
    return node.peer_id


def test_identity_persists_across_restart(tmp_path: Path) -> None:
    async def body() -> None:
        first = await _start_and_stop(tmp_path / "a")
        assert await _start_and_stop(tmp_path / "a") == first
        assert stat.S_IMODE((tmp_path / "a" / KEY_FILE).stat().st_mode) == 0o600
        assert await _start_and_stop(tmp_path / "b") != first

    run(body)


def test_banned_peer_is_dropped_and_refused_after_restart(tmp_path: Path) -> None:
    async def body() -> None:
        async with trio.open_nursery() as nursery:
            a, _ = await start_node(nursery, tmp_path / "a")
            b, _ = await start_node(nursery, tmp_path / "b")
            await b.connect(a.listen_addrs()[0])
            await a.wait_for_peers(1)
            await a.ban(b.peer_id, 3600)
            while a.peers():
                await a._changed()
            assert a._host.addrs(b.peer_id) == []  # departed peers leave the peerstore
            with pytest.raises(P2PError):
                await a.connect(b.listen_addrs()[0])  # a never dials a banned peer
            with pytest.raises(P2PError):
                await b.connect(a.listen_addrs()[0])  # and closes its inbound connection
            nursery.cancel_scope.cancel()
        async with trio.open_nursery() as nursery:
            a2, _ = await start_node(nursery, tmp_path / "a")
            assert a2.is_banned(b.peer_id)
            nursery.cancel_scope.cancel()

    run(body)


def test_bad_listen_settings_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        P2P(fast_config(tmp_path, listen=["/ip4/not-an-ip/tcp/1"]), ToyChain())
    assert err.value.reason == "bad-multiaddr"

    async def body() -> None:
        with socket.socket() as busy:
            busy.bind(("127.0.0.1", 0))
            busy.listen()
            port = busy.getsockname()[1]
            node = P2P(fast_config(tmp_path, listen=[f"/ip4/127.0.0.1/tcp/{port}"]), ToyChain())
            async with trio.open_nursery() as nursery:
                with pytest.raises(ConfigError) as err:
                    await nursery.start(node.run)
                assert err.value.reason == "listen-failed"

    run(body)


def test_concurrent_writes_on_one_pubsub_stream_stay_whole(tmp_path: Path) -> None:
    """py-libp2p writes to a peer's pubsub stream from more than one task (its sending loop, and
    the replay of recent messages when a stream is re-opened), and yamux sends a write over 64 KiB
    as several frames, yielding between them. Two large RPCs written at once must still arrive
    whole: interleaved frames reach the receiver as one undecodable RPC, and it penalises the
    honest sender for it."""

    async def body() -> None:
        async with trio.open_nursery() as nursery:
            a, _ = await start_node(nursery, tmp_path / "a")
            b, chain_b = await start_node(nursery, tmp_path / "b")
            await a.connect(b.listen_addrs()[0])
            await wait_gossip_mesh([a, b], "bids")
            pubsub = a._host.pubsub
            stream = pubsub.peers[ID.from_base58(b.peer_id)]
            bids = [bytes([k]) * 300_000 for k in (1, 2)]
            async with trio.open_nursery() as writers:
                for data in bids:
                    writers.start_soon(pubsub.write_msg, stream, _signed_rpc(pubsub, a, data))
            def blamed() -> float:
                return b.scores.points(a.peer_id, trio.current_time())

            while len(chain_b.bids) < len(bids) and not blamed():  # run() bounds the wait
                await trio.sleep(0.01)
            assert blamed() == 0
            assert sorted(chain_b.bids) == bids
            nursery.cancel_scope.cancel()

    run(body)


def _signed_rpc(pubsub: Any, node: P2P, data: bytes) -> Any:
    """A publish RPC for the bids topic, signed as `Pubsub.publish` signs one."""
    from libp2p.pubsub.pb import rpc_pb2
    from libp2p.pubsub.pubsub import PUBSUB_SIGNING_PREFIX

    msg = rpc_pb2.Message(
        data=data,
        topicIDs=[node.gossip.topics["bids"]],
        from_id=pubsub.my_id.to_bytes(),
        seqno=pubsub._next_seqno(),
    )
    msg.signature = pubsub.sign_key.sign(PUBSUB_SIGNING_PREFIX.encode() + msg.SerializeToString())
    msg.key = pubsub.host.get_public_key().serialize()
    return rpc_pb2.RPC(publish=[msg])
