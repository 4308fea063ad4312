"""Accounts and the state transition of a block, as pure functions over a state reader.

`apply_block` reads accounts through a narrow `StateReader` and returns the block's effects (each
touched account's value before and after, the reward, the fees and the new supply) without writing
anything: the store persists the effects, and keeps the "before" values as the block's undo data.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import NamedTuple, Protocol

from chain import encoding as enc
from chain.errors import DecodeError, InvalidBlock, InvalidTransaction, RejectKind
from chain.hashing import hash256
from chain.jobs import TOTALS_KEY, Event, Job, Totals, job_key
from chain.market_rules import Adjudicator, MarketContext, apply_market
from chain.params import MAX_SUPPLY_UNITS, ChainParams
from chain.records import record_key, record_value_hash
from chain.treasury_types import Redeem
from chain.types import Block, Transaction, Transfer

ACCOUNT_PERSON = b"neuro-account"


class Account(NamedTuple):
    """An account's tokens: its balance, and its stake (bonded; of which ``locked`` backs awarded
    shards; unbonding until ``release_height``). An account that never staked encodes as
    [balance, nonce] alone: the stake fields appear only when one is non-zero."""

    balance: int = 0
    nonce: int = 0
    bonded: int = 0
    locked: int = 0
    unbonding: int = 0
    release_height: int = 0

    @property
    def free_stake(self) -> int:
        return self.bonded - self.locked

    def encode(self) -> bytes:
        if self.bonded or self.locked or self.unbonding or self.release_height:
            return enc.pack([self.balance, self.nonce, self.bonded, self.locked, self.unbonding, self.release_height])
        return enc.pack([self.balance, self.nonce])

    @classmethod
    def decode(cls, data: bytes) -> Account:
        value = enc.unpack(data, what="account", max_size=64)
        if type(value) is list and len(value) == 6:
            balance, nonce, bonded, locked, unbonding, release = value
            account = cls(
                enc.as_int(balance, "account.balance", 0, MAX_SUPPLY_UNITS), enc.as_int(nonce, "account.nonce"),
                enc.as_int(bonded, "account.bonded", 0, MAX_SUPPLY_UNITS),
                enc.as_int(locked, "account.locked", 0, MAX_SUPPLY_UNITS),
                enc.as_int(unbonding, "account.unbonding", 0, MAX_SUPPLY_UNITS), enc.as_int(release, "account.release"),
            )
            if account.encode() != data or account.locked > account.bonded:
                raise DecodeError("bad-encoding", "account: stake fields all zero, or locked above bonded")
            return account
        balance, nonce = enc.fields(value, "account", 2)
        return cls(enc.as_int(balance, "account.balance", 0, MAX_SUPPLY_UNITS), enc.as_int(nonce, "account.nonce"))

    @property
    def value_hash(self) -> bytes:
        return account_value_hash(self.encode())


def account_value_hash(encoded: bytes) -> bytes:
    """What the state trie commits to for an account, from its encoding."""
    return hash256(encoded, person=ACCOUNT_PERSON)


EMPTY_ACCOUNT = Account()


class StateReader(Protocol):
    def account(self, account_id: bytes) -> Account | None: ...


class MarketReader(StateReader, Protocol):
    """What the market rules read besides accounts (`chain.chainstate` serves all four)."""

    def job(self, job_id: bytes) -> Job | None: ...

    def spec(self, job_id: bytes) -> bytes | None: ...

    def totals(self) -> Totals: ...

    def block_hash(self, height: int) -> bytes | None:
        """The hash of the block at ``height`` on the chain being extended (a dispute's beacon)."""

    def record(self, store_key: bytes) -> bytes | None:
        """A `chain.records` record's stored bytes (a listing, a purchase)."""


@dataclass(frozen=True, slots=True)
class BlockEffects:
    """What connecting a block changes. ``changes`` maps account id -> (before, after), ``jobs``
    job id -> (before, after); ``specs`` are the specs of jobs posted in the block."""

    changes: Mapping[bytes, tuple[Account | None, Account]]
    reward: int
    fees: int
    supply: int  # total issued after the block
    jobs: Mapping[bytes, tuple[Job | None, Job]] = field(default_factory=dict)
    specs: Mapping[bytes, bytes] = field(default_factory=dict)
    totals: tuple[Totals, Totals] | None = None  # before, after
    events: tuple[Event, ...] = ()
    records: Mapping[bytes, tuple[bytes | None, bytes]] = field(default_factory=dict)  # store key -> before, after


class Ledger:
    """Accounts and jobs touched so far in one block, over the reader (the overlay of a block)."""

    def __init__(self, reader: StateReader) -> None:
        self.reader = reader
        self.before: dict[bytes, Account | None] = {}
        self.after: dict[bytes, Account] = {}
        self.jobs_before: dict[bytes, Job | None] = {}
        self.jobs_after: dict[bytes, Job] = {}
        self.specs: dict[bytes, bytes] = {}
        self.events: list[Event] = []
        self.records_before: dict[bytes, bytes | None] = {}  # `chain.records`, by store key
        self.records_after: dict[bytes, bytes] = {}
        self.burned = 0  # by this block
        self.adjudications = 0  # items re-computed for fraud proofs in this block

    def get(self, account_id: bytes) -> Account:
        after = self.after.get(account_id)
        if after is not None:
            return after
        stored = self.reader.account(account_id)
        self.before[account_id] = stored
        return stored if stored is not None else EMPTY_ACCOUNT

    def set(self, account_id: bytes, account: Account) -> None:
        if account_id not in self.before:
            self.before[account_id] = self.reader.account(account_id)
        self.after[account_id] = account

    def credit(self, account_id: bytes, amount: int, reason: str) -> None:
        account = self.get(account_id)
        balance = account.balance + amount
        if balance > MAX_SUPPLY_UNITS:
            raise InvalidBlock(reason, "balance overflows", expected=f"<= {MAX_SUPPLY_UNITS}", got=balance)
        self.set(account_id, Account(balance, account.nonce, account.bonded, account.locked, account.unbonding,
                                     account.release_height))

    def _market(self) -> MarketReader:
        reader = self.reader
        if not hasattr(reader, "job"):
            raise InvalidTransaction("bad-tx-kind", "market transactions need a market state reader")
        return reader  # type: ignore[return-value]

    def job(self, job_id: bytes) -> Job | None:
        if job_id in self.jobs_after:
            return self.jobs_after[job_id]
        return self._market().job(job_id)

    def set_job(self, job_id: bytes, job: Job) -> None:
        # the record at the block's start, for the undo data: taken at the first write
        if job_id not in self.jobs_before:
            self.jobs_before[job_id] = self._market().job(job_id)
        self.jobs_after[job_id] = job

    def spec(self, job_id: bytes) -> bytes | None:
        return self.specs.get(job_id) or self._market().spec(job_id)

    def block_hash(self, height: int) -> bytes | None:
        return self._market().block_hash(height)

    def record(self, store_key: bytes) -> bytes | None:
        if store_key in self.records_after:
            return self.records_after[store_key]
        return self._market().record(store_key)

    def set_record(self, store_key: bytes, value: bytes) -> None:
        # the value at the block's start, for the undo data: taken at the first write
        if store_key not in self.records_before:
            self.records_before[store_key] = self._market().record(store_key)
        self.records_after[store_key] = value

    def staked_at_block_start(self) -> int:
        return self._market().totals().staked

    def event(self, event: Event) -> None:
        self.events.append(event)

    def burn(self, amount: int, job_id: bytes, shard: int, note: str) -> None:
        if amount:
            self.burned += amount
            self.events.append(Event("burn", b"", amount, job_id, shard, note))

    def snapshot(self) -> tuple[object, ...]:
        return (dict(self.after), dict(self.before), dict(self.jobs_after), dict(self.jobs_before),
                dict(self.specs), len(self.events), self.burned, self.adjudications,
                dict(self.records_after), dict(self.records_before))

    def restore(self, snap: tuple[object, ...]) -> None:
        """Undo what the ledger took since `snapshot` (a template dropping a transaction)."""
        after, before, jobs_after, jobs_before, specs, events, burned, adjudications, records_after, records_before = snap
        self.records_after, self.records_before = records_after, records_before  # type: ignore[assignment]
        self.after, self.before = after, before  # type: ignore[assignment]
        self.jobs_after, self.jobs_before, self.specs = jobs_after, jobs_before, specs  # type: ignore[assignment]
        del self.events[int(events):]  # type: ignore[call-overload]
        self.burned, self.adjudications = burned, adjudications  # type: ignore[assignment]


_Ledger = Ledger  # the name the block template used


def fee_from_balance(tx: Transaction) -> int:
    """What of the fee the sender's balance pays: all of it, but for a Redeem, whose fee comes out
    of its voucher (`chain.treasury_rules`), so that a new, empty account can redeem one."""
    return 0 if type(tx.payload) is Redeem else tx.fee


def check_tx_against_state(tx: Transaction, sender: Account) -> None:
    """Stateful checks of one transaction's envelope: its nonce is next and the sender can pay
    the fee (and a transfer its amount; the market rules check what else a kind takes)."""
    if tx.nonce != sender.nonce:
        kind = RejectKind.STALE if tx.nonce < sender.nonce else RejectKind.MISSING
        reason = "nonce-too-low" if tx.nonce < sender.nonce else "nonce-gap"
        raise InvalidTransaction(reason, kind=kind, expected=sender.nonce, got=tx.nonce)
    payload = tx.payload
    cost = fee_from_balance(tx) + (payload.amount if type(payload) is Transfer else 0)
    if cost > sender.balance:
        raise InvalidTransaction("insufficient-balance", expected=f">= {cost}", got=sender.balance)


def apply_transaction(ledger: Ledger, tx: Transaction, market: MarketContext) -> int:
    """Apply one transaction to ``ledger``; returns its fee. A transfer off the common path is
    refused by `check_tx_against_state` (its nonce or its cost), and a kind with no rule by
    `apply_market`; the caller drops the ledger's changes of a refused one."""
    sender_id = tx.sender_account
    sender = ledger.get(sender_id)
    payload = tx.payload
    if type(payload) is Transfer and tx.nonce == sender.nonce and tx.fee + payload.amount <= sender.balance:
        # the common case in one test; anything else gets its named reason below
        ledger.set(sender_id, Account(sender.balance - payload.amount - tx.fee, sender.nonce + 1,
                                      sender.bonded, sender.locked, sender.unbonding, sender.release_height))
        ledger.credit(payload.to, payload.amount, "balance-overflow")
        return tx.fee
    check_tx_against_state(tx, sender)
    ledger.set(sender_id, Account(sender.balance - fee_from_balance(tx), sender.nonce + 1, sender.bonded,
                                  sender.locked, sender.unbonding, sender.release_height))
    apply_market(ledger, market, tx)
    return tx.fee


def apply_block(
    params: ChainParams, reader: StateReader, block: Block, supply_before: int, *,
    chain_id: bytes = b"", adjudicator: Adjudicator | None = None, treasury: bytes = b"",
) -> BlockEffects:
    """Connect ``block``'s transactions, reward and fees over ``reader``; raises InvalidBlock."""
    ledger = Ledger(reader)
    market = MarketContext(params.market, chain_id, block.header.height, adjudicator, treasury)
    fees = 0
    for index, tx in enumerate(block.txs):
        try:
            fees += apply_transaction(ledger, tx, market)
        except InvalidTransaction as exc:
            where = f"tx {index} ({tx.txid.hex()[:16]})"
            raise InvalidBlock(exc.reason, f"{where}: {exc.detail}" if exc.detail else where,
                               expected=exc.expected, got=exc.got) from None
    reward = params.block_reward(block.header.height)
    supply = supply_before + reward
    if supply > MAX_SUPPLY_UNITS:
        raise InvalidBlock("supply-overflow", got=supply)
    if reward + fees:
        ledger.credit(block.header.miner, reward + fees, "balance-overflow")
    return effects_of(ledger, reader, reward, fees, supply)


def effects_of(ledger: Ledger, reader: StateReader, reward: int, fees: int, supply: int) -> BlockEffects:
    """The block's effects from its ledger; the totals leaf changes with every block (reward)."""
    changes = {k: (ledger.before[k], v) for k, v in ledger.after.items()}
    jobs = {k: (ledger.jobs_before[k], v) for k, v in ledger.jobs_after.items()}
    totals = None
    if hasattr(reader, "totals"):
        before = reader.totals()
        bonded = sum(after.bonded - (ledger.before[k] or EMPTY_ACCOUNT).bonded for k, after in ledger.after.items())
        totals = (before, Totals(supply, before.burned + ledger.burned, before.staked + bonded))
    records = {k: (ledger.records_before[k], v) for k, v in ledger.records_after.items()}
    return BlockEffects(changes, reward, fees, supply, jobs, dict(ledger.specs), totals, tuple(ledger.events), records)


def trie_updates(effects: BlockEffects) -> dict[bytes, bytes | None]:
    """The state trie's key -> value hash changes of a block: accounts, jobs and the totals."""
    updates: dict[bytes, bytes | None] = {k: after.value_hash for k, (_, after) in effects.changes.items()}
    for job_id, (_, job) in effects.jobs.items():
        updates[job_key(job_id)] = job.value_hash
    if effects.totals is not None:
        updates[TOTALS_KEY] = effects.totals[1].value_hash
    for store_key, (_, value) in effects.records.items():
        updates[record_key(store_key)] = record_value_hash(value)
    return updates

