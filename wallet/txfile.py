"""Offline transactions: build one, carry it as an unsigned JSON file, sign it, carry the result.

An unsigned file says what will be signed in terms a person can check before signing. A
transfer's file has no "kind" (the first format, still written and read as it was):

    {"type": "neuro-unsigned-tx", "chain": <chain id hex>, "from": <address>, "to": <address>,
     "amount": "12.5", "fee": "0.001", "nonce": 3}            # amounts in NTK, exact decimals

Every other kind names itself and carries its payload's fields (`wallet.payload_json`):

    {"type": "neuro-unsigned-tx", "kind": "stake", "chain": ..., "from": ..., "fee": "0.001",
     "nonce": 3, "amount": "100"}
    {"type": "neuro-unsigned-tx", "kind": "settle", "chain": ..., "from": ..., "fee": ...,
     "nonce": 4, "job": <job id hex>}

A signed file carries the canonical encoding that `tx_submit` takes, its txid, and the same
readable fields (re-derived from the encoding when read, never trusted from the file):

    {"type": "neuro-signed-tx", "txid": <hex>, "tx": <hex>, "chain": ..., "from": ..., ...}
"""

from __future__ import annotations

import hmac
import json
from dataclasses import dataclass
from typing import Any

from chain.amounts import AmountError, format_ntk, parse_ntk
from chain.crypto import encode_address
from chain.errors import ChainError
from chain.market_types import Bid, JobAward
from chain.types import MAX_AMOUNT, Payload, Transaction, Transfer
from wallet.keys import Key, WalletError
from wallet.keystore import check_address
from wallet.payload_json import kind_name, kind_type, payload_from_json, payload_to_json

UNSIGNED_TYPE = "neuro-unsigned-tx"
SIGNED_TYPE = "neuro-signed-tx"
CHAIN_ID_SIZE = 32
ENVELOPE = ("type", "kind", "chain", "from", "fee", "nonce")


@dataclass(frozen=True, slots=True)
class UnsignedTransfer:
    """Everything a transfer needs except the signature; amounts in base units."""

    chain_id: bytes
    sender: str  # address
    to: str  # address
    amount: int
    fee: int
    nonce: int

    @property
    def hrp(self) -> str:
        return self.sender.rpartition("1")[0]

    def to_json(self) -> dict[str, Any]:
        return {
            "type": UNSIGNED_TYPE,
            "chain": self.chain_id.hex(),
            "from": self.sender,
            "to": self.to,
            "amount": format_ntk(self.amount),
            "fee": format_ntk(self.fee),
            "nonce": self.nonce,
        }

    @classmethod
    def from_json(cls, doc: Any) -> UnsignedTransfer:
        fields = {"type", "chain", "from", "to", "amount", "fee", "nonce"}
        if not isinstance(doc, dict) or set(doc) != fields or doc["type"] != UNSIGNED_TYPE:
            raise _bad_tx_file(
                f"an unsigned transaction file has the fields {', '.join(sorted(fields))}"
            )
        if not isinstance(doc["from"], str) or not isinstance(doc["to"], str):
            raise _bad_tx_file("from and to must be addresses")
        if type(doc["nonce"]) is not int:
            raise _bad_tx_file("nonce must be an integer")
        return build_transfer(
            chain_id=_chain_id(doc["chain"]),
            sender=doc["from"],
            to=doc["to"],
            amount=doc["amount"],
            fee=doc["fee"],
            nonce=doc["nonce"],
        )


def build_transfer(
    *, chain_id: bytes, sender: str, to: str, amount: str | int, fee: str | int, nonce: int
) -> UnsignedTransfer:
    """Check and assemble a transfer; amounts are NTK decimals ("12.5"), never floats.

    Both addresses must carry the sender's network prefix and a valid checksum.
    """
    hrp = sender.rpartition("1")[0]
    check_address(sender, hrp)
    check_address(to, hrp)
    units = _amount(amount, "amount")
    fee_units = _amount(fee, "fee")
    if units <= 0:
        raise WalletError("the amount must be more than 0", reason="bad-amount")
    if not 0 <= nonce < 2**63:
        raise WalletError(f"bad nonce {nonce}", reason="bad-nonce")
    if len(chain_id) != CHAIN_ID_SIZE:
        raise WalletError("a chain id is 32 bytes", reason="bad-chain-id")
    return UnsignedTransfer(chain_id, sender.strip(), to.strip(), units, fee_units, nonce)


def sign_transfer(unsigned: UnsignedTransfer, key: Key) -> Transaction:
    """Sign with ``key``, which must be the key of the sender address."""
    if not hmac.compare_digest(key.address(unsigned.hrp).encode(), unsigned.sender.encode()):
        raise WalletError(
            f"this key ({key.address(unsigned.hrp)}) is not the sender {unsigned.sender}",
            reason="wrong-key",
        )
    payload = Transfer(check_address(unsigned.to, unsigned.hrp), unsigned.amount)
    return key.transaction(unsigned.chain_id, unsigned.nonce, unsigned.fee, payload)


@dataclass(frozen=True, slots=True)
class UnsignedTx:
    """Any kind of transaction except the signature: the envelope and its payload."""

    chain_id: bytes
    sender: str  # address
    fee: int
    nonce: int
    payload: Payload

    @property
    def hrp(self) -> str:
        return self.sender.rpartition("1")[0]

    @property
    def kind(self) -> str:
        return kind_name(self.payload)

    def to_json(self) -> dict[str, Any]:
        """A transfer in the first format (no "kind"); every other kind with its "kind"."""
        if isinstance(self.payload, Transfer):
            return self.as_transfer().to_json()
        return {
            "type": UNSIGNED_TYPE, "kind": self.kind, "chain": self.chain_id.hex(), "from": self.sender,
            "fee": format_ntk(self.fee), "nonce": self.nonce, **payload_to_json(self.payload, self.hrp),
        }

    def as_transfer(self) -> UnsignedTransfer:
        assert isinstance(self.payload, Transfer)
        to = encode_address(self.payload.to, self.hrp)
        return UnsignedTransfer(self.chain_id, self.sender, to, self.payload.amount, self.fee, self.nonce)

    @classmethod
    def of_transfer(cls, transfer: UnsignedTransfer) -> UnsignedTx:
        payload = Transfer(check_address(transfer.to, transfer.hrp), transfer.amount)
        return cls(transfer.chain_id, transfer.sender, transfer.fee, transfer.nonce, payload)

    @classmethod
    def from_json(cls, doc: Any) -> UnsignedTx:
        """An unsigned file of any kind; one without "kind" (or kind "transfer") is a transfer."""
        if not isinstance(doc, dict) or doc.get("type") != UNSIGNED_TYPE:
            raise _bad_tx_file(f"not an unsigned transaction file (expected type {UNSIGNED_TYPE})")
        kind = doc.get("kind", "transfer")
        if not isinstance(kind, str):
            raise _bad_tx_file("kind must be a string")
        payload_type = kind_type(kind)
        if payload_type is Transfer:
            return cls.of_transfer(UnsignedTransfer.from_json({k: v for k, v in doc.items() if k != "kind"}))
        missing = [k for k in ENVELOPE if k not in doc]
        if missing:
            raise _bad_tx_file(f"an unsigned transaction file has the fields {', '.join(ENVELOPE)} "
                               f"and its payload's; missing {', '.join(missing)}")
        if not isinstance(doc["from"], str):
            raise _bad_tx_file("from must be an address")
        if type(doc["nonce"]) is not int:
            raise _bad_tx_file("nonce must be an integer")
        hrp = doc["from"].rpartition("1")[0]
        payload = payload_from_json(payload_type, {k: v for k, v in doc.items() if k not in ENVELOPE}, hrp)
        return build_unsigned(chain_id=_chain_id(doc["chain"]), sender=doc["from"], fee=doc["fee"],
                              nonce=doc["nonce"], payload=payload)


def build_unsigned(
    *, chain_id: bytes, sender: str, fee: str | int, nonce: int, payload: Payload
) -> UnsignedTx:
    """Check and assemble a transaction of any kind; the fee is an NTK decimal ("0.001")."""
    hrp = sender.rpartition("1")[0]
    check_address(sender, hrp)
    fee_units = _amount(fee, "fee")
    if not 0 <= nonce < 2**63:
        raise WalletError(f"bad nonce {nonce}", reason="bad-nonce")
    if len(chain_id) != CHAIN_ID_SIZE:
        raise WalletError("a chain id is 32 bytes", reason="bad-chain-id")
    if isinstance(payload, JobAward):  # what the chain would refuse at once, said before signing
        for entry in payload.entries:
            what = f"bid {entry.bid.bid_id.hex()[:16]}..."
            if entry.bid.chain_id != chain_id:
                raise WalletError(f"{what} is signed for another chain", reason="bid-wrong-chain")
            if entry.bid.job_id != payload.job_id:
                raise WalletError(f"{what} is for job {entry.bid.job_id.hex()}", reason="bid-wrong-job")
    return UnsignedTx(chain_id, sender.strip(), fee_units, nonce, payload)


def sign_bid(
    *, chain_id: bytes, job_id: bytes, key: Key, unit_price: int, max_shards: int, expiry: int
) -> Bid:
    """A worker's signed bid: up to ``max_shards`` shards of the job at ``unit_price`` (base units
    per quote unit), valid through block ``expiry``; checked as the chain decodes bids."""
    if len(chain_id) != CHAIN_ID_SIZE or len(job_id) != CHAIN_ID_SIZE:
        raise WalletError("chain and job ids are 32 bytes", reason="bad-bid")
    try:
        bid = Bid.from_list([chain_id, job_id, key.public_key, unit_price, max_shards, expiry, bytes(64)])
    except ChainError as exc:
        raise WalletError(f"bad bid: {exc.detail or exc.reason}", reason="bad-bid") from None
    return bid.signed(key.seed)


def sign_unsigned(unsigned: UnsignedTx, key: Key) -> Transaction:
    """Sign any kind with ``key``, which must be the key of the sender address."""
    if isinstance(unsigned.payload, Transfer):
        return sign_transfer(unsigned.as_transfer(), key)
    if not hmac.compare_digest(key.address(unsigned.hrp).encode(), unsigned.sender.encode()):
        raise WalletError(
            f"this key ({key.address(unsigned.hrp)}) is not the sender {unsigned.sender}",
            reason="wrong-key",
        )
    return key.transaction(unsigned.chain_id, unsigned.nonce, unsigned.fee, unsigned.payload)


def describe(tx: Transaction, hrp: str) -> dict[str, Any]:
    """The readable fields of a signed transaction: a transfer's as they always were; any other
    kind's with its "kind" and payload fields."""
    if isinstance(tx.payload, Transfer):
        return {
            "chain": tx.chain_id.hex(),
            "from": encode_address(tx.sender_account, hrp),
            "to": encode_address(tx.payload.to, hrp),
            "amount": format_ntk(tx.payload.amount),
            "fee": format_ntk(tx.fee),
            "nonce": tx.nonce,
        }
    return {
        "kind": kind_name(tx.payload),
        "chain": tx.chain_id.hex(),
        "from": encode_address(tx.sender_account, hrp),
        "fee": format_ntk(tx.fee),
        "nonce": tx.nonce,
        **payload_to_json(tx.payload, hrp),
    }


def signed_json(tx: Transaction, hrp: str) -> dict[str, Any]:
    return {
        "type": SIGNED_TYPE,
        "txid": tx.txid.hex(),
        "tx": tx.encode().hex(),
        **describe(tx, hrp),
    }


def read_signed(doc: Any) -> Transaction:
    """The transaction in a signed file, decoded strictly from its hex encoding."""
    if (
        not isinstance(doc, dict)
        or doc.get("type") != SIGNED_TYPE
        or not isinstance(doc.get("tx"), str)
    ):
        raise _bad_tx_file(
            "not a signed transaction file (expected type neuro-signed-tx and tx hex)"
        )
    try:
        return Transaction.decode(bytes.fromhex(doc["tx"]))
    except ValueError:
        raise _bad_tx_file("tx is not hex") from None
    except ChainError as exc:
        raise _bad_tx_file(f"tx does not decode: {exc}") from None


def parse_tx_file(text: str, where: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise _bad_tx_file(f"{where} is not JSON (line {exc.lineno}: {exc.msg})") from None


def _amount(value: str | int, what: str) -> int:
    try:
        units = parse_ntk(value)
    except AmountError as exc:
        raise WalletError(f"bad {what}: {exc.detail}", reason="bad-amount") from None
    if units > MAX_AMOUNT:
        raise WalletError(f"bad {what}: too large", reason="bad-amount")
    return units


def _chain_id(value: Any) -> bytes:
    if not isinstance(value, str):
        raise _bad_tx_file("chain must be the chain id in hex")
    try:
        chain_id = bytes.fromhex(value)
    except ValueError:
        raise _bad_tx_file("chain must be the chain id in hex") from None
    return chain_id


def _bad_tx_file(message: str) -> WalletError:
    return WalletError(message, reason="bad-tx-file")
