"""Device choice on a CPU machine, torch-free imports for the daemon, cross-process determinism."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

from worker.device import DeviceError, autocast, cuda_count, grad_scaler, select_device
from worker.train.loop import train
from worker.train.state import model_tensors, weights_digest
from worker.train.toydata import glyphs, toy_spec

ROOT = Path(__file__).resolve().parents[3]
CHILD_RUN = """
import torch
from worker.train.loop import train
from worker.train.state import model_tensors, weights_digest
from worker.train.toydata import glyphs, toy_spec
spec = toy_spec(steps=15, augment={"shift": 1}, seed=3)
print(weights_digest(model_tensors(train(spec, glyphs(128, seed=8)).model)).hex())
"""


def test_cpu_is_deterministic_with_fixed_threads_and_float32() -> None:
    info = select_device(threads=1, precision="bf16", prefer_cuda=False)
    assert (info.kind, info.precision, info.threads, info.deterministic) == ("cpu", "fp32", 1, True)
    assert torch.are_deterministic_algorithms_enabled()
    assert torch.get_num_threads() == 1
    assert grad_scaler(info) is None
    with autocast(info):
        assert torch.ones(2).dtype == torch.float32
    with pytest.raises(DeviceError, match="cuda device"):
        select_device(threads=1, index=cuda_count())  # one past the last (or none at all)
    assert info.describe()["kind"] == "cpu"


def test_daemon_side_modules_do_not_import_torch() -> None:
    code = ("import sys, worker, worker.spec, worker.device, worker.train, worker.train.spec, "
            "worker.train.flops; assert 'torch' not in sys.modules, 'torch imported'")
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, timeout=60)


def test_another_process_trains_bit_identical_weights() -> None:
    here = weights_digest(model_tensors(train(toy_spec(steps=15, augment={"shift": 1}, seed=3),
                                              glyphs(128, seed=8)).model)).hex()
    child = subprocess.run([sys.executable, "-c", CHILD_RUN], cwd=ROOT, check=True, timeout=120,
                           capture_output=True, text=True)
    assert child.stdout.strip() == here
