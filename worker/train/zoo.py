"""The built-in model zoo: every architecture a spec may name, in plain torch.

A job names a model and its sizes; the worker builds it from this file only (never from code or
pickles sent by the network). The layer sizes follow `worker.train.flops` exactly, which prices the
job on chain from the same spec; see its docstring for the layer tables.
"""

from __future__ import annotations

import torch
from torch import nn

from worker.train.flops import cnn_channels
from worker.train.spec import CenterNetSpec, CnnSpec

# focal-loss heatmaps start near p = 0.1 so early training is not swamped by easy negatives
HEATMAP_PRIOR_BIAS = -2.19


def conv_bn_relu(c_in: int, c_out: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
    )


class Cnn(nn.Module):
    """Classifier: conv-bn-relu-maxpool blocks, global average pool, one linear layer.

    Input float (N, C, S, S) in [0, 1]; output logits (N, num_classes).
    """

    def __init__(self, spec: CnnSpec) -> None:
        super().__init__()
        blocks: list[nn.Module] = []
        size, c_in = spec.image_size, int(spec.in_channels)
        for c_out in cnn_channels(spec):
            blocks.append(conv_bn_relu(c_in, c_out))
            if size >= 2:
                blocks.append(nn.MaxPool2d(2))
                size //= 2
            c_in = c_out
        self.features = nn.Sequential(*blocks)
        self.classifier = nn.Linear(c_in, spec.num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits: torch.Tensor = self.classifier(self.features(x).mean(dim=(2, 3)))
        return logits


def _head(c_in: int, width: int, c_out: int, bias: float = 0.0) -> nn.Sequential:
    last = nn.Conv2d(width, c_out, 1)
    assert last.bias is not None
    nn.init.constant_(last.bias, bias)
    return nn.Sequential(nn.Conv2d(c_in, width, 3, padding=1), nn.ReLU(inplace=True), last)


class CenterNet(nn.Module):
    """Compact CenterNet: stride-32 encoder, top-down decoder back to stride 4, three heads.

    Input float (N, 3, S, S) in [0, 1]. Output dict of stride-4 maps: ``heatmap`` logits
    (N, C, S/4, S/4), ``size`` box (w, h) in output cells (N, 2, ., .), ``offset`` sub-cell centre
    offset (N, 2, ., .).
    """

    def __init__(self, spec: CenterNetSpec) -> None:
        super().__init__()
        w = spec.width
        self.stem = conv_bn_relu(3, w, stride=2)
        self.stage2 = nn.Sequential(conv_bn_relu(w, 2 * w, 2), conv_bn_relu(2 * w, 2 * w))
        self.stage3 = nn.Sequential(conv_bn_relu(2 * w, 4 * w, 2), conv_bn_relu(4 * w, 4 * w))
        self.stage4 = nn.Sequential(conv_bn_relu(4 * w, 8 * w, 2), conv_bn_relu(8 * w, 8 * w))
        self.stage5 = nn.Sequential(conv_bn_relu(8 * w, 8 * w, 2), conv_bn_relu(8 * w, 8 * w))
        self.up4 = conv_bn_relu(8 * w, 4 * w)
        self.up3 = conv_bn_relu(4 * w, 2 * w)
        self.up2 = conv_bn_relu(2 * w, 2 * w)
        self.heatmap = _head(2 * w, spec.head_width, spec.num_classes, HEATMAP_PRIOR_BIAS)
        self.size = _head(2 * w, spec.head_width, 2)
        self.offset = _head(2 * w, spec.head_width, 2)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        c2 = self.stage2(self.stem(x))
        c3 = self.stage3(c2)
        c4 = self.stage4(c3)
        c5 = self.stage5(c4)
        d4 = self.up4(_upsample(c5) + c4)
        d3 = self.up3(_upsample(d4) + c3)
        d2 = self.up2(_upsample(d3) + c2)
        return {"heatmap": self.heatmap(d2), "size": self.size(d2), "offset": self.offset(d2)}


def _upsample(x: torch.Tensor) -> torch.Tensor:
    return nn.functional.interpolate(x, scale_factor=2.0, mode="nearest")


def build_model(spec: CnnSpec | CenterNetSpec) -> nn.Module:
    """The model a spec names, freshly initialised (seed the global RNG first for determinism)."""
    if isinstance(spec, CnnSpec):
        return Cnn(spec)
    return CenterNet(spec)


def input_shape(spec: CnnSpec | CenterNetSpec) -> tuple[int, int, int]:
    """(C, H, W) of one input image."""
    if isinstance(spec, CnnSpec):
        return (spec.in_channels, spec.image_size, spec.image_size)
    return (3, spec.image_size, spec.image_size)
