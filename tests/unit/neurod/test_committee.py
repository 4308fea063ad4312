"""The committee member's seat and its choice of disputes (`neurod.market.committee`), over real
market chains: who it judges must be exactly who consensus lets vote, drawn by the real
`committee_draw`/`drawn`; a seated member judges a dispute once and votes once. The replay and
the fetch are stubbed: the functional test (tests/functional/node_committee.py) runs them."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import trio

from chain.chainstate import ChainState
from chain.market_rules import committee_draw, drawn
from chain.market_types import Challenge, Stake, Vote
from neurod.market.account import AgentAccount
from neurod.market.committee import CommitteeMember, VoteRecord, beacon_height, committee_seat
from neurod.market.worker_agent import WorkerAgent, WorkerSettings
from tests.support.chain_builders import account_of
from tests.support.market import ALICE, BOB, CAROL, NTK, acct, job_of, mine_until, refused, step, tx
from tests.unit.chain.test_training_disputes import VOTERS, committee_chain, disputed, trained_job
from tests.unit.cli.test_market_agents_cli import AgentNode, neuro, node_on  # noqa: F401 - neuro: a fixture
from tests.unit.cli.test_market_cli import Neuro
from wallet.keys import Key


def seat(chain: ChainState, job_id: bytes, seed: bytes) -> str | None:
    """``seed``'s seat on the open dispute of the job's shard 0, as its member sees it on the tip."""
    mp = chain.params.market
    job = job_of(chain, job_id)
    at = beacon_height(mp, job.shards[0].query_deadline)
    beacon = chain.hash_at(at) if chain.height >= at else None
    member = acct(chain, seed)
    return committee_seat(mp, job_id, job, 0, account_of(seed), member.bonded, chain.totals().staked, beacon,
                          chain.height)


def test_the_seat_follows_the_dispute_and_its_window() -> None:
    chain = committee_chain(voters=2)
    job_id = trained_job(chain, challenge_blocks=50)
    assert seat(chain, job_id, VOTERS[0]) == "shard-not-disputed"
    step(chain, tx(chain, ALICE, Challenge(job_id, 0, 0, None)))
    assert seat(chain, job_id, VOTERS[0]) == "vote-before-beacon"
    step(chain)  # the beacon
    assert seat(chain, job_id, BOB) == seat(chain, job_id, ALICE) == "party-cannot-vote"
    assert seat(chain, job_id, CAROL) == "voter-stake-below-minimum"
    assert seat(chain, job_id, VOTERS[0]) is None
    step(chain, tx(chain, VOTERS[0], Vote(job_id, 0, True)))
    assert seat(chain, job_id, VOTERS[0]) == "already-voted"  # the chain remembers, across restarts too
    assert seat(chain, job_id, VOTERS[1]) is None
    mine_until(chain, job_of(chain, job_id).shards[0].query_deadline)
    assert seat(chain, job_id, VOTERS[1]) == "vote-too-late"


def test_the_seat_is_what_consensus_accepts_with_the_real_draw() -> None:
    """A small committee leaves some stakers out: the member votes exactly when the chain would
    take its vote."""
    chain = committee_chain(voters=5, committee_size=1, quorum=1)
    job_id = trained_job(chain)
    disputed(chain, job_id)
    job, staked = job_of(chain, job_id), chain.totals().staked
    beacon = chain.hash_at(beacon_height(chain.params.market, job.shards[0].query_deadline))
    assert beacon is not None
    seated = {v: seat(chain, job_id, v) is None for v in VOTERS}
    for v in VOTERS:
        assert seated[v] == drawn(committee_draw(beacon, job_id, 0, account_of(v)), acct(chain, v).bonded, staked, 1)
    assert not all(seated.values()), "with 5 of 6 equal-odds stakers at 2% each, one is left out"
    for v in VOTERS:
        vote = tx(chain, v, Vote(job_id, 0, True))
        if seated[v]:
            step(chain, vote)
        else:
            assert refused(chain, vote) == "not-drawn"


def test_everyone_staked_sits_when_the_committee_outnumbers_the_stakers() -> None:
    """The devnet's committee of 3 over three equal stakes: each is drawn with probability 1."""
    chain = committee_chain(voters=2, stake=1000 * NTK, committee_size=3)
    job_id = trained_job(chain)
    disputed(chain, job_id)
    assert chain.totals().staked == 3 * 1000 * NTK
    assert [seat(chain, job_id, v) for v in VOTERS[:2]] == [None, None]


class Judging(CommitteeMember):
    """The member with its replay replaced by a verdict given in advance."""

    def __init__(self, node: Any, account: AgentAccount, fraud: bool) -> None:
        super().__init__(node, account)
        self.judged: list[tuple[bytes, int, bytes]] = []
        self.fraud = fraud

    async def _judge(self, record: VoteRecord, root: bytes, beacon: bytes) -> None:
        self.judged.append((record.job_id, record.shard, beacon))
        record.fraud, record.detail, record.state = self.fraud, "stub", "judged"
        await self._cast(record)


async def member_step(member: CommitteeMember) -> None:
    async with trio.open_nursery() as nursery:
        await member.step(nursery)


@pytest.mark.parametrize("fraud", [True, False])
def test_a_seated_member_finds_the_dispute_judges_it_once_and_votes(tmp_path: Path, fraud: bool) -> None:
    chain = committee_chain(voters=2, stake=1000 * NTK, committee_size=3)
    job_id = trained_job(chain)
    node = AgentNode(chain, tmp_path)
    member = Judging(node, AgentAccount(node, Key(VOTERS[0]), 1_000), fraud)  # type: ignore[arg-type]
    trio.run(member_step, member)  # nothing disputed yet
    beacon = disputed(chain, job_id)
    # a member started after the dispute finds it in its look-back
    late = Judging(node, AgentAccount(node, Key(VOTERS[1]), 1_000), fraud)  # type: ignore[arg-type]
    for _ in range(2):
        trio.run(member_step, member)
        trio.run(member_step, late)
    assert member.judged == late.judged == [(job_id, 0, chain.hash_at(beacon))]
    assert [v["state"] for v in member.votes_json()] == ["voted"]
    assert member.votes_json()[0] | {"detail": ""} == {"job": job_id.hex(), "shard": 0, "fraud": fraud,
                                                       "detail": "", "state": "voted"}
    votes = [t for t in node.sent if isinstance(t.payload, Vote)]
    assert [(t.sender_account, t.payload) for t in votes] == [
        (account_of(VOTERS[0]), Vote(job_id, 0, fraud)), (account_of(VOTERS[1]), Vote(job_id, 0, fraud))]
    step(chain, *votes)
    trio.run(member_step, member)
    assert len(member.judged) == 1 and job_of(chain, job_id).shards[0].voters == tuple(account_of(v) for v in VOTERS[:2])


def test_a_party_or_an_unstaked_member_never_judges(tmp_path: Path) -> None:
    chain = committee_chain(voters=1, stake=1000 * NTK, committee_size=3)
    job_id = trained_job(chain)
    disputed(chain, job_id)
    node = AgentNode(chain, tmp_path)
    members = [Judging(node, AgentAccount(node, Key(seed), 1_000), True)  # type: ignore[arg-type]
               for seed in (BOB, ALICE, CAROL)]
    for member in members:
        trio.run(member_step, member)
    assert all(not m.judged and not m.votes_json() for m in members) and not node.sent
    step(chain, tx(chain, CAROL, Stake(1000 * NTK)))  # carol bonds stake within the window: seated now
    trio.run(member_step, members[2])
    assert [j[0] for j in members[2].judged] == [job_id]


def test_worker_status_lists_the_votes(neuro: Neuro, tmp_path: Path,  # noqa: F811 - the imported fixture
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    chain = committee_chain(voters=1, stake=1000 * NTK, committee_size=3)
    job_id = trained_job(chain)
    disputed(chain, job_id)
    node = node_on(chain, tmp_path, monkeypatch)
    worker = WorkerAgent(node, AgentAccount(node, Key(VOTERS[0]), 1_000), WorkerSettings())  # type: ignore[arg-type]
    worker.committee = Judging(node, worker.account, True)
    node.agents.worker = worker
    trio.run(member_step, worker.committee)
    assert neuro.json("worker", "status")["votes"] == [
        {"job": job_id.hex(), "shard": 0, "fraud": True, "detail": "stub", "state": "voted"}]
    shown = neuro.ok("worker", "status").stdout
    assert "committee votes" in shown and job_id.hex()[:16] in shown and "fraud" in shown


class MiningNode(AgentNode):
    """A node that holds no artifact and on which every wait for a new tip mines a block."""

    artifacts = SimpleNamespace(store=SimpleNamespace(has=lambda root: False))

    async def wait_tip_change(self, tip: bytes) -> None:
        step(self.chain)
        await trio.lowlevel.checkpoint()


class Withheld(CommitteeMember):
    """A member no peer ever serves the result to."""

    async def _fetch(self, root: bytes) -> None:
        await trio.sleep_forever()


def withheld_dispute(tmp_path: Path) -> tuple[ChainState, MiningNode, Withheld, VoteRecord, bytes]:
    """A seated member (on the beacon block) of a dispute whose result nobody serves."""
    chain = committee_chain(voters=1, stake=1000 * NTK, committee_size=3)
    job_id = trained_job(chain)
    beacon = chain.hash_at(disputed(chain, job_id))
    assert beacon is not None
    node = MiningNode(chain, tmp_path)
    member = Withheld(node, AgentAccount(node, Key(VOTERS[0]), 1_000))  # type: ignore[arg-type]
    return chain, node, member, VoteRecord(job_id, 0, job_of(chain, job_id).shards[0].query_deadline), beacon


def test_a_result_nobody_serves_within_the_window_is_voted_fraud(tmp_path: Path) -> None:
    chain, node, member, record, beacon = withheld_dispute(tmp_path)
    trio.run(member._judge, record, b"\x01" * 32, beacon)
    assert chain.height == record.deadline - 1  # it gave up a block early, so the vote still makes the window
    assert (record.state, record.fraud) == ("voted", True) and record.detail.startswith("not delivered")
    step(chain, *node.sent)
    assert job_of(chain, record.job_id).shards[0].fraud_votes == 1


def test_a_member_seated_too_late_to_fetch_does_not_vote_fraud(tmp_path: Path) -> None:
    chain, node, member, record, beacon = withheld_dispute(tmp_path)
    mine_until(chain, record.deadline - 2)  # seated a block before the cutoff (say, after a restart)
    trio.run(member._judge, record, b"\x01" * 32, beacon)
    assert (record.state, record.fraud) == ("missed", None) and not node.sent  # no fair try: no vote
