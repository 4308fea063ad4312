"""The market's transaction payloads and the signed bid, as frozen dataclasses.

Each payload is a positional msgpack list decoded strictly (`chain.encoding`), like `Transfer`.
What each kind does to the state is in `chain.market_rules`; the flow they implement is in
DESIGN.md (Market). Kinds 2-12 follow Transfer (1) in `chain.types.PAYLOAD_TYPES`.

A bid is not a transaction: a worker signs it once and gossips it, and the client carries the
chosen ones inside its `JobAward`. Its signed message names the chain and the job, so a bid can
be replayed neither to another network nor to another job; the award's checks (price, expiry,
capacity, stake) run when the award is connected, and its signature with the block's other
signatures (`bid_signature_items`), on the same pool.
"""

from __future__ import annotations

import enum
import itertools
from dataclasses import dataclass, field
from typing import Any, ClassVar

from chain import encoding as enc
from chain.crypto import PUBLIC_KEY_SIZE, SIGNATURE_SIZE, address_hash, sign
from chain.errors import DecodeError
from chain.hashing import HASH_SIZE, hash256
from chain.merkle import MerkleProof

MAX_AMOUNT = 2**63 - 1
MAX_SPEC_WIRE_BYTES = 8_192  # decoding bound; the genesis `max_spec_bytes` is the rule
MAX_WIRE_SHARDS = 4_096  # decoding bounds; the genesis limits are the rules
MAX_WIRE_BIDS = 256
MAX_PROOF_DEPTH = 40  # 2^40 items: no artifact comes near
MAX_LEAF_FILES = 8
BID_SIGN_DOMAIN = b"neuro-bid-v1"
BID_ID_PERSON = b"neuro-bidid"


class Service(enum.IntEnum):
    """What a job buys (the product's services; Buy Data / Buy Model are listings, later)."""

    GENERATE = 1  # render a synthetic dataset from a spec, sharded over a pool
    TRAIN = 2  # train a zoo model
    LABEL = 3  # model-assisted labels
    EVALUATE = 4  # a model measured on a dataset


def _hash(value: Any, what: str) -> bytes:
    return enc.as_bytes(value, what, size=HASH_SIZE)


def _amount(value: Any, what: str, lo: int = 1) -> int:
    return enc.as_int(value, what, lo, MAX_AMOUNT)


@dataclass(frozen=True, slots=True)
class Stake:
    """Bond ``amount`` of the sender's balance: it backs bids, and it can be slashed."""

    KIND: ClassVar[int] = 2
    amount: int

    def to_list(self) -> list[Any]:
        return [self.amount]

    @classmethod
    def from_list(cls, value: Any) -> Stake:
        (amount,) = enc.fields(value, "stake", 1)
        return cls(_amount(amount, "stake.amount"))


@dataclass(frozen=True, slots=True)
class Unstake:
    """Start unbonding ``amount`` of free stake; it stays slashable until `Release`."""

    KIND: ClassVar[int] = 3
    amount: int

    def to_list(self) -> list[Any]:
        return [self.amount]

    @classmethod
    def from_list(cls, value: Any) -> Unstake:
        (amount,) = enc.fields(value, "unstake", 1)
        return cls(_amount(amount, "unstake.amount"))


@dataclass(frozen=True, slots=True)
class Release:
    """Return the sender's unbonded stake to its balance, once the unbonding period is over."""

    KIND: ClassVar[int] = 4

    def to_list(self) -> list[Any]:
        return []

    @classmethod
    def from_list(cls, value: Any) -> Release:
        enc.fields(value, "release", 0)
        return cls()


@dataclass(frozen=True, slots=True)
class JobPost:
    """A job: the spec itself (canonical JSON), how it is sharded, the most the client pays per
    unit, and its windows in blocks from the block that includes it. Its id is this tx's id."""

    KIND: ClassVar[int] = 5
    service: int
    spec: bytes
    shards: int
    max_price: int  # base units per quote unit (`chain.job_spec.QUOTE_UNITS`)
    bid_blocks: int  # awards are taken this many blocks after the post
    deadline_blocks: int  # results are due this many blocks after the post
    challenge_blocks: int  # after each result commit, how long anyone may challenge it

    def to_list(self) -> list[Any]:
        return [self.service, self.spec, self.shards, self.max_price, self.bid_blocks,
                self.deadline_blocks, self.challenge_blocks]

    @classmethod
    def from_list(cls, value: Any) -> JobPost:
        service, spec, shards, price, bid, deadline, challenge = enc.fields(value, "job_post", 7)
        service = enc.as_int(service, "job_post.service", 1, 255)
        if service not in Service._value2member_map_:
            raise DecodeError("bad-service", f"unknown service {service}")
        return cls(
            service=service,
            spec=enc.as_bytes(spec, "job_post.spec", max_size=MAX_SPEC_WIRE_BYTES),
            shards=enc.as_int(shards, "job_post.shards", 1, MAX_WIRE_SHARDS),
            max_price=_amount(price, "job_post.max_price"),
            bid_blocks=enc.as_int(bid, "job_post.bid_blocks", 1, 2**32 - 1),
            deadline_blocks=enc.as_int(deadline, "job_post.deadline_blocks", 1, 2**32 - 1),
            challenge_blocks=enc.as_int(challenge, "job_post.challenge_blocks", 1, 2**32 - 1),
        )


@dataclass(frozen=True, slots=True)
class Bid:
    """A worker's signed offer for a job: up to ``max_shards`` shards at ``unit_price``, valid
    through block ``expiry``."""

    chain_id: bytes
    job_id: bytes
    worker: bytes  # Ed25519 public key
    unit_price: int
    max_shards: int
    expiry: int  # last height at which an award may carry it
    signature: bytes = b""
    _id: bytes | None = field(default=None, init=False, repr=False, compare=False)

    def _unsigned(self) -> list[Any]:
        return [self.chain_id, self.job_id, self.worker, self.unit_price, self.max_shards, self.expiry]

    def signing_message(self) -> bytes:
        return BID_SIGN_DOMAIN + enc.pack(self._unsigned())

    def to_list(self) -> list[Any]:
        return [*self._unsigned(), self.signature]

    def encode(self) -> bytes:
        return enc.pack(self.to_list())

    @property
    def bid_id(self) -> bytes:
        bid_id = self._id
        if bid_id is None:
            bid_id = hash256(self.encode(), person=BID_ID_PERSON)
            object.__setattr__(self, "_id", bid_id)
        return bid_id

    @property
    def worker_account(self) -> bytes:
        return address_hash(self.worker)

    def signed(self, seed: bytes) -> Bid:
        unsigned = Bid(self.chain_id, self.job_id, self.worker, self.unit_price, self.max_shards, self.expiry)
        return Bid(self.chain_id, self.job_id, self.worker, self.unit_price, self.max_shards, self.expiry,
                   sign(seed, unsigned.signing_message()))

    @classmethod
    def from_list(cls, value: Any) -> Bid:
        chain_id, job_id, worker, price, max_shards, expiry, signature = enc.fields(value, "bid", 7)
        return cls(
            chain_id=_hash(chain_id, "bid.chain_id"),
            job_id=_hash(job_id, "bid.job_id"),
            worker=enc.as_bytes(worker, "bid.worker", size=PUBLIC_KEY_SIZE),
            unit_price=_amount(price, "bid.unit_price"),
            max_shards=enc.as_int(max_shards, "bid.max_shards", 1, MAX_WIRE_SHARDS),
            expiry=enc.as_int(expiry, "bid.expiry", 0, 2**63 - 1),
            signature=enc.as_bytes(signature, "bid.signature", size=SIGNATURE_SIZE),
        )

    @classmethod
    def decode(cls, data: bytes) -> Bid:
        return cls.from_list(enc.unpack(data, what="bid", max_size=256))


@dataclass(frozen=True, slots=True)
class AwardEntry:
    """One chosen bid and the shards it wins (ascending, each at most once)."""

    bid: Bid
    shards: tuple[int, ...]

    def to_list(self) -> list[Any]:
        return [self.bid.to_list(), list(self.shards)]

    @classmethod
    def from_list(cls, value: Any) -> AwardEntry:
        bid, shards = enc.fields(value, "award_entry", 2)
        numbers = enc.as_list(shards, "award_entry.shards", max_len=MAX_WIRE_SHARDS)
        indices = tuple(enc.as_int(s, "award_entry.shards[]", 0, MAX_WIRE_SHARDS - 1) for s in numbers)
        if not indices or any(a >= b for a, b in itertools.pairwise(indices)):
            raise DecodeError("bad-award", "an entry's shards must be non-empty and strictly ascending")
        return cls(Bid.from_list(bid), indices)


@dataclass(frozen=True, slots=True)
class JobAward:
    """The client's choice of pool: signed bids and the shards each wins."""

    KIND: ClassVar[int] = 6
    job_id: bytes
    entries: tuple[AwardEntry, ...]

    def to_list(self) -> list[Any]:
        return [self.job_id, [entry.to_list() for entry in self.entries]]

    @classmethod
    def from_list(cls, value: Any) -> JobAward:
        job_id, entries = enc.fields(value, "job_award", 2)
        items = enc.as_list(entries, "job_award.entries", max_len=MAX_WIRE_BIDS)
        if not items:
            raise DecodeError("bad-award", "an award carries at least one bid")
        return cls(_hash(job_id, "job_award.job_id"), tuple(AwardEntry.from_list(e) for e in items))


@dataclass(frozen=True, slots=True)
class ResultCommit:
    """The assigned worker's result for one shard: its artifact root and item count."""

    KIND: ClassVar[int] = 7
    job_id: bytes
    shard: int
    root: bytes
    items: int

    def to_list(self) -> list[Any]:
        return [self.job_id, self.shard, self.root, self.items]

    @classmethod
    def from_list(cls, value: Any) -> ResultCommit:
        job_id, shard, root, items = enc.fields(value, "result_commit", 4)
        return cls(
            _hash(job_id, "result_commit.job_id"),
            enc.as_int(shard, "result_commit.shard", 0, MAX_WIRE_SHARDS - 1),
            _hash(root, "result_commit.root"),
            enc.as_int(items, "result_commit.items", 1, 2**32 - 1),
        )


@dataclass(frozen=True, slots=True)
class LeafClaim:
    """An item's leaf fields (`worker.artifact` format) and its way up to an artifact root: the
    Merkle path to ``items_root`` and the header hash folded into the root. The leaf's position
    and the tree's size are not carried: the chain knows them from the shard (index - start) and
    the commit (item count), so a path for another position or tree cannot be passed off."""

    check: bytes  # what re-computing the item reproduces (render: the raw-pixel item id)
    labels: bytes
    files: tuple[bytes, ...]
    siblings: tuple[bytes, ...]
    items_root: bytes
    header_hash: bytes

    def to_list(self) -> list[Any]:
        return [self.check, self.labels, list(self.files), list(self.siblings), self.items_root, self.header_hash]

    def path(self, position: int, count: int) -> MerkleProof:
        return MerkleProof(position, count, self.siblings)

    @classmethod
    def from_list(cls, value: Any) -> LeafClaim:
        check, labels, files, siblings, items_root, header_hash = enc.fields(value, "leaf_claim", 6)
        file_list = enc.as_list(files, "leaf_claim.files", max_len=MAX_LEAF_FILES)
        sibling_list = enc.as_list(siblings, "leaf_claim.siblings", max_len=MAX_PROOF_DEPTH)
        return cls(
            check=enc.as_bytes(check, "leaf_claim.check", max_size=HASH_SIZE),
            labels=_hash(labels, "leaf_claim.labels"),
            files=tuple(_hash(f, "leaf_claim.files[]") for f in file_list),
            siblings=tuple(_hash(s, "leaf_claim.siblings[]") for s in sibling_list),
            items_root=_hash(items_root, "leaf_claim.items_root"),
            header_hash=_hash(header_hash, "leaf_claim.header_hash"),
        )


@dataclass(frozen=True, slots=True)
class Challenge:
    """A challenge of item ``index`` of a committed shard, with the challenger's bond.

    With a ``claim`` it is a fraud proof: the worker's own leaf (which must sit under its root)
    against what validators re-compute. Without one it is a query: the worker must answer with
    `Respond` within the genesis `response_blocks`, or lose the stake (withholding)."""

    KIND: ClassVar[int] = 8
    job_id: bytes
    shard: int
    index: int
    claim: LeafClaim | None

    def to_list(self) -> list[Any]:
        return [self.job_id, self.shard, self.index, self.claim.to_list() if self.claim else []]

    @classmethod
    def from_list(cls, value: Any) -> Challenge:
        job_id, shard, index, claim = enc.fields(value, "challenge", 4)
        return cls(
            _hash(job_id, "challenge.job_id"),
            enc.as_int(shard, "challenge.shard", 0, MAX_WIRE_SHARDS - 1),
            enc.as_int(index, "challenge.index", 0, 2**32 - 1),
            LeafClaim.from_list(claim) if claim != [] else None,
        )


@dataclass(frozen=True, slots=True)
class Respond:
    """The queried worker's answer: the leaf of the queried item and its path to the root."""

    KIND: ClassVar[int] = 9
    job_id: bytes
    shard: int
    claim: LeafClaim

    def to_list(self) -> list[Any]:
        return [self.job_id, self.shard, self.claim.to_list()]

    @classmethod
    def from_list(cls, value: Any) -> Respond:
        job_id, shard, claim = enc.fields(value, "respond", 3)
        return cls(
            _hash(job_id, "respond.job_id"),
            enc.as_int(shard, "respond.shard", 0, MAX_WIRE_SHARDS - 1),
            LeafClaim.from_list(claim),
        )


@dataclass(frozen=True, slots=True)
class Accept:
    """The client releases payment early for every committed, unchallenged shard."""

    KIND: ClassVar[int] = 10
    job_id: bytes

    def to_list(self) -> list[Any]:
        return [self.job_id]

    @classmethod
    def from_list(cls, value: Any) -> Accept:
        (job_id,) = enc.fields(value, "accept", 1)
        return cls(_hash(job_id, "accept.job_id"))


@dataclass(frozen=True, slots=True)
class Settle:
    """Anyone's: pay shards past their challenge window, slash no-shows and unanswered queries,
    refund shards that can no longer be done, and close the job when every shard is final."""

    KIND: ClassVar[int] = 11
    job_id: bytes

    def to_list(self) -> list[Any]:
        return [self.job_id]

    @classmethod
    def from_list(cls, value: Any) -> Settle:
        (job_id,) = enc.fields(value, "settle", 1)
        return cls(_hash(job_id, "settle.job_id"))


@dataclass(frozen=True, slots=True)
class Vote:
    """A committee member's verdict on a disputed training result: ``fraud`` or honest.

    Only a staker the dispute's beacon drew may vote (`chain.market_rules.committee_draw`); it
    replays the disputed work off chain (`worker.verify`) and judges it by the calibrated
    tolerance, and a result it cannot fetch from the worker counts as fraud."""

    KIND: ClassVar[int] = 12
    job_id: bytes
    shard: int
    fraud: bool

    def to_list(self) -> list[Any]:
        return [self.job_id, self.shard, self.fraud]

    @classmethod
    def from_list(cls, value: Any) -> Vote:
        job_id, shard, fraud = enc.fields(value, "vote", 3)
        if type(fraud) is not bool:
            raise DecodeError("bad-encoding", "vote.fraud must be true or false", got=repr(fraud))
        return cls(_hash(job_id, "vote.job_id"), enc.as_int(shard, "vote.shard", 0, MAX_WIRE_SHARDS - 1), fraud)


MARKET_PAYLOADS: tuple[type, ...] = (
    Stake, Unstake, Release, JobPost, JobAward, ResultCommit, Challenge, Respond, Accept, Settle, Vote,
)
JOB_PAYLOADS = (JobAward, ResultCommit, Challenge, Respond, Accept, Settle, Vote)  # name an existing job
