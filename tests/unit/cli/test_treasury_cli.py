"""The treasury's kinds through `neuro tx build|sign|show` (offline, built, signed, decoded back),
and the parsing `neuro treasury` and `neuro wallet redeem` do before anything is sent."""

from __future__ import annotations

from pathlib import Path

import pytest

from chain.crypto import public_key_of, verify
from chain.devnet_keys import devnet_seed
from chain.treasury_types import BuybackOffer, BuybackSell, Voucher, VoucherTicket
from cli.output import CliError
from cli.treasury import expiry_height, signed_voucher
from tests.support.chain_builders import account_of
from tests.unit.cli.test_market_cli import DEVNET, JOB, Neuro, build_and_sign, neuro  # noqa: F401 (fixture)
from wallet.keys import Key, WalletError
from wallet.treasury_json import format_price, parse_price

NTK = 10**9


def test_treasury_kinds_build_sign_and_decode(neuro: Neuro, tmp_path: Path) -> None:  # noqa: F811
    doc, signed = build_and_sign(neuro, tmp_path, "--kind", "buyback-offer", "--currency", "usd", "--ref-price",
                                 "1.25", "--cap", "100", "--expiry", "500")
    assert signed.payload == BuybackOffer(b"USD", 1_250_000, 100 * NTK, 500)
    assert (doc["currency"], doc["price"], doc["cap"]) == ("USD", "1.25", "100")
    _, sold = build_and_sign(neuro, tmp_path, "--kind", "buyback-sell", "--offer", JOB, "--amount", "2.5")
    assert sold.payload == BuybackSell(bytes.fromhex(JOB), 2_500_000_000)
    claim_seed = bytes(range(32))
    voucher = Voucher(DEVNET.chain_id, bytes(range(16)), 3 * NTK, b"", 99, public_key_of(devnet_seed("treasury")),
                      public_key_of(claim_seed)).signed(devnet_seed("treasury"))
    held = tmp_path / "voucher.txt"
    held.write_text(VoucherTicket(voucher, claim_seed).to_text() + "\n")
    doc, redeemed = build_and_sign(neuro, tmp_path, "--kind", "redeem", "--voucher", str(held))
    assert redeemed.payload == VoucherTicket(voucher, claim_seed).redeem(account_of(devnet_seed("alice")))
    assert (doc["voucher_id"], doc["amount"], doc["expiry"]) == (bytes(range(16)).hex(), "3", 99)
    assert doc["voucher"] == voucher.encode().hex() and "redeemer" not in doc  # the secret stays out
    neuro.fails("bad-voucher", "tx", "build", "--kind", "redeem", "--voucher", "ntkv1AAAA", "--from", "alice",
                "--nonce", "0", "--chain", "devnet")
    neuro.fails("bad-price", "tx", "build", "--kind", "buyback-offer", "--currency", "USD", "--ref-price", "1.2345678",
                "--cap", "1", "--expiry", "9", "--from", "alice", "--nonce", "0", "--chain", "devnet")


def test_prices_are_millionths() -> None:
    assert [parse_price(p) for p in ("1.25", "0.000001", 3, "12")] == [1_250_000, 1, 3_000_000, 12_000_000]
    assert [format_price(m) for m in (1_250_000, 1, 3_000_000)] == ["1.25", "0.000001", "3"]
    for bad in ("0", "-1", "1.", "1e3", True, "1.0000001"):
        with pytest.raises(WalletError):
            parse_price(bad)


def test_expiry_is_a_height_or_a_duration_in_blocks() -> None:
    assert expiry_height("500", tip=10, block_time=2) == 500
    assert expiry_height("1d", tip=10, block_time=60) == 10 + 1440
    assert expiry_height("90m", tip=0, block_time=2) == 2700
    assert expiry_height("1s", tip=7, block_time=60) == 8  # at least the next block
    for bad, reason in (("10", "expiry-past"), ("tomorrow", "bad-expiry"), ("5w", "bad-expiry")):
        with pytest.raises(CliError) as caught:
            expiry_height(bad, tip=10, block_time=2)
        assert caught.value.reason == reason


def test_signed_voucher_binds_a_beneficiary_or_carries_its_claim_secret() -> None:
    treasury, alice = Key(devnet_seed("treasury")), account_of(devnet_seed("alice"))
    for_alice = signed_voucher(DEVNET.chain_id, treasury, 3 * NTK, alice, 99)
    assert (for_alice.voucher.beneficiary, for_alice.voucher.claim_key, for_alice.claim_seed) == (alice, b"", b"")
    bearer = signed_voucher(DEVNET.chain_id, treasury, 3 * NTK, b"", 99)
    assert bearer.voucher.beneficiary == b"" and bearer.voucher.claim_key == public_key_of(bearer.claim_seed)
    assert for_alice.voucher.voucher_id != bearer.voucher.voucher_id  # fresh ids: each is redeemable once
    for ticket in (for_alice, bearer):
        voucher = ticket.voucher
        assert (voucher.chain_id, voucher.amount, voucher.expiry, voucher.treasury) == (
            DEVNET.chain_id, 3 * NTK, 99, treasury.public_key)
        assert verify(treasury.public_key, voucher.signing_message(), voucher.signature)
        assert VoucherTicket.from_text(ticket.to_text()) == ticket


def test_what_is_not_a_voucher_is_refused_as_one(tmp_path: Path) -> None:
    from cli.treasury import MAX_VOUCHER_FILE, read_voucher

    binary = tmp_path / "binary"
    binary.write_bytes(b"\xff\xfe\x00garbage")
    huge = tmp_path / "huge"
    huge.write_bytes(b"ntkv1" + b"A" * MAX_VOUCHER_FILE)
    for given in ("a" * 300, "x\0y", str(binary), str(huge), "ntkv1AAAA"):
        with pytest.raises((CliError, WalletError)) as refused:
            read_voucher(given)
        assert refused.value.reason == "bad-voucher", (given[:20], refused.value)
