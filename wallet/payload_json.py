"""Transaction payloads as JSON a person can read and check, and back: every kind, market included.

One format serves the unsigned and signed transaction files (`wallet.txfile`), the signed bid
file a worker hands a client (`bid_to_json`), and neurod's tx objects (which add base-unit
integers next to the NTK amounts). Kinds are named in kebab-case (`KIND_NAMES`); hashes, keys
and signatures are lowercase hex; addresses are bech32m; a job spec is the JSON object itself,
re-encoded canonically (sorted keys, no spaces, ASCII) when read back.

Fields derived from others (a bid's ``bid_id`` and worker ``address``, a post's ``spec_hash``)
are written for people and, when present in a file read back, must match what they derive
from: they are never trusted. Every payload read back is also run through the chain's own strict
decoder (`from_list`), so a file cannot carry what a block would refuse to decode.
"""

from __future__ import annotations

import json
from typing import Any

from chain.amounts import AmountError, format_ntk, parse_ntk
from chain.crypto import encode_address, verify
from chain.errors import ChainError
from chain.hashing import hash256
from chain.listing_types import LISTING_PAYLOADS, Delist, Listing, Purchase
from chain.market_types import (
    MAX_AMOUNT,
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
    Service,
    Settle,
    Stake,
    Unstake,
    Vote,
)
from chain.treasury_types import TREASURY_PAYLOADS, BuybackOffer, BuybackSell, Redeem
from chain.types import Payload, Transfer
from wallet import listing_json, treasury_json
from wallet.keys import WalletError
from wallet.keystore import check_address

KIND_NAMES: dict[type, str] = {
    Transfer: "transfer", Stake: "stake", Unstake: "unstake", Release: "release", JobPost: "job-post",
    JobAward: "job-award", ResultCommit: "result-commit", Challenge: "challenge", Respond: "respond",
    Accept: "accept", Settle: "settle", Vote: "vote",
    Redeem: "redeem", BuybackOffer: "buyback-offer", BuybackSell: "buyback-sell",
    Listing: "listing", Delist: "delist", Purchase: "purchase",
}
KIND_TYPES: dict[str, type] = {name: kind for kind, name in KIND_NAMES.items()}
SPEC_PERSON = b"neuro-spec"  # chain.market_rules.spec_hash
HASH_HEX = 64


def kind_name(payload: Payload) -> str:
    return KIND_NAMES[type(payload)]


def kind_type(name: str) -> type:
    """The payload class of a kind name (kebab-case; snake_case is accepted too)."""
    kind = KIND_TYPES.get(name.strip().lower().replace("_", "-"))
    if kind is None:
        raise WalletError(
            f"unknown transaction kind {name!r}: choose {', '.join(KIND_TYPES)}", reason="bad-kind"
        )
    return kind


def service_name(service: int) -> str:
    try:
        return Service(service).name.lower()
    except ValueError:
        return str(service)


def service_of(value: Any) -> int:
    """A service by name ("generate") or number."""
    if isinstance(value, str):
        try:
            return int(Service[value.strip().upper()])
        except KeyError:
            pass
    elif type(value) is int and value in Service._value2member_map_:
        return value
    names = ", ".join(s.name.lower() for s in Service)
    raise _bad(f"service must be one of {names}, got {value!r}")


def canonical_json(value: Any) -> bytes:
    """The chain's canonical JSON of a spec: sorted keys, no whitespace, ASCII."""
    try:
        text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise _bad(f"spec is not plain JSON: {exc}") from None
    return text.encode()


def spec_hash(spec: bytes) -> bytes:
    return hash256(spec, person=SPEC_PERSON)


def spec_json(spec: bytes) -> Any:
    """The decoded spec, or None when its bytes are not canonical JSON (never on chain)."""
    try:
        value = json.loads(spec.decode("ascii"))
    except (UnicodeDecodeError, ValueError):
        return None
    try:
        return value if canonical_json(value) == spec else None
    except WalletError:
        return None


# ---- to JSON ---------------------------------------------------------------------------------


def bid_to_json(bid: Bid, hrp: str) -> dict[str, Any]:
    return {
        "chain": bid.chain_id.hex(), "job": bid.job_id.hex(), "worker": bid.worker.hex(),
        "address": encode_address(bid.worker_account, hrp), "unit_price": bid.unit_price,
        "max_shards": bid.max_shards, "expiry": bid.expiry, "signature": bid.signature.hex(),
        "bid_id": bid.bid_id.hex(),
    }


def bid_file_json(bid: Bid, hrp: str) -> dict[str, Any]:
    """A signed bid as the file a worker hands the client (an award entry's "bid" takes it)."""
    return {"type": BID_TYPE, **bid_to_json(bid, hrp)}


def claim_to_json(claim: LeafClaim) -> dict[str, Any]:
    return {
        "check": claim.check.hex(), "labels": claim.labels.hex(), "files": [f.hex() for f in claim.files],
        "siblings": [s.hex() for s in claim.siblings], "items_root": claim.items_root.hex(),
        "header_hash": claim.header_hash.hex(),
    }


def payload_to_json(payload: Payload, hrp: str) -> dict[str, Any]:
    """The payload's fields (not its kind); amounts as NTK decimal strings."""
    if isinstance(payload, Transfer):
        return {"to": encode_address(payload.to, hrp), "amount": format_ntk(payload.amount)}
    if isinstance(payload, (Stake, Unstake)):
        return {"amount": format_ntk(payload.amount)}
    if isinstance(payload, Release):
        return {}
    if isinstance(payload, JobPost):
        spec = spec_json(payload.spec)
        return {
            "service": service_name(payload.service),
            "spec": spec, **({} if spec is not None else {"spec_hex": payload.spec.hex()}),
            "spec_hash": spec_hash(payload.spec).hex(), "shards": payload.shards,
            "max_price": payload.max_price, "bid_blocks": payload.bid_blocks,
            "deadline_blocks": payload.deadline_blocks, "challenge_blocks": payload.challenge_blocks,
        }
    if isinstance(payload, JobAward):
        return {
            "job": payload.job_id.hex(),
            "entries": [{"bid": bid_to_json(e.bid, hrp), "shards": list(e.shards)} for e in payload.entries],
        }
    if isinstance(payload, ResultCommit):
        return {"job": payload.job_id.hex(), "shard": payload.shard, "root": payload.root.hex(),
                "items": payload.items}
    if isinstance(payload, Challenge):
        return {"job": payload.job_id.hex(), "shard": payload.shard, "index": payload.index,
                "claim": claim_to_json(payload.claim) if payload.claim is not None else None}
    if isinstance(payload, Respond):
        return {"job": payload.job_id.hex(), "shard": payload.shard, "claim": claim_to_json(payload.claim)}
    if isinstance(payload, (Accept, Settle)):
        return {"job": payload.job_id.hex()}
    if isinstance(payload, Vote):
        return {"job": payload.job_id.hex(), "shard": payload.shard, "fraud": payload.fraud}
    if isinstance(payload, (Redeem, BuybackOffer, BuybackSell)):
        return treasury_json.treasury_to_json(payload, hrp)
    if isinstance(payload, (Listing, Delist, Purchase)):
        return listing_json.listing_to_json(payload)
    raise WalletError(f"no JSON form for {type(payload).__name__}", reason="bad-kind")


# ---- from JSON -------------------------------------------------------------------------------

# Each kind's fields: those that must be given, and those derived from them (checked if present).
REQUIRED: dict[type, tuple[str, ...]] = {
    Transfer: ("to", "amount"), Stake: ("amount",), Unstake: ("amount",), Release: (),
    JobPost: ("service", "spec", "shards", "max_price", "bid_blocks", "deadline_blocks", "challenge_blocks"),
    JobAward: ("job", "entries"), ResultCommit: ("job", "shard", "root", "items"),
    Challenge: ("job", "shard", "index"), Respond: ("job", "shard", "claim"), Accept: ("job",), Settle: ("job",),
    Vote: ("job", "shard", "fraud"), **treasury_json.REQUIRED, **listing_json.REQUIRED,
}
OPTIONAL: dict[type, tuple[str, ...]] = {JobPost: ("spec_hash",), Challenge: ("claim",), **treasury_json.OPTIONAL,
                                   **listing_json.OPTIONAL}
BID_FIELDS = ("chain", "job", "worker", "unit_price", "max_shards", "expiry", "signature")
BID_DERIVED = ("address", "bid_id")
BID_TYPE = "neuro-signed-bid"  # the "type" of a bid file (`bid_file_json`), allowed in an entry
CLAIM_FIELDS = ("check", "labels", "files", "siblings", "items_root", "header_hash")


def payload_from_json(kind: str | type, doc: Any, hrp: str) -> Payload:
    """The payload of ``kind`` from its fields in ``doc`` (other keys of ``doc`` are the caller's:
    pass only the payload's). Raises WalletError naming the field."""
    payload_type: Any = kind_type(kind) if isinstance(kind, str) else kind
    name = KIND_NAMES[payload_type]
    if not isinstance(doc, dict):
        raise _bad(f"{name}: the payload is a JSON object")
    required, optional = REQUIRED[payload_type], OPTIONAL.get(payload_type, ())
    missing = [k for k in required if k not in doc]
    unknown = sorted(set(doc) - set(required) - set(optional))
    if missing or unknown:
        raise _bad(
            f"{name} takes the fields {', '.join(required + optional) or 'none'}"
            + (f"; missing {', '.join(missing)}" if missing else "")
            + (f"; unknown {', '.join(unknown)}" if unknown else "")
        )
    payload = _build(payload_type, doc, hrp)
    try:  # the chain's own strict decoder: ranges, sizes, ordering
        checked: Payload = payload_type.from_list(payload.to_list())
    except ChainError as exc:
        raise WalletError(f"{name}: {exc.detail or exc.reason}", reason=exc.reason) from None
    if payload_type is JobPost and "spec_hash" in doc:
        assert isinstance(checked, JobPost)
        if doc["spec_hash"] != spec_hash(checked.spec).hex():
            raise _bad("job-post: spec_hash does not match the spec")
    return checked


def _build(payload_type: Any, doc: dict[str, Any], hrp: str) -> Payload:
    if payload_type is Transfer:
        return Transfer(address_param(doc["to"], hrp, "to"), ntk_param(doc["amount"], "amount"))
    if payload_type in (Stake, Unstake):
        result: Payload = payload_type(ntk_param(doc["amount"], "amount"))
        return result
    if payload_type is Release:
        return Release()
    if payload_type is JobPost:
        spec = doc["spec"]
        if not isinstance(spec, dict):
            raise _bad("job-post: spec must be a JSON object (the task document)")
        return JobPost(
            service_of(doc["service"]), canonical_json(spec), int_param(doc["shards"], "shards"),
            int_param(doc["max_price"], "max_price"), int_param(doc["bid_blocks"], "bid_blocks"),
            int_param(doc["deadline_blocks"], "deadline_blocks"),
            int_param(doc["challenge_blocks"], "challenge_blocks"),
        )
    if payload_type is JobAward:
        return JobAward(hex_param(doc["job"], "job", HASH_HEX // 2), award_entries(doc["entries"], hrp))
    if payload_type in TREASURY_PAYLOADS:
        return treasury_json.treasury_from_json(payload_type, doc, hrp)
    if payload_type in LISTING_PAYLOADS:
        return listing_json.listing_from_json(payload_type, doc)
    job = hex_param(doc["job"], "job", HASH_HEX // 2)
    if payload_type is ResultCommit:
        return ResultCommit(job, int_param(doc["shard"], "shard"), hex_param(doc["root"], "root", 32),
                            int_param(doc["items"], "items"))
    if payload_type is Challenge:
        claim = doc.get("claim")
        return Challenge(job, int_param(doc["shard"], "shard"), int_param(doc["index"], "index"),
                         claim_from_json(claim) if claim is not None else None)
    if payload_type is Respond:
        return Respond(job, int_param(doc["shard"], "shard"), claim_from_json(doc["claim"]))
    if payload_type is Accept:
        return Accept(job)
    if payload_type is Vote:
        return Vote(job, int_param(doc["shard"], "shard"), bool_param(doc["fraud"], "fraud"))
    return Settle(job)


def bool_param(value: Any, name: str) -> bool:
    """A JSON boolean, or the words a command line gives ("fraud"/"honest", "true"/"false")."""
    if isinstance(value, bool):
        return value
    words = {"true": True, "fraud": True, "false": False, "honest": False}
    if isinstance(value, str) and value.strip().lower() in words:
        return words[value.strip().lower()]
    raise _bad(f"{name} must be true (fraud) or false (honest), got {value!r}")


def award_entries(value: Any, hrp: str) -> tuple[AwardEntry, ...]:
    """Award entries from ``[{"bid": bid object or hex, "shards": [...]}, ...]``."""
    if not isinstance(value, list) or not value:
        raise _bad("entries must be a non-empty list of {bid, shards}")
    entries = []
    for at, item in enumerate(value):
        if not isinstance(item, dict) or set(item) != {"bid", "shards"}:
            raise _bad(f"entries[{at}] must be an object with bid and shards")
        shards = item["shards"]
        if not isinstance(shards, list) or not all(type(s) is int for s in shards):
            raise _bad(f"entries[{at}].shards must be a list of shard numbers")
        entries.append(AwardEntry(bid_from_json(item["bid"], hrp), tuple(sorted(shards))))
    return tuple(entries)


def bid_from_json(value: Any, hrp: str | None = None) -> Bid:
    """A signed bid from its JSON object (`bid_to_json`) or the hex of its encoding.

    The signature is checked here: a bad one would only fail the award later."""
    if isinstance(value, str):
        try:
            bid = Bid.decode(bytes.fromhex(value.strip().removeprefix("0x")))
        except ValueError:
            raise _bad("a bid in hex must be hex") from None
        except ChainError as exc:
            raise WalletError(f"bid does not decode: {exc.detail or exc.reason}", reason="bad-bid") from None
    else:
        bid = _bid_of_object(value, hrp)
    if not verify(bid.worker, bid.signing_message(), bid.signature):
        raise WalletError(f"bid {bid.bid_id.hex()[:16]}...: bad signature", reason="bad-bid-signature")
    return bid


def _bid_of_object(value: Any, hrp: str | None) -> Bid:
    if not isinstance(value, dict):
        raise _bad("a bid is a JSON object or the hex of its encoding")
    missing = [k for k in BID_FIELDS if k not in value]
    unknown = sorted(set(value) - set(BID_FIELDS) - set(BID_DERIVED) - {"type"})
    if missing or unknown or value.get("type", BID_TYPE) != BID_TYPE:
        raise _bad(f"a bid has the fields {', '.join(BID_FIELDS)} (and derived {', '.join(BID_DERIVED)})")
    try:
        bid = Bid.from_list([
            hex_param(value["chain"], "bid.chain", 32), hex_param(value["job"], "bid.job", 32),
            hex_param(value["worker"], "bid.worker", 32), int_param(value["unit_price"], "bid.unit_price"),
            int_param(value["max_shards"], "bid.max_shards"), int_param(value["expiry"], "bid.expiry"),
            hex_param(value["signature"], "bid.signature", 64),
        ])
    except ChainError as exc:
        raise WalletError(f"bid: {exc.detail or exc.reason}", reason="bad-bid") from None
    if "bid_id" in value and value["bid_id"] != bid.bid_id.hex():
        raise _bad("bid.bid_id does not match the bid")
    if "address" in value and hrp is not None and value["address"] != encode_address(bid.worker_account, hrp):
        raise _bad("bid.address is not the worker key's address")
    return bid


def claim_from_json(value: Any) -> LeafClaim:
    if not isinstance(value, dict) or set(value) != set(CLAIM_FIELDS):
        raise _bad(f"a claim is an object with the fields {', '.join(CLAIM_FIELDS)}")
    files, siblings = value["files"], value["siblings"]
    if not isinstance(files, list) or not isinstance(siblings, list):
        raise _bad("claim.files and claim.siblings are lists of hex hashes")
    claim = LeafClaim(
        hex_param(value["check"], "claim.check"), hex_param(value["labels"], "claim.labels", 32),
        tuple(hex_param(f, "claim.files[]", 32) for f in files),
        tuple(hex_param(s, "claim.siblings[]", 32) for s in siblings),
        hex_param(value["items_root"], "claim.items_root", 32),
        hex_param(value["header_hash"], "claim.header_hash", 32),
    )
    try:
        return LeafClaim.from_list(claim.to_list())
    except ChainError as exc:
        raise WalletError(f"claim: {exc.detail or exc.reason}", reason="bad-claim") from None


# ---- fields ----------------------------------------------------------------------------------


def hex_param(value: Any, name: str, size: int | None = None) -> bytes:
    if not isinstance(value, str):
        raise _bad(f"{name} must be a hex string")
    try:
        raw = bytes.fromhex(value.strip().removeprefix("0x"))
    except ValueError:
        raise _bad(f"{name} is not hex") from None
    if size is not None and len(raw) != size:
        raise _bad(f"{name} must be {size} bytes ({size * 2} hex), got {len(raw)}")
    return raw


def int_param(value: Any, name: str) -> int:
    if type(value) is not int or not 0 <= value <= MAX_AMOUNT:
        raise _bad(f"{name} must be a non-negative integer, got {value!r}")
    return value


def ntk_param(value: Any, name: str) -> int:
    """An amount in NTK ("12.5"), more than 0; base units back."""
    try:
        units = parse_ntk(value)
    except AmountError as exc:
        raise WalletError(f"bad {name}: {exc.detail}", reason="bad-amount") from None
    if not 0 < units <= MAX_AMOUNT:
        raise WalletError(f"bad {name}: must be more than 0 and at most {format_ntk(MAX_AMOUNT)}",
                          reason="bad-amount")
    return units


def address_param(value: Any, hrp: str, name: str) -> bytes:
    if not isinstance(value, str):
        raise _bad(f"{name} must be an address")
    return check_address(value, hrp)


def _bad(message: str) -> WalletError:
    return WalletError(message, reason="bad-tx-file")
