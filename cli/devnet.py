"""`neuro devnet`: run several local daemons with a devnet genesis of their own (neurod/devnet.py),
and hand out its funds: the well-known keys (chain/devnet_keys.py) hold them, and `faucet` sends
from the treasury to any address or key name through a node of the devnet."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from cli.config import DatadirOpt, KeystoreOpt, RpcOpt, Where
from cli.output import CliError, guarded, note, print_json, table
from cli.tx import DEFAULT_FEE_NTK, FeeOpt, WaitOpt, address_of, client, online_chain_id, submit

devnet_app = typer.Typer(help="A local multi-node devnet on 127.0.0.1.", no_args_is_help=True)

JsonFlag = typer.Option(False, "--json", help="print JSON for scripts")
OutOption = typer.Option(Path("neuro-demo"), "--out", help="where the demo's datasets, models and plot are kept")
DirOption = typer.Option(None, "--dir", envvar="NEURO_DEVNET_DIR", help="cluster directory (default ~/.neuro/devnet-cluster)")


def _root(directory: Path | None) -> Path:
    from neurod.devnet import default_dir

    return (directory or default_dir()).expanduser().resolve()


def _cluster(call: Any) -> Any:
    from neurod.devnet import DevnetError

    try:
        return call()
    except DevnetError as exc:
        raise CliError(str(exc), "devnet-error") from None


FAUCET_NTK = "1000"
TIP_SHOWN = 16  # hex digits of a tip in the table (`--json` has all 64; any 8+ are accepted back)


def _cell(value: Any) -> Any:
    return "-" if value is None else value


def _show(rows: list[dict[str, Any]]) -> None:
    table(
        "devnet",
        ["node", "up", "mining", "height", "tip", "peers", "mempool", "rpc", "datadir"],
        [[r["name"], "yes" if r["up"] else "no", "yes" if r["mining"] else "no" if r["up"] else "-",
          _cell(r["height"]), _cell(r["tip"] and r["tip"][:TIP_SHOWN]), _cell(r["peers"]),
          _cell(r["mempool"]), _cell(r["rpc_url"]), r["datadir"]] for r in rows],
    )
    if rows and not any(r["up"] for r in rows):
        note("the devnet is down: start it again with `neuro devnet up` (its chains and keys are kept)")


def _show_accounts(root: Path, accounts: list[dict[str, Any]]) -> None:
    """The funded well-known accounts of the devnet and how to get their funds."""
    rows = [(a["name"], a["address"], f"{a['genesis_balance_ntk']} NTK") for a in accounts]
    table("funded well-known accounts (public seeds: devnet only)", ["name", "address", "genesis balance"], rows)
    hint = "" if root == _root(None) else f" --dir {root}"
    note(
        f"get funds: `neuro devnet faucet ADDRESS|KEYNAME [NTK]{hint}` (from the treasury); talk to node0 with "
        f"`export NEURO_NETWORK=devnet NEURO_DATADIR={root / 'node0'}`"
    )


@devnet_app.command("up")
@guarded
def up_command(
    nodes: int = typer.Option(3, "--nodes", "-n", min=1, max=16, help="number of daemons"),
    miners: int = typer.Option(1, "--miners", min=0, help="how many of them mine"),
    block_interval: float = typer.Option(2.0, "--block-interval", help="seconds between a miner's blocks"),
    fresh: bool = typer.Option(False, "--fresh", help="start a new chain: remove the nodes' chain data and "
                               "the genesis (listed first; keys are kept)"),
    directory: Path | None = DirOption,
    as_json: bool = JsonFlag,
) -> None:
    """Start N neurod processes, wait until they are peered, print their RPC URLs and data dirs
    and the funded well-known accounts (`--json`: an object of `nodes` and `accounts`)."""
    from neurod import devnet

    root = _root(directory)
    if fresh:
        removed = devnet.fresh_removals(root, nodes)
        note(f"--fresh removes {len(removed)} entries (keys are kept): "
             + (", ".join(str(p.relative_to(root)) for p in removed) or "none"))
    note(f"starting {nodes} nodes in {root} ...")
    _cluster(lambda: devnet.up(root, nodes, min(miners, nodes), block_interval, fresh=fresh))
    rows = _cluster(lambda: devnet.status(root))
    accounts = devnet.funded_accounts(root)
    if as_json:
        print_json({"nodes": rows, "accounts": accounts})
        return
    _show(rows)
    _show_accounts(root, accounts)


@devnet_app.command("status")
@guarded
def status_command(directory: Path | None = DirOption, as_json: bool = JsonFlag) -> None:
    """Height, tip, peers and mempool of every node of the devnet."""
    from neurod import devnet

    rows = _cluster(lambda: devnet.status(_root(directory)))
    print_json(rows) if as_json else _show(rows)


@devnet_app.command("faucet")
@guarded
def faucet_command(
    to: Annotated[str, typer.Argument(help="recipient address, or the name of a key in your keystore")],
    amount: Annotated[str, typer.Argument(help="NTK to send")] = FAUCET_NTK,
    source: Annotated[str, typer.Option("--from", help="the well-known account that pays")] = "treasury",
    fee: FeeOpt = DEFAULT_FEE_NTK,
    wait: WaitOpt = None,
    directory: Path | None = DirOption,
    datadir: DatadirOpt = None,
    keystore: KeystoreOpt = None,
    rpc: RpcOpt = None,
    as_json: bool = JsonFlag,
) -> None:
    """Send devnet NTK from a well-known account (the treasury by default) through a node of the
    devnet: the first node of `--dir` that answers, or the one of --rpc / --datadir."""
    from chain.devnet_keys import DEVNET_ACCOUNTS, devnet_seed
    from neurod import devnet
    from wallet.keys import Key
    from wallet.txfile import build_transfer, sign_transfer

    if source not in DEVNET_ACCOUNTS:
        raise CliError(f"--from {source!r} is not a well-known devnet account ({', '.join(DEVNET_ACCOUNTS)})",
                       "unknown-account")
    if rpc is None and datadir is None:
        datadir = Path(_cluster(lambda: devnet.first_up(_root(directory))).datadir)
    where = Where("devnet", datadir, keystore, rpc)
    key = Key(devnet_seed(source))
    sender = key.address(where.hrp)
    recipient = address_of(where, to)
    build_transfer(chain_id=bytes(32), sender=sender, to=recipient, amount=amount, fee=fee, nonce=0)  # checked first
    rpc_client = client(where)
    chain_id = online_chain_id(rpc_client, where)
    nonce = int(rpc_client.call("account_get", address=sender)["pending_nonce"])
    unsigned = build_transfer(chain_id=chain_id, sender=sender, to=recipient, amount=amount, fee=fee, nonce=nonce)
    if not as_json:
        note(f"faucet: {amount} NTK from {source} to {recipient}")
    submit(rpc_client, sign_transfer(unsigned, key), wait, as_json, where.hrp)


@devnet_app.command("down")
@guarded
def down_command(directory: Path | None = DirOption) -> None:
    """Stop every node of the devnet (their data stays for the next `up`)."""
    from neurod import devnet

    stopped = devnet.down(_root(directory))
    note(f"stopped {stopped} node(s)")


@devnet_app.command("demo")
@guarded
def demo_command(
    out: Path = OutOption,
    rounds: int = typer.Option(2, "--rounds", min=1, max=10, help="rounds of the digits loop"),
    keep: bool = typer.Option(False, "--keep", help="leave the devnet running afterwards"),
    directory: Path | None = DirOption,
) -> None:
    """The market at work: a fresh 5-daemon devnet, a paid shelves dataset and the digits loop
    bought from worker daemons (cli/market_demo.py)."""
    from cli.market_demo import run_demo

    run_demo(_root(directory), out.resolve(), rounds=rounds, keep=keep)


def _status_table(rows: list[dict[str, Any]]) -> Any:
    from rich.table import Table

    view = Table(title="devnet (live)", title_justify="left", header_style="bold cyan")
    for column in ("node", "mining", "height", "tip", "peers", "mempool"):
        view.add_column(column)
    for r in rows:
        view.add_row(r["name"], "yes" if r["mining"] else "", str(_cell(r["height"])),
                     str(_cell(r["tip"] and r["tip"][:TIP_SHOWN])), str(_cell(r["peers"])), str(_cell(r["mempool"])))
    return view
