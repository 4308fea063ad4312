"""`neuro`: the command line of the Neuro network.

Start-up must stay fast (`neuro --help` well under a second): modules imported here import only
typer/rich and our light packages; torch and libp2p are imported inside the commands that need them.
"""

from __future__ import annotations

import typer

from cli import market_loop  # noqa: F401  (registers `neuro job loop`)
from cli.artifact import artifact_app
from cli.chain_cmds import chain_app
from cli.devnet import devnet_app
from cli.market import job_app, market_app, stake_app, worker_app
from cli.node import node_app
from cli.task import task_app
from cli.tx import tx_app
from cli.wallet_funds import wallet_app

app = typer.Typer(
    name="neuro",
    help="Neuro network: wallet, chain, node, tasks, market jobs and stake, and a local devnet.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
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


def main() -> None:
    app()


if __name__ == "__main__":
    main()
