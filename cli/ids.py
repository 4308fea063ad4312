"""Ids on the command line: 64 hex digits, or any unique prefix of 8 or more (chain/id_prefix.py).

A prefix is resolved to the whole id before the command's own call: by the daemon's `id_resolve`
for what the chain and mempool hold, or in the local artifact store for artifact roots. Tables
print 16 digits; `--json` always carries whole ids.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from wallet.node_client import RpcClient


BAD_ID_REASONS = {"tx": "bad-txid", "block": "bad-block-id", "job": "bad-job-id", "artifact": "bad-root"}


def resolve_id(text: str, kind: str, rpc: Callable[[], RpcClient]) -> str:
    """The whole hex id ``text`` names: as given when whole, else asked of the daemon (``rpc`` is
    called only then, so a malformed id is refused before any connection)."""
    from chain.id_prefix import is_whole, parse_id

    value = parse_id(text, f"{kind} id", BAD_ID_REASONS.get(kind, "bad-id"))
    if is_whole(value):
        return value
    return str(rpc().call("id_resolve", kind=kind, prefix=value)["id"])


def resolve_local(text: str, what: str, candidates: Callable[[], Iterable[bytes]]) -> bytes:
    """The whole id ``text`` names among ``candidates`` (read only for a prefix)."""
    from chain.id_prefix import is_whole, parse_id, pick

    value = parse_id(text, what)
    if is_whole(value):
        return bytes.fromhex(value)
    return pick(value, candidates(), what, "unknown-" + what.split()[0])
