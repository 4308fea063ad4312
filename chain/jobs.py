"""The market's state records: jobs with their shards, the supply totals, and token events.

Jobs and totals live in the same state trie as accounts, under 20-byte keys hashed from their
own domain (`job_key`, `TOTALS_KEY`), so one state root commits to every balance, stake, job and
the totals issued and burned, and a block's update stays O(changed keys x log n).

Events are not state: they are the record of every token movement a block made (lock, pay,
refund, slash, burn, bond, unbond, release, reward, forfeit), kept in indexes by account and by
job for RPC, written with the block and removed with it on a reorg.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any, NamedTuple, TypeVar

from chain import encoding as enc
from chain.hashing import ADDRESS_HASH_SIZE, HASH_SIZE, hash256
from chain.params import MAX_SUPPLY_UNITS

JOB_KEY_PERSON = b"neuro-jobkey"
JOB_VALUE_PERSON = b"neuro-job"
TOTALS_VALUE_PERSON = b"neuro-totals"
TOTALS_KEY = hash256(b"totals", person=b"neuro-totalskey")[:ADDRESS_HASH_SIZE]
MAX_JOB_BYTES = 1 << 20
MAX_VOTERS = 256  # votes one dispute records (a genesis committee_size far below: see market_rules)
# A job's compute units: FLOPs of a training run the worker accepts reach ~10^22, past msgpack's
# 64-bit ints, so the record keeps them as 16 big-endian bytes (`chain.job_spec` refuses more).
UNITS_BYTES = 16
MAX_UNITS = 2 ** (8 * UNITS_BYTES) - 1


R = TypeVar("R", bound=tuple[Any, ...])


def evolve(record: R, **changes: Any) -> R:
    """A copy of a state record with some fields changed.

    The records a block touches by the thousand (accounts, jobs, shards, events) are immutable
    named tuples rather than frozen dataclasses: a frozen dataclass builds each instance through
    ``object.__setattr__`` once per field, which was a quarter of a market block's apply time.
    """
    cls = type(record)
    index = _FIELD_INDEX.get(cls)
    if index is None:
        index = _FIELD_INDEX[cls] = {name: i for i, name in enumerate(cls._fields)}  # type: ignore[attr-defined]
    values = list(record)
    for name, value in changes.items():
        values[index[name]] = value
    return tuple.__new__(cls, values)  # what `_replace` does, without its per-call map and checks


_FIELD_INDEX: dict[type, dict[str, int]] = {}


def job_key(job_id: bytes) -> bytes:
    """The job's key in the state trie."""
    return hash256(job_id, person=JOB_KEY_PERSON)[:ADDRESS_HASH_SIZE]


class ShardStatus(enum.IntEnum):
    OPEN = 0  # waiting for an award (never awarded, or reopened after a slash)
    ASSIGNED = 1  # awarded; the worker's stake is locked; a result is due by the deadline
    COMMITTED = 2  # result root posted; challengeable until challenge_end
    QUERIED = 3  # an item was queried; the worker must answer by query_deadline
    PAID = 4  # final: the worker was paid
    REFUNDED = 5  # final: the shard's escrow went back to the client
    DISPUTED = 6  # a training result is disputed; the committee votes until query_deadline

    @property
    def final(self) -> bool:
        return self in (ShardStatus.PAID, ShardStatus.REFUNDED)


class JobStatus(enum.IntEnum):
    OPEN = 0
    CLOSED = 1  # every shard final and the escrow left refunded


class Shard(NamedTuple):
    status: ShardStatus = ShardStatus.OPEN
    worker: bytes = b""  # account id of the assigned worker
    price: int = 0  # awarded unit price
    payment: int = 0  # what the worker is paid on settlement
    stake: int = 0  # the worker's stake locked for this shard
    bid_id: bytes = b""
    deadline: int = 0  # last height for its result commit
    root: bytes = b""  # committed artifact root
    committed_at: int = 0  # height of the commit: the next block's hash is its sampling beacon
    challenge_end: int = 0  # last height a challenge may be included
    query_index: int = 0  # the queried item, or the disputed training segment
    query_deadline: int = 0  # last height for the worker's answer, or for a dispute's votes
    challenger: bytes = b""  # account that posted the open query or dispute
    bond: int = 0  # the challenger's bond held in the job's escrow
    items: int = 0  # committed item count: the size of the tree under the root
    voters: tuple[bytes, ...] = ()  # accounts that voted on the open dispute, in order
    fraud_votes: int = 0  # how many of them found fraud

    def to_list(self) -> list[Any]:
        return [int(self.status), self.worker, self.price, self.payment, self.stake, self.bid_id, self.deadline,
                self.root, self.committed_at, self.challenge_end, self.query_index, self.query_deadline,
                self.challenger, self.bond, self.items, list(self.voters), self.fraud_votes]

    @classmethod
    def from_list(cls, value: Any) -> Shard:
        (status, worker, price, payment, stake, bid_id, deadline, root, committed_at, challenge_end,
         query_index, query_deadline, challenger, bond, items, voters, fraud_votes) = enc.fields(value, "shard", 17)
        voter_ids = tuple(enc.as_bytes(v, "shard.voters[]", size=ADDRESS_HASH_SIZE)
                          for v in enc.as_list(voters, "shard.voters", max_len=MAX_VOTERS))
        return cls(
            ShardStatus(enc.as_int(status, "shard.status", 0, 6)), enc.as_bytes(worker, "shard.worker", max_size=20),
            enc.as_int(price, "shard.price"), enc.as_int(payment, "shard.payment"), enc.as_int(stake, "shard.stake"),
            enc.as_bytes(bid_id, "shard.bid_id", max_size=32), enc.as_int(deadline, "shard.deadline"),
            enc.as_bytes(root, "shard.root", max_size=32), enc.as_int(committed_at, "shard.committed_at"),
            enc.as_int(challenge_end, "shard.challenge_end"), enc.as_int(query_index, "shard.query_index"),
            enc.as_int(query_deadline, "shard.query_deadline"), enc.as_bytes(challenger, "shard.challenger", max_size=20),
            enc.as_int(bond, "shard.bond"), enc.as_int(items, "shard.items"),
            voter_ids, enc.as_int(fraud_votes, "shard.fraud_votes", 0, len(voter_ids)),
        )


class Job(NamedTuple):
    client: bytes  # account id
    service: int
    spec_hash: bytes  # hash256 of the spec bytes (kept under schema.JOB_SPEC)
    items: int
    units: int
    seed: int
    max_price: int
    posted: int  # height of the JobPost
    bid_end: int  # last height of the bid window
    deadline: int  # last height for result commits of the first award
    challenge_blocks: int
    escrow: int  # held for this job: unpaid shards at max price, plus challengers' bonds
    status: JobStatus
    shards: tuple[Shard, ...]

    def to_list(self) -> list[Any]:
        return [self.client, self.service, self.spec_hash, self.items, self.units.to_bytes(UNITS_BYTES, "big"),
                self.seed, self.max_price, self.posted, self.bid_end, self.deadline, self.challenge_blocks, self.escrow, int(self.status),
                [s.to_list() for s in self.shards]]

    def encode(self) -> bytes:
        return enc.pack(self.to_list())

    @property
    def value_hash(self) -> bytes:
        return hash256(self.encode(), person=JOB_VALUE_PERSON)

    def award_end(self, shard: Shard) -> int:
        """The last height at which an award may take ``shard`` (an open one): the end of the bid
        window when it was never awarded; for a reopened one (its worker slashed) one job's
        length of work (bid end to deadline) after its last deadline, less a block, so that the
        shard of a no-show, reopened only once its deadline has passed, can still be redone."""
        if shard.deadline:
            return shard.deadline + (self.deadline - self.bid_end) - 1
        return self.bid_end

    def with_shard(self, index: int, shard: Shard, **changes: Any) -> Job:
        shards = list(self.shards)
        shards[index] = shard
        return evolve(self, shards=tuple(shards), **changes)

    @classmethod
    def decode(cls, data: bytes) -> Job:
        (client, service, spec_hash, items, units, seed, max_price, posted, bid_end, deadline, challenge_blocks,
         escrow, status, shards) = enc.fields(enc.unpack(data, what="job", max_size=MAX_JOB_BYTES), "job", 14)
        return cls(
            enc.as_bytes(client, "job.client", size=ADDRESS_HASH_SIZE), enc.as_int(service, "job.service", 1, 255),
            enc.as_bytes(spec_hash, "job.spec_hash", size=HASH_SIZE), enc.as_int(items, "job.items"),
            int.from_bytes(enc.as_bytes(units, "job.units", size=UNITS_BYTES), "big"), enc.as_int(seed, "job.seed"),
            enc.as_int(max_price, "job.max_price"),
            enc.as_int(posted, "job.posted"), enc.as_int(bid_end, "job.bid_end"), enc.as_int(deadline, "job.deadline"),
            enc.as_int(challenge_blocks, "job.challenge_blocks"), enc.as_int(escrow, "job.escrow", 0, MAX_SUPPLY_UNITS),
            JobStatus(enc.as_int(status, "job.status", 0, 1)),
            tuple(Shard.from_list(s) for s in enc.as_list(shards, "job.shards", max_len=4096)),
        )


@dataclass(frozen=True, slots=True)
class Totals:
    """Everything ever issued (allocations and rewards) and burned (slashes, fees), and the stake
    bonded now (the denominator of a dispute committee's draw)."""

    issued: int
    burned: int = 0
    staked: int = 0

    def encode(self) -> bytes:
        return enc.pack([self.issued, self.burned, self.staked])

    @property
    def value_hash(self) -> bytes:
        return hash256(self.encode(), person=TOTALS_VALUE_PERSON)

    @classmethod
    def decode(cls, data: bytes) -> Totals:
        issued, burned, staked = enc.fields(enc.unpack(data, what="totals", max_size=48), "totals", 3)
        return cls(enc.as_int(issued, "totals.issued", 0, MAX_SUPPLY_UNITS),
                   enc.as_int(burned, "totals.burned", 0, MAX_SUPPLY_UNITS),
                   enc.as_int(staked, "totals.staked", 0, MAX_SUPPLY_UNITS))


EVENT_KINDS = ("lock", "pay", "refund", "slash", "burn", "bond", "unbond", "release", "reward", "forfeit")


class Event(NamedTuple):
    """One token movement. ``account`` is whose tokens moved (b"" for none: a burn of escrow)."""

    kind: str
    account: bytes
    amount: int
    job_id: bytes = b""
    shard: int = -1  # -1: the job as a whole, or no job
    note: str = ""  # e.g. "fraud", "no-show", "withheld", "fee"

    def to_list(self) -> list[Any]:
        return [self.kind, self.account, self.amount, self.job_id, self.shard, self.note]

    def encode(self) -> bytes:
        return enc.pack(self.to_list())

    @classmethod
    def decode(cls, data: bytes) -> Event:
        kind, account, amount, job_id, shard, note = enc.fields(enc.unpack(data, what="event", max_size=256), "event", 6)
        return cls(kind, account, amount, job_id, shard, note)

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "account": self.account.hex(), "amount": self.amount,
                "job": self.job_id.hex(), "shard": None if self.shard < 0 else self.shard, "note": self.note}
