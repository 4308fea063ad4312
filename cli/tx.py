"""`neuro tx`: build, sign and broadcast transactions as files, for offline (air-gapped) signing.

    neuro tx build TO AMOUNT --from NAME --nonce N --chain devnet --out unsigned.json   (offline)
    neuro tx build --kind stake --amount 100 --from NAME --out unsigned.json           (any kind)
    neuro tx sign unsigned.json --out signed.json                                       (offline)
    neuro tx send signed.json                                                           (online)
    neuro tx bid --job HEX --price UNITS --expiry HEIGHT --out bid.json   (a worker's signed bid)

`neuro wallet send` is the same pipeline in one step. Helpers shared with it live here.
"""

from __future__ import annotations

import json
import time
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
    read_password,
)
from cli.output import CliError, console, fields, guarded, note, print_json, warn

if TYPE_CHECKING:
    from chain.types import Payload, Transaction
    from wallet.keys import Key
    from wallet.node_client import RpcClient

tx_app = typer.Typer(
    help="Offline transactions: build, sign, and later broadcast.", no_args_is_help=True
)

DEFAULT_FEE_NTK = "0.00001"  # 10x neurod's default relay minimum of 1,000 base units
WAIT_POLL_S = 0.5
ADDRESS_MIN_LENGTH = 39  # 1-char prefix + "1" + 32 data chars of a 20-byte id + 6 checksum chars

ChainOpt = Annotated[
    str | None,
    typer.Option(
        "--chain", help="chain id source offline: devnet | main | genesis PATH (default: --network)"
    ),
]
FeeOpt = Annotated[str, typer.Option("--fee", help="fee in NTK")]
OutOpt = Annotated[Path | None, typer.Option("--out", help="write the file here (default: stdout)")]
WaitOpt = Annotated[
    float | None,
    typer.Option("--wait", help="after sending, wait up to this many seconds for a block"),
]


def client(where: Where) -> RpcClient:
    from wallet.node_client import RpcClient

    return RpcClient(where.rpc())


def offline_chain_id(where: Where, chain: str | None) -> bytes:
    """The chain id (genesis hash) without a daemon: from a built-in network or a genesis file."""
    if chain is None:
        return where.genesis.chain_id
    from chain.genesis import load_genesis

    return load_genesis(chain).chain_id


def online_chain_id(rpc: RpcClient, where: Where) -> bytes:
    """The daemon's chain id, refusing a daemon of another network than the one we check against.

    Every devnet has a genesis of its own (a fresh time), so on a devnet the daemon's chain id is
    taken once its network and address prefix match; on main it must be main's."""
    status = rpc.call("node_status")
    same_network = status.get("hrp") == where.hrp and status.get("network") == where.network
    if same_network and where.network == "devnet":
        return bytes.fromhex(str(status["chain_id"]))
    if not same_network or status.get("chain_id") != where.genesis.chain_id.hex():
        raise CliError(
            f"neurod at {rpc.target.url} runs network {status.get('network')!r}, not {where.network!r}: "
            "pass the matching --network",
            "wrong-network",
        )
    return where.genesis.chain_id


def address_of(where: Where, name_or_address: str | None) -> str:
    """An address as given, or the address of a key in the keystore (the default key for None)."""
    from wallet.keystore import check_address

    store = where.keystore()
    if name_or_address is None or name_or_address in store.names():
        return store.resolve(name_or_address).address
    text = name_or_address.strip()
    # bech32-shaped (an hrp, "1", data) or our prefix: check it as an address, for a clear error
    if text.lower().startswith(where.hrp + "1") or (
        len(text) >= ADDRESS_MIN_LENGTH and "1" in text[1:]
    ):
        check_address(text, where.hrp)
        return text
    return store.resolve(text).address


def read_json_file(path: Path) -> Any:
    from wallet.txfile import parse_tx_file

    try:
        text = path.read_text() if str(path) != "-" else typer.get_text_stream("stdin").read()
    except OSError as exc:
        raise CliError(f"cannot read {path}: {exc.strerror}", "io-error") from None
    return parse_tx_file(text, str(path))


def write_json_file(out: Path | None, doc: dict[str, Any]) -> None:
    if out is None:
        print_json(doc)
        return
    out.write_text(json.dumps(doc, indent=2) + "\n")
    note(f"wrote {out}")


def unlock_key(where: Where, sender: str | None, password_file: Path | None) -> Key:
    """The key named ``sender`` (default: the default key), unlocked with its password."""
    store = where.keystore()
    return store.unlock(store.resolve(sender).name, read_password(password_file))


def signed_payload(rpc: RpcClient, where: Where, key: Key, payload: Payload, fee: str) -> Transaction:
    """``payload`` from ``key``'s account, at its next pending nonce on the daemon's chain, signed."""
    from wallet.txfile import build_unsigned, sign_unsigned

    address = key.address(where.hrp)
    nonce = int(rpc.call("account_get", address=address)["pending_nonce"])
    unsigned = build_unsigned(chain_id=online_chain_id(rpc, where), sender=address, fee=fee, nonce=nonce,
                              payload=payload)
    return sign_unsigned(unsigned, key)


def send_payload(rpc: RpcClient, where: Where, key: Key, payload: Payload, fee: str, wait: float | None,
                 json_out: bool) -> None:
    """Sign ``payload`` (`signed_payload`) and send it, reporting as `submit` does."""
    submit(rpc, signed_payload(rpc, where, key, payload, fee), wait, json_out, where.hrp)


def submit(rpc: RpcClient, tx: Transaction, wait: float | None, json_out: bool, hrp: str) -> None:
    """Broadcast ``tx``; with ``wait``, poll `chain_tx` until it is in a block or time runs out."""
    from wallet.txfile import describe

    txid = rpc.call("tx_submit", tx=tx.encode().hex())["txid"]
    result: dict[str, Any] = {"txid": txid, "status": "pending", **describe(tx, hrp)}
    if wait is not None:
        result.update(wait_for_block(rpc, txid, wait))
    if json_out:
        print_json(result)
        return
    if "to" not in result:  # not a transfer
        fields(None, readable_rows(result, skip=("chain",)))
        return
    fields(
        None,
        [
            ("txid", txid),
            ("status", result["status"]),
            ("from", result["from"]),
            ("to", result["to"]),
            ("amount", f"{result['amount']} NTK"),
            ("fee", f"{result['fee']} NTK"),
            ("nonce", tx.nonce),
        ]
        + ([("height", result["height"])] if result.get("height") is not None else []),
    )


def wait_for_block(rpc: RpcClient, txid: str, timeout: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        found = rpc.call("chain_tx", txid=txid)
        if found["status"] == "confirmed":
            return {
                "status": "confirmed",
                "height": found["height"],
                "block_hash": found["block_hash"],
            }
        if time.monotonic() >= deadline:
            raise CliError(f"{txid} is still pending after {timeout:g} s", "wait-timeout")
        time.sleep(WAIT_POLL_S)


# the treasury's kinds (chain/treasury_types.py; `neuro wallet redeem` and `neuro treasury` send them in one step)
TREASURY_KIND_OPTIONS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "redeem": (("voucher",), ("voucher",)),
    "buyback-offer": (("currency", "ref_price", "cap", "expiry"), ("currency", "ref_price", "cap", "expiry")),
    "buyback-sell": (("offer", "amount"), ("offer", "amount")),
}
# listings (chain/listing_types.py; `neuro market sell|buy|delist` send them in one step)
LISTING_KIND_OPTIONS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "listing": (("listing_file",), ("listing_file",)),
    "delist": (("listing",), ("listing",)),
    "purchase": (("listing", "price", "delivery_key"), ("listing", "price", "delivery_key")),
}
KINDS = (
    "transfer", "stake", "unstake", "release", "job-post", "job-award", "result-commit",
    "challenge", "respond", "accept", "settle", "vote", *TREASURY_KIND_OPTIONS, *LISTING_KIND_OPTIONS,
)
# the --options each kind takes (transfer takes TO AMOUNT), and those it must be given
KIND_OPTIONS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "transfer": ((), ()),
    "stake": (("amount",), ("amount",)),
    "unstake": (("amount",), ("amount",)),
    "release": ((), ()),
    "job-post": (
        ("service", "spec", "shards", "max_price", "bid_blocks", "deadline_blocks", "challenge_blocks"),
        ("spec", "shards", "max_price"),
    ),
    "job-award": (("job", "bids"), ("job", "bids")),
    "result-commit": (("job", "shard", "root", "items"), ("job", "shard", "root", "items")),
    "challenge": (("job", "shard", "index", "claim"), ("job", "shard", "index")),
    "respond": (("job", "shard", "claim"), ("job", "shard", "claim")),
    "accept": (("job",), ("job",)),
    "settle": (("job",), ("job",)),
    "vote": (("job", "shard", "verdict"), ("job", "shard", "verdict")),
    **TREASURY_KIND_OPTIONS,
    **LISTING_KIND_OPTIONS,
}
JOB_POST_DEFAULTS = {"service": "generate", "bid_blocks": 10, "deadline_blocks": 100, "challenge_blocks": 10}
MARKET = "market kinds"
TREASURY = "treasury kinds"
LISTINGS = "listing kinds"


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def read_voucher_text(text: str) -> str:
    """A voucher's string as given, or read from the file that holds it."""
    path = Path(text.strip()).expanduser()
    return path.read_text().strip() if not text.strip().startswith("ntkv1") and path.is_file() else text


def payload_fields(kind: str, options: dict[str, Any]) -> dict[str, Any]:
    """The payload fields of ``kind`` from the build options (files read), refusing an option the
    kind does not take, or a missing one it needs."""
    takes, needs = KIND_OPTIONS[kind]
    given = {name: value for name, value in options.items() if value is not None}
    stray = [_flag(name) for name in given if name not in takes]
    if stray:
        raise CliError(f"--kind {kind} does not take {', '.join(stray)}", "bad-option")
    missing = [_flag(name) for name in needs if name not in given]
    if missing:
        raise CliError(f"--kind {kind} needs {', '.join(missing)}", "missing-option")
    fields: dict[str, Any] = dict(given)
    if kind == "job-post":
        fields = {**JOB_POST_DEFAULTS, **fields, "spec": read_json_file(given["spec"])}
    if "bids" in fields:
        fields["entries"] = read_json_file(fields.pop("bids"))
    if "claim" in fields:
        fields["claim"] = read_json_file(fields["claim"])
    if "verdict" in fields:
        fields["fraud"] = fields.pop("verdict")  # "fraud" | "honest": wallet.payload_json.bool_param
    if "voucher" in fields:
        fields["voucher"] = read_voucher_text(fields["voucher"])
    if "ref_price" in fields:
        fields["price"] = fields.pop("ref_price")
    if "listing_file" in fields:
        fields = read_json_file(fields["listing_file"])
    return fields


@tx_app.command("build")
@guarded
def build(
    to: Annotated[str | None, typer.Argument(help="recipient address or key name (transfer)", metavar="TO")] = None,
    amount: Annotated[str | None, typer.Argument(help="amount in NTK, e.g. 12.5 (transfer)", metavar="AMOUNT")] = None,
    kind: Annotated[str, typer.Option("--kind", help=" | ".join(KINDS))] = "transfer",
    sender: Annotated[
        str | None, typer.Option("--from", help="key name or address (default: default key)")
    ] = None,
    nonce: Annotated[
        int | None, typer.Option("--nonce", help="sender's next nonce (else asked from the daemon)")
    ] = None,
    fee: FeeOpt = DEFAULT_FEE_NTK,
    chain: ChainOpt = None,
    out: OutOpt = None,
    network: NetworkOpt = "main",
    datadir: DatadirOpt = None,
    keystore: KeystoreOpt = None,
    rpc: RpcOpt = None,
    stake_amount: Annotated[
        str | None, typer.Option("--amount", help="stake, unstake: NTK", rich_help_panel=MARKET)
    ] = None,
    service: Annotated[
        str | None,
        typer.Option("--service", help="job-post: generate | train | label | evaluate (default generate)",
                     rich_help_panel=MARKET),
    ] = None,
    spec: Annotated[
        Path | None,
        typer.Option("--spec", help="job-post: the task spec, a JSON file (re-encoded canonically)",
                     rich_help_panel=MARKET),
    ] = None,
    shards: Annotated[int | None, typer.Option("--shards", help="job-post: shard count",
                                               rich_help_panel=MARKET)] = None,
    max_price: Annotated[
        int | None,
        typer.Option("--max-price", help="job-post: most paid per quote unit, in base units",
                     rich_help_panel=MARKET),
    ] = None,
    bid_blocks: Annotated[int | None, typer.Option(
        "--bid-blocks", help="job-post: bid window in blocks (default 10)", rich_help_panel=MARKET)] = None,
    deadline_blocks: Annotated[int | None, typer.Option(
        "--deadline-blocks", help="job-post: results due this many blocks after the post (default 100)",
        rich_help_panel=MARKET)] = None,
    challenge_blocks: Annotated[int | None, typer.Option(
        "--challenge-blocks", help="job-post: challenge window after each commit (default 10)",
        rich_help_panel=MARKET)] = None,
    job: Annotated[str | None, typer.Option(
        "--job", help="job id (hex): every kind after job-post", rich_help_panel=MARKET)] = None,
    bids: Annotated[Path | None, typer.Option(
        "--bids", help="job-award: JSON file, a list of {bid: signed bid (`neuro tx bid`), shards: [..]}",
        rich_help_panel=MARKET)] = None,
    shard: Annotated[int | None, typer.Option(
        "--shard", help="result-commit, challenge, respond: shard number", rich_help_panel=MARKET)] = None,
    root: Annotated[str | None, typer.Option(
        "--root", help="result-commit: artifact root (hex)", rich_help_panel=MARKET)] = None,
    items: Annotated[int | None, typer.Option(
        "--items", help="result-commit: item count of the artifact", rich_help_panel=MARKET)] = None,
    index: Annotated[int | None, typer.Option(
        "--index", help="challenge: the challenged item (its index in the job)", rich_help_panel=MARKET)] = None,
    claim: Annotated[Path | None, typer.Option(
        "--claim", help="challenge (a fraud proof; none: a query, or a dispute of a training job), respond: "
        "leaf claim JSON file", rich_help_panel=MARKET)] = None,
    verdict: Annotated[str | None, typer.Option(
        "--verdict", help="vote: fraud | honest", rich_help_panel=MARKET)] = None,
    voucher: Annotated[str | None, typer.Option(
        "--voucher", help="redeem: the voucher string, or a file holding it", rich_help_panel=TREASURY)] = None,
    currency: Annotated[str | None, typer.Option(
        "--currency", help="buyback-offer: currency code, e.g. USD", rich_help_panel=TREASURY)] = None,
    ref_price: Annotated[str | None, typer.Option(
        "--ref-price", help="buyback-offer: price per NTK in the currency, e.g. 1.25",
        rich_help_panel=TREASURY)] = None,
    cap: Annotated[str | None, typer.Option(
        "--cap", help="buyback-offer: most NTK bought", rich_help_panel=TREASURY)] = None,
    expiry: Annotated[int | None, typer.Option(
        "--expiry", help="buyback-offer: last block height", rich_help_panel=TREASURY)] = None,
    offer: Annotated[str | None, typer.Option(
        "--offer", help="buyback-sell: the offer id (hex); with --amount", rich_help_panel=TREASURY)] = None,
    listing_file: Annotated[Path | None, typer.Option(
        "--listing-file", help="listing: JSON file of its fields (docs/rpc.md, tx object)",
        rich_help_panel=LISTINGS)] = None,
    listing: Annotated[str | None, typer.Option(
        "--listing", help="delist, purchase: the listing id (hex)", rich_help_panel=LISTINGS)] = None,
    price: Annotated[str | None, typer.Option(
        "--price", help="purchase: the listed price, NTK", rich_help_panel=LISTINGS)] = None,
    delivery_key: Annotated[str | None, typer.Option(
        "--delivery-key", help="purchase: X25519 key (hex) from the receiving daemon's listing_delivery_key",
        rich_help_panel=LISTINGS)] = None,
) -> None:
    """Write an unsigned transaction of any kind for `neuro tx sign` (no password needed).

    A transfer takes TO AMOUNT; every other kind takes --kind and its options, e.g.
    `--kind stake --amount 100`, `--kind settle --job HEX`.
    """
    from wallet.payload_json import KIND_NAMES, kind_type, payload_from_json
    from wallet.txfile import build_transfer, build_unsigned

    kind = KIND_NAMES[kind_type(kind)]
    where = Where(network, datadir, keystore, rpc)
    if kind == "transfer":
        if to is None or amount is None:
            raise CliError("a transfer takes TO AMOUNT (or pick another --kind)", "missing-argument")
    elif to is not None or amount is not None:
        raise CliError(f"--kind {kind} takes no TO AMOUNT arguments", "bad-argument")
    options = {
        "amount": stake_amount, "service": service, "spec": spec, "shards": shards,
        "max_price": max_price, "bid_blocks": bid_blocks, "deadline_blocks": deadline_blocks,
        "challenge_blocks": challenge_blocks, "job": job, "bids": bids, "shard": shard,
        "root": root, "items": items, "index": index, "claim": claim, "verdict": verdict,
        "voucher": voucher, "currency": currency, "ref_price": ref_price, "cap": cap, "expiry": expiry,
        "offer": offer, "listing_file": listing_file, "listing": listing, "price": price,
        "delivery_key": delivery_key,
    }
    sender_address = address_of(where, sender)
    recipient = address_of(where, to) if to is not None else ""
    payload = None
    if kind != "transfer":  # checked before any network call
        fields = payload_fields(kind, options)
        if kind == "redeem":  # a voucher's claim names the account it is redeemed into
            fields["redeemer"] = sender_address
        payload = payload_from_json(kind, fields, where.hrp)
        check_job_post(payload, where, chain)
    else:
        payload_fields(kind, options)
    if nonce is None:
        rpc_client = client(where)
        chain_id = online_chain_id(rpc_client, where)
        nonce = int(rpc_client.call("account_get", address=sender_address)["pending_nonce"])
    else:
        chain_id = offline_chain_id(where, chain)
    if payload is None:
        assert to is not None and amount is not None
        unsigned = build_transfer(
            chain_id=chain_id, sender=sender_address, to=recipient, amount=amount, fee=fee, nonce=nonce
        )
        warn_if_self(sender_address, recipient)
        write_json_file(out, unsigned.to_json())
        return
    built = build_unsigned(chain_id=chain_id, sender=sender_address, fee=fee, nonce=nonce, payload=payload)
    write_json_file(out, built.to_json())


def check_job_post(payload: Any, where: Where, chain: str | None) -> None:
    """A job post's spec read as consensus reads it (the network's limits), with its price."""
    from chain.amounts import format_ntk
    from chain.genesis import load_genesis
    from chain.job_spec import job_terms
    from chain.market_types import JobPost

    if not isinstance(payload, JobPost):
        return
    params = (load_genesis(chain) if chain is not None else where.genesis).params.market
    terms = job_terms(payload.service, payload.spec, params.max_spec_bytes)
    if payload.shards > min(terms.items, params.max_shards):
        raise CliError(
            f"--shards {payload.shards}: at most {min(terms.items, params.max_shards)} for this spec",
            "too-many-shards",
        )
    escrow = sum(terms.payment(k, payload.shards, payload.max_price) for k in range(payload.shards))
    note(f"job: {terms.items} items, {terms.units} compute units; escrow at the max price "
         f"{format_ntk(escrow)} NTK")


@tx_app.command("bid")
@guarded
def bid(
    job: Annotated[str, typer.Option("--job", help="job id (hex)")],
    price: Annotated[int, typer.Option("--price", help="unit price: base units per quote unit")],
    expiry: Annotated[int, typer.Option("--expiry", help="last block height an award may carry it")],
    max_shards: Annotated[int, typer.Option("--max-shards", help="most shards it may win")] = 1,
    sender: Annotated[
        str | None, typer.Option("--from", help="worker key name or address (default: default key)")
    ] = None,
    chain: ChainOpt = None,
    out: OutOpt = None,
    network: NetworkOpt = "main",
    datadir: DatadirOpt = None,
    keystore: KeystoreOpt = None,
    password_file: PasswordFileOpt = None,
) -> None:
    """Sign a worker's bid for a job (offline): the file the client's job-award carries."""
    from wallet.payload_json import bid_file_json, hex_param
    from wallet.txfile import sign_bid

    job_id = hex_param(job, "--job", 32)
    where = Where(network, datadir, keystore)
    chain_id = offline_chain_id(where, chain)
    store = where.keystore()
    keyfile = store.resolve(sender)
    key = store.unlock(keyfile.name, read_password(password_file))
    signed = sign_bid(chain_id=chain_id, job_id=job_id, key=key, unit_price=price,
                      max_shards=max_shards, expiry=expiry)
    write_json_file(out, bid_file_json(signed, where.hrp))


@tx_app.command("sign")
@guarded
def sign(
    file: Annotated[Path, typer.Argument(help="unsigned transaction file ('-' for stdin)")],
    out: OutOpt = None,
    network: NetworkOpt = "main",
    datadir: DatadirOpt = None,
    keystore: KeystoreOpt = None,
    password_file: PasswordFileOpt = None,
) -> None:
    """Sign an unsigned transaction file with the sender's key from the keystore (offline)."""
    from wallet.txfile import UnsignedTx, sign_unsigned, signed_json

    unsigned = UnsignedTx.from_json(read_json_file(file))
    store = Where(network, datadir, keystore).keystore()
    keyfile = store.find(unsigned.sender)
    key = store.unlock(keyfile.name, read_password(password_file))
    write_json_file(out, signed_json(sign_unsigned(unsigned, key), unsigned.hrp))


@tx_app.command("send")
@guarded
def send(
    file: Annotated[Path, typer.Argument(help="signed transaction file ('-' for stdin)")],
    wait: WaitOpt = None,
    network: NetworkOpt = "main",
    datadir: DatadirOpt = None,
    rpc: RpcOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Broadcast a signed transaction file to the daemon."""
    from wallet.txfile import read_signed

    tx = read_signed(read_json_file(file))
    where = Where(network, datadir, None, rpc)
    rpc_client = client(where)
    if tx.chain_id != online_chain_id(rpc_client, where):
        raise CliError(
            f"this transaction is signed for chain {tx.chain_id.hex()[:16]}..., not {network}",
            "bad-tx-chain-id",
        )
    submit(rpc_client, tx, wait, json_out, where.hrp)


@tx_app.command("show")
@guarded
def show(
    file: Annotated[Path, typer.Argument(help="unsigned or signed transaction file")],
    json_out: JsonOpt = False,
) -> None:
    """Decode a transaction file and show what it does (offline)."""
    from wallet.txfile import SIGNED_TYPE, UnsignedTx, describe, read_signed

    doc = read_json_file(file)
    if isinstance(doc, dict) and doc.get("type") == SIGNED_TYPE:
        tx = read_signed(doc)
        hrp = str(doc.get("from", "")).rpartition("1")[0]
        data = {"signed": True, "txid": tx.txid.hex(), **describe(tx, hrp)}
    else:
        data = {"signed": False, **UnsignedTx.from_json(doc).to_json()}
        data.pop("type")
    if json_out:
        print_json(data)
    else:
        console.print(f"{'signed' if data['signed'] else 'unsigned'} {data.get('kind', 'transfer')}")
        fields(None, readable_rows(data, skip=("signed", "kind")))


NTK_FIELDS = ("amount", "fee")  # NTK decimals in every tx description (wallet/txfile.py)


def readable_rows(data: dict[str, Any], skip: tuple[str, ...] = ()) -> list[tuple[str, Any]]:
    """Key/value rows of a tx description, amounts with their unit; nested values (a spec, bids,
    a claim) as compact JSON."""
    return [
        (k, json.dumps(v, separators=(",", ":")) if isinstance(v, (dict, list))
         else f"{v} NTK" if k in NTK_FIELDS else v)
        for k, v in data.items()
        if k not in skip
    ]


def warn_if_self(sender: str, to: str) -> None:
    """A transfer to its own sender only burns the fee: allowed, but never silently."""
    if sender == to:
        warn(f"sending to yourself ({to}): the balance only loses the fee")
