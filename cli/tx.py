"""`neuro tx`: build, sign and broadcast transactions as files, for offline (air-gapped) signing.

    neuro tx build TO AMOUNT --from NAME --nonce N --chain devnet --out unsigned.json   (offline)
    neuro tx sign unsigned.json --out signed.json                                       (offline)
    neuro tx send signed.json                                                           (online)

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
from cli.output import CliError, console, fields, guarded, note, print_json

if TYPE_CHECKING:
    from chain.types import Transaction
    from cli.rpc import RpcClient

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
    from cli.rpc import RpcClient

    return RpcClient(where.rpc())


def offline_chain_id(where: Where, chain: str | None) -> bytes:
    """The chain id (genesis hash) without a daemon: from a built-in network or a genesis file."""
    if chain is None:
        return where.genesis.chain_id
    from chain.genesis import load_genesis

    return load_genesis(chain).chain_id


def online_chain_id(rpc: RpcClient, where: Where) -> bytes:
    """The daemon's chain id, refusing a daemon of another network than the one we check against."""
    status = rpc.call("node_status")
    if status.get("hrp") != where.hrp or status.get("chain_id") != where.genesis.chain_id.hex():
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


@tx_app.command("build")
@guarded
def build(
    to: Annotated[str, typer.Argument(help="recipient address")],
    amount: Annotated[str, typer.Argument(help="amount in NTK, e.g. 12.5")],
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
) -> None:
    """Write an unsigned transfer for `neuro tx sign` (no password needed)."""
    from wallet.txfile import build_transfer

    where = Where(network, datadir, keystore, rpc)
    sender_address = address_of(where, sender)
    if nonce is None:
        rpc_client = client(where)
        chain_id = online_chain_id(rpc_client, where)
        nonce = int(rpc_client.call("account_get", address=sender_address)["pending_nonce"])
    else:
        chain_id = offline_chain_id(where, chain)
    unsigned = build_transfer(
        chain_id=chain_id, sender=sender_address, to=to, amount=amount, fee=fee, nonce=nonce
    )
    write_json_file(out, unsigned.to_json())


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
    from wallet.txfile import UnsignedTransfer, sign_transfer, signed_json

    unsigned = UnsignedTransfer.from_json(read_json_file(file))
    store = Where(network, datadir, keystore).keystore()
    keyfile = store.find(unsigned.sender)
    key = store.unlock(keyfile.name, read_password(password_file))
    write_json_file(out, signed_json(sign_transfer(unsigned, key), unsigned.hrp))


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
    from wallet.txfile import SIGNED_TYPE, UnsignedTransfer, describe, read_signed

    doc = read_json_file(file)
    if isinstance(doc, dict) and doc.get("type") == SIGNED_TYPE:
        tx = read_signed(doc)
        hrp = str(doc.get("from", "")).rpartition("1")[0]
        data = {"signed": True, "txid": tx.txid.hex(), **describe(tx, hrp)}
    else:
        data = {"signed": False, **UnsignedTransfer.from_json(doc).to_json()}
        data.pop("type")
    if json_out:
        print_json(data)
    else:
        console.print(f"{'signed' if data['signed'] else 'unsigned'} transfer")
        fields(None, [(k, v) for k, v in data.items() if k != "signed"])
