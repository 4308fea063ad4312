"""The last act of `neuro devnet demo` (cli/market_demo.py): a model changes hands.

A new client (a fresh key, an empty account) with a plain daemon of its own, which holds none of
the loop's models, pays the treasury off chain and gets a voucher for its account; it redeems the
voucher on chain (the fee comes out of it). The worker that trained the loop's last kept model,
and so holds it in its store, lists it for sale with the accuracy it measures on the real tuning
digits (the claim published on chain: the figure, a hash of the set, how). The client buys it:
its daemon receives the delivery sealed to a key of its own, opens it and checks every file
against the listed root; the client then scores the model on the real digits held out, which
neither the seller nor the loop ever steered on, and shows the claim next to its own figure.

Every transaction is signed here, as the CLI signs them (`cli.treasury.signed_voucher`,
`cli.listings.send_signed`, `cli.listings.purchase_and_receive`): the treasury and the seller
with their well-known devnet keys.
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from chain.amounts import format_ntk
from cli.config import Where
from cli.market_loop import MODEL_FILE
from cli.output import CliError, note, table
from cli.tx import DEFAULT_FEE_NTK

if TYPE_CHECKING:
    from wallet.keys import Key
    from wallet.node_client import RpcClient

VOUCHER_NTK = "20"
PRICE_NTK = "5"
VOUCHER_BLOCKS = 600  # the voucher's life: well past the act
TX_WAIT_S = 60.0
EVAL_METHOD = "top-1 accuracy, worker.active.loop.accuracy, 28x28 grey digits"


@dataclass
class Sale:
    buyer: str  # the new client's address
    voucher: str  # the voucher's id (hex)
    balance_before: int  # base units, before the voucher
    balance_after: int  # after it was redeemed
    seller: str  # the worker's address
    listing: str  # the Listing's txid
    purchase: str  # the Purchase's txid
    root: str  # the model's artifact root
    claimed_accuracy: str  # the seller's figure on the tuning digits, as listed on chain
    heldout_accuracy: float  # the client's, on the held-out digits
    model: str  # the delivered model's folder


@dataclass(frozen=True)
class Party:
    """A daemon of the demo and the key that signs for its owner."""

    name: str  # who it is, in what the demo prints
    rpc: RpcClient
    where: Where
    key: Key

    @property
    def address(self) -> str:
        return self.key.address(self.where.hrp)


def run_sale(buyer: Party, seller: Party, seller_addr: str, root: str, split: Any, out: Path) -> Sale:
    """The act; see the module. ``seller_addr`` is the seller daemon's p2p address, ``root`` the
    model it holds, ``split`` the client's real digits (`worker.realdata.load_split`)."""
    from cli.tx import wait_for_block

    voucher, before, after = _redeem_voucher(buyer)
    listing, claimed = _list_model(seller, root, split)
    wait_for_block(buyer.rpc, listing, TX_WAIT_S)  # the client's daemon has the listing's block
    purchase, model = _buy(buyer, listing, seller_addr, out / "bought-model")
    heldout = _accuracy(model, split.heldout)
    table("the seller's claim and the client's re-evaluation (top-1 accuracy on real MNIST digits)",
          ("accuracy", "measured by", "on"),
          [(claimed, f"{seller.name}, the seller (on chain, in the listing)",
            f"{len(split.tuning.labels):,} tuning digits"),
           (f"{heldout:.4f}", f"{buyer.name}, on the model it bought",
            f"{len(split.heldout.labels):,} held-out digits")])
    return Sale(buyer.address, voucher, before, after, seller.address, listing, purchase, root, claimed, heldout,
                str(model))


def _redeem_voucher(buyer: Party) -> tuple[str, int, int]:
    """The treasury signs a voucher for the buyer's account, which redeems it: its id, and the
    buyer's balance before and after."""
    from chain.devnet_keys import devnet_seed
    from cli.listings import send_signed
    from cli.treasury import signed_voucher
    from cli.tx import online_chain_id
    from wallet.keys import Key
    from wallet.payload_json import ntk_param

    before = _balance(buyer)
    tip = int(buyer.rpc.call("chain_head")["height"])
    ticket = signed_voucher(online_chain_id(buyer.rpc, buyer.where), Key(devnet_seed("treasury")),
                            ntk_param(VOUCHER_NTK, "voucher"), buyer.key.account_id, tip + VOUCHER_BLOCKS)
    voucher = ticket.voucher.voucher_id.hex()
    redeem = ticket.redeem(buyer.key.account_id)
    redeemed = send_signed(buyer.rpc, buyer.where, buyer.key, redeem, DEFAULT_FEE_NTK, TX_WAIT_S)
    after = _balance(buyer)
    note(f"{buyer.name} ({buyer.address}) gets a {VOUCHER_NTK} NTK voucher {voucher} from the treasury and redeems it"
         f" in block {redeemed['height']}: balance {format_ntk(before)} -> {format_ntk(after)} NTK")
    return voucher, before, after


def _list_model(seller: Party, root: str, split: Any) -> tuple[str, str]:
    """The seller measures its copy of ``root`` on the tuning digits, has its daemon sell it and
    lists it with that claim: the listing's id and the claimed accuracy."""
    from chain.hashing import hash256
    from cli.listings import send_signed
    from wallet.payload_json import payload_from_json

    claimed = f"{_seller_accuracy(seller, root, split):.4f}"
    payload = payload_from_json("listing", {
        "kind": "model", "root": root, "price": PRICE_NTK, "license_hash": "00" * 32,
        "metrics": {"accuracy": claimed}, "eval_method": EVAL_METHOD,
        "eval_data": hash256(split.tuning.images.tobytes() + split.tuning.labels.tobytes()).hex()}, seller.where.hrp)
    size = seller.rpc.call("listing_sell", root=root)["size"]
    listed = send_signed(seller.rpc, seller.where, seller.key, payload, DEFAULT_FEE_NTK, TX_WAIT_S)
    note(f"{seller.name} lists the model it trained, {root[:16]} ({size:,} bytes), for {PRICE_NTK} NTK:"
         f" listing {listed['txid'][:16]} in block {listed['height']}, claiming accuracy {claimed}"
         f" on the {len(split.tuning.labels)} real tuning digits")
    return str(listed["txid"]), claimed


def _buy(buyer: Party, listing: str, seller_addr: str, model: Path) -> tuple[str, Path]:
    """The buyer pays the listing and its daemon receives the model from the seller's; the
    purchase's id, and the model exported from the buyer's store into ``model``."""
    from cli.listings import purchase_and_receive

    found = buyer.rpc.call("listing_get", listing=listing)
    if found["stored_here"]:
        raise CliError(f"the client's daemon holds {found['root'][:16]} already: nothing to deliver",
                       "demo-model-held")
    bought = purchase_and_receive(buyer.rpc, buyer.where, buyer.key, found, [seller_addr], DEFAULT_FEE_NTK,
                                  TX_WAIT_S, quiet=False)
    shutil.rmtree(model, ignore_errors=True)
    _export(buyer.where, found["root"], model)
    note(f"{buyer.name}'s daemon received the delivery sealed to its key, opened it and checked every file against"
         f" {found['root'][:16]}; copied to {model}")
    return str(bought["purchase"]), model


def _balance(party: Party) -> int:
    return int(party.rpc.call("account_get", address=party.address)["balance"])


def _export(where: Where, root: str, folder: Path) -> None:
    """The artifact ``root`` from the store of ``where``'s daemon into ``folder``, its files checked."""
    from neurod.artifact_store import ArtifactStoreError, store_of

    try:
        store_of(where.datadir).export(bytes.fromhex(root), folder)
    except ArtifactStoreError as exc:
        raise CliError(f"model {root[:16]} is not in {where.datadir}'s store ({exc})", "model-missing") from None


def _seller_accuracy(seller: Party, root: str, split: Any) -> float:
    """What the seller measures on its own copy of the model: its claim."""
    with tempfile.TemporaryDirectory(prefix="neuro-demo-sale-") as scratch:
        _export(seller.where, root, Path(scratch) / "model")
        return _accuracy(Path(scratch) / "model", split.tuning)


def _accuracy(model: Path, digits: Any) -> float:
    from worker.active.loop import accuracy
    from worker.train.weights import load_weights

    weights, _ = load_weights(model / MODEL_FILE)
    return accuracy(weights, digits)
