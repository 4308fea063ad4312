"""`neuro node status|peers`: the state of the local daemon."""

from __future__ import annotations

import typer

from cli.config import DatadirOpt, JsonOpt, NetworkOpt, RpcOpt, Where
from cli.output import fields, guarded, note, print_json, table
from cli.tx import client

node_app = typer.Typer(help="The local daemon: status and peers.", no_args_is_help=True)


@node_app.command("status")
@guarded
def status(
    network: NetworkOpt = "main",
    datadir: DatadirOpt = None,
    rpc: RpcOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Network, height, tip, peers, mempool and mining state of the daemon."""
    where = Where(network, datadir, None, rpc)
    rpc_client = client(where)
    found = rpc_client.call("node_status")
    if json_out:
        print_json(found)
        return
    fields(
        f"neurod at {rpc_client.target.url}",
        [
            ("network", found["network"]),
            ("version", found["version"]),
            ("height", found["height"]),
            ("tip", found["tip"]),
            ("peers", found["peers"]),
            ("mempool", f"{found['mempool']} txs"),
            ("mining", "on" if found["mining"] else "off"),
            ("peer id", found["peer_id"]),
            ("listening", ", ".join(found.get("p2p_addrs", [])) or "-"),
            ("chain id", found["chain_id"]),
        ],
    )


@node_app.command("peers")
@guarded
def peers(
    network: NetworkOpt = "main",
    datadir: DatadirOpt = None,
    rpc: RpcOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Connected peers with their direction and score."""
    found = client(Where(network, datadir, None, rpc)).call("node_peers")
    if json_out:
        print_json(found)
        return
    if not found:
        note("no peers connected")
        return
    rows = [
        (p["peer_id"], p["direction"], p["score"], ", ".join(p.get("addrs", []))) for p in found
    ]
    table(f"{len(rows)} peers", ("peer id", "direction", "score", "addresses"), rows)
