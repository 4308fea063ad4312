"""Vouchers and buybacks through `neuro` against a real mining devnet daemon.

The treasury (the well-known devnet key, used when `neuro treasury` gets no --from) issues a
voucher; a brand-new wallet that holds nothing redeems it in one step and sees the balance, less
the fee that came out of the voucher; a second redemption is refused with its reason, by the CLI
and by the daemon for a transaction signed anyway. Then the treasury posts a buyback offer, the
new wallet sells into it, the tokens are burned (`neuro chain supply`) and the claim is listed.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from chain.crypto import address_hash, public_key_of
from chain.devnet_keys import devnet_address, devnet_seed
from chain.treasury_types import VoucherTicket
from chain.types import Transaction
from tests.functional.cli_wallet import Neuro
from tests.support.daemons import Daemon, RpcCallError

pytestmark = pytest.mark.functional


@pytest.fixture
def node(daemons: Callable[..., Daemon]) -> Daemon:
    return daemons("node", mine=True, block_interval=0.3)


def test_a_new_wallet_redeems_a_voucher_once_and_sells_into_a_buyback(node: Daemon, tmp_path: Path) -> None:
    neuro = Neuro(node.datadir, tmp_path / "keystore")
    neuro.ok("wallet", "new", "newcomer")
    newcomer = neuro.json("wallet", "show", "newcomer")["address"]
    assert neuro.json("wallet", "balance", "newcomer")["balance_ntk"] == "0"

    # the treasury issues; the voucher is one string, also written to a file
    voucher_file = tmp_path / "voucher.txt"
    issued = neuro.json("treasury", "voucher", "issue", "25", "--expires", "1d", "--out", str(voucher_file))
    text = issued["voucher"]
    assert text.startswith("ntkv1") and voucher_file.read_text().strip() == text
    assert issued["amount"] == "25" and issued["beneficiary"] is None
    assert neuro.json("treasury", "voucher", "status", text)["redeemed"] is False

    # redeemed in one step from the file, into the default key (the only one), fee out of the voucher
    redeemed = neuro.json("wallet", "redeem", str(voucher_file), "--fee", "0.001", "--wait", "60")
    assert redeemed["status"] == "confirmed" and redeemed["kind"] == "redeem"
    assert neuro.json("wallet", "balance", "newcomer")["balance_ntk"] == "24.999"
    status = neuro.json("treasury", "voucher", "status", issued["voucher_id"])
    assert (status["redeemed"], status["account"], status["height"]) == (True, newcomer, redeemed["height"])

    # twice: the CLI refuses by name; a transaction signed anyway is refused by the daemon by name
    assert "was redeemed in block" in neuro.fails("voucher-already-redeemed", "wallet", "redeem", text)
    chain_id = bytes.fromhex(node.rpc("node_status")["chain_id"])
    other = devnet_seed("a second newcomer")
    ticket = VoucherTicket.from_text(text)
    claimed = ticket.redeem(address_hash(public_key_of(other)))
    again = Transaction(chain_id, public_key_of(other), 0, 10_000, claimed).signed(other)
    with pytest.raises(RpcCallError) as refused:
        node.rpc("tx_submit", tx=again.encode().hex())
    assert refused.value.reason == "voucher-already-redeemed"

    # a voucher for someone else is refused before anything is sent
    named = neuro.json("treasury", "voucher", "issue", "1", "--to", devnet_address("bob"))["voucher"]
    neuro.fails("voucher-beneficiary-mismatch", "wallet", "redeem", named)
    neuro.fails("bad-voucher", "wallet", "redeem", text[:-3] + "AAA")

    # buyback: the treasury offers, the newcomer sells 10 NTK, they are burned and a claim recorded
    before = neuro.json("chain", "supply")
    offer = neuro.json("treasury", "buyback", "offer", "--price", "1.25", "--cap", "100", "--expires", "1d",
                       "--wait", "60")
    assert offer["status"] == "confirmed" and offer["kind"] == "buyback-offer"
    listed = neuro.json("treasury", "buyback", "list", "--open")
    assert [(o["offer"], o["price"], o["cap_ntk"]) for o in listed] == [(offer["txid"], "1.25", "100")]
    sold = neuro.json("wallet", "sell-buyback", offer["txid"], "10", "--wait", "60")
    assert sold["status"] == "confirmed"
    assert neuro.json("wallet", "balance", "newcomer")["balance_ntk"] == "14.99899"
    after = neuro.json("chain", "supply")
    assert int(after["burned"]) - int(before["burned"]) == 10 * 10**9
    assert int(after["circulating"]) == int(after["issued"]) - int(after["burned"])
    claims = neuro.json("treasury", "buyback", "claims", "--seller", "newcomer")
    assert [(c["offer"], c["amount_ntk"], c["value"], c["currency"]) for c in claims] == [
        (offer["txid"], "10", "12.5", "USD")]
    neuro.fails("offer-over-cap", "wallet", "sell-buyback", offer["txid"], "91")
    assert "burned" in neuro.ok("chain", "supply")

    # the node's own store check: balances, stake, escrow and burned add up to the supply
    report = node.rpc("node_verify_db")
    assert report["ok"] is True, json.dumps(report)
