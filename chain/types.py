"""Wire and storage types of the chain: transactions, headers, blocks.

Each is a frozen dataclass with `encode()` (canonical msgpack of a positional list) and a strict
`decode()` that checks the size first, then every field's type and range, then re-encodes to compare.
Transactions carry a `kind` and a kind-specific `payload` so market kinds (job posts, bids, awards,
result commits) are added as new payload types without touching the envelope or its signature rules.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeAlias

from chain import encoding as enc
from chain.crypto import PUBLIC_KEY_SIZE, SIGNATURE_SIZE, address_hash, sign
from chain.errors import DecodeError
from chain.hashing import ADDRESS_HASH_SIZE, HASH_SIZE, hash256
from chain.listing_types import LISTING_PAYLOADS, Delist, Listing, Purchase
from chain.market_types import (
    MARKET_PAYLOADS,
    Accept,
    Challenge,
    JobAward,
    JobPost,
    Release,
    Respond,
    ResultCommit,
    Settle,
    Stake,
    Unstake,
    Vote,
)
from chain.params import MAX_BLOCK_BYTES, MAX_BLOCK_TXS, MAX_HEADER_BYTES, MAX_TX_BYTES
from chain.pow import NONCE_SIZE
from chain.treasury_types import TREASURY_PAYLOADS, BuybackOffer, BuybackSell, Redeem

TX_SIGN_DOMAIN = b"neuro-tx-v1"
TX_ID_PERSON = b"neuro-txid"
_SIGN_PREFIX = TX_SIGN_DOMAIN + enc.array_header(6)
_SIGNATURE_TAIL = -(2 + SIGNATURE_SIZE)
MAX_AMOUNT = 2**63 - 1


@dataclass(frozen=True, slots=True)
class Transfer:
    """Move ``amount`` base units from the sender to the account ``to``."""

    KIND: ClassVar[int] = 1
    to: bytes  # 20-byte account id
    amount: int

    def to_list(self) -> list[Any]:
        return [self.to, self.amount]

    @classmethod
    def from_list(cls, value: Any) -> Transfer:
        if type(value) is list and len(value) == 2:  # fast path: one test for a valid transfer
            to, amount = value
            if type(to) is bytes and len(to) == ADDRESS_HASH_SIZE and type(amount) is int and 1 <= amount <= MAX_AMOUNT:
                return cls(to, amount)
        to, amount = enc.fields(value, "transfer", 2)
        return cls(
            to=enc.as_bytes(to, "transfer.to", size=ADDRESS_HASH_SIZE),
            amount=enc.as_int(amount, "transfer.amount", 1, MAX_AMOUNT),
        )


def txid_of(encoded: bytes) -> bytes:
    """The id of a transaction from its canonical encoding (saves re-encoding a decoded tx)."""
    return hash256(encoded, person=TX_ID_PERSON)


Payload: TypeAlias = (
    Transfer | Stake | Unstake | Release | JobPost | JobAward | ResultCommit | Challenge | Respond | Accept | Settle
    | Vote | Listing | Delist | Purchase | Redeem | BuybackOffer | BuybackSell
)
PAYLOAD_TYPES: dict[int, Any] = {
    Transfer.KIND: Transfer, **{p.KIND: p for p in MARKET_PAYLOADS + LISTING_PAYLOADS + TREASURY_PAYLOADS},  # type: ignore[attr-defined]
}


@dataclass(frozen=True, slots=True)
class Transaction:
    """A signed state change by the account of ``sender`` (an Ed25519 public key)."""

    chain_id: bytes  # genesis block hash: a signature is valid on one network only
    sender: bytes  # Ed25519 public key
    nonce: int  # the sender's account nonce before this tx; replay protection and ordering
    fee: int  # base units paid to the miner
    payload: Payload
    signature: bytes = field(default=b"", compare=True)
    # Caches, not fields: a node needs a tx's id several times (mempool, tx root, tx index) and
    # its sender's account twice per import. Frozen and slotted, the class cannot use
    # functools.cached_property; the values depend only on the immutable fields above.
    _txid: bytes | None = field(default=None, init=False, repr=False, compare=False)
    _sender_account: bytes | None = field(default=None, init=False, repr=False, compare=False)
    _encoded: bytes | None = field(default=None, init=False, repr=False, compare=False)

    @property
    def kind(self) -> int:
        return self.payload.KIND

    def _unsigned(self) -> list[Any]:
        return [self.chain_id, self.kind, self.sender, self.nonce, self.fee, self.payload.to_list()]

    def signing_message(self) -> bytes:
        encoded = self._encoded
        if encoded is not None and len(self.signature) == SIGNATURE_SIZE:
            # A signed tx's encoding is canonical: a 7-item array whose last item is the
            # 64-byte signature (2 bytes of header), so the 6 unsigned items lie between.
            return _SIGN_PREFIX + encoded[1:_SIGNATURE_TAIL]
        return TX_SIGN_DOMAIN + enc.pack(self._unsigned())

    def to_list(self) -> list[Any]:
        return [*self._unsigned(), self.signature]

    def encode(self) -> bytes:
        encoded = self._encoded
        if encoded is None:
            encoded = enc.pack(self.to_list())
            object.__setattr__(self, "_encoded", encoded)
        return encoded

    @property
    def txid(self) -> bytes:
        txid = self._txid
        if txid is None:
            txid = txid_of(self.encode())
            object.__setattr__(self, "_txid", txid)
        return txid

    @property
    def sender_account(self) -> bytes:
        account = self._sender_account
        if account is None:
            account = address_hash(self.sender)
            object.__setattr__(self, "_sender_account", account)
        return account

    def signed(self, seed: bytes) -> Transaction:
        """This transaction signed with the key from ``seed`` (its public key must be `sender`)."""
        unsigned = Transaction(self.chain_id, self.sender, self.nonce, self.fee, self.payload)
        return Transaction(
            self.chain_id, self.sender, self.nonce, self.fee, self.payload,
            sign(seed, unsigned.signing_message()),
        )

    @classmethod
    def from_list(cls, value: Any) -> Transaction:
        if type(value) is list and len(value) == 7:
            # Fast path: the envelope of a valid transaction passes one test; anything else
            # takes the field-by-field path below, which names what is wrong.
            chain_id, kind, sender, nonce, fee, payload, signature = value
            payload_type = PAYLOAD_TYPES.get(kind) if type(kind) is int else None
            if (
                payload_type is not None
                and type(chain_id) is bytes and len(chain_id) == HASH_SIZE
                and type(sender) is bytes and len(sender) == PUBLIC_KEY_SIZE
                and type(nonce) is int and 0 <= nonce <= enc.MAX_INT
                and type(fee) is int and 0 <= fee <= MAX_AMOUNT
                and type(signature) is bytes and len(signature) == SIGNATURE_SIZE
            ):
                return cls(chain_id, sender, nonce, fee, payload_type.from_list(payload), signature)
        chain_id, kind, sender, nonce, fee, payload, signature = enc.fields(value, "tx", 7)
        kind = enc.as_int(kind, "tx.kind", 0, 255)
        payload_type = PAYLOAD_TYPES.get(kind)
        if payload_type is None:
            raise DecodeError("bad-tx-kind", f"unknown transaction kind {kind}")
        return cls(
            chain_id=enc.as_bytes(chain_id, "tx.chain_id", size=HASH_SIZE),
            sender=enc.as_bytes(sender, "tx.sender", size=PUBLIC_KEY_SIZE),
            nonce=enc.as_int(nonce, "tx.nonce"),
            fee=enc.as_int(fee, "tx.fee", 0, MAX_AMOUNT),
            payload=payload_type.from_list(payload),
            signature=enc.as_bytes(signature, "tx.signature", size=SIGNATURE_SIZE),
        )

    @classmethod
    def decode(cls, data: bytes) -> Transaction:
        tx = cls.from_list(enc.unpack(data, what="tx", max_size=MAX_TX_BYTES))
        object.__setattr__(tx, "_encoded", bytes(data))
        return tx


@dataclass(frozen=True, slots=True)
class Header:
    """A block header. The nonce is the last field so that mining can reuse a midstate."""

    version: int
    height: int
    parent: bytes  # hash of the parent header
    timestamp: int  # unix seconds
    bits: int  # compact PoW target
    tx_root: bytes  # merkle root of the transaction ids
    state_root: bytes  # root of the account trie after this block
    miner: bytes  # 20-byte account credited with reward and fees
    nonce: bytes = bytes(NONCE_SIZE)

    def to_list(self) -> list[Any]:
        return [
            self.version, self.height, self.parent, self.timestamp, self.bits,
            self.tx_root, self.state_root, self.miner, self.nonce,
        ]

    def encode(self) -> bytes:
        return enc.pack(self.to_list())

    @property
    def hash(self) -> bytes:
        """The block id, which is also its proof-of-work hash."""
        return hash256(self.encode())

    def with_nonce(self, nonce: int) -> Header:
        return Header(
            self.version, self.height, self.parent, self.timestamp, self.bits,
            self.tx_root, self.state_root, self.miner, nonce.to_bytes(NONCE_SIZE, "little"),
        )

    @classmethod
    def from_list(cls, value: Any) -> Header:
        version, height, parent, timestamp, bits, tx_root, state_root, miner, nonce = enc.fields(
            value, "header", 9
        )
        return cls(
            version=enc.as_int(version, "header.version", 0, 2**32 - 1),
            height=enc.as_int(height, "header.height", 0, 2**63 - 1),
            parent=enc.as_bytes(parent, "header.parent", size=HASH_SIZE),
            timestamp=enc.as_int(timestamp, "header.timestamp", 0, 2**63 - 1),
            bits=enc.as_int(bits, "header.bits", 0, 2**32 - 1),
            tx_root=enc.as_bytes(tx_root, "header.tx_root", size=HASH_SIZE),
            state_root=enc.as_bytes(state_root, "header.state_root", size=HASH_SIZE),
            miner=enc.as_bytes(miner, "header.miner", size=ADDRESS_HASH_SIZE),
            nonce=enc.as_bytes(nonce, "header.nonce", size=NONCE_SIZE),
        )

    @classmethod
    def decode(cls, data: bytes) -> Header:
        return cls.from_list(enc.unpack(data, what="header", max_size=MAX_HEADER_BYTES))


_BLOCK_PREFIX = enc.array_header(2)


@dataclass(frozen=True, slots=True)
class Block:
    header: Header
    txs: tuple[Transaction, ...]
    # The canonical encoding when known (kept by `decode`, which has checked that it is canonical):
    # storing a received block then costs no re-encoding of its thousand transactions.
    _encoded: bytes | None = field(default=None, init=False, repr=False, compare=False)

    def to_list(self) -> list[Any]:
        return [self.header.to_list(), [tx.to_list() for tx in self.txs]]

    def encode(self) -> bytes:
        encoded = self._encoded
        if encoded is None:
            encoded = enc.pack(self.to_list())
            object.__setattr__(self, "_encoded", encoded)
        return encoded

    @property
    def hash(self) -> bytes:
        return self.header.hash

    @classmethod
    def decode(cls, data: bytes, *, max_size: int = MAX_BLOCK_BYTES) -> Block:
        """Strict decode; each transaction keeps its own canonical encoding (its id, its signing
        message and its store row are slices or hashes of it, never re-encoded)."""
        header, tx_list, encodings = block_parts(data, max_size=max_size)
        decoded = []
        for value, encoded in zip(tx_list, encodings):
            tx = Transaction.from_list(value)
            object.__setattr__(tx, "_encoded", encoded)
            decoded.append(tx)
        block = cls(header, tuple(decoded))
        object.__setattr__(block, "_encoded", data)
        return block


def block_parts(data: bytes, *, max_size: int = MAX_BLOCK_BYTES) -> tuple[Header, list[Any], list[bytes]]:
    """A canonical block's header, its transactions as plain lists, and each transaction's
    encoding, without building the transactions: enough to check a stored block against its
    hash and tx root (what a node does before serving one) at a third of a full decode's cost."""
    header, txs = enc.fields(enc.load(data, what="block", max_size=max_size), "block", 2)
    tx_list = enc.as_list(txs, "block.txs", max_len=MAX_BLOCK_TXS)
    pack = enc.pack
    encodings = [pack(tx) for tx in tx_list]
    canonical = _BLOCK_PREFIX + pack(header) + enc.array_header(len(encodings)) + b"".join(encodings)
    if canonical != data:
        raise DecodeError("non-canonical", "block does not re-encode to the same bytes")
    return Header.from_list(header), tx_list, encodings
