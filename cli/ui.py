"""`neuro ui`: a one-time login link to the local daemon's web dashboard (neurod/ui/).

The link carries a token from the daemon's `ui_login` method, which only a caller holding the RPC
cookie can call; opening it gives the browser a session, never the cookie itself.
"""

from __future__ import annotations

from cli.config import DatadirOpt, JsonOpt, NetworkOpt, RpcOpt, Where
from cli.output import guarded, note, print_json
from cli.tx import client


@guarded
def ui_command(
    network: NetworkOpt = "main",
    datadir: DatadirOpt = None,
    rpc: RpcOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Print a link that logs a browser into the daemon's dashboard (once, within 2 minutes)."""
    link = client(Where(network, datadir, None, rpc)).call("ui_login")
    if json_out:
        print_json(link)
        return
    note(f"open within {link['expires_in']:.0f} s (works once); or log in at /ui/login with the RPC cookie:")
    print(link["url"])
