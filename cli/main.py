"""`neuro`: the command line of the Neuro network.

Start-up must stay fast (`neuro --help` well under a second): modules imported here import only
typer/rich and our light packages; torch and libp2p are imported inside the commands that need them.
"""

from __future__ import annotations

import typer

from cli import (
    listings,  # noqa: F401  (registers `neuro market list|show|sell|buy|delist`)
    market_loop,  # noqa: F401  (registers `neuro job loop`)
)
from cli.artifact import artifact_app
from cli.chain_cmds import chain_app
from cli.devnet import devnet_app
from cli.label import label_app
from cli.market import job_app, market_app, stake_app, worker_app
from cli.node import node_app
from cli.output import show_flags_as_flags
from cli.task import task_app
from cli.treasury import treasury_app  # also registers `neuro wallet redeem|sell-buyback`
from cli.tx import tx_app
from cli.ui import ui_command
from cli.wallet_funds import wallet_app

app = typer.Typer(
    name="neuro",
    help="Neuro network: wallet, chain, node, tasks, market jobs and stake, and a local devnet.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
show_flags_as_flags()


def _print_version(value: bool) -> None:
    if value:
        from neurod.version import version

        typer.echo(f"neuro {version()}")
        raise typer.Exit()


@app.callback()
def _root(
    _version: bool = typer.Option(
        False, "--version", callback=_print_version, is_eager=True, help="print the version and exit"
    ),
) -> None:
    """Neuro network: wallet, chain, node, tasks, market jobs and stake, and a local devnet."""


app.add_typer(wallet_app, name="wallet")
app.add_typer(chain_app, name="chain")
app.add_typer(node_app, name="node")
app.add_typer(tx_app, name="tx")
app.add_typer(task_app, name="task")
app.add_typer(devnet_app, name="devnet")
app.add_typer(artifact_app, name="artifact")
app.add_typer(job_app, name="job")
app.add_typer(stake_app, name="stake")
app.add_typer(worker_app, name="worker")
app.add_typer(market_app, name="market")
app.add_typer(label_app, name="label")
app.add_typer(treasury_app, name="treasury")
app.command("ui")(ui_command)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
