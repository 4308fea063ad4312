"""Model and optimizer state as flat name -> tensor maps, and their canonical digest.

Proof-of-learning checkpoints must restore a run exactly: the weights, the BatchNorm running
statistics and the optimizer's moments (Adam's exp_avg/exp_avg_sq/step, SGD's momentum buffer).
Everything becomes a flat dict of CPU tensors that safetensors stores as is, with names
``model.<state_dict key>`` and ``optim.<param index>.<state key>``.
"""

from __future__ import annotations

import hashlib

import numpy as np
import torch
from torch import nn

from worker.errors import WorkerError

MODEL_PREFIX = "model."
OPTIM_PREFIX = "optim."
WEIGHTS_PERSON = b"neuro-weights"


class StateError(WorkerError):
    reason = "bad-state"


def model_tensors(model: nn.Module) -> dict[str, torch.Tensor]:
    """The state_dict (parameters and buffers), detached, contiguous, on the CPU."""
    return {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}


def optimizer_tensors(model: nn.Module, optimizer: torch.optim.Optimizer) -> dict[str, torch.Tensor]:
    """Per-parameter optimizer state, keyed by the parameter's position in `model.parameters()`."""
    out: dict[str, torch.Tensor] = {}
    for i, param in enumerate(model.parameters()):
        for key, value in optimizer.state.get(param, {}).items():
            if value is None:
                continue
            tensor = value if isinstance(value, torch.Tensor) else torch.tensor(value)
            out[f"{i}.{key}"] = tensor.detach().to("cpu").contiguous()
    return out


def load_optimizer_tensors(model: nn.Module, optimizer: torch.optim.Optimizer,
                           tensors: dict[str, torch.Tensor]) -> None:
    """Restore `optimizer_tensors` output; Adam's `step` counter stays a CPU tensor as torch keeps it."""
    params = list(model.parameters())
    optimizer.state.clear()
    for name, value in tensors.items():
        index_text, _, key = name.partition(".")
        if not index_text.isdigit() or int(index_text) >= len(params) or not key:
            raise StateError(f"optimizer state {name!r} does not fit the model")
        param = params[int(index_text)]
        target = value.clone() if key == "step" else value.to(param.device).clone()
        optimizer.state[param][key] = target


def checkpoint_tensors(model: nn.Module, optimizer: torch.optim.Optimizer) -> dict[str, torch.Tensor]:
    tensors = {MODEL_PREFIX + k: v for k, v in model_tensors(model).items()}
    tensors.update({OPTIM_PREFIX + k: v for k, v in optimizer_tensors(model, optimizer).items()})
    return tensors


def split_checkpoint(tensors: dict[str, torch.Tensor]
                     ) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    model = {k[len(MODEL_PREFIX):]: v for k, v in tensors.items() if k.startswith(MODEL_PREFIX)}
    optim = {k[len(OPTIM_PREFIX):]: v for k, v in tensors.items() if k.startswith(OPTIM_PREFIX)}
    return model, optim


def weights_digest(tensors: dict[str, torch.Tensor]) -> bytes:
    """blake2b-256 over (name, dtype, shape, little-endian bytes) of each tensor, by sorted name.

    Name, dtype and shape are hashed with the bytes so two states with equal raw bytes but a
    different layout never collide.
    """
    digest = hashlib.blake2b(digest_size=32, person=WEIGHTS_PERSON)
    for name in sorted(tensors):
        tensor = tensors[name].detach().to("cpu").contiguous()
        header = f"{name}|{tensor.dtype}|{tuple(tensor.shape)}|".encode()
        digest.update(len(header).to_bytes(4, "little") + header)
        if tensor.dtype == torch.bfloat16:
            raw = tensor.view(torch.int16).numpy()
        else:
            raw = tensor.numpy()
        digest.update(np.ascontiguousarray(raw).astype(raw.dtype.newbyteorder("<")).tobytes())
    return digest.digest()


def parameter_vector(tensors: dict[str, torch.Tensor]) -> torch.Tensor:
    """Float64 concatenation of the floating-point tensors, by sorted name (for L2 distances)."""
    parts = [tensors[k].detach().reshape(-1).to("cpu", torch.float64)
             for k in sorted(tensors) if tensors[k].is_floating_point()]
    return torch.cat(parts) if parts else torch.zeros(0, dtype=torch.float64)


def relative_distance(got: dict[str, torch.Tensor], claimed: dict[str, torch.Tensor]) -> float:
    """||got - claimed|| / ||claimed|| over the float tensors; the names must match."""
    if sorted(got) != sorted(claimed):
        raise StateError("states have different tensor names")
    a, b = parameter_vector(got), parameter_vector(claimed)
    if a.shape != b.shape:
        raise StateError("states have different tensor shapes")
    return float(torch.linalg.vector_norm(a - b) / torch.linalg.vector_norm(b).clamp(min=1e-30))
