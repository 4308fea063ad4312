"""The sync protocol between real hosts: catching up from scratch and reorging after a split."""

from __future__ import annotations

from pathlib import Path

import trio

from tests.unit.p2p.nodes import run, start_node


def test_fresh_node_catches_up_to_the_longer_chain(tmp_path: Path) -> None:
    async def body() -> None:
        async with trio.open_nursery() as nursery:
            a, ca = await start_node(nursery, tmp_path / "a", blocks_per_request=16)
            ca.mine(150)  # more than one get_blocks batch, several batches pipelined
            b, cb = await start_node(nursery, tmp_path / "b")
            await b.connect(a.listen_addrs()[0])
            await cb.wait_until(lambda: cb.tip == ca.tip)
            assert cb.main == ca.main
            assert {origin for _, origin in cb.imported} == {a.peer_id}
            nursery.cancel_scope.cancel()

    run(body)


def test_partitioned_node_reorgs_onto_the_heavier_branch(tmp_path: Path) -> None:
    async def body() -> None:
        async with trio.open_nursery() as nursery:
            a, ca = await start_node(nursery, tmp_path / "a")
            b, cb = await start_node(nursery, tmp_path / "b")
            shared = ca.mine(5)
            for block in shared:
                await cb.import_block(block, None)
            fork_point = ca.tip
            cb.mine(8, tag="light", work=10)  # b's branch: 80 work, longer
            ca.mine(3, tag="heavy", work=50)  # a's branch: 150 work, shorter but heavier
            light_tip = cb.tip
            await b.connect(a.listen_addrs()[0])
            await cb.wait_until(lambda: cb.tip == ca.tip)
            assert fork_point in cb.main and light_tip not in cb.main
            assert ca.tip != light_tip and ca.status().work > 0
            # the lighter node is not pulled back: a keeps its own tip
            assert ca.main[-1] == ca.tip and light_tip not in ca.main
            nursery.cancel_scope.cancel()

    run(body)
