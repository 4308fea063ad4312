"""The training loop: one `Trainer` runs steps [start, end) for a fresh run and for a replay.

Training and proof-of-learning replay share this code so a verifier re-executes exactly what the
worker executed. The step does no host synchronisation: the loss is summed on the device and read
back (`.item()`) only every `log_every` steps, and weights are hashed only at PoL checkpoints, so
the loop runs at the speed of a bare torch loop (`bench/train.py` measures the ratio).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from worker.device import (
    DeviceInfo,
    apply_threads,
    autocast,
    cuda_count,
    grad_scaler,
    select_device,
)
from worker.train.batches import SINGLE, Shard, make_batches
from worker.train.centernet import centernet_loss
from worker.train.data import ClassificationData, DetectionData
from worker.train.pol import PolLog, PolRecorder, final_segment_start
from worker.train.schedule import derive_seed
from worker.train.spec import CnnSpec, TrainSpec
from worker.train.state import checkpoint_tensors, load_optimizer_tensors, split_checkpoint
from worker.train.zoo import build_model

TrainData = ClassificationData | DetectionData
SCALER_SCALE = "scaler.scale"
SCALER_TRACKER = "scaler.growth_tracker"


@dataclass(frozen=True, slots=True)
class Progress:
    """One progress event: after `step` steps of `total`, mean loss since the last event."""

    step: int
    total: int
    loss: float
    lr: float
    images_per_s: float


ProgressCallback = Callable[[Progress], None]


def lr_at(spec: TrainSpec, step: int, total: int) -> float:
    """Learning rate of 0-based `step`: linear warmup, then constant or cosine to zero.

    A pure function of the step, so a replay from any checkpoint uses the same rates.
    """
    if step < spec.warmup_steps:
        return spec.lr * (step + 1) / spec.warmup_steps
    if spec.schedule == "constant":
        return spec.lr
    span = max(1, total - spec.warmup_steps)
    return spec.lr * 0.5 * (1 + math.cos(math.pi * (step - spec.warmup_steps) / span))


def make_optimizer(spec: TrainSpec, model: nn.Module) -> torch.optim.Optimizer:
    params = list(model.parameters())
    if spec.optimizer == "sgd":
        return torch.optim.SGD(params, lr=spec.lr, momentum=spec.momentum,
                               weight_decay=spec.weight_decay)
    # torch's default picks per-parameter kernels on the CPU and multi-tensor ones on CUDA; a
    # replay runs on the device kind the log names, so it takes the same path
    return torch.optim.AdamW(params, lr=spec.lr, weight_decay=spec.weight_decay)


def loss_function(spec: TrainSpec) -> Callable[[Any, Any], torch.Tensor]:
    if isinstance(spec.model, CnnSpec):
        return nn.functional.cross_entropy
    return centernet_loss


class Trainer:
    """Model, optimizer and batch source of one run, on one device (or one DDP rank)."""

    def __init__(self, spec: TrainSpec, data: TrainData, device: DeviceInfo, *,
                 shard: Shard = SINGLE, workers: int | None = None,
                 wrap: Callable[[nn.Module], nn.Module] | None = None) -> None:
        self.spec, self.device = spec, device
        apply_threads(device)
        self.dataset_size = len(data)
        self.total = spec.total_steps(self.dataset_size)
        torch.manual_seed(derive_seed(spec.seed, b"init", 0))
        self.model = build_model(spec.model).to(device.torch_device)
        self.net = wrap(self.model) if wrap else self.model
        self.optimizer = make_optimizer(spec, self.model)
        self.scaler = grad_scaler(device)
        self.loss_fn = loss_function(spec)
        self.batches = make_batches(spec, data, device.torch_device, shard, workers)

    def train_step(self, step: int, x: torch.Tensor, target: Any) -> torch.Tensor:
        lr = lr_at(self.spec, step, self.total)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        self.optimizer.zero_grad(set_to_none=True)
        with autocast(self.device):
            loss = self.loss_fn(self.net(x), target)
        if self.scaler is not None:
            self.scaler.scale(loss).backward()
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            loss.backward()
            self.optimizer.step()
        return loss.detach()

    def run(self, start: int, end: int, *, on_step: Callable[[int, torch.Tensor], None] | None = None
            ) -> None:
        """Steps start..end-1; `on_step(completed_steps, loss)` after each (loss stays on device)."""
        self.net.train()
        for step, x, target in self.batches.steps(start, end):
            loss = self.train_step(step, x, target)
            if on_step is not None:
                on_step(step + 1, loss)

    def state(self) -> dict[str, torch.Tensor]:
        """Everything the next step depends on: weights, optimizer and fp16 loss-scaler state."""
        tensors = checkpoint_tensors(self.model, self.optimizer)
        if self.scaler is not None:
            saved = self.scaler.state_dict()
            tensors[SCALER_SCALE] = torch.tensor(float(saved["scale"]), dtype=torch.float64)
            tensors[SCALER_TRACKER] = torch.tensor(int(saved["_growth_tracker"]), dtype=torch.int64)
        return tensors

    def load_state(self, tensors: dict[str, torch.Tensor]) -> None:
        model_part, optim_part = split_checkpoint(tensors)
        device = self.device.torch_device
        self.model.load_state_dict({k: v.to(device) for k, v in model_part.items()}, strict=True)
        load_optimizer_tensors(self.model, self.optimizer, optim_part)
        if self.scaler is not None and SCALER_SCALE in tensors:
            saved = self.scaler.state_dict()
            saved["scale"] = float(tensors[SCALER_SCALE])
            saved["_growth_tracker"] = int(tensors[SCALER_TRACKER])
            self.scaler.load_state_dict(saved)


class LossMeter:
    """Mean training loss of the steps after step `after`: the final proof-of-learning segment.

    The worker claims this mean (`final_loss`) and a verifier recomputes it while it replays
    that segment, with this same class over the same `Trainer.run`: the losses are added on the
    device in the same order, so a replay with the logged thread count gives the same float.
    """

    def __init__(self, after: int) -> None:
        self.after = after
        self.total: torch.Tensor | None = None
        self.count = 0

    def __call__(self, completed: int, loss: torch.Tensor) -> None:
        if completed > self.after:
            self.total = loss if self.total is None else self.total + loss
            self.count += 1

    def mean(self) -> float | None:
        return None if self.total is None else float(self.total.item()) / self.count


@dataclass
class TrainResult:
    model: nn.Module
    device: DeviceInfo
    steps: int
    seconds: float
    losses: list[tuple[int, float]] = field(default_factory=list)
    pol: PolLog | None = None
    final_loss: float | None = None  # mean loss of the final PoL segment (`LossMeter`)


class Monitor:
    """Reads the loss back every `log_every` steps only, and records PoL checkpoints."""

    def __init__(self, trainer: Trainer, recorder: PolRecorder | None,
                 on_progress: ProgressCallback | None) -> None:
        self.trainer, self.recorder, self.on_progress = trainer, recorder, on_progress
        self.losses: list[tuple[int, float]] = []
        self.running: torch.Tensor | None = None
        self.count = 0
        self.mark = time.perf_counter()
        self.mark_step = 0
        self.final = LossMeter(final_segment_start(trainer.total, trainer.spec.pol_interval))

    def __call__(self, completed: int, loss: torch.Tensor) -> None:
        t = self.trainer
        self.final(completed, loss)
        self.running = loss if self.running is None else self.running + loss
        self.count += 1
        if completed % t.spec.log_every == 0 or completed == t.total:
            mean = float(self.running.item()) / self.count
            now = time.perf_counter()
            rate = (completed - self.mark_step) * t.spec.batch_size / max(now - self.mark, 1e-9)
            self.losses.append((completed, mean))
            if self.on_progress is not None:
                lr = lr_at(t.spec, completed - 1, t.total)
                self.on_progress(Progress(completed, t.total, mean, lr, rate))
            self.running, self.count, self.mark, self.mark_step = None, 0, now, completed
        if self.recorder is not None:
            self.recorder.maybe_record(completed, t)


def train(spec: TrainSpec, data: TrainData, *, device: DeviceInfo | None = None,
          on_progress: ProgressCallback | None = None, pol_dir: Path | None = None,
          workers: int | None = None) -> TrainResult:
    """Train; with `pol_dir`, write the proof-of-learning log and checkpoints there.

    `workers` is the DataLoader process count for detection data (default: the spare cores).

    On a machine with several CUDA devices (and no single device forced by the caller) the run
    goes to `ddp.train_distributed`, one process per GPU.
    """
    if device is None and cuda_count() > 1:
        from worker.train.ddp import train_distributed

        return train_distributed(spec, data, on_progress=on_progress, pol_dir=pol_dir)
    device = device or select_device(threads=spec.threads, precision=spec.precision)
    trainer = Trainer(spec, data, device, workers=workers)
    recorder = None
    if pol_dir is not None:
        recorder = PolRecorder(pol_dir, spec, device, data, trainer.total)
        recorder.maybe_record(0, trainer)
    monitor = Monitor(trainer, recorder, on_progress)
    began = time.perf_counter()
    trainer.run(0, trainer.total, on_step=monitor)
    if device.kind == "cuda":
        torch.cuda.synchronize(device.torch_device)
    seconds = time.perf_counter() - began
    log = recorder.finish() if recorder is not None else None
    return TrainResult(model=trainer.model, device=device, steps=trainer.total, seconds=seconds,
                       losses=monitor.losses, pol=log, final_loss=monitor.final.mean())
