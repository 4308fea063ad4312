"""The peer policy tells its observer of every penalty and ban, by offence (neurod's metrics)."""

from __future__ import annotations

from pathlib import Path

import trio

from chain.errors import RejectKind
from p2p.node import P2P
from p2p.scoring import MANUAL_BAN, Offence
from tests.unit.p2p.nodes import fast_config
from tests.unit.p2p.toychain import ToyChain

HOSTILE = "12D3KooWHostilePeerXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX"
ANNOYING = "12D3KooWAnnoyingPeerXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX"


class Recorder:
    def __init__(self) -> None:
        self.penalties: list[str] = []
        self.bans: list[str] = []

    def peer_penalised(self, reason: str) -> None:
        self.penalties.append(reason)

    def peer_banned(self, reason: str) -> None:
        self.bans.append(reason)


def test_observer_sees_each_penalty_and_the_offence_that_banned(tmp_path: Path) -> None:
    seen = Recorder()
    node = P2P(fast_config(tmp_path, observer=seen), ToyChain())

    async def body() -> None:
        node.penalise(HOSTILE, RejectKind.INVALID, "blocks: bad-version")
        node.penalise(HOSTILE, RejectKind.STALE, "blocks: known")  # worth no points: not a penalty
        node.penalise(HOSTILE, Offence.OVERSIZE, "txs message of 600000 bytes")  # 120 points: banned
        node.penalise(node.peer_id, RejectKind.INVALID, "our own block")  # never ourselves
        await node.ban(ANNOYING, 60)

    trio.run(body)
    assert seen.penalties == ["invalid", "oversize"]
    assert seen.bans == ["oversize", MANUAL_BAN]
    assert node.is_banned(HOSTILE) and node.is_banned(ANNOYING)


def test_unobserved_policy_still_bans(tmp_path: Path) -> None:
    node = P2P(fast_config(tmp_path), ToyChain())

    async def body() -> None:
        for _ in range(2):
            node.penalise(HOSTILE, RejectKind.MALFORMED, "garbage")

    trio.run(body)
    assert node.is_banned(HOSTILE)
