"""Genesis files: load and validate, and build block 0 and its state.

A genesis file is JSON with the network's `ChainParams` and its initial allocations. Block 0 commits
to both: its `parent` field (block 0 has no parent) holds the hash of the canonical encoding of the
parameters, and its state root commits to the allocations; the hash of block 0 is the chain id that
every transaction signs and every peer compares, so two networks differing in any rule never mix.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, fields
from importlib import resources
from pathlib import Path
from typing import Any

from chain import encoding as enc
from chain.amounts import AmountError, parse_ntk
from chain.crypto import AddressError, decode_address
from chain.errors import GenesisError
from chain.hashing import ZERO_HASH, hash256
from chain.jobs import TOTALS_KEY, Totals
from chain.merkle import merkle_root
from chain.params import BASIS_POINTS, BLOCK_VERSION, MAX_SUPPLY_UNITS, ChainParams, MarketParams
from chain.pow import is_canonical_bits
from chain.state import Account
from chain.trie import compute_root
from chain.types import Block, Header

NETWORKS = ("main", "devnet")
_REQUIRED = {
    "network": str, "hrp": str, "genesis_time": int, "target_block_time": int,
    "asert_half_life": int, "genesis_bits": str, "pow_limit_bits": str,
    "initial_reward": str, "halving_interval": int, "allocations": list,
}
_OPTIONAL = {
    "description": str, "accounts": dict, "max_block_bytes": int, "max_block_txs": int, "market": dict,
}
_AMOUNT_MARKET_FIELDS = ("min_stake", "challenge_bond")  # NTK strings, like every amount in the file


@dataclass(frozen=True, slots=True)
class Genesis:
    params: ChainParams
    allocations: tuple[tuple[bytes, int], ...]  # (account id, base units)
    names: dict[str, bytes]  # well-known accounts by name ("treasury", ...)
    # Block 0, built once: its state root hashes every allocation, and callers read `chain_id`
    # in loops (a frozen, slotted dataclass cannot use functools.cached_property).
    _block: Block = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        header = Header(
            version=BLOCK_VERSION, height=0, parent=params_digest(self.params, self.names.get("treasury", b"")),
            timestamp=self.params.genesis_time, bits=self.params.genesis_bits,
            tx_root=merkle_root([]), state_root=self.state_root, miner=bytes(20),
        )
        object.__setattr__(self, "_block", Block(header, ()))

    @property
    def block(self) -> Block:
        return self._block

    @property
    def chain_id(self) -> bytes:
        return self._block.hash

    @property
    def accounts(self) -> dict[bytes, Account]:
        return {account: Account(balance=amount) for account, amount in self.allocations}

    @property
    def totals(self) -> Totals:
        return Totals(self.supply)

    @property
    def state_root(self) -> bytes:
        """Over the allocated accounts and the totals (issued: the allocations; none burned)."""
        return compute_root({**{k: v.value_hash for k, v in self.accounts.items()}, TOTALS_KEY: self.totals.value_hash})

    @property
    def supply(self) -> int:
        return sum(amount for _, amount in self.allocations)


def params_digest(params: ChainParams, treasury: bytes = b"") -> bytes:
    """Every consensus parameter, market rules included (a nested list), is in the chain id, and
    so is the treasury's account (``accounts.treasury``): consensus reads it (its key signs
    vouchers, it alone posts buyback offers), so two files naming different treasuries must be
    two networks."""
    values: list[Any] = [getattr(params, f.name) for f in fields(params) if f.name != "market"]
    values.append([getattr(params.market, f.name) for f in fields(params.market)])
    values.append(treasury)
    return hash256(enc.pack(values), person=b"neuro-params")


def _require(doc: dict[str, Any], key: str, kind: type) -> Any:
    if key not in doc:
        raise GenesisError("bad-genesis", f"missing field {key!r}")
    value = doc[key]
    if type(value) is not kind:
        raise GenesisError("bad-genesis", f"{key!r} must be {kind.__name__}, got {type(value).__name__}")
    return value


def _bits(doc: dict[str, Any], key: str) -> int:
    text = _require(doc, key, str)
    try:
        bits = int(text, 16)
    except ValueError:
        raise GenesisError("bad-genesis", f"{key!r} must be hex compact bits, got {text!r}") from None
    if not is_canonical_bits(bits):
        raise GenesisError("bad-genesis", f"{key!r} is not a canonical compact target: {text}")
    return bits


def parse_genesis(doc: Any) -> Genesis:
    """Validate a decoded genesis document; every problem is a GenesisError naming the field."""
    if not isinstance(doc, dict):
        raise GenesisError("bad-genesis", "top level must be a JSON object")
    unknown = set(doc) - set(_REQUIRED) - set(_OPTIONAL)
    if unknown:
        raise GenesisError("bad-genesis", f"unknown fields: {', '.join(sorted(unknown))}")
    values = {key: _require(doc, key, kind) for key, kind in _REQUIRED.items()}
    for key in ("genesis_time", "target_block_time", "asert_half_life", "halving_interval"):
        if values[key] <= 0 and key != "genesis_time" or values[key] < 0:
            raise GenesisError("bad-genesis", f"{key!r} must be positive, got {values[key]}")
    try:
        reward = parse_ntk(values["initial_reward"])
    except AmountError as exc:
        raise GenesisError("bad-genesis", f"initial_reward: {exc.detail}") from None
    extra = {key: _require(doc, key, int) for key in ("max_block_bytes", "max_block_txs") if key in doc}
    params = ChainParams(
        network=values["network"], hrp=values["hrp"], genesis_time=values["genesis_time"],
        target_block_time=values["target_block_time"], asert_half_life=values["asert_half_life"],
        genesis_bits=_bits(doc, "genesis_bits"), pow_limit_bits=_bits(doc, "pow_limit_bits"),
        initial_reward=reward, halving_interval=values["halving_interval"],
        market=_market(doc.get("market", {})), **extra,
    )
    allocations = _allocations(values["allocations"], params.hrp)
    names = {}
    for name, address in doc.get("accounts", {}).items():
        names[name] = _address(address, params.hrp, f"accounts.{name}")
    return Genesis(params=params, allocations=allocations, names=names)


def _market(doc: dict[str, Any]) -> MarketParams:
    """The genesis "market" object: any subset of `MarketParams`' fields, the rest default."""
    known = {f.name: f for f in fields(MarketParams)}
    unknown = set(doc) - set(known)
    if unknown:
        raise GenesisError("bad-genesis", f"market: unknown fields: {', '.join(sorted(unknown))}")
    values: dict[str, int] = {}
    for key, value in doc.items():
        if key in _AMOUNT_MARKET_FIELDS:
            try:
                values[key] = parse_ntk(value if isinstance(value, str) else "")
            except AmountError as exc:
                raise GenesisError("bad-genesis", f"market.{key}: {exc.detail} (an NTK string)") from None
            continue
        if type(value) is not int or value < 0:
            raise GenesisError("bad-genesis", f"market.{key} must be a non-negative integer, got {value!r}")
        values[key] = value
    market = MarketParams(**values)
    for key in ("slash_reward_bp", "no_show_slash_bp", "protocol_fee_bp"):
        if getattr(market, key) > BASIS_POINTS:
            raise GenesisError("bad-genesis", f"market.{key} is a fraction in basis points: at most {BASIS_POINTS}")
    # max_challenges_per_block 0 would refuse every answer to a query: honest workers slashed as withholding
    for key in ("min_bid_blocks", "min_challenge_blocks", "response_blocks", "max_shards", "max_bids_per_award",
                "max_spec_bytes", "stake_per_payment_bp", "committee_size", "vote_blocks", "quorum",
                "max_challenges_per_block"):
        if getattr(market, key) < 1:
            raise GenesisError("bad-genesis", f"market.{key} must be at least 1")
    return market


def _address(text: Any, hrp: str, where: str) -> bytes:
    if not isinstance(text, str):
        raise GenesisError("bad-genesis", f"{where}: address must be a string")
    try:
        return decode_address(text, hrp)
    except AddressError as exc:
        raise GenesisError("bad-genesis", f"{where}: {exc.detail}") from None


def _allocations(items: list[Any], hrp: str) -> tuple[tuple[bytes, int], ...]:
    seen: dict[bytes, int] = {}
    for index, item in enumerate(items):
        where = f"allocations[{index}]"
        if not isinstance(item, dict) or set(item) != {"address", "amount"}:
            raise GenesisError("bad-genesis", f"{where}: expected {{address, amount}}")
        account = _address(item["address"], hrp, where)
        if account in seen:
            raise GenesisError("bad-genesis", f"{where}: duplicate address {item['address']}")
        try:
            seen[account] = parse_ntk(item["amount"])
        except AmountError as exc:
            raise GenesisError("bad-genesis", f"{where}.amount: {exc.detail}") from None
    if sum(seen.values()) > MAX_SUPPLY_UNITS:
        raise GenesisError("bad-genesis", "allocations exceed the maximum supply")
    return tuple(sorted(seen.items()))


def load_genesis(source: str | Path) -> Genesis:
    """A network name ("main", "devnet") or a path to a genesis JSON file."""
    if str(source) in NETWORKS:
        text = resources.files("chain.networks").joinpath(f"{source}.json").read_text()
        where = f"built-in {source} genesis"
    else:
        path = Path(source)
        try:
            text = path.read_text()
        except OSError as exc:
            raise GenesisError("bad-genesis", f"cannot read {path}: {exc.strerror}") from None
        where = str(path)
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise GenesisError("bad-genesis", f"{where}: not JSON (line {exc.lineno}: {exc.msg})") from None
    try:
        return parse_genesis(doc)
    except GenesisError as exc:
        raise GenesisError("bad-genesis", f"{where}: {exc.detail}") from None


__all__ = ["ZERO_HASH", "Genesis", "load_genesis", "params_digest", "parse_genesis"]
