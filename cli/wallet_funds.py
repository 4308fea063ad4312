"""`neuro wallet balance|send|history`: the wallet commands that talk to the daemon.

`send` checks everything it can before asking for the password or touching the network: the
recipient's checksum and prefix, the amount's decimals, and the balance it can see.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.text import Text

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
from cli.output import CliError, fields, guarded, note, print_json, table
from cli.tx import (
    DEFAULT_FEE_NTK,
    ChainOpt,
    FeeOpt,
    WaitOpt,
    address_of,
    client,
    offline_chain_id,
    online_chain_id,
    submit,
    warn_if_self,
    write_json_file,
)
from cli.wallet import OptionalNameArg, wallet_app


@wallet_app.command("balance")
@guarded
def balance(
    name: OptionalNameArg = None,
    network: NetworkOpt = "main",
    datadir: DatadirOpt = None,
    keystore: KeystoreOpt = None,
    rpc: RpcOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Balance and nonce of a key or any address."""
    where = Where(network, datadir, keystore, rpc)
    account = client(where).call("account_get", address=address_of(where, name))
    if json_out:
        print_json(account)
        return
    fields(
        None,
        [
            ("address", account["address"]),
            ("balance", f"{account['balance_ntk']} NTK"),
            ("nonce", account["nonce"]),
            ("pending nonce", account["pending_nonce"]),
        ],
    )


@wallet_app.command("send")
@guarded
def send(
    to: Annotated[
        str, typer.Argument(help="recipient address, or the name of a key in the keystore")
    ],
    amount: Annotated[str, typer.Argument(help="amount in NTK, e.g. 12.5")],
    sender: Annotated[
        str | None, typer.Option("--from", help="key name (default: the default key)")
    ] = None,
    fee: FeeOpt = DEFAULT_FEE_NTK,
    nonce: Annotated[
        int | None, typer.Option("--nonce", help="use this nonce instead of the daemon's")
    ] = None,
    chain: ChainOpt = None,
    out: Annotated[
        Path | None, typer.Option("--out", help="write the signed tx here instead of sending it")
    ] = None,
    wait: WaitOpt = None,
    network: NetworkOpt = "main",
    datadir: DatadirOpt = None,
    keystore: KeystoreOpt = None,
    rpc: RpcOpt = None,
    password_file: PasswordFileOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Sign and send a transfer; with --nonce and --out it runs fully offline and only writes the file."""
    from wallet.txfile import build_transfer, sign_transfer, signed_json

    where = Where(network, datadir, keystore, rpc)
    store = where.keystore()
    keyfile = store.resolve(sender)
    to = address_of(where, to)
    warn_if_self(keyfile.address, to)
    offline = out is not None and nonce is not None
    # validate the recipient, amount and fee before any password prompt or network call
    build_transfer(
        chain_id=bytes(32), sender=keyfile.address, to=to, amount=amount, fee=fee, nonce=nonce or 0
    )
    if offline:
        chain_id = offline_chain_id(where, chain)
    else:
        rpc_client = client(where)
        chain_id = online_chain_id(rpc_client, where)
        account = rpc_client.call("account_get", address=keyfile.address)
        if nonce is None:
            nonce = int(account["pending_nonce"])
    unsigned = build_transfer(
        chain_id=chain_id, sender=keyfile.address, to=to, amount=amount, fee=fee, nonce=nonce or 0
    )
    if not offline and unsigned.amount + unsigned.fee > int(account["balance"]):
        raise CliError(
            f"{keyfile.name} has {account['balance_ntk']} NTK; sending {amount} NTK with a {fee} NTK fee "
            "needs more",
            "insufficient-balance",
        )
    key = store.unlock(keyfile.name, read_password(password_file))
    tx = sign_transfer(unsigned, key)
    if out is not None:
        write_json_file(out, signed_json(tx, unsigned.hrp))
        return
    submit(rpc_client, tx, wait, json_out, where.hrp)


@wallet_app.command("history")
@guarded
def history(
    name: OptionalNameArg = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=1000, help="newest first")] = 50,
    network: NetworkOpt = "main",
    datadir: DatadirOpt = None,
    keystore: KeystoreOpt = None,
    rpc: RpcOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Confirmed transactions of a key or any address, the blocks it mined and its market
    movements, newest first."""
    where = Where(network, datadir, keystore, rpc)
    address = address_of(where, name)
    items = client(where).call("account_history", address=address, limit=limit)
    if json_out:
        print_json(items)
        return
    if not items:
        note(f"no transactions for {address}")
        return
    arrows = {"in": Text("in", style="green"), "out": Text("out", style="red")}
    rows = [
        (
            item["height"],
            arrows.get(item["direction"], item["direction"]),
            _what(item),
            f"{item['amount_ntk']} NTK" if "amount_ntk" in item else "",
            _counterparty(item),
            item["txid"][:16] if item.get("txid") else "-",
        )
        for item in items
    ]
    table(f"history of {address}", ("height", "dir", "what", "amount", "counterparty", "txid"), rows)


def _what(item: dict[str, Any]) -> str:
    """A transaction's kind, `reward` for a block mined, `market: <event>` for a market movement,
    with its note when the job is the counterparty (`market: lock (escrow)`, `market: slash (fraud)`)."""
    if item["kind"] != "market":
        return str(item["kind"])
    noted = item.get("job") and item.get("note")
    return f"market: {item['event']}" + (f" ({item['note']})" if noted else "")


def _counterparty(item: dict[str, Any]) -> str:
    if item["kind"] == "reward":
        return f"block {item['block_hash'][:16]}"
    if item["kind"] == "market":
        return f"job {item['job'][:16]}" if item.get("job") else str(item.get("note") or "")
    return str(item.get("to") if item["direction"] == "out" else item.get("from") or "")
