"""Multi-GPU training: DistributedDataParallel, one process per GPU, NCCL.

`train_distributed` spawns `world = torch.cuda.device_count()` processes with
`torch.multiprocessing.spawn`. Every rank computes the same scheduled global batch of a step
(`schedule.batch_indices`) and takes items rank::world of it, so the batch is split across GPUs
and the gradient DDP averages is the gradient of the whole batch, as on one device. Rank 0
records the proof-of-learning log and writes the final weights, and sends progress events to the
parent through a queue; the parent forwards them to the callback and rebuilds the model from
rank 0's weights file.

BatchNorm layers become SyncBatchNorm on GPUs, so statistics cover the global batch and a
one-device replay of a segment differs only by float rounding. On CPU ranks (the gloo backend,
used to test this launcher without GPUs) torch has no SyncBatchNorm, statistics are per rank and
a one-device replay lands ~1e-2 away: such logs must be replayed with the same rank count.
"""

from __future__ import annotations

import os
import queue
import socket
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from safetensors.torch import load_file, save_file
from torch import nn
from torch.multiprocessing.spawn import ProcessExitedException, ProcessRaisedException, spawn
from torch.nn.parallel import DistributedDataParallel

from worker.device import DeviceInfo, select_device
from worker.errors import SpecError, TaskFailed
from worker.train.batches import Shard
from worker.train.loop import Monitor, Progress, ProgressCallback, TrainData, Trainer, TrainResult
from worker.train.pol import PolRecorder, read_log
from worker.train.spec import TrainSpec, load_train_spec
from worker.train.state import model_tensors
from worker.train.zoo import build_model

FINAL_WEIGHTS = "final.safetensors"
POLL_SECONDS = 0.2


def free_port() -> int:
    """A loopback port for the rendezvous (ranks meet on 127.0.0.1: one machine only)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _sync_norm(model: nn.Module, backend: str) -> nn.Module:
    """BatchNorm over the whole global batch (not each rank's share) so the run stays
    replayable on one device; torch's SyncBatchNorm runs on GPUs only."""
    return nn.SyncBatchNorm.convert_sync_batchnorm(model) if backend == "nccl" else model


def _rank_main(rank: int, world: int, port: int, backend: str, spec_json: dict[str, Any],
               data: TrainData, pol_dir: str | None, out_dir: str, events: mp.Queue[Any]) -> None:
    """One rank: join the group, train its share, rank 0 records and saves."""
    os.environ["MASTER_ADDR"] = "127.0.0.1"
    os.environ["MASTER_PORT"] = str(port)
    dist.init_process_group(backend, rank=rank, world_size=world)
    try:
        spec = load_train_spec(spec_json)
        if backend == "nccl":
            device = select_device(threads=spec.threads, precision=spec.precision, index=rank)
            ids: list[int] | None = [rank]
        else:
            device = select_device(threads=spec.threads, prefer_cuda=False)
            ids = None
        trainer = Trainer(spec, data, device, shard=Shard(rank, world),
                          workers=None if backend == "nccl" else 0,
                          wrap=lambda m: DistributedDataParallel(_sync_norm(m, backend),
                                                                 device_ids=ids))
        recorder = None
        if rank == 0 and pol_dir is not None:
            recorder = PolRecorder(Path(pol_dir), spec, device, data, trainer.total)
            recorder.maybe_record(0, trainer)
        monitor = Monitor(trainer, recorder, events.put if rank == 0 else None)
        trainer.run(0, trainer.total, on_step=monitor)
        if device.kind == "cuda":
            torch.cuda.synchronize(device.torch_device)
        if rank == 0:
            if recorder is not None:
                recorder.finish()
            save_file(model_tensors(trainer.model), os.path.join(out_dir, FINAL_WEIGHTS))
            events.put(("losses", monitor.losses, device.describe(), monitor.final.mean()))
        dist.barrier()
    finally:
        dist.destroy_process_group()


def train_distributed(spec: TrainSpec, data: TrainData, *, world: int | None = None,
                      on_progress: ProgressCallback | None = None,
                      pol_dir: Path | None = None, backend: str = "nccl") -> TrainResult:
    """Train on `world` GPUs (default: all); returns rank 0's model on the CPU.

    ``backend="gloo"`` runs the same code with CPU ranks: how the launcher is tested on machines
    without GPUs.
    """
    world = world or (torch.cuda.device_count() if backend == "nccl" else 2)
    if world < 2:
        raise TaskFailed(f"distributed training needs 2 or more GPUs, found {world}",
                         reason="no-multi-gpu")
    if spec.batch_size % world:
        raise SpecError(f"batch_size {spec.batch_size} does not split over {world} GPUs",
                        reason="bad-batch-split")
    ctx = mp.get_context("spawn")
    events: mp.Queue[Any] = ctx.Queue()
    losses: list[tuple[int, float]] = []
    described: dict[str, Any] = {}
    final_loss: float | None = None
    began = time.perf_counter()
    with tempfile.TemporaryDirectory() as out_dir:
        args = (world, free_port(), backend, spec.model_dump(mode="json"), data,
                str(pol_dir) if pol_dir else None, out_dir, events)
        procs = spawn(_rank_main, args=args, nprocs=world, join=False)
        finished = False
        while not finished:
            try:
                finished = procs.join(timeout=POLL_SECONDS)
            except (ProcessRaisedException, ProcessExitedException) as err:
                first = str(err).strip().splitlines()[-1] if str(err).strip() else repr(err)
                raise TaskFailed(f"distributed training failed: {first}") from None
            while True:
                try:
                    event = events.get_nowait()
                except queue.Empty:
                    break
                if isinstance(event, Progress) and on_progress is not None:
                    on_progress(event)
                elif isinstance(event, tuple) and event[0] == "losses":
                    losses, described, final_loss = event[1], event[2], event[3]
        model = build_model(spec.model)
        model.load_state_dict(load_file(os.path.join(out_dir, FINAL_WEIGHTS)), strict=True)
    seconds = time.perf_counter() - began
    device = DeviceInfo(kind=described.get("kind", "cuda"), index=0,
                        name=str(described.get("name", "cuda")),
                        memory_bytes=int(described.get("memory_bytes", 0)), threads=spec.threads,
                        precision=described.get("precision", "fp32"),
                        deterministic=bool(described.get("deterministic", False)))
    return TrainResult(model=model, device=device, steps=spec.total_steps(len(data)),
                       seconds=seconds, losses=losses, final_loss=final_loss,
                       pol=read_log(pol_dir) if pol_dir is not None else None)
