"""The treasury's kinds through `neuro tx build|sign|show` (offline, built, signed, decoded back),
and the parsing `neuro treasury` and `neuro wallet redeem` do before anything is sent."""

from __future__ import annotations

from pathlib import Path

import pytest

from chain.crypto import public_key_of
from chain.devnet_keys import devnet_seed
from chain.treasury_types import BuybackOffer, BuybackSell, Voucher, VoucherTicket
from cli.output import CliError
from cli.treasury import expiry_height
from tests.support.chain_builders import account_of
from tests.unit.cli.test_market_cli import DEVNET, JOB, Neuro, build_and_sign, neuro  # noqa: F401 (fixture)
from wallet.keys import WalletError
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
