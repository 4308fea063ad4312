"""`neuro node status|peers|verify-db`: the state of the local daemon."""

from __future__ import annotations

import typer

from cli.config import DatadirOpt, JsonOpt, NetworkOpt, RpcOpt, Where
from cli.output import fields, guarded, note, print_json, table
from cli.tx import client

VERIFY_TIMEOUT_S = 3600.0  # a whole-store walk reads every block: minutes on a long chain

node_app = typer.Typer(help="The local daemon: status, peers and its store.", no_args_is_help=True)


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


@node_app.command("verify-db")
@guarded
def verify_db(
    network: NetworkOpt = "main",
    datadir: DatadirOpt = None,
    rpc: RpcOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Walk the daemon's whole chain store (a snapshot: it keeps running): every block against its
    hash, the index rows, the state root from all accounts, the supply. Exit 1 on any problem."""
    rpc_client = client(Where(network, datadir, None, rpc))
    rpc_client.timeout = VERIFY_TIMEOUT_S
    found = rpc_client.call("node_verify_db")
    if json_out:
        print_json(found)
    else:
        verdict = "ok" if found["ok"] else f"{len(found['problems'])} problem(s)"
        fields(
            f"chain store: {verdict}",
            [
                ("blocks", found["blocks"]), ("transactions", found["txs"]), ("accounts", found["accounts"]),
                ("balances", found["supply"]), ("state root", found["state_root"]),
                ("took", f"{found['seconds']:.2f} s"),
            ],
        )
        for problem in found["problems"]:
            note(f"{problem['reason']}: {problem['detail']}")
    if not found["ok"]:
        raise typer.Exit(1)
