"""`neuro devnet`: run several local daemons with the devnet genesis (see neurod/devnet.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from cli.output import CliError, guarded, note, print_json, table

devnet_app = typer.Typer(help="A local multi-node devnet on 127.0.0.1.", no_args_is_help=True)

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


def _show(rows: list[dict[str, Any]]) -> None:
    table(
        "devnet",
        ["node", "up", "mining", "height", "tip", "peers", "mempool", "rpc", "datadir"],
        [[r["name"], "yes" if r["up"] else "no", "yes" if r["mining"] else "", r["height"], r["tip"],
          r["peers"], r["mempool"], r["rpc_url"], r["datadir"]] for r in rows],
    )


@devnet_app.command("up")
@guarded
def up_command(
    nodes: int = typer.Option(3, "--nodes", "-n", min=1, max=16, help="number of daemons"),
    miners: int = typer.Option(1, "--miners", min=0, help="how many of them mine"),
    block_interval: float = typer.Option(2.0, "--block-interval", help="seconds between a miner's blocks"),
    fresh: bool = typer.Option(False, "--fresh", help="delete existing node data first"),
    directory: Path | None = DirOption,
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Start N neurod processes, wait until they are peered, print their RPC URLs and data dirs."""
    from neurod import devnet

    root = _root(directory)
    note(f"starting {nodes} nodes in {root} ...")
    _cluster(lambda: devnet.up(root, nodes, min(miners, nodes), block_interval, fresh=fresh))
    rows = _cluster(lambda: devnet.status(root))
    print_json(rows) if as_json else _show(rows)


@devnet_app.command("status")
@guarded
def status_command(directory: Path | None = DirOption, as_json: bool = typer.Option(False, "--json")) -> None:
    """Height, tip, peers and mempool of every node of the devnet."""
    from neurod import devnet

    rows = _cluster(lambda: devnet.status(_root(directory)))
    print_json(rows) if as_json else _show(rows)


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
    """The market at work: a fresh 4-daemon devnet, a paid shelves dataset and the digits loop
    bought from worker daemons (cli/market_demo.py)."""
    from cli.market_demo import run_demo

    run_demo(_root(directory), out.resolve(), rounds=rounds, keep=keep)


def _status_table(rows: list[dict[str, Any]]) -> Any:
    from rich.table import Table

    view = Table(title="devnet (live)", title_justify="left", header_style="bold cyan")
    for column in ("node", "mining", "height", "tip", "peers", "mempool"):
        view.add_column(column)
    for r in rows:
        view.add_row(r["name"], "yes" if r["mining"] else "", str(r["height"]), str(r["tip"]),
                     str(r["peers"]), str(r["mempool"]))
    return view
