"""Trained weights as safetensors files with a metadata record; never pickles.

A weights file travels over the network to buyers who must not execute anything from it, so the
format is safetensors (raw tensors plus a JSON header) and the model is rebuilt from the zoo by
the architecture named in the metadata. Loading checks every tensor name, shape and dtype against
that architecture (built on the `meta` device, no memory) before reading any tensor data.

Metadata (safetensors allows string -> string only): ``format``, ``model`` (model spec JSON),
``train_spec`` (JSON or ""), ``spec_hash`` (hex), ``metrics`` (JSON object), ``pol_log_hash`` (hex).
A trained model's ``metrics`` are its claims (`worker.train.claims`) and its tensors are the last
proof-of-learning checkpoint's: a verifier recomputes both (`worker.train.binding`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file
from torch import nn

from worker.errors import SpecError, WorkerError
from worker.train.spec import CenterNetSpec, CnnSpec, TrainSpec, load_model_spec
from worker.train.state import model_tensors
from worker.train.zoo import build_model

WEIGHTS_FORMAT = "neuro-weights/1"


class WeightsError(WorkerError):
    reason = "bad-weights"


@dataclass(frozen=True, slots=True)
class WeightsMeta:
    model: CnnSpec | CenterNetSpec
    train_spec: dict[str, Any] | None = None
    spec_hash: str = ""
    metrics: dict[str, Any] = field(default_factory=dict)
    pol_log_hash: str = ""

    def to_strings(self) -> dict[str, str]:
        return {
            "format": WEIGHTS_FORMAT,
            "model": json.dumps(self.model.model_dump(mode="json"), sort_keys=True),
            "train_spec": json.dumps(self.train_spec, sort_keys=True) if self.train_spec else "",
            "spec_hash": self.spec_hash,
            "metrics": json.dumps(self.metrics, sort_keys=True),
            "pol_log_hash": self.pol_log_hash,
        }

    @classmethod
    def from_strings(cls, meta: dict[str, str] | None) -> WeightsMeta:
        if not meta or meta.get("format") != WEIGHTS_FORMAT:
            raise WeightsError(f"not a {WEIGHTS_FORMAT} file (format {(meta or {}).get('format')!r})")
        try:
            model = load_model_spec(meta["model"])
            train_spec = json.loads(meta["train_spec"]) if meta.get("train_spec") else None
            metrics = json.loads(meta.get("metrics") or "{}")
        except (KeyError, ValueError, SpecError) as err:
            raise WeightsError(f"bad weights metadata: {err}") from None
        return cls(model=model, train_spec=train_spec, spec_hash=meta.get("spec_hash", ""),
                   metrics=metrics, pol_log_hash=meta.get("pol_log_hash", ""))


def meta_for(spec: TrainSpec, metrics: dict[str, Any] | None = None,
             pol_log_hash: bytes | None = None) -> WeightsMeta:
    """The metadata record of a model trained from `spec`."""
    return WeightsMeta(model=spec.model, train_spec=spec.model_dump(mode="json"),
                       spec_hash=spec.spec_hash().hex(), metrics=metrics or {},
                       pol_log_hash=pol_log_hash.hex() if pol_log_hash else "")


def save_weights(path: Path, model: nn.Module, meta: WeightsMeta) -> None:
    """Write the model's state_dict (parameters and buffers) and the metadata record."""
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(model_tensors(model), str(path), metadata=meta.to_strings())


def expected_layout(model_spec: CnnSpec | CenterNetSpec) -> dict[str, tuple[str, tuple[int, ...]]]:
    """name -> (dtype, shape) of the architecture's state, from a shapes-only `meta` model."""
    with torch.device("meta"):
        model = build_model(model_spec)
    return {k: (str(v.dtype), tuple(v.shape)) for k, v in model.state_dict().items()}


def check_weights_path(path: Path) -> None:
    """A weights path names a readable file; else say what was expected (safetensors itself
    reports a folder as "No such device (os error 19)")."""
    expected = "expected a .safetensors weights file"
    if not path.exists():
        raise WeightsError(f"weights: {path} does not exist, {expected}")
    if path.is_dir():
        raise WeightsError(f"weights: {path} is a directory, {expected}")
    if not path.is_file():
        raise WeightsError(f"weights: {path} is not a regular file, {expected}")


def _unreadable(path: Path, err: Exception) -> WeightsError:
    if isinstance(err, OSError):
        return WeightsError(f"weights: cannot read {path} ({err.strerror or err})")
    return WeightsError(f"weights: {path} is not a safetensors file ({err})")


def read_meta(path: Path) -> WeightsMeta:
    """The metadata alone (cheap: reads only the header)."""
    check_weights_path(path)
    try:
        with safe_open(str(path), framework="pt") as handle:
            return WeightsMeta.from_strings(handle.metadata())
    except (OSError, SafetensorError) as err:
        raise _unreadable(path, err) from None


def load_weights(path: Path, device: torch.device | str = "cpu") -> tuple[nn.Module, WeightsMeta]:
    """Rebuild the zoo model the metadata names and load the tensors, after checking the layout."""
    check_weights_path(path)
    try:
        with safe_open(str(path), framework="pt") as handle:
            meta = WeightsMeta.from_strings(handle.metadata())
            expected = expected_layout(meta.model)
            names = set(handle.keys())
            if names != set(expected):
                missing, extra = sorted(set(expected) - names), sorted(names - set(expected))
                raise WeightsError(f"{path.name} does not fit {meta.model.name}: "
                                   f"missing {missing[:3]}, unexpected {extra[:3]}",
                                   reason="weights-mismatch")
            for name in sorted(names):
                shape = tuple(handle.get_slice(name).get_shape())
                if shape != expected[name][1]:
                    raise WeightsError(f"{path.name}: {name} has shape {shape}, "
                                       f"{meta.model.name} wants {expected[name][1]}",
                                       reason="weights-mismatch")
            tensors = {name: handle.get_tensor(name) for name in names}
    except (OSError, SafetensorError) as err:
        raise _unreadable(path, err) from None
    for name, tensor in tensors.items():
        if str(tensor.dtype) != expected[name][0]:
            raise WeightsError(f"{path.name}: {name} is {tensor.dtype}, wants {expected[name][0]}",
                               reason="weights-mismatch")
    model = build_model(meta.model)
    model.load_state_dict(tensors, strict=True)
    return model.to(device).eval(), meta
