"""A worker's slots are its devices: one per CUDA GPU when there are any (`worker_devices = auto`),
else `worker_slots` CPU slots; a listed GPU that is absent is refused at start, and a shard waits
for a free slot. On this CPU-only machine the GPU branch is checked for its refusals; the
calibration and training on a GPU are the device checks of worker/ (bench/cuda_determinism.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
import trio
import trio.testing

from neurod.config import ConfigError, load_config
from neurod.market import tasks
from neurod.market.account import AgentAccount
from neurod.market.worker_agent import WorkerAgent, WorkerSettings
from tests.support.market import staked
from tests.unit.chain.test_training_disputes import VOTERS
from tests.unit.cli.test_market_agents_cli import AgentNode
from wallet.keys import Key
from worker.errors import WorkerError

CPU_ONLY = not tasks.cuda_devices()


def worker(tmp_path: Path, **settings: object) -> WorkerAgent:
    datadir = tmp_path / "datadir"
    datadir.mkdir(exist_ok=True)
    node = AgentNode(staked(), datadir)
    return WorkerAgent(node, AgentAccount(node, Key(VOTERS[0]), 1_000), WorkerSettings(**settings))  # type: ignore[arg-type]


@pytest.mark.parametrize("value", ["auto", "cpu", "cuda:0", "cuda:0,cuda:3"])
def test_device_settings_that_parse(tmp_path: Path, value: str) -> None:
    assert load_config(tmp_path, {"network": "devnet", "worker_devices": value}).worker_devices == value


@pytest.mark.parametrize("value", ["gpu", "cuda", "cuda:x", "cpu,cuda:0", "cuda:0,"])
def test_device_settings_that_do_not(tmp_path: Path, value: str) -> None:
    with pytest.raises(ConfigError, match="worker_devices"):
        load_config(tmp_path, {"network": "devnet", "worker_devices": value})


@pytest.mark.skipif(not CPU_ONLY, reason="a CUDA machine resolves auto to its GPUs")
def test_without_a_gpu_the_slots_are_cpu_slots_and_a_listed_gpu_is_refused(tmp_path: Path) -> None:
    assert trio.run(worker(tmp_path, slots=3)._resolve_devices) == ["cpu"] * 3
    assert trio.run(worker(tmp_path, slots=2, devices="cpu")._resolve_devices) == ["cpu"] * 2
    with pytest.raises(RuntimeError, match="cuda:1.*not present"):
        trio.run(worker(tmp_path, devices="cuda:1")._resolve_devices)


def test_a_shard_waits_for_a_free_slot(tmp_path: Path) -> None:
    agent = worker(tmp_path)
    agent.devices = ["cuda:0", "cuda:1"]
    agent._free_devices = set(agent.devices)
    taken: list[str] = []

    async def body() -> None:
        taken.append(await agent._device())
        taken.append(await agent._device())
        async with trio.open_nursery() as nursery:
            nursery.start_soon(lambda: _take(agent, taken))
            await trio.testing.wait_all_tasks_blocked()
            assert len(taken) == 2  # both slots busy: the third shard waits
            agent._release(taken[0])
        assert taken[2] == taken[0] and sorted(taken[:2]) == ["cuda:0", "cuda:1"]

    trio.run(body)


async def _take(agent: WorkerAgent, taken: list[str]) -> None:
    taken.append(await agent._device())


@pytest.mark.skipif(not CPU_ONLY, reason="needs a machine without CUDA")
def test_training_on_an_absent_gpu_fails_clearly_and_leaves_the_environment(tmp_path: Path) -> None:
    import json
    import os

    from tests.support.training import TRAIN

    before = os.environ.get(tasks.CUDA_VISIBLE)
    with pytest.raises(WorkerError, match="cuda"):
        tasks.train(json.dumps(TRAIN), str(tmp_path / "out"), device="cuda:2")
    assert os.environ.get(tasks.CUDA_VISIBLE) == before
