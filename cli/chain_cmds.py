"""`neuro chain head|block|tx|supply`: read the chain through the daemon."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

import typer

from chain.errors import ChainError
from cli.config import DatadirOpt, JsonOpt, NetworkOpt, RpcOpt, Where
from cli.ids import resolve_id
from cli.output import CliError, fields, guarded, print_json, table
from cli.tx import client
from wallet.node_client import RpcError

chain_app = typer.Typer(
    help="Read the chain: tip, blocks, transactions, supply.", no_args_is_help=True
)



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
    """A height (decimal, under 8 digits), else a block hash or a unique prefix of 8+ hex digits
    (`0x` forces hex). Eight or more decimal digits are both: a hash prefix (proof of work makes
    hashes start with digits) and, where no block hash starts so, a height (see `block`)."""
    from chain.id_prefix import MIN_PREFIX_HEX, parse_id

    value = text.strip().lower()
    if value.isdecimal() and len(value) < MIN_PREFIX_HEX:
        return int(value)
    try:
        return parse_id(value, "block hash")
    except ChainError:
        raise CliError(f"{text!r} is neither a block height nor a block hash (64 hex, or the first 8 or more)",
                       "bad-block-id") from None


@chain_app.command("block")
@guarded
def block(
    id: Annotated[str, typer.Argument(help="height, or block hash (a unique prefix of 8+ hex digits will do)",
                                      metavar="HEIGHT|HASH")],
    network: NetworkOpt = "main",
    datadir: DatadirOpt = None,
    rpc: RpcOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """A block: header and transactions."""
    wanted = block_id(id)  # checked before any connection
    rpc_client = client(Where(network, datadir, None, rpc))
    if isinstance(wanted, str):
        try:
            wanted = resolve_id(wanted, "block", lambda: rpc_client)
        except RpcError as exc:
            if not (exc.reason == "unknown-block" and wanted.isdecimal() and len(wanted) < 20):
                raise
            wanted = int(wanted)  # no hash starts with these digits: the height they spell
    found = rpc_client.call("chain_block", id=wanted)
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


@chain_app.command("tx")
@guarded
def tx(
    txid: Annotated[str, typer.Argument(help="transaction id: 64 hex, or a unique prefix of 8+")],
    network: NetworkOpt = "main",
    datadir: DatadirOpt = None,
    rpc: RpcOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """A transaction and where it is: pending in the mempool or confirmed in a block."""
    where = Where(network, datadir, None, rpc)
    wanted = resolve_id(txid, "tx", lambda: client(where))
    found = client(where).call("chain_tx", txid=wanted)
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
    """NTK issued (genesis allocations and block rewards), burned (slashes, fees, buybacks) and
    circulating (issued - burned) at the tip, and what the treasury holds."""
    found = client(Where(network, datadir, None, rpc)).call("chain_supply")
    if json_out:
        print_json(found)
        return
    fields(f"supply at height {found['height']}", [
        ("issued", f"{found['issued_ntk']} NTK"),
        ("  genesis", f"{found['genesis_ntk']} NTK"),
        ("  block rewards", f"{found['rewards_ntk']} NTK"),
        ("burned", f"{found['burned_ntk']} NTK"),
        ("circulating", f"{found['circulating_ntk']} NTK"),
        ("staked", f"{found['staked_ntk']} NTK"),
        ("treasury", f"{found['treasury_balance_ntk']} NTK" if found["treasury"] else "none"),
    ])
