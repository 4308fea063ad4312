"""Accounts and the state transition of a block, as pure functions over a state reader.

`apply_block` reads accounts through a narrow `StateReader` and returns the block's effects (each
touched account's value before and after, the reward, the fees and the new supply) without writing
anything: the store persists the effects, and keeps the "before" values as the block's undo data.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from chain import encoding as enc
from chain.errors import InvalidBlock, InvalidTransaction, RejectKind
from chain.hashing import hash256
from chain.params import MAX_SUPPLY_UNITS, ChainParams
from chain.trie import NodeReader, update_trie
from chain.types import Block, Transaction, Transfer

ACCOUNT_PERSON = b"neuro-account"


@dataclass(frozen=True, slots=True)
class Account:
    balance: int = 0
    nonce: int = 0

    def encode(self) -> bytes:
        return enc.pack([self.balance, self.nonce])

    @classmethod
    def decode(cls, data: bytes) -> Account:
        balance, nonce = enc.fields(enc.unpack(data, what="account", max_size=32), "account", 2)
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


@dataclass(frozen=True, slots=True)
class BlockEffects:
    """What connecting a block changes. ``changes`` maps account id -> (before, after)."""

    changes: Mapping[bytes, tuple[Account | None, Account]]
    reward: int
    fees: int
    supply: int  # total issued after the block


class _Ledger:
    """Accounts touched so far in one block, over the reader (the overlay of a block)."""

    def __init__(self, reader: StateReader) -> None:
        self.reader = reader
        self.before: dict[bytes, Account | None] = {}
        self.after: dict[bytes, Account] = {}

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
        self.set(account_id, Account(balance, account.nonce))


def check_tx_against_state(tx: Transaction, sender: Account) -> None:
    """Stateful checks of one transaction: its nonce is next and the sender can pay."""
    if tx.nonce != sender.nonce:
        kind = RejectKind.STALE if tx.nonce < sender.nonce else RejectKind.MISSING
        reason = "nonce-too-low" if tx.nonce < sender.nonce else "nonce-gap"
        raise InvalidTransaction(reason, kind=kind, expected=sender.nonce, got=tx.nonce)
    cost = tx.fee + _spent(tx)
    if cost > sender.balance:
        raise InvalidTransaction("insufficient-balance", expected=f">= {cost}", got=sender.balance)


def _spent(tx: Transaction) -> int:
    payload = tx.payload
    if isinstance(payload, Transfer):
        return payload.amount
    raise InvalidTransaction("bad-tx-kind", f"no state rule for kind {tx.kind}")


def apply_transaction(ledger: _Ledger, tx: Transaction) -> int:
    """Apply one transaction to ``ledger``; returns its fee."""
    sender_id = tx.sender_account
    sender = ledger.get(sender_id)
    payload = tx.payload
    if type(payload) is Transfer and tx.nonce == sender.nonce and tx.fee + payload.amount <= sender.balance:
        # the common case in one test; anything else gets its named reason below
        ledger.set(sender_id, Account(sender.balance - payload.amount - tx.fee, sender.nonce + 1))
        ledger.credit(payload.to, payload.amount, "balance-overflow")
        return tx.fee
    check_tx_against_state(tx, sender)
    raise AssertionError("check_tx_against_state passed a transaction the fast path refused")


def apply_block(params: ChainParams, reader: StateReader, block: Block, supply_before: int) -> BlockEffects:
    """Connect ``block``'s transactions, reward and fees over ``reader``; raises InvalidBlock."""
    ledger = _Ledger(reader)
    fees = 0
    for index, tx in enumerate(block.txs):
        try:
            fees += apply_transaction(ledger, tx)
        except InvalidTransaction as exc:
            raise InvalidBlock(exc.reason, f"tx {index} ({tx.txid.hex()[:16]}): {exc.detail}",
                               expected=exc.expected, got=exc.got) from None
    reward = params.block_reward(block.header.height)
    supply = supply_before + reward
    if supply > MAX_SUPPLY_UNITS:
        raise InvalidBlock("supply-overflow", got=supply)
    if reward + fees:
        ledger.credit(block.header.miner, reward + fees, "balance-overflow")
    changes = {k: (ledger.before[k], v) for k, v in ledger.after.items()}
    return BlockEffects(changes=changes, reward=reward, fees=fees, supply=supply)


def state_root_after(
    read_node: NodeReader, changes: Mapping[bytes, tuple[Any, Account | None]]
) -> tuple[bytes, dict[bytes, bytes | None]]:
    """New state root and trie node writes for account changes (after=None removes the account)."""
    return update_trie(
        read_node,
        {key: (after.value_hash if after is not None else None) for key, (_, after) in changes.items()},
    )
