"""The market's records as RPC JSON (docs/rpc.md): jobs and shards, stake, events, tx payloads.

One place shapes them, for `neurod.rpc_methods`: amounts are integers in base units with an
`*_ntk` decimal-string twin, hashes lowercase hex, accounts bech32m addresses (null for none),
enums by lowercase name. Transaction payloads reuse the wallet's readable form
(`wallet.payload_json`), so `neuro tx show` and `chain_tx` say the same thing.
"""

from __future__ import annotations

from typing import Any

from chain.amounts import format_ntk
from chain.crypto import encode_address
from chain.job_spec import QUOTE_UNITS, JobTerms
from chain.jobs import Event, Job, JobStatus, Shard, ShardStatus
from chain.market_types import Service, Stake, Unstake
from chain.params import MarketParams
from chain.state import Account
from chain.treasury_types import BuybackSell, Redeem
from chain.types import Payload, Transfer
from wallet.payload_json import kind_name, payload_to_json, service_name, spec_json

QUOTE_UNIT_NAMES = {Service.GENERATE: "megapixel", Service.TRAIN: "gflop", Service.LABEL: "gflop",
                    Service.EVALUATE: "gflop"}
JOB_STATUS_NAMES = {s.name.lower(): s for s in JobStatus}


def amount(name: str, units: int) -> dict[str, Any]:
    """``{name: units, name_ntk: "decimal"}``."""
    return {name: units, f"{name}_ntk": format_ntk(units)}


def address_or_none(account_id: bytes, hrp: str) -> str | None:
    return encode_address(account_id, hrp) if account_id else None


def terms_of(job: Job) -> JobTerms | None:
    try:
        return JobTerms(Service(job.service), job.items, job.units, job.seed)
    except ValueError:
        return None


def shard_json(job: Job, index: int, shard: Shard, hrp: str) -> dict[str, Any]:
    terms = terms_of(job)
    n = len(job.shards)
    start, stop = terms.shard_range(index, n) if terms else (0, 0)
    disputed = shard.status is ShardStatus.DISPUTED
    return {
        "index": index, "status": shard.status.name.lower(), "final": shard.status.final,
        "worker": address_or_none(shard.worker, hrp), "bid_id": shard.bid_id.hex() or None,
        "start": start, "stop": stop, "units": terms.shard_units(index, n) if terms else 0,
        **amount("price", shard.price), **amount("payment", shard.payment), **amount("stake", shard.stake),
        "deadline": shard.deadline or None, "root": shard.root.hex() or None, "items": shard.items,
        "committed_at": shard.committed_at or None, "challenge_end": shard.challenge_end or None,
        "query": {
            "index": shard.query_index, "deadline": shard.query_deadline,
            "challenger": address_or_none(shard.challenger, hrp), **amount("bond", shard.bond),
        } if shard.status is ShardStatus.QUERIED else None,
        "dispute": {
            "segment": shard.query_index, "votes_until": shard.query_deadline,
            "challenger": address_or_none(shard.challenger, hrp), **amount("bond", shard.bond),
            "voters": [address_or_none(v, hrp) for v in shard.voters], "fraud_votes": shard.fraud_votes,
            "honest_votes": len(shard.voters) - shard.fraud_votes,
        } if disputed else None,
    }


def _shard_counts(job: Job) -> dict[str, int]:
    counts = {status.name.lower(): 0 for status in ShardStatus}
    for shard in job.shards:
        counts[shard.status.name.lower()] += 1
    return counts


def _service_json(job: Job) -> dict[str, Any]:
    known = job.service in Service._value2member_map_
    return {
        "service": service_name(job.service),
        "quote_units": QUOTE_UNITS[Service(job.service)] if known else None,
        "quote_unit": QUOTE_UNIT_NAMES[Service(job.service)] if known else None,
    }


def job_summary(job_id: bytes, job: Job, hrp: str, height: int) -> dict[str, Any]:
    """A job's row in `job_list`: its terms and shard counts, no spec or shard details."""
    return {
        "job": job_id.hex(), "client": encode_address(job.client, hrp), **_service_json(job),
        "status": job.status.name.lower(), "items": job.items, "units": job.units,
        **amount("max_price", job.max_price), **amount("escrow", job.escrow), "shard_count": len(job.shards),
        "shard_status": _shard_counts(job), "posted": job.posted, "bid_end": job.bid_end,
        "deadline": job.deadline, "bidding": job.status is JobStatus.OPEN and height < job.bid_end,
    }


def job_json(job_id: bytes, job: Job, spec: bytes | None, hrp: str, height: int) -> dict[str, Any]:
    """A job in full (`job_get`): terms, spec, escrow, and every shard.

    ``bidding`` says whether an award in the next block (``height + 1``) is still in the bid
    window; ``max_price`` (and a shard's ``price``) is base units per ``quote_unit`` (a megapixel,
    a GFLOP), which is ``quote_units`` compute units."""
    return {
        **job_summary(job_id, job, hrp, height),
        "spec": spec_json(spec) if spec is not None else None, "spec_hash": job.spec_hash.hex(),
        "seed": job.seed, "challenge_blocks": job.challenge_blocks, "height": height,
        "shards": [shard_json(job, i, s, hrp) for i, s in enumerate(job.shards)],
    }


def stake_json(address: str, account: Account | None, params: MarketParams, height: int) -> dict[str, Any]:
    """An account's stake: bonded (of which locked backs awarded shards; the rest is free),
    unbonding until ``release_height``, and whether its bids count (bonded >= min_stake)."""
    acc = account or Account()
    return {
        "address": address, **amount("balance", acc.balance), **amount("bonded", acc.bonded),
        **amount("locked", acc.locked), **amount("free", acc.free_stake), **amount("unbonding", acc.unbonding),
        "release_height": acc.release_height or None,
        "releasable": acc.unbonding > 0 and height + 1 >= acc.release_height,
        **amount("min_stake", params.min_stake), "meets_min_stake": acc.bonded >= params.min_stake,
        "height": height,
    }


def account_stake_fields(account: Account | None) -> dict[str, Any]:
    """The stake fields `account_get` adds to balance and nonce."""
    acc = account or Account()
    return {**amount("bonded", acc.bonded), **amount("locked", acc.locked), **amount("unbonding", acc.unbonding),
            "release_height": acc.release_height or None}


def event_json(height: int, event: Event, hrp: str) -> dict[str, Any]:
    return {
        "height": height, "kind": event.kind, "account": address_or_none(event.account, hrp),
        **amount("amount", event.amount), "job": event.job_id.hex() or None,
        "shard": None if event.shard < 0 else event.shard, "note": event.note,
    }


def payload_json(payload: Payload, hrp: str) -> dict[str, Any]:
    """A tx object's kind and payload fields; amounts as integers with their `*_ntk` twin."""
    fields = {"kind": kind_name(payload), **payload_to_json(payload, hrp)}
    if isinstance(payload, (Transfer, Stake, Unstake, BuybackSell)):
        fields.update(amount("amount", payload.amount))
    elif isinstance(payload, Redeem):
        fields.update(amount("amount", payload.voucher.amount))
    return fields


def job_status_param(value: str) -> JobStatus | None:
    return JOB_STATUS_NAMES.get(value)
