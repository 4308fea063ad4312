"""RPC methods of the market agents (docs/rpc.md, "Market agents"): submit a job for this node's
client agent to buy, follow it, and read the worker agent's state."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from chain.errors import ChainError
from chain.market_types import JobPost, Service
from neurod.rpc import INVALID_PARAMS, RpcError

if TYPE_CHECKING:
    from neurod.node import Node

NOT_FOUND = -32011  # as neurod.rpc_methods
NO_AGENT = -32040
POST_DEFAULTS = {"bid_blocks": 6, "deadline_blocks": 100, "challenge_blocks": 30}


def _int(value: Any, name: str, low: int = 0, high: int = 2**63 - 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise RpcError(INVALID_PARAMS, f"{name} must be an integer in [{low}, {high}]")
    return value


def _job(value: Any) -> bytes:
    try:
        raw = bytes.fromhex(value) if isinstance(value, str) else b""
    except ValueError:
        raw = b""
    if len(raw) != 32:
        raise RpcError(INVALID_PARAMS, "job must be 64 hex characters")
    return raw


def market_methods(node: Node) -> dict[str, Callable[..., Awaitable[Any]]]:
    def client() -> Any:
        agent = node.agents.client
        if agent is None:
            raise RpcError(NO_AGENT, "this node runs no market agent: start it with --agent-key",
                           {"reason": "no-agent"})
        return agent

    async def job_submit(service: Any, spec: Any, shards: Any = 1, max_price: Any = None,
                         bid_blocks: Any = None, deadline_blocks: Any = None, challenge_blocks: Any = None) -> dict[str, Any]:
        """Post a job from this node's agent account and have its client agent buy it."""
        agent = client()
        if not isinstance(service, str) or service.upper() not in Service.__members__:
            raise RpcError(INVALID_PARAMS, f"service must be one of {', '.join(s.name.lower() for s in Service)}")
        if not isinstance(spec, dict):
            raise RpcError(INVALID_PARAMS, "spec must be a JSON object (the task document)")
        if max_price is None:
            raise RpcError(INVALID_PARAMS, "max_price is required (base units per quote unit)")
        windows = {"bid_blocks": bid_blocks, "deadline_blocks": deadline_blocks, "challenge_blocks": challenge_blocks}
        windows = {k: POST_DEFAULTS[k] if v is None else _int(v, k, 1, 10**6) for k, v in windows.items()}
        canonical = json.dumps(spec, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()
        post = JobPost(Service[service.upper()], canonical, _int(shards, "shards", 1, 4096),
                       _int(max_price, "max_price", 1), windows["bid_blocks"], windows["deadline_blocks"],
                       windows["challenge_blocks"])
        try:
            record = await agent.submit(post)
        except (ChainError, ValueError) as exc:
            raise RpcError(INVALID_PARAMS, f"job not posted: {exc}", {"reason": getattr(exc, "reason", "refused")}) from None
        return agent.status_json(bytes.fromhex(record.job))

    async def job_status(job: Any) -> dict[str, Any]:
        agent = client()
        raw = _job(job)
        if raw not in agent.jobs:
            raise RpcError(NOT_FOUND, "not a job this node's agent submitted", {"reason": "unknown-job"})
        return {**agent.status_json(raw), "height": node.chain.height}

    async def client_jobs() -> list[dict[str, Any]]:
        return client().list_json()  # type: ignore[no-any-return]

    async def worker_status() -> dict[str, Any]:
        if node.agents.worker is None:
            raise RpcError(NO_AGENT, "this node runs no worker agent: start it with --worker", {"reason": "no-worker"})
        return node.agents.worker.status_json()

    return {"job_submit": job_submit, "job_status": job_status, "client_jobs": client_jobs,
            "worker_status": worker_status}
