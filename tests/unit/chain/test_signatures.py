"""Ed25519 as the chain checks it: strict libsodium rules, domain- and chain-separated messages."""

from __future__ import annotations

from collections.abc import Container
from concurrent.futures import ThreadPoolExecutor

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from chain.crypto import public_key_of, sign, start_verify_many, verify, verify_many
from chain.errors import InvalidBlock, InvalidTransaction, RejectKind
from chain.market_types import AwardEntry, Bid, JobAward
from chain.params import BLOCK_VERSION, ChainParams
from chain.types import Block, Header, Transaction, Transfer
from chain.validation import (
    SignatureChecks,
    bid_signature_items,
    check_block,
    check_transaction,
    tx_root,
)
from tests.support.chain_builders import numbered_seed

# The group order of Ed25519's prime-order subgroup.
L = 2**252 + 27742317777372353535851937790883648493

# Encodings of the eight points of small order (libsodium's blocklist, first eight entries):
# the identity, the point of order 2, two of order 4 and four of order 8 (with both sign bits).
SMALL_ORDER_POINTS = [
    bytes.fromhex(h)
    for h in (
        "0100000000000000000000000000000000000000000000000000000000000000",
        "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
        "0000000000000000000000000000000000000000000000000000000000000000",
        "0000000000000000000000000000000000000000000000000000000000000080",
        "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05",
        "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a",
        "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc85",
        "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa",
    )
]
IDENTITY = SMALL_ORDER_POINTS[0]
# R = identity, S = 0: [S]B = R + [k]A holds for A = identity whatever the message.
FORGED = IDENTITY + bytes(32)

SEED = numbered_seed(1)
PUBLIC = public_key_of(SEED)
CHAIN_A = bytes([0xAA]) * 32
CHAIN_B = bytes([0xBB]) * 32


def transfer(chain_id: bytes = CHAIN_A, sender: bytes = PUBLIC) -> Transaction:
    return Transaction(chain_id, sender, 0, 1, Transfer(bytes(20), 100))


def test_valid_signature_is_accepted() -> None:
    tx = transfer().signed(SEED)
    assert verify(PUBLIC, tx.signing_message(), tx.signature)
    check_transaction(tx, CHAIN_A)


def test_signature_over_another_message_is_rejected() -> None:
    signature = sign(SEED, b"one message")
    assert verify(PUBLIC, b"one message", signature)
    assert not verify(PUBLIC, b"another message", signature)


def test_signature_for_another_chain_is_rejected() -> None:
    signed_on_a = transfer(CHAIN_A).signed(SEED)
    replayed_on_b = Transaction(
        CHAIN_B, PUBLIC, 0, 1, signed_on_a.payload, signed_on_a.signature
    )
    with pytest.raises(InvalidTransaction) as info:
        check_transaction(replayed_on_b, CHAIN_B)
    assert info.value.reason == "bad-tx-signature"
    with pytest.raises(InvalidTransaction) as info:
        check_transaction(signed_on_a, CHAIN_B)
    assert info.value.reason == "bad-tx-chain-id"
    # the peer is told which network it sent to and which one it signed for
    assert (info.value.expected, info.value.got) == (CHAIN_B.hex(), CHAIN_A.hex())


def test_signing_message_is_domain_separated() -> None:
    tx = transfer()
    assert tx.signing_message().startswith(b"neuro-tx-v1")
    assert tx.signing_message() != tx.encode()


def test_openssl_accepts_the_forged_signature_that_we_refuse() -> None:
    # What makes the next test meaningful: the forgery is real for a lenient verifier.
    Ed25519PublicKey.from_public_bytes(IDENTITY).verify(FORGED, b"pay mallory 1000 NTK")
    assert not verify(IDENTITY, b"pay mallory 1000 NTK", FORGED)


@pytest.mark.parametrize("point", SMALL_ORDER_POINTS, ids=lambda p: p.hex()[:8] + p.hex()[-2:])
def test_small_order_public_keys_are_rejected(point: bytes) -> None:
    message = transfer(sender=point).signing_message()
    for signature in (bytes(64), FORGED, point + bytes(32), sign(SEED, message)):
        assert not verify(point, message, signature)
    tx = Transaction(CHAIN_A, point, 0, 1, Transfer(bytes(20), 100), FORGED)
    with pytest.raises(InvalidTransaction) as info:
        check_transaction(tx, CHAIN_A)
    assert info.value.reason == "bad-tx-signature"


def test_malleated_signature_is_rejected() -> None:
    message = b"malleate me"
    signature = sign(SEED, message)
    s = int.from_bytes(signature[32:], "little")
    malleated = signature[:32] + (s + L).to_bytes(32, "little")
    assert malleated != signature
    # (S + L)B = SB, so only a canonical-S check tells the two apart.
    with pytest.raises(InvalidSignature):
        Ed25519PublicKey.from_public_bytes(PUBLIC).verify(malleated, message)
    assert verify(PUBLIC, message, signature)
    assert not verify(PUBLIC, message, malleated)


@pytest.mark.parametrize(
    ("public_key", "signature"),
    [(PUBLIC[:31], bytes(64)), (PUBLIC, bytes(63)), (b"", b""), (PUBLIC + b"\x00", bytes(64))],
)
def test_wrong_sizes_return_false_never_raise(public_key: bytes, signature: bytes) -> None:
    assert verify(public_key, b"m", signature) is False


def test_flipped_bit_in_signature_is_rejected() -> None:
    signature = bytearray(sign(SEED, b"m"))
    signature[10] ^= 1
    assert not verify(PUBLIC, b"m", bytes(signature))


def test_verify_many_agrees_with_verify_on_threads() -> None:
    items = []
    for index in range(100):
        seed = numbered_seed(index)
        message = b"message %d" % index
        signature = sign(seed, message)
        if index % 7 == 0:
            signature = sign(seed, b"something else")
        items.append((public_key_of(seed), message, signature))
    expected = [verify(*item) for item in items]
    assert expected.count(False) == 15
    with ThreadPoolExecutor(2) as pool:
        assert verify_many(items, pool) == expected
    assert verify_many(items) == expected


# ---- bids carried by an award: checked with the transaction (the mempool's check) ------------

JOB = bytes([0x10]) * 32
WORKERS = [numbered_seed(10 + n) for n in range(3)]


def signed_bid(seed: bytes, *, signer: bytes | None = None, price: int = 500) -> Bid:
    return Bid(CHAIN_A, JOB, public_key_of(seed), price, 4, 100).signed(signer or seed)


def award_of(*bids: Bid) -> Transaction:
    entries = tuple(AwardEntry(b, (n,)) for n, b in enumerate(bids))
    return Transaction(CHAIN_A, PUBLIC, 0, 1, JobAward(JOB, entries)).signed(SEED)


def test_award_with_good_bids_passes() -> None:
    tx = award_of(*(signed_bid(seed) for seed in WORKERS))
    check_transaction(tx, CHAIN_A)
    assert bid_signature_items(tx) == [
        (public_key_of(seed), signed_bid(seed).signing_message(), signed_bid(seed).signature)
        for seed in WORKERS
    ]


def test_transfer_carries_no_bid_signatures() -> None:
    assert bid_signature_items(transfer().signed(SEED)) == []


@pytest.mark.parametrize("bad", [0, 1, 2])
def test_award_naming_its_bad_bid_is_refused(bad: int) -> None:
    bids = [signed_bid(seed, signer=WORKERS[0] if n == bad else None) for n, seed in enumerate(WORKERS)]
    if bad == 0:  # a bid signed by its own worker, then altered: the signature no longer covers it
        good = bids[0]
        bids[0] = Bid(good.chain_id, good.job_id, good.worker, good.unit_price + 1,
                      good.max_shards, good.expiry, good.signature)
    with pytest.raises(InvalidTransaction) as info:
        check_transaction(award_of(*bids), CHAIN_A)
    assert (info.value.reason, info.value.kind) == ("bad-bid-signature", RejectKind.INVALID)
    assert info.value.detail == f"bid {bad} of the award"


def test_bad_award_signature_comes_before_its_bids() -> None:
    tx = award_of(signed_bid(WORKERS[0], signer=WORKERS[1]))
    forged = Transaction(tx.chain_id, tx.sender, tx.nonce, tx.fee, tx.payload, sign(SEED, b"other"))
    with pytest.raises(InvalidTransaction) as info:
        check_transaction(forged, CHAIN_A)
    assert info.value.reason == "bad-tx-signature"


# ---- a block's signatures: transactions' first, then the bids its awards carry ---------------

PARAMS = ChainParams("test", "tntk", 0, 60, 3600, 0x2100FFFF, 0x2100FFFF, 50, 1000)


def block_of(*txs: Transaction) -> Block:
    header = Header(BLOCK_VERSION, 1, bytes(32), 60, 0x2100FFFF, tx_root(txs), bytes(32), bytes(20), bytes(8))
    return Block(header, txs)


def unsigned(tx: Transaction) -> Transaction:
    return Transaction(tx.chain_id, tx.sender, tx.nonce, tx.fee, tx.payload, sign(SEED, b"not this tx"))


def block_refusal(block: Block, verified: Container[bytes] = ()) -> str:
    with pytest.raises(InvalidBlock) as info:
        check_block(block, PARAMS, CHAIN_A, verified=verified)
    assert info.value.kind is RejectKind.INVALID
    return str(info.value)


def test_block_names_the_transaction_of_its_bad_signature() -> None:
    good, bad_bid = transfer().signed(SEED), award_of(signed_bid(WORKERS[0], signer=WORKERS[1]))
    check_block(block_of(good, award_of(*(signed_bid(seed) for seed in WORKERS))), PARAMS, CHAIN_A)
    # the first bid checked is the bad one: it is still a bid's signature
    assert block_refusal(block_of(good, bad_bid)) == "bad-bid-signature: tx 1"
    assert block_refusal(block_of(bad_bid, good)) == "bad-bid-signature: tx 0"
    assert block_refusal(block_of(good, unsigned(award_of(signed_bid(WORKERS[0]))))) == "bad-tx-signature: tx 1"
    # every transaction's own signature is judged before any bid's
    assert block_refusal(block_of(bad_bid, unsigned(transfer(sender=PUBLIC)))) == "bad-tx-signature: tx 1"
    # a transaction the mempool verified is not checked again, nor are the bids it carries
    forged = unsigned(transfer())
    check_block(block_of(forged), PARAMS, CHAIN_A, verified={forged.txid})
    assert block_refusal(block_of(forged, bad_bid), verified={forged.txid}) == "bad-bid-signature: tx 1"
    check_block(block_of(forged, bad_bid), PARAMS, CHAIN_A, verified={forged.txid, bad_bid.txid})


def test_only_the_bad_bid_among_an_awards_bids_fails_the_block() -> None:
    bids = [signed_bid(seed, signer=WORKERS[2] if n == 1 else None) for n, seed in enumerate(WORKERS)]
    assert block_refusal(block_of(transfer().signed(SEED), award_of(*bids))) == "bad-bid-signature: tx 1"


def test_signature_checks_without_bids_blame_the_transaction() -> None:
    checks = SignatureChecks([0, 3], start_verify_many([(PUBLIC, b"m", sign(SEED, b"m")), (PUBLIC, b"m", bytes(64))]))
    with pytest.raises(InvalidBlock) as info:
        checks.require()
    assert str(info.value) == "bad-tx-signature: tx 3"
