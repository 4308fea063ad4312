"""Does one training segment replay bit-identically on CUDA? (torch only: runs on a bare GPU box)

The CPU answer is `bench/segment_replay.py` (it needs the project's packages); a lent GPU machine
may lack them (blake3, orjson, pydantic), so this script rebuilds the zoo's small CNN (conv-bn-
relu-maxpool blocks, global average pool, linear) and an AdamW loop in plain torch. It trains
`2 * interval` steps on fixed synthetic data, keeps the state at `interval` (weights, BatchNorm
buffers, AdamW moments) as a checkpoint, then replays the second segment from that checkpoint:
- on CUDA twice per mode, in this process: ``deterministic-fp32`` (deterministic algorithms,
  ``CUBLAS_WORKSPACE_CONFIG=:4096:8``, cuDNN deterministic, no benchmark, no TF32) and
  ``worker-bf16`` (the worker's CUDA settings today: cuDNN benchmark, bf16 autocast, no
  determinism asked for);
- against the CPU (deterministic, 1 thread, fp32): the same segment, CUDA fp32 vs CPU.
Each pair is compared bit for bit (sha256 of the raw tensor bytes), by max |diff| and by relative
L2. The digest of each replay is printed: run the script twice (two processes) or on two GPUs of
another model and compare the lines to test across processes and machines.

    python bench/cuda_determinism.py [--steps-per-segment 20] [--width 16] [--batch 64]

Without CUDA it runs the CPU half only (a dry run of the script itself).
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import os
import time
from typing import Any

import torch
from torch import nn

State = dict[str, Any]


def build_cnn(width: int, depth: int, classes: int) -> nn.Module:
    blocks: list[nn.Module] = []
    c_in = 1
    for i in range(depth):
        c_out = min(width * 2**i, 256)
        blocks += [nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out),
                   nn.ReLU(inplace=True), nn.MaxPool2d(2)]
        c_in = c_out

    class Cnn(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.features = nn.Sequential(*blocks)
            self.classifier = nn.Linear(c_in, classes)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            out: torch.Tensor = self.classifier(self.features(x).mean(dim=(2, 3)))
            return out

    return Cnn()


def batches(steps: int, batch: int, side: int, classes: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Fixed synthetic batches (CPU generator: the same on every machine)."""
    gen = torch.Generator().manual_seed(1234)
    labels = torch.randint(0, classes, (steps, batch), generator=gen)
    images = torch.rand(steps, batch, 1, side, side, generator=gen)
    # a class-dependent bright square so the loss has something to learn
    for c in range(classes):
        mask = (labels == c)[..., None, None, None]
        lo = 2 + 2 * c
        images[..., lo:lo + 6, lo:lo + 6] += mask * 1.5
    return [(images[s], labels[s]) for s in range(steps)]


def settings(mode: str) -> None:
    deterministic = mode != "worker-bf16"
    torch.use_deterministic_algorithms(deterministic)
    torch.backends.cudnn.deterministic = deterministic
    torch.backends.cudnn.benchmark = not deterministic
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False


def run(state: State | None, data: list[tuple[torch.Tensor, torch.Tensor]], start: int, end: int,
        device: str, mode: str, args: argparse.Namespace) -> State:
    """Steps start..end-1 from `state` (None: a fresh seeded model); the end state on the CPU."""
    settings(mode)
    torch.manual_seed(7)
    model = build_cnn(args.width, args.depth, args.classes).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    if state is not None:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(copy.deepcopy(state["optim"]))
    model.train()
    autocast = torch.autocast("cuda", dtype=torch.bfloat16, enabled=mode == "worker-bf16"
                              and device == "cuda")
    for step in range(start, end):
        x, y = data[step][0].to(device), data[step][1].to(device)
        optimizer.zero_grad(set_to_none=True)
        with autocast:
            loss = nn.functional.cross_entropy(model(x), y)
        loss.backward()
        optimizer.step()
    if device == "cuda":
        torch.cuda.synchronize()
    return {"model": {k: v.detach().cpu().clone() for k, v in model.state_dict().items()},
            "optim": _to_cpu(optimizer.state_dict())}


def _to_cpu(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().clone()
    if isinstance(value, dict):
        return {k: _to_cpu(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_to_cpu(v) for v in value]
    return value


def flat(state: State) -> dict[str, torch.Tensor]:
    out = {f"model.{k}": v for k, v in state["model"].items()}
    for index, moments in state["optim"]["state"].items():
        for key, value in moments.items():
            if isinstance(value, torch.Tensor):
                out[f"optim.{index}.{key}"] = value
    return out


def digest(state: State) -> str:
    h = hashlib.sha256()
    for name, tensor in sorted(flat(state).items()):
        t = tensor.contiguous().reshape(-1)
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()[:16]


def diff(a: State, b: State) -> tuple[float, float]:
    """(max |a - b| over every float element, relative L2 of the model's float tensors)."""
    fa, fb = flat(a), flat(b)
    worst = max((float((fa[k].double() - fb[k].double()).abs().max()) for k in fa
                 if fa[k].is_floating_point() and fa[k].numel()), default=0.0)
    va = torch.cat([v.double().reshape(-1) for k, v in sorted(a["model"].items())
                    if v.is_floating_point()])
    vb = torch.cat([v.double().reshape(-1) for k, v in sorted(b["model"].items())
                    if v.is_floating_point()])
    return worst, float((va - vb).norm() / vb.norm().clamp(min=1e-30))


def compare(label: str, a: State, b: State) -> None:
    worst, rel = diff(a, b)
    same = digest(a) == digest(b)
    print(f"  {label:<46} {'same' if same else 'DIFF':>5} {worst:>10.3g} {rel:>10.3g}  "
          f"{digest(a)} {digest(b)}")


def main() -> None:
    # cuBLAS reads it when its first handle is made: CUDA is initialised lazily, after this
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps-per-segment", type=int, default=20)
    parser.add_argument("--width", type=int, default=16)
    parser.add_argument("--depth", type=int, default=3)
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--side", type=int, default=28)
    args = parser.parse_args()
    k = args.steps_per_segment
    data = batches(2 * k, args.batch, args.side, args.classes)
    cuda = torch.cuda.is_available()
    torch.set_num_threads(1)
    print(f"torch {torch.__version__}, cuda {torch.version.cuda}, "
          f"{torch.cuda.get_device_name(0) if cuda else 'no CUDA device'}; cnn width {args.width} "
          f"depth {args.depth}, batch {args.batch}, segment {k}-{2 * k}")
    print(f"  {'replay pair':<46} {'bits':>5} {'max|diff|':>10} {'rel L2':>10}  digests")
    began = time.perf_counter()
    cpu_ckpt = run(None, data, 0, k, "cpu", "deterministic-fp32", args)
    cpu_a = run(cpu_ckpt, data, k, 2 * k, "cpu", "deterministic-fp32", args)
    cpu_b = run(cpu_ckpt, data, k, 2 * k, "cpu", "deterministic-fp32", args)
    compare("cpu fp32, run twice", cpu_a, cpu_b)
    if cuda:
        for mode in ("deterministic-fp32", "worker-bf16"):
            ckpt = run(None, data, 0, k, "cuda", mode, args)
            timed = time.perf_counter()
            a = run(ckpt, data, k, 2 * k, "cuda", mode, args)
            seconds = time.perf_counter() - timed
            b = run(ckpt, data, k, 2 * k, "cuda", mode, args)
            compare(f"cuda {mode}, run twice ({seconds:.2f} s)", a, b)
        # the same segment from the same (CPU-trained) checkpoint on both device kinds
        on_cuda = run(cpu_ckpt, data, k, 2 * k, "cuda", "deterministic-fp32", args)
        compare("cuda fp32 deterministic vs cpu fp32", on_cuda, cpu_a)
        on_cuda_bf16 = run(cpu_ckpt, data, k, 2 * k, "cuda", "worker-bf16", args)
        compare("cuda worker-bf16 vs cpu fp32", on_cuda_bf16, cpu_a)
        # the nearest cheat, for scale: the last step skipped
        skipped = run(cpu_ckpt, data, k, 2 * k - 1, "cuda", "deterministic-fp32", args)
        compare("cuda fp32, last step skipped vs honest", skipped, on_cuda)
    print(f"({time.perf_counter() - began:.1f} s)")


if __name__ == "__main__":
    main()
