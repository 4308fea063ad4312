"""The market's state records: round trips, and every field's type and bounds checked on decode."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest

from chain.encoding import pack
from chain.errors import DecodeError, RejectKind
from chain.jobs import (
    MAX_JOB_BYTES,
    MAX_VOTERS,
    Event,
    Job,
    JobStatus,
    Shard,
    ShardStatus,
    Totals,
    job_key,
)
from chain.market_rules import spec_hash
from chain.params import MAX_SUPPLY_UNITS

VOTERS = (bytes([1]) * 20, bytes([2]) * 20)
SHARD = Shard(ShardStatus.DISPUTED, bytes([3]) * 20, 7, 8, 9, bytes([4]) * 32, 10, bytes([5]) * 32, 11, 12,
              13, 14, bytes([6]) * 20, 15, 16, VOTERS, 2)
JOB = Job(bytes([7]) * 20, 1, bytes([8]) * 32, 8, 2**70, 3, 4, 5, 6, 7, 3, 100, JobStatus.OPEN,
          (SHARD, Shard()))
TOTALS = Totals(MAX_SUPPLY_UNITS, MAX_SUPPLY_UNITS, MAX_SUPPLY_UNITS)

SHARD_FIELDS = ("status", "worker", "price", "payment", "stake", "bid_id", "deadline", "root", "committed_at",
                "challenge_end", "query_index", "query_deadline", "challenger", "bond", "items", "voters",
                "fraud_votes")
JOB_FIELDS = ("client", "service", "spec_hash", "items", "units", "seed", "max_price", "posted", "bid_end",
              "deadline", "challenge_blocks", "escrow", "status", "shards")


def shard_with(**changes: Any) -> list[Any]:
    fields = SHARD.to_list()
    for name, value in changes.items():
        fields[SHARD_FIELDS.index(name)] = value
    return fields


def job_with(**changes: Any) -> bytes:
    fields = JOB.to_list()
    for name, value in changes.items():
        fields[JOB_FIELDS.index(name)] = value
    return pack(fields)


def refusal(decode: Any, value: Any) -> DecodeError:
    with pytest.raises(DecodeError) as info:
        decode(value)
    assert info.value.kind is RejectKind.MALFORMED
    return info.value


def test_records_round_trip() -> None:
    assert Job.decode(JOB.encode()) == JOB
    assert Shard.from_list(SHARD.to_list()) == SHARD
    assert Totals.decode(TOTALS.encode()) == TOTALS
    event = Event("slash", bytes(20), 5, bytes(32), 1, "fraud")
    assert Event.decode(event.encode()) == event


@pytest.mark.parametrize("name", SHARD_FIELDS)
def test_each_shard_field_of_the_wrong_type_is_named(name: str) -> None:
    error = refusal(Shard.from_list, shard_with(**{name: "x"}))
    assert error.reason == "bad-encoding"
    assert f"shard.{name}: expected" in error.detail
    assert error.detail.endswith(", got str")


@pytest.mark.parametrize("name", JOB_FIELDS)
def test_each_job_field_of_the_wrong_type_is_named(name: str) -> None:
    error = refusal(Job.decode, job_with(**{name: "x"}))
    assert error.reason == "bad-encoding"
    assert f"job.{name}: expected" in error.detail
    assert error.detail.endswith(", got str")


@pytest.mark.parametrize("index", range(3))
def test_each_totals_field_above_the_supply_is_named(index: int) -> None:
    fields = [0, 0, 0]
    fields[index] = MAX_SUPPLY_UNITS + 1
    error = refusal(Totals.decode, pack(fields))
    assert f"totals.{('issued', 'burned', 'staked')[index]}: out of range" in error.detail


@pytest.mark.parametrize(
    ("changes", "reason", "detail"),
    [
        pytest.param({"status": 7}, "bad-encoding", "shard.status: out of range", id="status-7"),
        pytest.param({"worker": bytes(21)}, "oversized", "shard.worker", id="worker-21"),
        pytest.param({"bid_id": bytes(33)}, "oversized", "shard.bid_id", id="bid-id-33"),
        pytest.param({"root": bytes(33)}, "oversized", "shard.root", id="root-33"),
        pytest.param({"challenger": bytes(21)}, "oversized", "shard.challenger", id="challenger-21"),
        pytest.param({"voters": [bytes(20)] * (MAX_VOTERS + 1), "fraud_votes": 0}, "oversized", "shard.voters",
                     id="voters-257"),
        pytest.param({"voters": [bytes(19)]}, "bad-encoding", "shard.voters[]: wrong length", id="voter-19"),
        pytest.param({"voters": [bytes(21)]}, "bad-encoding", "shard.voters[]: wrong length", id="voter-21"),
        pytest.param({"fraud_votes": len(VOTERS) + 1}, "bad-encoding", "shard.fraud_votes: out of range",
                     id="more-fraud-votes-than-voters"),
        pytest.param({"fraud_votes": -1}, "bad-encoding", "shard.fraud_votes: out of range", id="fraud-votes--1"),
    ],
)
def test_shard_bounds(changes: dict[str, Any], reason: str, detail: str) -> None:
    error = refusal(Shard.from_list, shard_with(**changes))
    assert (error.reason, detail in error.detail) == (reason, True)


def test_shard_values_at_their_bounds_decode() -> None:
    edges = shard_with(status=int(ShardStatus.DISPUTED), worker=bytes(20), bid_id=bytes(32), root=bytes(32),
                       challenger=bytes(20), voters=[bytes(20)] * MAX_VOTERS, fraud_votes=MAX_VOTERS)
    assert Shard.from_list(edges).to_list() == edges
    empty = Shard().to_list()
    assert Shard.from_list(empty) == Shard()  # status 0, no worker, no voters


@pytest.mark.parametrize(
    ("changes", "reason", "detail"),
    [
        pytest.param({"client": bytes(19)}, "bad-encoding", "job.client: wrong length", id="client-19"),
        pytest.param({"client": bytes(21)}, "bad-encoding", "job.client: wrong length", id="client-21"),
        pytest.param({"service": 0}, "bad-encoding", "job.service: out of range", id="service-0"),
        pytest.param({"service": 256}, "bad-encoding", "job.service: out of range", id="service-256"),
        pytest.param({"spec_hash": bytes(31)}, "bad-encoding", "job.spec_hash: wrong length", id="spec-hash-31"),
        pytest.param({"units": bytes(15)}, "bad-encoding", "job.units: wrong length", id="units-15"),
        pytest.param({"units": bytes(17)}, "bad-encoding", "job.units: wrong length", id="units-17"),
        pytest.param({"escrow": MAX_SUPPLY_UNITS + 1}, "bad-encoding", "job.escrow: out of range", id="escrow"),
        pytest.param({"status": 2}, "bad-encoding", "job.status: out of range", id="status-2"),
        pytest.param({"shards": [Shard().to_list()] * 4097}, "oversized", "job.shards: too many", id="shards-4097"),
        pytest.param({"shards": [shard_with(status=7)]}, "bad-encoding", "shard.status", id="bad-shard"),
    ],
)
def test_job_bounds(changes: dict[str, Any], reason: str, detail: str) -> None:
    error = refusal(Job.decode, job_with(**changes))
    assert (error.reason, detail in error.detail) == (reason, True)


@pytest.mark.parametrize(
    "changes",
    [
        {"service": 1}, {"service": 255}, {"escrow": MAX_SUPPLY_UNITS}, {"status": int(JobStatus.CLOSED)},
        {"units": (2**128 - 1).to_bytes(16, "big")}, {"shards": [Shard().to_list()] * 4096},
    ],
    ids=["service-1", "service-255", "escrow-max", "closed", "units-max", "shards-4096"],
)
def test_job_values_at_their_bounds_decode(changes: dict[str, Any]) -> None:
    data = job_with(**changes)
    assert Job.decode(data).encode() == data


@pytest.mark.parametrize(
    ("decode", "limit", "what"),
    [(Job.decode, MAX_JOB_BYTES, "job"), (Totals.decode, 48, "totals"), (Event.decode, 256, "event")],
    ids=["job", "totals", "event"],
)
def test_input_over_the_record_size_is_refused_before_unpacking(decode: Any, limit: int, what: str) -> None:
    error = refusal(decode, bytes(limit + 1))
    assert (error.reason, error.detail) == ("oversized", f"{what} of {limit + 1} bytes")


@pytest.mark.parametrize(
    ("decode", "what", "count"),
    [(Job.decode, "job", 14), (Totals.decode, "totals", 3), (Event.decode, "event", 6)],
    ids=["job", "totals", "event"],
)
def test_records_name_themselves_in_their_errors(decode: Any, what: str, count: int) -> None:
    assert refusal(decode, b"\xc1").detail.startswith(f"{what}: ")  # 0xc1: never used by msgpack
    error = refusal(decode, pack([0] * (count - 1)))
    assert (error.detail, error.expected, error.got) == (f"{what}: wrong field count", count, count - 1)


def test_event_json_names_the_shard_or_none() -> None:
    whole = Event("refund", bytes([1]) * 20, 5, bytes([2]) * 32)
    assert whole.to_json() == {"kind": "refund", "account": "01" * 20, "amount": 5, "job": "02" * 32,
                               "shard": None, "note": ""}
    one = Event("slash", b"", 7, bytes([3]) * 32, 0, "fraud")
    assert one.to_json() == {"kind": "slash", "account": "", "amount": 7, "job": "03" * 32, "shard": 0,
                             "note": "fraud"}


def test_only_paid_and_refunded_shards_are_final() -> None:
    assert {s for s in ShardStatus if s.final} == {ShardStatus.PAID, ShardStatus.REFUNDED}


def test_too_many_items_says_how_many() -> None:
    error = refusal(Job.decode, job_with(shards=[Shard().to_list()] * 4097))
    assert (error.reason, error.expected, error.got) == ("oversized", "<= 4096", 4097)
    error = refusal(Shard.from_list, shard_with(voters=[bytes(20)] * (MAX_VOTERS + 1), fraud_votes=0))
    assert (error.detail, error.expected, error.got) == ("shard.voters: too many items", f"<= {MAX_VOTERS}",
                                                         MAX_VOTERS + 1)


def test_a_jobs_state_key_and_its_spec_hash_are_domain_separated_blake2b() -> None:
    """What another implementation must compute to find a job in the state trie and to check a
    job's spec against its record: blake2b-256 personalised "neuro-jobkey" (cut to 20 bytes,
    an account-sized key) and "neuro-spec"."""
    job_id, spec = bytes(range(32)), b'{"task":"render"}'
    assert job_key(job_id) == hashlib.blake2b(job_id, digest_size=32, person=b"neuro-jobkey").digest()[:20]
    assert spec_hash(spec) == hashlib.blake2b(spec, digest_size=32, person=b"neuro-spec").digest()


def test_a_shard_or_job_of_the_wrong_field_count_says_which_record() -> None:
    assert str(refusal(Shard.from_list, SHARD.to_list()[:16])) == (
        "bad-encoding: shard: wrong field count (expected 17, got 16)")
    assert str(refusal(Shard.from_list, {})) == "bad-encoding: shard: expected a list, got dict"
