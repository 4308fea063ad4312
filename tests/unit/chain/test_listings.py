"""Listings in consensus: list, delist, purchase; the fee to the treasury; every named refusal;
encodings; and a reorg that takes a purchase and a listing back out.

Everything goes through real blocks on a devnet chain; after each block the supply balances and
the incremental state root equals one recomputed from scratch (`assert_supply`), which now
covers the listing and purchase records. Refusals are checked on a block carrying the
transaction (which must move nothing) and on the mempool's check (`refused`).
"""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from chain import encoding as enc
from chain.chainstate import ChainState
from chain.errors import RejectKind
from chain.jobs import Event
from chain.listing_rules import listing_store_key, purchase_store_key, sale_split
from chain.listing_types import (
    Delist,
    Listing,
    ListingKind,
    ListingRecord,
    Metric,
    ModelClaim,
    Purchase,
    PurchaseRecord,
)
from chain.types import Transaction
from tests.support.chain_builders import (
    BRANCH_B_MINER,
    DEFAULT_FEE,
    account_of,
    import_all,
    mine_blocks,
)
from tests.support.market import (
    ALICE,
    BOB,
    CAROL,
    NTK,
    acct,
    assert_supply,
    clone_market_chain,
    market_chain,
    market_chain_on,
    market_genesis,
    refused,
    step,
    tx,
)
from tests.unit.chain.marketplace_checks import overflow_refusal, rejection

ROOT = bytes(range(32))
LICENSE = bytes([7]) * 32
KEY = bytes([9]) * 32  # the buyer's X25519 delivery key (the chain only records it)
PRICE = 3 * NTK
CLAIM = ModelClaim((Metric("accuracy", 973_100),), bytes([5]) * 32, "worker.evaluate classify on 1000 real digits")


def _listing(chain: ChainState, kind: ListingKind = ListingKind.DATA, price: int = PRICE, seller: bytes = BOB,
             claim: ModelClaim | None = None) -> Transaction:
    return tx(chain, seller, Listing(int(kind), ROOT, price, LICENSE, claim))


def _listed(chain: ChainState, **kw: Any) -> bytes:
    listing = _listing(chain, **kw)
    step(chain, listing)
    return listing.txid


def _record(chain: ChainState, listing_id: bytes) -> ListingRecord:
    data = chain.record(listing_store_key(listing_id))
    assert data is not None
    return ListingRecord.decode(data)


def _buy(chain: ChainState, listing_id: bytes, buyer: bytes = ALICE, price: int = PRICE) -> Transaction:
    return tx(chain, buyer, Purchase(listing_id, price, KEY))


# ---- flows -------------------------------------------------------------------------------------


def test_a_purchase_pays_the_seller_and_records_the_buyer_and_key() -> None:
    chain = market_chain()
    listing_id = _listed(chain)
    record = _record(chain, listing_id)
    assert (record.seller, record.offer.root, record.offer.price, record.active) == (account_of(BOB), ROOT, PRICE, True)
    bob, alice = acct(chain, BOB).balance, acct(chain, ALICE).balance
    buying = _buy(chain, listing_id)
    step(chain, buying)
    assert acct(chain, BOB).balance == bob + PRICE
    assert acct(chain, ALICE).balance == alice - PRICE - buying.fee
    data = chain.record(purchase_store_key(buying.txid))
    assert data is not None
    assert PurchaseRecord.decode(data) == PurchaseRecord(account_of(ALICE), listing_id, PRICE, KEY, chain.height)
    assert _record(chain, listing_id).sales == 1
    assert chain.events(job_id=listing_id) == [  # newest first
        (chain.height, Event("pay", account_of(BOB), PRICE, listing_id, note="sale")),
        (chain.height, Event("pay", account_of(ALICE), PRICE, listing_id, note="purchase")),
    ]


def test_the_protocol_fee_goes_to_the_treasury() -> None:
    genesis = market_genesis(protocol_fee_bp=250)
    chain = market_chain_on(genesis)
    treasury = genesis.names["treasury"]
    listing_id = _listed(chain)
    bob, before = acct(chain, BOB).balance, acct(chain, treasury).balance
    step(chain, _buy(chain, listing_id))
    to_seller, fee = sale_split(PRICE, 250)
    assert fee == PRICE * 250 // 10_000 and to_seller + fee == PRICE
    assert acct(chain, BOB).balance == bob + to_seller
    assert acct(chain, treasury).balance == before + fee
    assert chain.totals().burned == 0
    assert chain.events(job_id=listing_id)[0] == (chain.height, Event("pay", treasury, fee, listing_id, note="sale-fee"))
    assert chain.events(job_id=listing_id)[1][1] == Event("pay", account_of(BOB), to_seller, listing_id, note="sale")


def test_without_a_treasury_the_fee_is_burned() -> None:
    genesis = market_genesis(protocol_fee_bp=1_000)
    genesis.names.pop("treasury")
    chain = market_chain_on(genesis)
    listing_id = _listed(chain)
    step(chain, _buy(chain, listing_id), _buy(chain, listing_id, buyer=CAROL))  # two fees in one block
    assert chain.totals().burned == 2 * (PRICE // 10)
    burn = (chain.height, Event("burn", b"", PRICE // 10, listing_id, note="sale-fee"))
    assert [row for row in chain.events(job_id=listing_id) if row[1].kind == "burn"] == [burn, burn]
    assert _record(chain, listing_id).sales == 2


def test_a_model_listing_carries_its_claim_and_delist_stops_sales() -> None:
    chain = market_chain()
    listing_id = _listed(chain, kind=ListingKind.MODEL, claim=CLAIM)
    assert _record(chain, listing_id).offer.claim == CLAIM
    step(chain, tx(chain, BOB, Delist(listing_id)))
    record = _record(chain, listing_id)
    assert not record.active and record.delisted == chain.height
    assert refused(chain, _buy(chain, listing_id)) == "listing-delisted"


# ---- refusals ----------------------------------------------------------------------------------


LOCAL, STALE, MISSING = RejectKind.LOCAL, RejectKind.STALE, RejectKind.MISSING  # as the mempool's check says


def test_listing_refusals() -> None:
    chain = market_chain()
    missing = ("listing-metrics-missing", "a model listing publishes its metrics", None, None, LOCAL)
    assert rejection(chain, _listing(chain, kind=ListingKind.MODEL)) == missing
    empty = ModelClaim((), CLAIM.eval_data, CLAIM.eval_method)
    assert rejection(chain, _listing(chain, kind=ListingKind.MODEL, claim=empty)) == missing
    for kind in (ListingKind.DATA, ListingKind.GENERATOR):
        assert rejection(chain, _listing(chain, kind=kind, claim=CLAIM)) == (
            "listing-metrics-not-model", "only a model listing carries metrics", None, None, LOCAL)


def test_delist_refusals() -> None:
    chain = market_chain()
    unknown = bytes([6]) * 32
    assert rejection(chain, tx(chain, BOB, Delist(unknown))) == ("unknown-listing", unknown.hex(), None, None, MISSING)
    listing_id = _listed(chain)
    assert rejection(chain, tx(chain, ALICE, Delist(listing_id))) == (
        "not-listing-seller", "only the seller may delist", None, None, LOCAL)
    step(chain, tx(chain, BOB, Delist(listing_id)))
    delisted = ("listing-delisted", f"at height {chain.height}", None, None, STALE)
    mine_blocks(chain, 1)  # the height named is the Delist's, not the tip's
    assert rejection(chain, tx(chain, BOB, Delist(listing_id))) == delisted
    assert rejection(chain, _buy(chain, listing_id)) == delisted


def test_purchase_refusals() -> None:
    chain = market_chain()
    unknown = bytes([6]) * 32
    assert rejection(chain, _buy(chain, unknown)) == ("unknown-listing", unknown.hex(), None, None, MISSING)
    listing_id = _listed(chain)
    assert rejection(chain, _buy(chain, listing_id, buyer=BOB)) == (
        "buy-own-listing", "the seller cannot buy its own listing", None, None, LOCAL)
    assert rejection(chain, _buy(chain, listing_id, price=PRICE - 1)) == ("price-too-low", "", PRICE, PRICE - 1, LOCAL)
    assert rejection(chain, _buy(chain, listing_id, price=PRICE + 1)) == (
        "price-mismatch", "a purchase pays exactly the listed price", PRICE, PRICE + 1, LOCAL)
    rich = acct(chain, CAROL).balance
    dear = _listed(chain, price=rich)  # carol can pay the fee, not the price as well
    assert rejection(chain, _buy(chain, dear, buyer=CAROL, price=rich)) == (
        "insufficient-balance", "the listed price, after the fee", f">= {rich}", rich - DEFAULT_FEE, LOCAL)


def test_a_buyer_may_spend_its_last_token_on_a_purchase() -> None:
    chain = market_chain()
    last = acct(chain, CAROL).balance - DEFAULT_FEE  # what carol holds once the fee is paid
    listing_id = _listed(chain, price=last)
    step(chain, _buy(chain, listing_id, buyer=CAROL, price=last))
    assert acct(chain, CAROL).balance == 0


def test_a_sale_that_would_overflow_the_seller_or_the_treasury_is_refused() -> None:
    genesis = market_genesis(protocol_fee_bp=250)
    chain = market_chain_on(genesis)
    buying = _buy(chain, _listed(chain))
    for rich in (account_of(BOB), genesis.names["treasury"]):
        assert overflow_refusal(chain, buying, rich) == "balance-overflow"


def test_a_delist_in_the_same_block_comes_first() -> None:
    chain = market_chain()
    listing_id = _listed(chain)
    assert refused(chain, tx(chain, BOB, Delist(listing_id)), _buy(chain, listing_id)) == "listing-delisted"


# ---- encodings ---------------------------------------------------------------------------------


@given(st.sampled_from(list(ListingKind)), st.integers(1, 2**63 - 1), st.binary(min_size=32, max_size=32))
def test_listing_payloads_round_trip(kind: ListingKind, price: int, root: bytes) -> None:
    claim = CLAIM if kind is ListingKind.MODEL else None
    for payload in (Listing(int(kind), root, price, LICENSE, claim), Delist(root), Purchase(root, price, KEY)):
        value = enc.unpack(enc.pack(payload.to_list()), what="t", max_size=4096)
        assert type(payload).from_list(value) == payload


# ---- reorgs ------------------------------------------------------------------------------------


def test_reorg_takes_back_a_listing_and_its_purchase() -> None:
    chain = market_chain()
    listing = _listing(chain)
    step(chain)
    balances = {seed: acct(chain, seed).balance for seed in (ALICE, BOB)}
    root_before = chain.state_root()
    buying = tx(chain, ALICE, Purchase(listing.txid, PRICE, KEY))
    a = mine_blocks(clone_market_chain(chain), 1, [listing])
    a += mine_blocks(clone_market_chain_after(chain, a), 1, [buying])
    b = mine_blocks(clone_market_chain(chain), 3, miner=BRANCH_B_MINER)
    import_all(chain, a)
    assert chain.record(purchase_store_key(buying.txid)) is not None
    assert_supply(chain)
    results = import_all(chain, b)
    assert results[-1].tip_changed and len(results[-1].disconnected) == 2
    assert chain.record(listing_store_key(listing.txid)) is None
    assert chain.record(purchase_store_key(buying.txid)) is None
    assert chain.events(job_id=listing.txid) == []
    assert {seed: acct(chain, seed).balance for seed in (ALICE, BOB)} == balances
    assert_supply(chain)
    assert root_before != chain.state_root()  # the branch's rewards moved it, nothing else did
    step(chain, listing)  # both still good on the winning branch
    step(chain, tx(chain, ALICE, Purchase(listing.txid, PRICE, KEY)))
    assert _record(chain, listing.txid).sales == 1


def test_reorg_undoes_a_delist_and_a_second_sale() -> None:
    chain = market_chain()
    listing_id = _listed(chain)
    step(chain, _buy(chain, listing_id))
    before = _record(chain, listing_id)
    a = mine_blocks(clone_market_chain(chain), 1, [tx(chain, CAROL, Purchase(listing_id, PRICE, KEY)),
                                                   tx(chain, BOB, Delist(listing_id))])
    b = mine_blocks(clone_market_chain(chain), 2, miner=BRANCH_B_MINER)
    import_all(chain, a)
    assert _record(chain, listing_id).sales == 2 and not _record(chain, listing_id).active
    import_all(chain, b)
    assert _record(chain, listing_id) == before
    assert_supply(chain)


def clone_market_chain_after(chain: ChainState, blocks: list[Any]) -> ChainState:
    """A node with ``chain``'s main chain and then ``blocks``."""
    copy = clone_market_chain(chain)
    import_all(copy, blocks)
    return copy
