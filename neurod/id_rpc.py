"""`id_resolve`: the whole id that a hex prefix of 8 or more digits names (chain/id_prefix.py).

Clients resolve a prefix once, then call the usual method with the whole id, so no other method
needs to know about prefixes. Kinds: a transaction (confirmed on the main chain, or in the
mempool), a block (any stored, side chains included), a job, an artifact held by this node.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from typing import TYPE_CHECKING, Any

from chain import schema
from chain.errors import ChainError
from chain.id_prefix import ids_in, parse_id, pick
from neurod.rpc import INVALID_PARAMS, RpcError

if TYPE_CHECKING:
    from neurod.node import Node

NOT_FOUND = -32011  # as neurod/rpc_methods.py: unknown and ambiguous ids alike
KINDS = ("tx", "block", "job", "artifact", "listing")


def id_methods(node: Node) -> dict[str, Callable[..., Awaitable[Any]]]:
    def candidates(kind: str, prefix: str) -> Iterable[bytes]:
        kv = node.chain.kv
        if kind == "tx":
            return [*ids_in(kv, schema.TX_INDEX, prefix), *node.mempool.txids()]
        if kind == "block":
            return ids_in(kv, schema.HEADER, prefix)
        if kind == "job":
            return ids_in(kv, schema.JOB, prefix)
        if kind == "listing":
            return ids_in(kv, schema.LISTING, prefix)
        return [found.root for found in node.artifacts.store.list()]

    async def id_resolve(prefix: Any, kind: Any) -> dict[str, Any]:
        if kind not in KINDS:
            raise RpcError(INVALID_PARAMS, f"kind must be one of {', '.join(KINDS)}", {"param": "kind"})
        if not isinstance(prefix, str):
            raise RpcError(INVALID_PARAMS, "prefix must be a hex string", {"param": "prefix"})
        try:
            hex_prefix = parse_id(prefix, f"{kind} id")
            found = pick(hex_prefix, candidates(kind, hex_prefix), f"{kind} id", f"unknown-{kind}")
        except ChainError as exc:
            code = INVALID_PARAMS if exc.reason == "bad-id" else NOT_FOUND
            data = {"param": "prefix", "reason": exc.reason} if code == INVALID_PARAMS else {"reason": exc.reason}
            raise RpcError(code, exc.detail, data) from None
        return {"kind": kind, "id": found.hex()}

    return {"id_resolve": id_resolve}
