"""Buying a listed artifact between real daemons: bob's daemon sells an artifact, alice buys it on
chain with a delivery key her daemon made, her daemon receives it sealed over the artifact
protocol, opens it and checks every file and the root; bob is paid. A third daemon can fetch the
same sealed delivery (the ciphertext is anyone's to carry) but cannot open it, and cannot fetch
the artifact itself in plaintext. Devnet blocks every 0.4 s."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from chain.devnet_keys import devnet_address, devnet_seed
from chain.listing_types import Listing, ListingKind, Purchase
from neurod.artifact_backend import StoreArtifacts
from neurod.artifact_store import store_of
from neurod.listings.delivery import open_from_store
from neurod.listings.sealing import DeliveryError, new_delivery_keypair
from tests.functional.cli_wallet import Neuro
from tests.support.artifacts import MB, random_artifact
from tests.support.daemons import Daemon, RpcCallError, wait_converged, wait_until
from tests.support.market_daemons import SPEC, market, worker_flags
from tests.support.toy_models import real_folder, toy_model
from tests.support.txs import DEVNET, FEE, devnet_key

log = logging.getLogger("tests.node_listings")
PRICE = 7 * 10**9


def send(daemon: Daemon, name: str, payload: Any) -> str:
    """``payload`` signed by devnet key ``name`` at its pending nonce, submitted and confirmed."""
    nonce = int(daemon.rpc("account_get", address=devnet_address(name))["pending_nonce"])
    tx = devnet_key(name).transaction(DEVNET.chain_id, nonce, FEE, payload)
    txid = str(daemon.rpc("tx_submit", tx=tx.encode().hex())["txid"])
    wait_until(lambda: daemon.tx_status(txid) == "confirmed", 60, f"{type(payload).__name__} {txid[:12]} confirmed")
    return txid


def balance(daemon: Daemon, name: str) -> int:
    return int(daemon.rpc("account_get", address=devnet_address(name))["balance"])


def test_a_listed_artifact_is_bought_delivered_sealed_and_opened_only_by_its_buyer(daemons: Callable[..., Daemon], tmp_path: Path) -> None:
    seller = daemons("seller", mine=True, block_interval=0.4)
    buyer = daemons("buyer", bootstrap=[seller.p2p_addr])
    third = daemons("third", bootstrap=[seller.p2p_addr])
    wait_converged([seller, buyer, third], min_height=1)
    root = random_artifact(tmp_path / "art", [2 * MB + 3, 5000, 0])
    store_of(seller.datadir).put(tmp_path / "art")

    log.info("bob sells %s", root.hex()[:16])
    assert seller.rpc("listing_sell", root=root.hex())["selling"] is True
    listing_id = send(seller, "bob", Listing(int(ListingKind.DATA), root, PRICE, bytes(32), None))
    wait_until(lambda: buyer.rpc("listing_list"), 30, "the buyer to see the listing")
    shown = buyer.rpc("listing_get", listing=listing_id)
    assert (shown["root"], shown["price"], shown["seller"], shown["active"]) == (
        root.hex(), PRICE, devnet_address("bob"), True)

    log.info("the plaintext is withheld: a plain fetch of the root is refused")
    third.rpc("artifact_fetch", root=root.hex(), **{"from": [seller.p2p_addr]})
    plain = wait_until(lambda: (p := third.rpc("artifact_progress", root=root.hex()))["state"] == "failed" and p,
                       60, "the plaintext fetch to fail")
    assert "not-allowed" in str(plain), plain

    log.info("alice buys with a delivery key of her daemon")
    key = buyer.rpc("listing_delivery_key")["delivery_key"]
    bob_before, alice_before = balance(seller, "bob"), balance(seller, "alice")
    purchase = send(buyer, "alice", Purchase(bytes.fromhex(listing_id), PRICE, bytes.fromhex(key)))
    wait_until(lambda: seller.tx_status(purchase) == "confirmed", 30, "the seller to see the purchase")
    assert balance(seller, "bob") == bob_before + PRICE
    assert balance(seller, "alice") == alice_before - PRICE - FEE

    def delivered(source: Daemon) -> dict[str, Any]:
        buyer.rpc("listing_receive", purchase=purchase, **{"from": [source.p2p_addr]})
        found: dict[str, Any] = wait_until(
            lambda: (d := buyer.rpc("listing_delivery", purchase=purchase))["state"] in ("done", "failed") and d,
            120, "the delivery to end")
        return found

    log.info("a daemon that does not sell the root will not seal it")
    refused_here = delivered(third)
    assert (refused_here["state"], refused_here["reason"]) == ("failed", "no-seller"), refused_here
    assert list(refused_here["tried"].values()) == ["not-selling"]

    log.info("alice's daemon receives, opens and checks the delivery")
    done = delivered(seller)
    assert done["state"] == "done", done
    assert done["bytes_done"] == done["bytes_total"] > 2 * MB
    bought = store_of(buyer.datadir)
    bought.verify(root)  # every file hashed again, the root recomputed
    sealed = bytes.fromhex(done["sealed_root"])
    assert sealed != root

    log.info("a copy the buyer damaged on disk is not reported delivered: it is received again")
    big = max(bought.manifest(root).files, key=lambda f: f.size)
    blob = bought.blob_path(big.hash)
    blob.chmod(0o644)
    with open(blob, "r+b") as handle:
        handle.seek(MB)
        handle.write(bytes([handle.read(1)[0] ^ 1]))
    again = delivered(seller)
    assert again["state"] == "done", again
    assert "damaged" in buyer.log_lines("stored copy"), buyer.log_lines("purchase")
    bought.verify(root)

    log.info("a third daemon fetches the same sealed delivery but cannot open it")
    third.rpc("artifact_fetch", root=sealed.hex(), **{"from": [seller.p2p_addr]})
    fetched = wait_until(lambda: (p := third.rpc("artifact_progress", root=sealed.hex()))["state"] in ("done", "failed")
                         and p, 60, "the third daemon's fetch of the sealed delivery")
    assert fetched["state"] == "done", fetched
    with pytest.raises(RpcCallError) as refused:
        third.rpc("listing_receive", purchase=purchase, **{"from": [seller.p2p_addr]})
    assert refused.value.reason == "no-delivery-key"
    stolen = store_of(third.datadir)
    public, private = new_delivery_keypair()
    with pytest.raises(DeliveryError) as opened:
        open_from_store(stolen, StoreArtifacts(stolen), sealed, public, private, bytes.fromhex(purchase), root)
    assert opened.value.reason == "wrong-key"
    assert not stolen.has(root)
    assert all(not stolen.has_blob(f.hash) for f in bought.manifest(root).files if f.size > 0)


def test_a_generator_is_sold_and_bought_with_the_cli_and_renders_a_generate_job(daemons: Callable[..., Daemon], tmp_path: Path) -> None:
    """`neuro market sell|list|show|buy|delist` as processes; the bought generator names a generate
    job (`neuro job submit generate LISTING`) that workers render and the client pays for."""
    client, _ = market(daemons, {"bob": worker_flags("bob", 50), "carol": worker_flags("carol", 80)})
    seller = daemons("seller", bootstrap=[client.p2p_addr])
    wait_converged([client, seller], min_height=1)
    dave = Neuro(seller.datadir, tmp_path / "dave-keys")
    dave.ok("wallet", "import", "dave", "--raw-file", "-", stdin=devnet_seed("dave").hex())
    alice = Neuro(client.datadir, tmp_path / "alice-keys")
    alice.ok("wallet", "import", "alice", "--raw-file", "-", stdin=devnet_seed("alice").hex())
    spec = tmp_path / "shelf.json"
    spec.write_text(json.dumps(SPEC))

    log.info("dave sells a generator")
    sold = dave.json("market", "sell", str(spec), "--kind", "generator", "--price", "2.5", "--wait", "60")
    listing = sold["listing"]
    assert sold["status"] == "confirmed" and sold["kind"] == "generator"
    listed: list[dict[str, Any]] = wait_until(
        lambda: [r for r in alice.json("market", "list") if r["listing"] == listing], 30, "alice to see the listing")
    assert listed[0]["price_ntk"] == "2.5" and listed[0]["seller"] == devnet_address("dave")
    assert "2.5 NTK" in alice.ok("market", "show", listing[:12])  # a unique prefix, as tables print

    log.info("alice buys it and renders from it")
    bought = alice.json("market", "buy", listing, "--source", seller.p2p_addr)
    assert bought["delivery"]["state"] == "done" and bought["root"] == sold["root"]
    job = alice.json("job", "submit", "generate", listing, "--shards", "2", "--wait", "--timeout", "300")
    assert job["state"] == "done", job
    posted = client.rpc("job_get", job=job["job"])
    assert posted["status"] == "closed" and posted["items"] == SPEC["spec"]["count"]  # type: ignore[index]

    log.info("dave delists; a second purchase is refused before anything is paid")
    dave.ok("market", "delist", listing, "--wait", "60")
    wait_until(lambda: not alice.json("market", "show", listing)["active"], 30, "alice to see the delist")
    balance_before = balance(client, "alice")
    assert "delisted" in alice.fails("listing-delisted", "market", "buy", listing)
    assert balance(client, "alice") == balance_before


def test_a_bought_model_is_re_evaluated_on_the_buyers_real_set(daemons: Callable[..., Daemon], tmp_path: Path) -> None:
    """`neuro market sell --kind model` publishes its metrics; `neuro market buy --evaluate REAL`
    measures the delivered model on the buyer's own set and shows both."""
    seller = daemons("seller", mine=True, block_interval=0.4)
    buyer = daemons("buyer", bootstrap=[seller.p2p_addr])
    wait_converged([seller, buyer], min_height=1)
    root = toy_model(tmp_path / "model")
    store_of(seller.datadir).put(tmp_path / "model")
    real_folder(tmp_path / "real", 80, seed=10)
    (tmp_path / "eval.txt").write_text("200 glyphs of seed 11, toy classifier")
    bob = Neuro(seller.datadir, tmp_path / "bob-keys")
    bob.ok("wallet", "import", "bob", "--raw-file", "-", stdin=devnet_seed("bob").hex())
    alice = Neuro(buyer.datadir, tmp_path / "alice-keys")
    alice.ok("wallet", "import", "alice", "--raw-file", "-", stdin=devnet_seed("alice").hex())

    sold = bob.json("market", "sell", root, "--kind", "model", "--price", "1", "--metric", "accuracy=0.97",
                    "--eval-data", str(tmp_path / "eval.txt"), "--eval-method", "worker.evaluate classify, top-1",
                    "--wait", "60")
    wait_until(lambda: buyer.tx_status(sold["listing"]) == "confirmed", 30, "the buyer to see the listing")
    shown = alice.json("market", "show", sold["listing"])
    assert shown["claim"]["metrics"] == {"accuracy": "0.97"} and shown["kind"] == "model"
    bought = alice.json("market", "buy", sold["listing"], "--source", seller.p2p_addr, "--evaluate",
                        str(tmp_path / "real"))
    assert bought["delivery"]["state"] == "done"
    assert 0.5 < bought["evaluation"]["accuracy"] <= 1.0
    table = alice.ok("market", "show", sold["listing"])
    assert "0.97" in table and "accuracy" in table
