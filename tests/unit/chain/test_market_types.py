"""Every field check of the market's payloads and the signed bid (`chain.market_types`): each
limit accepted exactly and refused one past it, with the error's whole text.

A market payload that does not decode is the sending peer's fault whatever the field (MALFORMED,
checked by `refusal_text`), and its text is what the peer and an RPC client are shown, so both
are pinned, as `test_listing_types` does for listings. The rules these payloads drive are in
`test_market`; a fraud proof's leaf (`LeafClaim`) is the part a challenger writes by hand, so its
bounds are pinned field by field.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from chain import encoding as enc
from chain.crypto import public_key_of
from chain.market_types import (
    MARKET_PAYLOADS,
    MAX_AMOUNT,
    MAX_LEAF_FILES,
    MAX_PROOF_DEPTH,
    MAX_WIRE_SHARDS,
    Accept,
    AwardEntry,
    Bid,
    Challenge,
    JobAward,
    JobPost,
    LeafClaim,
    Release,
    Respond,
    ResultCommit,
    Settle,
    Stake,
    Unstake,
    Vote,
)
from tests.unit.chain.marketplace_checks import out_of_range, refusal_text, swap, wrong_length

SEED = bytes([8]) * 32
H = bytes([1]) * 32  # any 32-byte hash
CLAIM = [bytes([2]) * 32, bytes([3]) * 32, [bytes([4]) * 32], [bytes([5]) * 32], bytes([6]) * 32, bytes([7]) * 32]
BID = Bid(bytes([9]) * 32, H, public_key_of(SEED), 500, 2, 40).signed(SEED)
U32 = 2**32 - 1


def field_count(what: str, expected: int, got: int) -> str:
    return f"bad-encoding: {what}: wrong field count (expected {expected}, got {got})"


def too_many(field: str, limit: int) -> str:
    return f"oversized: {field}: too many items (expected '<= {limit}', got {limit + 1})"


def not_a(field: str, expected: str, got: str) -> str:
    return f"bad-encoding: {field}: expected {expected}, got {got}"


# one of each payload, every field set away from its default
PAYLOADS: list[Any] = [
    Stake(7), Unstake(MAX_AMOUNT), Release(),
    JobPost(2, b'{"task":"train"}', MAX_WIRE_SHARDS, 9, 1, U32, 3),
    JobAward(H, (AwardEntry(BID, (0, 5)),)),
    ResultCommit(H, MAX_WIRE_SHARDS - 1, bytes([2]) * 32, U32),
    Challenge(H, 3, U32, LeafClaim.from_list(CLAIM)), Challenge(H, 0, 0, None),
    Respond(H, MAX_WIRE_SHARDS - 1, LeafClaim.from_list(CLAIM)),
    Accept(H), Settle(H), Vote(H, 4, True), Vote(H, 0, False),
]


@pytest.mark.parametrize("payload", PAYLOADS, ids=lambda p: type(p).__name__)
def test_payloads_decode_to_what_was_encoded(payload: Any) -> None:
    decoded = type(payload).from_list(enc.unpack(enc.pack(payload.to_list()), what="payload", max_size=1 << 16))
    assert decoded == payload and type(decoded) is type(payload)


def test_every_market_payload_kind_is_covered() -> None:
    assert {type(p) for p in PAYLOADS} == set(MARKET_PAYLOADS)


def test_a_bid_decodes_from_its_gossiped_bytes() -> None:
    data = BID.encode()
    assert Bid.decode(data) == BID and Bid.decode(data).bid_id == BID.bid_id
    assert len(data) < 256
    assert refusal_text(Bid.decode, data + b"\x00") == "bad-encoding: bid: trailing bytes"
    assert refusal_text(Bid.decode, enc.pack([*BID.to_list()[:6], bytes(64 + 80)])) == wrong_length(
        "bid.signature", 64, 144)
    # a gossiped bid is read only up to 256 bytes, whatever it holds
    at_limit = enc.pack([*BID.to_list()[:6], bytes(64 + 256 - len(data))])
    assert len(at_limit) == 256  # read, then refused for its field
    assert refusal_text(Bid.decode, at_limit) == wrong_length("bid.signature", 64, 64 + 256 - len(data))
    past = enc.pack([*BID.to_list()[:6], bytes(64 + 257 - len(data))])
    assert refusal_text(Bid.decode, past) == "oversized: bid of 257 bytes (expected '<= 256', got 257)"


BID_FIELDS = BID.to_list()
POST = [1, b"{}", 3, 9, 1, 2, 3]
ENTRY = [BID_FIELDS, [0]]
LEAF_AT_LIMITS = [bytes(32), H, [H] * MAX_LEAF_FILES, [H] * MAX_PROOF_DEPTH, H, H]


def test_limits_are_accepted_exactly() -> None:
    assert LeafClaim.from_list(swap(CLAIM, 0, b"")).check == b""  # a check may be shorter than a hash
    claim = LeafClaim.from_list(LEAF_AT_LIMITS)
    assert (len(claim.files), len(claim.siblings)) == (MAX_LEAF_FILES, MAX_PROOF_DEPTH)
    assert LeafClaim.from_list(swap(swap(CLAIM, 2, []), 3, [])).files == ()
    assert Respond.from_list([H, 0, CLAIM]).shard == 0
    assert Bid.from_list(swap(swap(BID_FIELDS, 4, MAX_WIRE_SHARDS), 5, MAX_AMOUNT)).max_shards == MAX_WIRE_SHARDS
    assert Bid.from_list(swap(swap(BID_FIELDS, 3, 1), 5, 0)).unit_price == 1


# (decode, value, the error's text)
REFUSED: list[tuple[Callable[[Any], Any], Any, str]] = [
    # Release: no fields at all
    (Release.from_list, [0], field_count("release", 0, 1)),
    (Release.from_list, {}, "bad-encoding: release: expected a list, got dict"),
    # the job's own payloads: field count, then each field
    (Stake.from_list, [], field_count("stake", 1, 0)),
    (Stake.from_list, [0], out_of_range("stake.amount", 0, 1, MAX_AMOUNT)),
    (Unstake.from_list, [MAX_AMOUNT + 1], out_of_range("unstake.amount", MAX_AMOUNT + 1, 1, MAX_AMOUNT)),
    (Unstake.from_list, [1, 2], field_count("unstake", 1, 2)),
    (JobPost.from_list, POST[:6], field_count("job_post", 7, 6)),
    (JobPost.from_list, swap(POST, 0, 0), out_of_range("job_post.service", 0, 1, 255)),
    (JobPost.from_list, swap(POST, 0, 5), "bad-service: unknown service 5"),
    (JobPost.from_list, swap(POST, 1, bytes(8193)),
     "oversized: job_post.spec: too long (expected '<= 8192', got 8193)"),
    (JobPost.from_list, swap(POST, 2, 0), out_of_range("job_post.shards", 0, 1, MAX_WIRE_SHARDS)),
    (JobPost.from_list, swap(POST, 2, MAX_WIRE_SHARDS + 1),
     out_of_range("job_post.shards", MAX_WIRE_SHARDS + 1, 1, MAX_WIRE_SHARDS)),
    (JobPost.from_list, swap(POST, 3, 0), out_of_range("job_post.max_price", 0, 1, MAX_AMOUNT)),
    (JobPost.from_list, swap(POST, 4, 0), out_of_range("job_post.bid_blocks", 0, 1, U32)),
    (JobPost.from_list, swap(POST, 5, U32 + 1), out_of_range("job_post.deadline_blocks", U32 + 1, 1, U32)),
    (JobPost.from_list, swap(POST, 6, 0), out_of_range("job_post.challenge_blocks", 0, 1, U32)),
    (JobAward.from_list, [H], field_count("job_award", 2, 1)),
    (JobAward.from_list, [H, []], "bad-award: an award carries at least one bid"),
    (JobAward.from_list, [H, [ENTRY] * 257], too_many("job_award.entries", 256)),
    (JobAward.from_list, [bytes(31), [ENTRY]], wrong_length("job_award.job_id", 32, 31)),
    (AwardEntry.from_list, [BID_FIELDS], field_count("award_entry", 2, 1)),
    (AwardEntry.from_list, [BID_FIELDS, []], "bad-award: an entry's shards must be non-empty and strictly ascending"),
    (AwardEntry.from_list, [BID_FIELDS, [2, 2]],
     "bad-award: an entry's shards must be non-empty and strictly ascending"),
    (AwardEntry.from_list, [BID_FIELDS, [3, 1]],
     "bad-award: an entry's shards must be non-empty and strictly ascending"),
    (AwardEntry.from_list, [BID_FIELDS, [MAX_WIRE_SHARDS]],
     out_of_range("award_entry.shards[]", MAX_WIRE_SHARDS, 0, MAX_WIRE_SHARDS - 1)),
    (AwardEntry.from_list, [BID_FIELDS, list(range(MAX_WIRE_SHARDS + 1))],
     too_many("award_entry.shards", MAX_WIRE_SHARDS)),
    (ResultCommit.from_list, [H, 0, H], field_count("result_commit", 4, 3)),
    (ResultCommit.from_list, [bytes(1), 0, H, 1], wrong_length("result_commit.job_id", 32, 1)),
    (ResultCommit.from_list, [H, MAX_WIRE_SHARDS, H, 1],
     out_of_range("result_commit.shard", MAX_WIRE_SHARDS, 0, MAX_WIRE_SHARDS - 1)),
    (ResultCommit.from_list, [H, 0, bytes(33), 1], wrong_length("result_commit.root", 32, 33)),
    (ResultCommit.from_list, [H, 0, H, 0], out_of_range("result_commit.items", 0, 1, U32)),
    (Challenge.from_list, [H, 0, 0], field_count("challenge", 4, 3)),
    (Challenge.from_list, [bytes(0), 0, 0, []], wrong_length("challenge.job_id", 32, 0)),
    (Challenge.from_list, [H, MAX_WIRE_SHARDS, 0, []],
     out_of_range("challenge.shard", MAX_WIRE_SHARDS, 0, MAX_WIRE_SHARDS - 1)),
    (Challenge.from_list, [H, 0, U32 + 1, []], out_of_range("challenge.index", U32 + 1, 0, U32)),
    (Challenge.from_list, [H, 0, 0, [H]], field_count("leaf_claim", 6, 1)),
    (Accept.from_list, [H, H], field_count("accept", 1, 2)),
    (Accept.from_list, [bytes(33)], wrong_length("accept.job_id", 32, 33)),
    (Settle.from_list, [], field_count("settle", 1, 0)),
    (Settle.from_list, [bytes(31)], wrong_length("settle.job_id", 32, 31)),
    (Vote.from_list, [H, 0], field_count("vote", 3, 2)),
    (Vote.from_list, [H, 0, 1], "bad-encoding: vote.fraud must be true or false (got '1')"),
    (Vote.from_list, [bytes(31), 0, True], wrong_length("vote.job_id", 32, 31)),
    (Vote.from_list, [H, MAX_WIRE_SHARDS, False],
     out_of_range("vote.shard", MAX_WIRE_SHARDS, 0, MAX_WIRE_SHARDS - 1)),
    # Respond
    (Respond.from_list, [H, 0], field_count("respond", 3, 2)),
    (Respond.from_list, [H[:31], 0, CLAIM], wrong_length("respond.job_id", 32, 31)),
    (Respond.from_list, [H, MAX_WIRE_SHARDS, CLAIM], out_of_range("respond.shard", MAX_WIRE_SHARDS, 0,
                                                                 MAX_WIRE_SHARDS - 1)),
    (Respond.from_list, [H, -1, CLAIM], out_of_range("respond.shard", -1, 0, MAX_WIRE_SHARDS - 1)),
    (Respond.from_list, [H, True, CLAIM], not_a("respond.shard", "int", "bool")),
    (Respond.from_list, [H, 0, []], field_count("leaf_claim", 6, 0)),
    # LeafClaim: every field, and one past each limit
    (LeafClaim.from_list, CLAIM[:5], field_count("leaf_claim", 6, 5)),
    (LeafClaim.from_list, b"claim", "bad-encoding: leaf_claim: expected a list, got bytes"),
    (LeafClaim.from_list, swap(CLAIM, 0, bytes(33)),
     "oversized: leaf_claim.check: too long (expected '<= 32', got 33)"),
    (LeafClaim.from_list, swap(CLAIM, 0, "check"), not_a("leaf_claim.check", "bytes", "str")),
    (LeafClaim.from_list, swap(CLAIM, 1, bytes(31)), wrong_length("leaf_claim.labels", 32, 31)),
    (LeafClaim.from_list, swap(CLAIM, 2, [H] * (MAX_LEAF_FILES + 1)), too_many("leaf_claim.files", MAX_LEAF_FILES)),
    (LeafClaim.from_list, swap(CLAIM, 2, H), not_a("leaf_claim.files", "a list", "bytes")),
    (LeafClaim.from_list, swap(CLAIM, 2, [H, bytes(33)]), wrong_length("leaf_claim.files[]", 32, 33)),
    (LeafClaim.from_list, swap(CLAIM, 3, [H] * (MAX_PROOF_DEPTH + 1)),
     too_many("leaf_claim.siblings", MAX_PROOF_DEPTH)),
    (LeafClaim.from_list, swap(CLAIM, 3, 0), not_a("leaf_claim.siblings", "a list", "int")),
    (LeafClaim.from_list, swap(CLAIM, 3, [bytes(16)]), wrong_length("leaf_claim.siblings[]", 32, 16)),
    (LeafClaim.from_list, swap(CLAIM, 4, b""), wrong_length("leaf_claim.items_root", 32, 0)),
    (LeafClaim.from_list, swap(CLAIM, 5, bytes(64)), wrong_length("leaf_claim.header_hash", 32, 64)),
    # Bid
    (Bid.from_list, BID_FIELDS[:6], field_count("bid", 7, 6)),
    (Bid.from_list, swap(BID_FIELDS, 0, bytes(20)), wrong_length("bid.chain_id", 32, 20)),
    (Bid.from_list, swap(BID_FIELDS, 1, bytes(33)), wrong_length("bid.job_id", 32, 33)),
    (Bid.from_list, swap(BID_FIELDS, 2, bytes(20)), wrong_length("bid.worker", 32, 20)),
    (Bid.from_list, swap(BID_FIELDS, 3, 0), out_of_range("bid.unit_price", 0, 1, MAX_AMOUNT)),
    (Bid.from_list, swap(BID_FIELDS, 4, 0), out_of_range("bid.max_shards", 0, 1, MAX_WIRE_SHARDS)),
    (Bid.from_list, swap(BID_FIELDS, 4, MAX_WIRE_SHARDS + 1),
     out_of_range("bid.max_shards", MAX_WIRE_SHARDS + 1, 1, MAX_WIRE_SHARDS)),
    (Bid.from_list, swap(BID_FIELDS, 5, -1), out_of_range("bid.expiry", -1, 0, MAX_AMOUNT)),
    (Bid.from_list, swap(BID_FIELDS, 6, bytes(63)), wrong_length("bid.signature", 64, 63)),
]


@pytest.mark.parametrize(("decode", "value", "text"), REFUSED)
def test_refused_with_its_exact_error(decode: Callable[[Any], Any], value: Any, text: str) -> None:
    assert refusal_text(decode, value) == text
