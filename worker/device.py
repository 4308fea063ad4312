"""Where a task runs: a CUDA device when there is one, else the CPU in deterministic mode.

On the CPU the thread count changes the result (1 vs 2 threads differ by ~4e-3 relative L2 after
70 steps: reductions are split differently), so it is fixed and recorded in the training log;
a verifier replaying a proof-of-learning segment uses the recorded count to get bit-equal weights.
Mixed precision is a CUDA-only speed-up: on the CPU everything runs in float32.

torch is imported lazily: the daemon imports `worker` to describe its capacity without training.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from worker.errors import WorkerError

if TYPE_CHECKING:
    import torch

Precision = Literal["auto", "fp32", "bf16", "fp16"]


class DeviceError(WorkerError):
    reason = "bad-device"


@dataclass(frozen=True, slots=True)
class DeviceInfo:
    """The chosen device, as written into logs and weights metadata."""

    kind: Literal["cuda", "cpu"]
    index: int
    name: str
    memory_bytes: int
    threads: int
    precision: Literal["fp32", "bf16", "fp16"]
    deterministic: bool

    @property
    def torch_device(self) -> torch.device:
        import torch

        return torch.device(self.kind, self.index) if self.kind == "cuda" else torch.device("cpu")

    def describe(self) -> dict[str, Any]:
        return {
            "kind": self.kind, "index": self.index, "name": self.name,
            "memory_bytes": self.memory_bytes, "threads": self.threads,
            "precision": self.precision, "deterministic": self.deterministic,
        }


def apply_threads(info: DeviceInfo) -> None:
    """Re-apply the device's thread count (process-wide in torch): a verifier switching between
    devices of different thread counts in one process must not keep the last one set."""
    import torch

    if torch.get_num_threads() != info.threads:
        torch.set_num_threads(info.threads)


def cuda_count() -> int:
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def select_device(
    *, threads: int = 1, precision: Precision = "auto", index: int | None = None,
    prefer_cuda: bool = True,
) -> DeviceInfo:
    """Pick CUDA device `index` (default 0) when present and wanted, else the CPU.

    Sets the process-wide torch state the choice needs (thread count, deterministic algorithms),
    so call it once per task process before building models.
    """
    import torch

    torch.set_num_threads(threads)
    count = cuda_count()
    if prefer_cuda and count:
        chosen = 0 if index is None else index
        if not 0 <= chosen < count:
            raise DeviceError(f"cuda device {chosen} does not exist ({count} present)")
        props = torch.cuda.get_device_properties(chosen)
        torch.cuda.set_device(chosen)
        # input shapes are fixed per job: let cuDNN pick the fastest kernels once (GPU runs are
        # not bit-deterministic anyway; PoL replays compare within a tolerance)
        torch.backends.cudnn.benchmark = True
        return DeviceInfo(
            kind="cuda", index=chosen, name=props.name, memory_bytes=int(props.total_memory),
            threads=threads, precision=_cuda_precision(precision, chosen), deterministic=False,
        )
    if index is not None and prefer_cuda:
        raise DeviceError(f"cuda device {index} requested but no CUDA device is present")
    torch.use_deterministic_algorithms(True)
    return DeviceInfo(
        kind="cpu", index=0, name="cpu", memory_bytes=0, threads=threads,
        precision="fp32", deterministic=True,
    )


def _cuda_precision(requested: Precision, index: int) -> Literal["fp32", "bf16", "fp16"]:
    import torch

    if requested == "fp32":
        return "fp32"
    bf16_ok = torch.cuda.is_bf16_supported()
    if requested == "auto":
        return "bf16" if bf16_ok else "fp16"
    if requested == "bf16" and not bf16_ok:
        name = torch.cuda.get_device_name(index)
        raise DeviceError(f"{name} has no bfloat16 support: ask for fp16 or fp32")
    return requested


@contextlib.contextmanager
def autocast(info: DeviceInfo) -> Iterator[None]:
    """Mixed precision on CUDA for bf16/fp16; a no-op in float32."""
    import torch

    if info.kind != "cuda" or info.precision == "fp32":
        yield
        return
    dtype = torch.bfloat16 if info.precision == "bf16" else torch.float16
    with torch.autocast(device_type="cuda", dtype=dtype):
        yield


def grad_scaler(info: DeviceInfo) -> torch.amp.GradScaler | None:
    """fp16 gradients underflow without loss scaling; bf16 has float32's range and needs none."""
    import torch

    if info.kind == "cuda" and info.precision == "fp16":
        return torch.amp.GradScaler("cuda")
    return None
