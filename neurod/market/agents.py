"""The market agents a node runs, from its configuration: a client (whenever an agent key is
set: `neuro job submit` asks it to buy) and a worker (`worker = true`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import trio

from chain.amounts import parse_ntk
from neurod.market.account import AgentAccount, load_agent_key
from neurod.market.client_agent import ClientAgent
from neurod.market.worker_agent import SERVICE_NAMES, WorkerAgent, WorkerSettings

if TYPE_CHECKING:
    from neurod.node import Node


class Agents:
    def __init__(self, client: ClientAgent | None, worker: WorkerAgent | None) -> None:
        self.client = client
        self.worker = worker

    @classmethod
    def from_config(cls, node: Node) -> Agents:
        config = node.config
        if not config.agent_key:
            return cls(None, None)
        key = load_agent_key(config.agent_key, node.chain.params.network, config.agent_password_file)
        account = AgentAccount(node, key, config.min_fee)
        worker = None
        if config.worker:
            settings = WorkerSettings(
                services=tuple(SERVICE_NAMES[s] for s in config.worker_services),
                floor_min=config.worker_floor_min, floor_max=config.worker_floor_max,
                slots=config.worker_slots, devices=config.worker_devices, stake=parse_ntk(config.worker_stake),
                fault=config.worker_fault,
            )
            worker = WorkerAgent(node, account, settings)
        return cls(ClientAgent(node, account), worker)

    async def start(self, nursery: trio.Nursery) -> None:
        if self.client is not None:
            await nursery.start(self.client.run)
        if self.worker is not None:
            await nursery.start(self.worker.run)
