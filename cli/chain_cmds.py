"""`neuro chain head|block|tx|supply`: read the chain through the daemon."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

import typer

from cli.config import DatadirOpt, JsonOpt, NetworkOpt, RpcOpt, Where
from cli.output import CliError, console, fields, guarded, print_json, table
from cli.tx import client

chain_app = typer.Typer(
    help="Read the chain: tip, blocks, transactions, supply.", no_args_is_help=True
)

HASH_HEX = 64


def _when(timestamp: int) -> str:
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _header_rows(header: dict[str, Any]) -> list[tuple[str, Any]]:
    return [
        ("height", header["height"]),
        ("hash", header["hash"]),
        ("parent", header["parent"]),
        ("time", _when(header["timestamp"])),
        ("bits", header["bits"]),
        ("miner", header["miner"]),
        ("tx root", header["tx_root"]),
        ("state root", header["state_root"]),
        ("work", header["work"]),
    ]


@chain_app.command("head")
@guarded
def head(
    network: NetworkOpt = "main",
    datadir: DatadirOpt = None,
    rpc: RpcOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """The header of the best chain's tip."""
    header = client(Where(network, datadir, None, rpc)).call("chain_head")
    if json_out:
        print_json(header)
    else:
        fields("chain tip", _header_rows(header))


def block_id(text: str) -> int | str:
    """A height (decimal) or a block hash (64 hex): the two forms `chain_block` takes."""
    value = text.strip().lower().removeprefix("0x")
    if value.isdecimal() and len(value) < 20:
        return int(value)
    if len(value) == HASH_HEX and all(c in "0123456789abcdef" for c in value):
        return value
    raise CliError(f"{text!r} is neither a block height nor a 64-hex block hash", "bad-block-id")


@chain_app.command("block")
@guarded
def block(
    id: Annotated[str, typer.Argument(help="height or block hash", metavar="HEIGHT|HASH")],
    network: NetworkOpt = "main",
    datadir: DatadirOpt = None,
    rpc: RpcOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """A block: header and transactions."""
    wanted = block_id(id)  # checked before any connection
    found = client(Where(network, datadir, None, rpc)).call("chain_block", id=wanted)
    if json_out:
        print_json(found)
        return
    fields(
        f"block {found['height']}",
        [*_header_rows(found["header"]), ("size", f"{found['size']} bytes")],
    )
    if found["txs"]:
        rows = [
            (
                tx["txid"][:16],
                tx.get("kind", "transfer"),
                tx["from"],
                tx.get("to", ""),
                _amount(tx),
                f"{tx['fee_ntk']} NTK",
            )
            for tx in found["txs"]
        ]
        table(f"{len(rows)} transactions", ("txid", "kind", "from", "to", "amount", "fee"), rows)


def _amount(tx: dict[str, Any]) -> str:
    """A transfer's or a stake's amount; market kinds without one show none."""
    return f"{tx['amount_ntk']} NTK" if "amount_ntk" in tx else ""


def txid_param(text: str) -> str:
    value = text.strip().lower().removeprefix("0x")
    if len(value) != HASH_HEX or any(c not in "0123456789abcdef" for c in value):
        raise CliError(f"{text!r} is not a transaction id (64 hex)", "bad-txid")
    return value


@chain_app.command("tx")
@guarded
def tx(
    txid: Annotated[str, typer.Argument(help="transaction id (hex)")],
    network: NetworkOpt = "main",
    datadir: DatadirOpt = None,
    rpc: RpcOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """A transaction and where it is: pending in the mempool or confirmed in a block."""
    wanted = txid_param(txid)
    found = client(Where(network, datadir, None, rpc)).call("chain_tx", txid=wanted)
    if json_out:
        print_json(found)
        return
    body = found["tx"]
    status = found["status"]
    where = (
        f"confirmed in block {found['height']} ({found['confirmations']} confirmations)"
        if status == "confirmed"
        else "pending in the mempool"
    )
    fields(
        f"transaction {body['txid']}",
        [
            ("status", where),
            ("kind", body.get("kind", "transfer")),
            ("from", body["from"]),
            ("to", body.get("to", "")),
            ("amount", _amount(body)),
            ("fee", f"{body['fee_ntk']} NTK"),
            ("nonce", body["nonce"]),
        ],
    )


@chain_app.command("supply")
@guarded
def supply(
    network: NetworkOpt = "main",
    datadir: DatadirOpt = None,
    rpc: RpcOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Total NTK in existence at the tip."""
    found = client(Where(network, datadir, None, rpc)).call("chain_supply")
    if json_out:
        print_json(found)
    else:
        console.print(f"{found['supply_ntk']} NTK at height {found['height']}")
