"""Buy Data, Buy Model, generators: `neuro market list|show|sell|buy|delist`.

Selling: the artifact must be in the daemon's store (`neuro artifact import`); `sell` tells the
daemon to sell it (pinned; its plaintext never served to peers again, only sealed to buyers) and
signs a Listing from a keystore key. Buying: `buy` asks the daemon for a fresh delivery key,
signs a Purchase of exactly the listed price, waits for it to be in a block, then has the daemon
receive the delivery sealed to that key, open it and check it against the listed root, drawing
a progress bar. With ``--evaluate REAL`` a bought model is scored on the buyer's own real set
(the worker's evaluate task, here) and shown next to the seller's claim.

A generator is sold as an artifact holding one ``spec.json``, the document `neuro job submit
generate` takes: `sell SPEC.json --kind generator` packs and imports it first, and once bought,
`neuro job submit generate LISTING` (or its root) renders from it (`generator_spec`).

Amounts on the command line and in tables are NTK; ``--json`` prints base units too.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from cli.config import (
    DatadirOpt,
    JsonOpt,
    KeystoreOpt,
    NetworkOpt,
    PasswordFileOpt,
    RpcOpt,
    Where,
)
from cli.ids import resolve_id
from cli.market import market_app
from cli.output import CliError, fields, guarded, note, print_json, table
from cli.tx import (
    DEFAULT_FEE_NTK,
    FeeOpt,
    WaitOpt,
    client,
    signed_payload,
    unlock_key,
    wait_for_block,
)

if TYPE_CHECKING:
    from chain.types import Payload
    from wallet.keys import Key
    from wallet.node_client import RpcClient

LICENSE_PERSON = b"neuro-license"
PURCHASE_WAIT_S = 120.0
KINDS = ("data", "model", "generator")
GENERATOR_FILE = "spec.json"
GENERATOR_KIND = "generator"
ListingArg = Annotated[str, typer.Argument(
    help="listing id (the id of its Listing tx: 64 hex, or a unique prefix of 8 or more)", metavar="LISTING")]
FromOpt = Annotated[str | None, typer.Option("--from", help="key name (default: the default key)")]


def _hex_id(text: str, what: str) -> str:
    value = text.strip().lower().removeprefix("0x")
    if len(value) != 64 or any(c not in "0123456789abcdef" for c in value):
        raise CliError(f"{text!r} is not a {what} (64 hex digits)", f"bad-{what.split()[0]}")
    return value


def send_signed(rpc_client: RpcClient, where: Where, key: Key, payload: Payload, fee: str, wait: float | None) -> dict[str, Any]:
    """Sign and send ``payload``; wait for its block if asked."""
    txid = rpc_client.call("tx_submit", tx=signed_payload(rpc_client, where, key, payload, fee).encode().hex())["txid"]
    result: dict[str, Any] = {"txid": txid, "status": "pending"}
    if wait is not None:
        result.update(wait_for_block(rpc_client, txid, wait))
    return result


def _claim_rows(claim: dict[str, Any] | None) -> list[tuple[str, Any]]:
    if not claim:
        return []
    metrics = ", ".join(f"{name} {value}" for name, value in claim["metrics"].items())
    return [("claimed", metrics), ("measured on", claim["eval_data"]), ("how", claim["eval_method"])]


# ---- reads -------------------------------------------------------------------------------------


@market_app.command("list")
@guarded
def list_listings(
    show_all: Annotated[bool, typer.Option("--all", help="delisted ones too")] = False,
    kind: Annotated[str | None, typer.Option("--kind", help=" | ".join(KINDS))] = None,
    seller: Annotated[str | None, typer.Option("--seller", help="only this seller's (an address)")] = None,
    network: NetworkOpt = "main",
    datadir: DatadirOpt = None,
    rpc: RpcOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Listings for sale on chain (datasets, models, generators), newest first."""
    if kind is not None and kind not in KINDS:
        raise CliError(f"--kind must be one of {', '.join(KINDS)}, not {kind!r}", "bad-kind")
    params: dict[str, Any] = {"status": "all" if show_all else "active"}
    params.update({k: v for k, v in (("kind", kind), ("seller", seller)) if v is not None})
    rows = client(Where(network, datadir, None, rpc)).call("listing_list", **params)
    if json_out:
        print_json(rows)
        return
    if not rows:
        note("no listings" + ("" if show_all else " for sale (--all shows delisted ones)"))
        return
    table(f"{len(rows)} listings", ("listing", "kind", "price NTK", "sales", "seller", "root", "claim"), [
        (r["listing"][:16], r["kind"] + ("" if r["active"] else " (delisted)"), r["price_ntk"], r["sales"],
         r["seller"], r["root"][:16],
         ", ".join(f"{k} {v}" for k, v in (r["claim"] or {}).get("metrics", {}).items()) or "-")
        for r in rows])


@market_app.command("show")
@guarded
def show_listing(
    listing: ListingArg,
    network: NetworkOpt = "main",
    datadir: DatadirOpt = None,
    rpc: RpcOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """A listing: what it sells, for how much, the seller's claim, and its purchases."""
    where = Where(network, datadir, None, rpc)
    listing_id = resolve_id(listing, "listing", lambda: client(where))  # a bad id is refused before connecting
    found = client(where).call("listing_get", listing=listing_id)
    if json_out:
        print_json(found)
        return
    status = "for sale" if found["active"] else f"delisted at {found['delisted']}"
    fields(f"listing {found['listing']}", [
        ("kind", found["kind"]), ("status", status), ("price", f"{found['price_ntk']} NTK"),
        ("seller", found["seller"]), ("root", found["root"]), ("license hash", found["license_hash"]),
        ("listed at", found["listed"]), ("sales", found["sales"]), *_claim_rows(found["claim"]),
        ("sold by this node", "yes" if found["selling_here"] else "no"),
    ])
    if found["purchases"]:
        table("purchases", ("purchase", "buyer", "NTK", "height"),
              [(p["purchase"][:16], p["buyer"], p["price_ntk"], p["height"]) for p in found["purchases"]])


# ---- selling -----------------------------------------------------------------------------------


def _metrics(values: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for text in values:
        name, sep, value = text.partition("=")
        if not sep or not name.strip():
            raise CliError(f"--metric {text!r}: give NAME=VALUE, e.g. accuracy=0.973", "bad-metric")
        out[name.strip()] = value.strip()
    return out


def _hash_arg(text: str, what: str) -> str:
    """A 64-hex hash, or a file whose bytes are hashed (a license text, a description of a set)."""
    from chain.hashing import hash256

    clean = text.strip().lower()
    if len(clean) == 64 and all(c in "0123456789abcdef" for c in clean):
        return clean
    try:
        return hash256(Path(text).read_bytes(), person=LICENSE_PERSON).hex()
    except OSError as exc:
        raise CliError(f"{what} {text}: neither 64 hex digits nor a readable file ({exc.strerror})",
                       f"bad-{what.lstrip('-')}") from None


@market_app.command("sell")
@guarded
def sell(
    artifact: Annotated[str, typer.Argument(help="root of an artifact in the daemon's store", metavar="ARTIFACT")],
    price: Annotated[str, typer.Option("--price", help="NTK, e.g. 12.5")],
    kind: Annotated[str, typer.Option("--kind", help=" | ".join(KINDS))] = "data",
    license_text: Annotated[str | None, typer.Option(
        "--license", help="the license text (a file, hashed) or its hash (default: no license text)")] = None,
    metric: Annotated[list[str] | None, typer.Option(
        "--metric", help="model: a published metric NAME=VALUE (repeat), e.g. accuracy=0.973")] = None,
    eval_data: Annotated[str | None, typer.Option(
        "--eval-data", help="model: the root of the set the metrics were measured on, or a file describing it")] = None,
    eval_method: Annotated[str | None, typer.Option("--eval-method", help="model: how they were measured")] = None,
    sender: FromOpt = None,
    fee: FeeOpt = DEFAULT_FEE_NTK,
    wait: WaitOpt = None,
    network: NetworkOpt = "main",
    datadir: DatadirOpt = None,
    keystore: KeystoreOpt = None,
    rpc: RpcOpt = None,
    password_file: PasswordFileOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """List an artifact for sale: this daemon sells it (sealed to each buyer), a Listing goes on chain."""
    from wallet.payload_json import payload_from_json

    where = Where(network, datadir, keystore, rpc)
    if kind == "generator" and artifact.endswith(".json"):
        artifact = import_generator(where, Path(artifact))
    doc: dict[str, Any] = {"kind": kind, "root": resolve_id(artifact, "artifact", lambda: client(where)), "price": price,
                           "license_hash": _hash_arg(license_text, "--license") if license_text else "00" * 32}
    if kind == "model":
        if not metric or eval_data is None or eval_method is None:
            raise CliError("a model listing publishes its metrics: give --metric, --eval-data and --eval-method",
                           "model-claim-missing")
        doc.update(metrics=_metrics(metric), eval_data=_hash_arg(eval_data, "--eval-data"), eval_method=eval_method)
    elif metric or eval_data or eval_method:
        raise CliError("only a model listing carries metrics (--kind model)", "bad-option")
    payload = payload_from_json("listing", doc, where.hrp)  # every field checked before anything is sent
    rpc_client = client(where)
    info = rpc_client.call("listing_sell", root=doc["root"])
    key = unlock_key(where, sender, password_file)
    result = send_signed(rpc_client, where, key, payload, fee, wait)
    result.update(listing=result["txid"], root=doc["root"], kind=kind, price_ntk=price, size=info["size"])
    if json_out:
        print_json(result)
        return
    note(f"listing {result['listing']}: {kind} {doc['root'][:16]} ({info['size']:,} bytes) for {price} NTK, "
         f"{result['status']}; this daemon delivers it sealed to each buyer")


@market_app.command("delist")
@guarded
def delist(
    listing: ListingArg,
    sender: FromOpt = None,
    fee: FeeOpt = DEFAULT_FEE_NTK,
    wait: WaitOpt = None,
    network: NetworkOpt = "main",
    datadir: DatadirOpt = None,
    keystore: KeystoreOpt = None,
    rpc: RpcOpt = None,
    password_file: PasswordFileOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Withdraw a listing (its seller only): no purchase is accepted after it."""
    from chain.listing_types import Delist

    where = Where(network, datadir, keystore, rpc)
    listing_id = resolve_id(listing, "listing", lambda: client(where))  # a bad id is refused before connecting
    rpc_client = client(where)
    found = rpc_client.call("listing_get", listing=listing_id)
    key = unlock_key(where, sender, password_file)
    if key.address(where.hrp) != found["seller"]:
        raise CliError(f"{key.address(where.hrp)} is not the seller ({found['seller']})", "not-listing-seller")
    if not found["active"]:
        raise CliError(f"listing {listing_id[:16]} was delisted at {found['delisted']}", "listing-delisted")
    result = send_signed(rpc_client, where, key, Delist(bytes.fromhex(listing_id)), fee, wait)
    if json_out:
        print_json({**result, "listing": listing_id})
        return
    note(f"listing {listing_id[:16]} delisted ({result['status']}, tx {result['txid']})")


# ---- buying ------------------------------------------------------------------------------------


@market_app.command("buy")
@guarded
def buy(
    listing: ListingArg,
    source: Annotated[list[str] | None, typer.Option(
        "--source", help="the seller's node (multiaddr or peer id; default: every peer)")] = None,
    evaluate: Annotated[str | None, typer.Option(
        "--evaluate", help="model: score it on your real set ('mnist', a folder of class folders, a .csv or a COCO "
                           ".json) and show it next to the seller's claim", metavar="REAL_DIR")] = None,
    sender: FromOpt = None,
    fee: FeeOpt = DEFAULT_FEE_NTK,
    timeout: Annotated[float, typer.Option("--timeout", help="seconds to wait for the purchase's block")] = PURCHASE_WAIT_S,
    network: NetworkOpt = "main",
    datadir: DatadirOpt = None,
    keystore: KeystoreOpt = None,
    rpc: RpcOpt = None,
    password_file: PasswordFileOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Buy a listing: pay its price on chain, then receive it encrypted to this daemon, decrypt
    it and check every file against the listed root."""
    where = Where(network, datadir, keystore, rpc)
    listing_id = resolve_id(listing, "listing", lambda: client(where))  # a bad id is refused before connecting
    rpc_client = client(where)
    found = rpc_client.call("listing_get", listing=listing_id)
    if not found["active"]:
        raise CliError(f"listing {listing_id[:16]} was delisted at {found['delisted']}", "listing-delisted")
    if evaluate is not None and found["kind"] != "model":
        raise CliError(f"--evaluate scores models; listing {listing_id[:16]} sells {found['kind']}", "bad-option")
    key = unlock_key(where, sender, password_file)
    address = key.address(where.hrp)
    if address == found["seller"]:
        raise CliError("that is your own listing", "buy-own-listing")
    balance = int(rpc_client.call("account_get", address=address)["balance"])
    if balance < found["price"]:
        raise CliError(f"{address} holds less than the price of {found['price_ntk']} NTK", "insufficient-balance")
    result = purchase_and_receive(rpc_client, where, key, found, list(source or []), fee, timeout, quiet=json_out)
    if evaluate is not None:
        result["evaluation"] = evaluate_bought(where, found["root"], evaluate)
    if json_out:
        print_json(result)
        return
    note(f"received {found['kind']} {found['root']}: decrypted, every file and the root checked; "
         f"`neuro artifact export {found['root'][:16]}.. DIR` copies it out")
    if evaluate is not None:
        print_evaluation((found["claim"] or {}).get("metrics", {}), result["evaluation"], evaluate)


def purchase_and_receive(rpc_client: RpcClient, where: Where, key: Key, found: dict[str, Any], sources: list[str],
                         fee: str, timeout: float, *, quiet: bool) -> dict[str, Any]:
    """Pay the listing ``found`` (as `listing_get` returns it) from ``key`` with a fresh delivery
    key of this daemon, wait for the Purchase's block, then have the daemon receive the delivery
    from ``sources`` (none: every peer), open it and check it against the listed root."""
    from chain.listing_types import Purchase

    delivery_key = rpc_client.call("listing_delivery_key")["delivery_key"]
    payload = Purchase(bytes.fromhex(found["listing"]), int(found["price"]), bytes.fromhex(delivery_key))
    paid = send_signed(rpc_client, where, key, payload, fee, timeout)
    if not quiet:
        note(f"paid {found['price_ntk']} NTK: purchase {paid['txid']} in block {paid['height']}")
    rpc_client.call("listing_receive", purchase=paid["txid"], **{"from": sources})
    delivery = follow_delivery(rpc_client, paid["txid"], quiet=quiet)
    if delivery["state"] != "done":
        raise CliError(f"delivery of purchase {paid['txid'][:16]} failed: {delivery['error'] or delivery['reason']}",
                       delivery["reason"] or "delivery-failed")
    return {"purchase": paid["txid"], "listing": found["listing"], "root": found["root"], "price": found["price"],
            "price_ntk": found["price_ntk"], "delivery": delivery}


def print_evaluation(claimed: dict[str, str], measured: dict[str, Any], real: str) -> None:
    """The seller's claimed metrics next to the buyer's measurement: every claimed metric, and
    the headline one (accuracy or mAP) even when the seller did not claim it."""
    names = sorted(set(claimed) | {n for n in measured if n in ("accuracy", "map50", "map50_95")})
    table(f"the seller's claim and your measurement on {real}", ("metric", "claimed", "measured"),
          [(name, claimed.get(name, "-"), f"{measured[name]:.4f}" if name in measured else "-") for name in names])


def follow_delivery(rpc_client: RpcClient, purchase: str, *, quiet: bool) -> dict[str, Any]:
    """Poll `listing_delivery` until it ends, drawing a progress bar of the sealed download."""
    from cli.artifact import follow_progress

    def poll() -> dict[str, Any]:
        return rpc_client.call("listing_delivery", purchase=purchase)  # type: ignore[no-any-return]

    return follow_progress(poll, poll(), lambda f: f"{purchase[:12]}.. {f['state']}", f"delivery of {purchase}",
                           quiet=quiet)


def evaluate_bought(where: Where, root: str, real: str) -> dict[str, Any]:
    """Score a bought model on the buyer's real set with the worker's evaluate task (in a child
    process, as `neuro task run evaluate` does); the model is read from the daemon's store, so
    this runs where the daemon runs."""
    from cli.architectures import MODEL_FILE, measure
    from neurod.artifact_store import ArtifactStoreError, store_of

    with tempfile.TemporaryDirectory(prefix="neuro-bought-") as scratch:
        model = Path(scratch) / "model"
        try:
            store_of(where.datadir).export(bytes.fromhex(root), model)
        except ArtifactStoreError as exc:
            raise CliError(f"the bought model is not in {where.datadir}'s store: run this where the daemon runs "
                           f"({exc})", "model-missing") from None
        if not (model / MODEL_FILE).is_file():
            raise CliError(f"the bought artifact {root[:16]} holds no {MODEL_FILE}: not a model", "not-a-model")
        metrics = measure(model / MODEL_FILE, real, f"model {root[:16]}")
    return {k: v for k, v in metrics.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}


# ---- generators --------------------------------------------------------------------------------


def import_generator(where: Where, spec_path: Path) -> str:
    """Pack a generate spec (a JSON file) into a generator artifact in the daemon's store; its root."""
    import json

    from neurod.artifact_store import store_of
    from worker.artifact import ItemDraft, canonical_json, write_manifest

    try:
        doc = json.loads(spec_path.read_text())
    except (OSError, ValueError) as exc:
        raise CliError(f"{spec_path}: {exc}", "bad-spec-file") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("spec"), dict):
        raise CliError(f"{spec_path}: a generate spec is a JSON object with a \"spec\"", "bad-spec-file")
    with tempfile.TemporaryDirectory(prefix="neuro-generator-") as scratch:
        folder = Path(scratch) / "generator"
        folder.mkdir()
        (folder / GENERATOR_FILE).write_bytes(canonical_json(doc))
        write_manifest(folder, GENERATOR_KIND, [ItemDraft(0, (GENERATOR_FILE,))], {"spec": GENERATOR_FILE})
        return store_of(where.datadir).put(folder).root.hex()


def generator_spec(where: Where, ref: str) -> dict[str, Any]:
    """The generate spec of a bought generator, named by its listing id or its artifact root: read
    from the daemon's store (so this runs where the daemon runs)."""
    from wallet.node_client import RpcError

    root = _hex_id(ref, "listing id or root")
    try:
        root = client(where).call("listing_get", listing=root)["root"]
    except RpcError as exc:
        if exc.reason != "unknown-listing":
            raise
    return read_generator(where.datadir, root)


def read_generator(datadir: Path, root: str) -> dict[str, Any]:
    """The spec of the generator artifact ``root`` in the store of ``datadir``."""
    import json

    from neurod.artifact_store import ArtifactStoreError, store_of

    with tempfile.TemporaryDirectory(prefix="neuro-generator-") as scratch:
        try:
            manifest = store_of(datadir).export(bytes.fromhex(root), Path(scratch) / "g")
        except ArtifactStoreError as exc:
            raise CliError(f"generator {root[:16]} is not in this daemon's store: buy it first "
                           f"(`neuro market buy`) ({exc})", "generator-missing") from None
        if manifest.kind != GENERATOR_KIND:
            raise CliError(f"artifact {root[:16]} is a {manifest.kind} artifact, not a generator", "not-a-generator")
        doc = json.loads((Path(scratch) / "g" / GENERATOR_FILE).read_bytes())
    if not isinstance(doc, dict):
        raise CliError(f"generator {root[:16]}: its spec is not a JSON object", "bad-spec-file")
    return doc
