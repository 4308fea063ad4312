"""The treasury in consensus: vouchers redeemed into new accounts, buybacks that burn, every named
refusal, and supply through reorgs.

Everything goes through real blocks on the devnet chain, whose genesis names the treasury (the
well-known devnet key). After every block the supply must balance and the incremental state root
equal one recomputed from scratch (`assert_supply`); a refusal is checked on a block carrying the
transaction (which must move nothing) and on the mempool's check (`refused`).
"""

from __future__ import annotations

import os
from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chain import schema
from chain.crypto import public_key_of
from chain.devnet_keys import devnet_seed
from chain.errors import DecodeError, RejectKind
from chain.jobs import Event
from chain.state import Account
from chain.treasury_rules import claim_key, offer_key, voucher_key
from chain.treasury_types import (
    BuybackOffer,
    BuybackSell,
    Claim,
    Offer,
    Redeem,
    Redemption,
    Voucher,
    VoucherTicket,
)
from chain.types import PAYLOAD_TYPES, Transaction
from tests.support.chain_builders import (
    MINER,
    account_of,
    chain_split,
    import_all,
    mine_blocks,
    new_chain,
    numbered_seed,
)
from tests.support.market import (
    ALICE,
    BOB,
    NTK,
    acct,
    assert_supply,
    market_chain_on,
    market_genesis,
    refused,
    step,
    tx,
)
from tests.unit.chain.marketplace_checks import block_events, overflow_refusal, rejection

TREASURY = devnet_seed("treasury")
FEE = 10
USD = b"USD"
PRICE = 1_250_000  # 1.25 USD per NTK


def voucher(chain_id: bytes, amount: int = 5 * NTK, *, expiry: int = 1_000, beneficiary: bytes = b"",
            signer: bytes = TREASURY, key: bytes | None = None, voucher_id: bytes | None = None) -> VoucherTicket:
    """A voucher ticket signed by ``signer`` (the treasury unless told), naming ``key`` as its
    signer; without a beneficiary, with a fresh claim key whose secret the ticket holds."""
    claim_seed = b"" if beneficiary else os.urandom(32)
    unsigned = Voucher(chain_id, voucher_id or os.urandom(16), amount, beneficiary, expiry,
                       key or public_key_of(signer), public_key_of(claim_seed) if claim_seed else b"")
    return VoucherTicket(unsigned.signed(signer), claim_seed)


def redeem(chain_id: bytes, seed: bytes, ticket: VoucherTicket, nonce: int = 0, fee: int = FEE,
           payload: Redeem | None = None) -> Transaction:
    """``seed``'s Redeem of ``ticket``, claimed for its own account (or carrying ``payload``)."""
    body = payload or ticket.redeem(account_of(seed))
    return Transaction(chain_id, public_key_of(seed), nonce, fee, body).signed(seed)


def record(chain: object, key: bytes) -> bytes | None:
    return chain.record(key)  # type: ignore[attr-defined, no-any-return]


# ---- encodings --------------------------------------------------------------------------------


def test_kinds_are_registered_ten_above_the_market() -> None:
    assert {k: PAYLOAD_TYPES[k] for k in (22, 23, 24)} == {22: Redeem, 23: BuybackOffer, 24: BuybackSell}


@given(st.binary(min_size=32, max_size=32), st.binary(min_size=16, max_size=16), st.integers(1, 2**63 - 1),
       st.sampled_from([b"", bytes(range(20))]), st.integers(0, 2**63 - 1), st.binary(min_size=32, max_size=32))
def test_a_voucher_survives_its_text_form(chain_id: bytes, vid: bytes, amount: int, beneficiary: bytes,
                                          expiry: int, seed: bytes) -> None:
    claim_seed = b"" if beneficiary else seed
    v = Voucher(chain_id, vid, amount, beneficiary, expiry, bytes(32), public_key_of(seed) if claim_seed else b"",
                bytes(64))
    ticket = VoucherTicket(v, claim_seed)
    text = ticket.to_text()
    assert text.startswith("ntkv1") and "=" not in text
    assert VoucherTicket.from_text(f"  {text[:40]}\n{text[40:]} ") == ticket  # line breaks of a pasted string
    assert Voucher.decode(v.encode()) == v
    assert Redeem.from_list(ticket.redeem(bytes(20)).to_list()) == ticket.redeem(bytes(20))


def test_a_damaged_or_foreign_string_is_refused_by_name() -> None:
    ticket = voucher(bytes(32))
    text = ticket.to_text()
    flipped = text[:20] + ("A" if text[20] != "A" else "B") + text[21:]
    for bad, why in ((flipped, "check mismatch"), ("ntkv2" + text[5:], "starts with"), (text + "!", "base64url"),
                     ("ntkv1", "check mismatch")):
        with pytest.raises(DecodeError) as caught:
            VoucherTicket.from_text(bad)
        assert caught.value.reason == "bad-voucher" and why in caught.value.detail
    other_secret = VoucherTicket(ticket.voucher, os.urandom(32)).to_text()
    with pytest.raises(DecodeError, match="claim secret"):
        VoucherTicket.from_text(other_secret)


@pytest.mark.parametrize("seed_size, claim_key", [(31, False), (1, False), (32, False), (31, True), (0, True)])
def test_a_claim_secret_of_the_wrong_size_is_refused(seed_size: int, claim_key: bool) -> None:
    """A well-checked string whose secret does not fit its voucher: a short one beside a
    beneficiary was accepted, and redeeming it crashed in the signer ("Invalid seed")."""
    issued = voucher(bytes(32), beneficiary=b"" if claim_key else bytes(range(20)))
    text = VoucherTicket(issued.voucher, b"\x07" * seed_size).to_text()
    with pytest.raises(DecodeError) as caught:
        VoucherTicket.from_text(text)
    assert caught.value.reason in ("bad-encoding", "bad-voucher") and "claim" in caught.value.detail


# ---- vouchers ---------------------------------------------------------------------------------


def test_a_new_account_redeems_a_voucher_and_its_fee_comes_out_of_it() -> None:
    chain = new_chain()
    newcomer = numbered_seed(500)
    v = voucher(chain.chain_id)
    treasury_before, miner_before = acct(chain, TREASURY).balance, acct(chain, MINER).balance
    step(chain, redeem(chain.chain_id, newcomer, v))
    assert acct(chain, newcomer).balance == 5 * NTK - FEE and acct(chain, newcomer).nonce == 1
    assert acct(chain, TREASURY).balance == treasury_before - 5 * NTK
    assert acct(chain, MINER).balance == miner_before + FEE + chain.params.block_reward(chain.height)
    assert Redemption.decode(record(chain, voucher_key(v.voucher.voucher_id)) or b"") == Redemption(
        chain.height, account_of(newcomer), 5 * NTK, FEE)
    assert chain.totals().burned == 0  # a redemption moves tokens, it issues or burns none
    # once only, whoever tries
    assert refused(chain, redeem(chain.chain_id, newcomer, v, nonce=1)) == "voucher-already-redeemed"
    assert refused(chain, redeem(chain.chain_id, numbered_seed(501), v)) == "voucher-already-redeemed"


def test_a_voucher_naming_a_beneficiary_pays_only_it() -> None:
    chain = new_chain()
    named = numbered_seed(502)
    v = voucher(chain.chain_id, beneficiary=account_of(named))
    assert refused(chain, redeem(chain.chain_id, numbered_seed(503), v)) == "voucher-beneficiary-mismatch"
    step(chain, redeem(chain.chain_id, named, v))
    assert acct(chain, named).balance == 5 * NTK - FEE


INVALID, LOCAL, STALE, MISSING = RejectKind.INVALID, RejectKind.LOCAL, RejectKind.STALE, RejectKind.MISSING


def test_every_voucher_refusal_is_named() -> None:
    """Each refusal with its details and the kind the mempool gives it: a forged, foreign or
    stolen voucher (INVALID) penalises the peer relaying it; a spent or expired one (STALE) and a
    short treasury (LOCAL) do not."""
    chain = new_chain()
    cid, who = chain.chain_id, numbered_seed(504)
    foreign = bytes([0xAB]) * 32
    assert rejection(chain, redeem(cid, who, voucher(foreign))) == (
        "voucher-wrong-chain", "the voucher pays on another network", cid.hex()[:16], "ab" * 8, INVALID)
    forged = ("voucher-forged", "not signed by the treasury's key", None, None, INVALID)
    assert rejection(chain, redeem(cid, who, voucher(cid, signer=ALICE))) == forged  # alice's own key
    posing = voucher(cid, signer=ALICE, key=public_key_of(TREASURY))  # the treasury's key, alice's signature
    assert rejection(chain, redeem(cid, who, posing)) == forged
    good = voucher(cid)
    altered = VoucherTicket(replace(good.voucher, amount=6 * NTK), good.claim_seed)  # raised after signing
    assert rejection(chain, redeem(cid, who, altered)) == forged
    # a copy of someone's Redeem sent from another account: the claim names the first sender
    stolen = ("voucher-claim-invalid", ("the claim does not name this sender: only the holder of the voucher's "
              "secret can redeem it"), None, None, INVALID)
    assert rejection(chain, redeem(cid, who, good, payload=good.redeem(account_of(numbered_seed(509))))) == stolen
    assert rejection(chain, redeem(cid, who, good, payload=Redeem(good.voucher))) == stolen
    named = voucher(cid, beneficiary=account_of(who))
    with_claim = Redeem(named.voucher, bytes(64))
    assert rejection(chain, redeem(cid, who, named, payload=with_claim)) == (
        "voucher-claim-invalid", "a voucher for a beneficiary takes no claim", None, None, INVALID)
    other = numbered_seed(503)
    assert rejection(chain, redeem(cid, other, named)) == (
        "voucher-beneficiary-mismatch", "the voucher names another account", account_of(who).hex(),
        account_of(other).hex(), INVALID)
    assert rejection(chain, redeem(cid, who, voucher(cid, expiry=chain.height))) == (
        "voucher-expired", "", f"<= {chain.height}", chain.height + 1, STALE)
    assert rejection(chain, redeem(cid, who, voucher(cid, amount=FEE - 1))) == (
        "fee-above-voucher", "the fee is paid out of the voucher", f"<= {FEE - 1}", FEE, INVALID)
    balance = acct(chain, TREASURY).balance
    assert rejection(chain, redeem(cid, who, voucher(cid, amount=balance + 1))) == (
        "treasury-balance-short", "", f">= {balance + 1}", balance, LOCAL)
    # twice in one block: the second is refused, and with it the block
    twice = voucher(cid)
    assert refused(chain, redeem(cid, who, twice), redeem(cid, numbered_seed(505), twice)) == (
        "voucher-already-redeemed")
    # the last height a voucher names is still good
    last = voucher(cid, expiry=chain.height + 1)
    step(chain, redeem(cid, who, last))
    assert acct(chain, who).balance == 5 * NTK - FEE
    spent = voucher(cid, beneficiary=account_of(who))
    step(chain, redeem(cid, who, spent, nonce=1))
    assert rejection(chain, redeem(cid, who, spent, nonce=2)) == (
        "voucher-already-redeemed", spent.voucher.voucher_id.hex(), None, None, STALE)


def test_a_redemption_moves_the_voucher_from_the_treasury_and_says_so() -> None:
    chain = new_chain()
    newcomer = numbered_seed(510)
    v = voucher(chain.chain_id, amount=3 * NTK)
    note = f"voucher {v.voucher.voucher_id.hex()}"
    treasury = account_of(TREASURY)
    assert block_events(chain, redeem(chain.chain_id, newcomer, v)) == (
        Event("voucher", treasury, 3 * NTK, note=note), Event("redeem", account_of(newcomer), 3 * NTK - FEE, note=note))


def test_a_voucher_may_take_all_the_treasury_holds_and_all_of_itself_as_the_fee() -> None:
    chain = new_chain()
    everything = acct(chain, TREASURY).balance
    step(chain, redeem(chain.chain_id, numbered_seed(511), voucher(chain.chain_id, amount=everything)))
    assert acct(chain, TREASURY).balance == 0 and acct(chain, numbered_seed(511)).balance == everything - FEE
    chain = new_chain()
    step(chain, redeem(chain.chain_id, numbered_seed(512), voucher(chain.chain_id, amount=FEE)))
    assert acct(chain, numbered_seed(512)) == Account(0, 1)  # nothing left after the fee, the nonce used


def test_a_redemption_that_would_overflow_the_redeemer_is_refused() -> None:
    chain = new_chain()
    newcomer = numbered_seed(515)
    assert overflow_refusal(chain, redeem(chain.chain_id, newcomer, voucher(chain.chain_id)),
                            account_of(newcomer)) == "balance-overflow"


def test_without_a_treasury_nothing_is_redeemed_or_offered() -> None:
    genesis = market_genesis()
    genesis.names.pop("treasury")
    chain = market_chain_on(genesis)
    none = ("no-treasury", "this network's genesis names no treasury account", None, None, LOCAL)
    assert rejection(chain, redeem(chain.chain_id, numbered_seed(513), voucher(chain.chain_id))) == none
    assert rejection(chain, offer_tx(chain)) == none


# ---- buybacks ---------------------------------------------------------------------------------


def offer_tx(chain: object, cap: int = 100 * NTK, expiry: int | None = None, seed: bytes = TREASURY) -> Transaction:
    height = chain.height  # type: ignore[attr-defined]
    return tx(chain, seed, BuybackOffer(USD, PRICE, cap, height + 10 if expiry is None else expiry))  # type: ignore[arg-type]


def test_selling_into_an_offer_burns_the_tokens_and_records_a_claim() -> None:
    chain = new_chain()
    post = offer_tx(chain)
    step(chain, post)
    offer_id = post.txid
    assert Offer.decode(record(chain, offer_key(offer_id)) or b"") == Offer(USD, PRICE, 100 * NTK, 0,
                                                                             chain.height + 9, chain.height)
    issued, alice = chain.totals().issued, acct(chain, ALICE)
    sell = tx(chain, ALICE, BuybackSell(offer_id, 40 * NTK))
    step(chain, sell)
    assert acct(chain, ALICE).balance == alice.balance - 40 * NTK - FEE
    totals = chain.totals()
    assert totals.burned == 40 * NTK and totals.issued == issued + chain.params.block_reward(chain.height)
    assert Claim.decode(record(chain, claim_key(sell.txid)) or b"") == Claim(
        account_of(ALICE), offer_id, 40 * NTK, PRICE, USD, chain.height)
    assert Offer.decode(record(chain, offer_key(offer_id)) or b"").sold == 40 * NTK
    assert [(e.kind, e.amount) for _, e in chain.events(account=account_of(ALICE))][:1] == [("sell", 40 * NTK)]
    assert dict(chain.records(schema.BUYBACK_CLAIM)).keys() == {sell.txid}


def test_every_buyback_refusal_is_named() -> None:
    chain = new_chain()
    assert rejection(chain, offer_tx(chain, seed=ALICE)) == (
        "not-treasury", "only the treasury posts buyback offers", None, None, LOCAL)
    assert rejection(chain, offer_tx(chain, expiry=chain.height)) == (
        "offer-expiry-past", "", f">= {chain.height + 1}", chain.height, LOCAL)
    post = offer_tx(chain, cap=50 * NTK)
    step(chain, post)
    offer_id = post.txid
    unknown = bytes([3]) * 32
    assert rejection(chain, tx(chain, ALICE, BuybackSell(unknown, NTK))) == ("unknown-offer", unknown.hex(), None, None,
                                                                             MISSING)
    over_cap = "offer-over-cap", "the offer buys no more than its cap"
    assert rejection(chain, tx(chain, ALICE, BuybackSell(offer_id, 51 * NTK))) == (
        *over_cap, f"<= {50 * NTK}", 51 * NTK, STALE)
    assert rejection(chain, tx(chain, TREASURY, BuybackSell(offer_id, NTK))) == (
        "treasury-cannot-sell", "the treasury would owe itself", None, None, LOCAL)
    poor = numbered_seed(506)
    step(chain, redeem(chain.chain_id, poor, voucher(chain.chain_id, amount=NTK)))
    assert rejection(chain, tx(chain, poor, BuybackSell(offer_id, NTK))) == (
        "insufficient-balance", "", f">= {NTK}", NTK - 2 * FEE, LOCAL)  # the voucher's fee, then this one's
    step(chain, tx(chain, ALICE, BuybackSell(offer_id, 30 * NTK)))
    # the cap counts what was sold before
    assert rejection(chain, tx(chain, BOB, BuybackSell(offer_id, 21 * NTK))) == (
        *over_cap, f"<= {20 * NTK}", 21 * NTK, STALE)
    step(chain, tx(chain, BOB, BuybackSell(offer_id, 20 * NTK)))
    assert rejection(chain, tx(chain, BOB, BuybackSell(offer_id, 1))) == (*over_cap, "<= 0", 1, STALE)
    repost = offer_tx(chain, expiry=chain.height + 2)
    step(chain, repost)
    step(chain, tx(chain, BOB, BuybackSell(repost.txid, NTK)))  # at its expiry height: still open
    assert rejection(chain, tx(chain, BOB, BuybackSell(repost.txid, NTK))) == (
        "offer-expired", "", f"<= {chain.height}", chain.height + 1, STALE)


def test_an_offer_may_expire_in_its_own_block_and_a_seller_sell_all_it_holds() -> None:
    chain = new_chain()
    post = offer_tx(chain, expiry=chain.height + 1)  # the height of the block that carries it
    step(chain, post)
    assert Offer.decode(record(chain, offer_key(post.txid)) or b"").expiry == chain.height
    chain, poor = new_chain(), numbered_seed(514)
    post = offer_tx(chain)
    step(chain, post)
    step(chain, redeem(chain.chain_id, poor, voucher(chain.chain_id, amount=NTK)))
    everything = NTK - 2 * FEE  # what is left once this sell's fee is paid
    sell = tx(chain, poor, BuybackSell(post.txid, everything))
    assert block_events(chain, sell) == (
        Event("sell", account_of(poor), everything, note=f"buyback {post.txid.hex()}"),
        Event("burn", b"", everything, note="buyback"))
    step(chain, sell)
    assert acct(chain, poor).balance == 0 and chain.totals().burned == everything


# ---- reorgs -------------------------------------------------------------------------------------


def test_supply_redemptions_offers_and_claims_follow_reorgs() -> None:
    chain = new_chain()
    mine_blocks(chain, 1)
    cid = chain.chain_id
    v = voucher(cid)
    post = offer_tx(chain)
    newcomer = numbered_seed(507)
    branch_txs = [redeem(cid, newcomer, v), post, tx(chain, ALICE, BuybackSell(post.txid, 7 * NTK))]
    split = chain_split(chain, 1, 2, a_txs=branch_txs)
    before = chain.state_root()

    import_all(chain, split.a)  # the offer and the sell in one block: the sell sees the offer
    assert_supply(chain)
    assert chain.totals().burned == 7 * NTK and record(chain, voucher_key(v.voucher.voucher_id)) is not None
    assert acct(chain, newcomer).balance == 5 * NTK - FEE

    import_all(chain, split.b)  # heavier: everything of branch a is undone
    assert chain.tip_hash == split.b[-1].hash
    assert_supply(chain)
    assert chain.totals().burned == 0 and acct(chain, newcomer).nonce == 0
    for key in (voucher_key(v.voucher.voucher_id), offer_key(post.txid), claim_key(branch_txs[2].txid)):
        assert record(chain, key) is None
    assert chain.state_root() != before  # b's blocks moved the miner's balance, nothing else

    # the voucher is good again on the new branch, once
    step(chain, redeem(cid, newcomer, v))
    assert acct(chain, newcomer).balance == 5 * NTK - FEE
    assert refused(chain, redeem(cid, newcomer, v, nonce=1)) == "voucher-already-redeemed"


def test_the_treasury_is_part_of_the_chain_id() -> None:
    from chain.devnet_keys import devnet_address
    from chain.genesis import parse_genesis
    from tests.support.chain_builders import genesis_doc

    doc = genesis_doc([ALICE])
    ids = {parse_genesis({**doc, "accounts": {"treasury": devnet_address(name)}}).chain_id
           for name in ("treasury", "bob")}
    assert len(ids) == 2 and parse_genesis(doc).chain_id not in ids
