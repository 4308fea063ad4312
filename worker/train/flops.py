"""Analytic FLOPs of the zoo's models: plain arithmetic over spec fields, no torch.

The chain prices a Train job by compute units derived from these numbers, so every validator must
get the same integer from the same spec: only integer arithmetic over the layer sizes that
`worker.train.zoo` builds (a test checks the two agree layer by layer).

Formulas (one multiply-add = 2 FLOPs; BatchNorm, ReLU, pooling and biases are ignored, they are
under 2% of these models):
- conv k x k, Cin -> Cout, output H x W:   2 * Cin * Cout * k * k * H * W
- linear In -> Out:                         2 * In * Out
- training step per image:                  3 * forward (backward costs about twice forward)
- training job:                             3 * forward * batch_size * total_steps

cnn (input S x S, block i has channels c_i = min(width * 2^i, CNN_MAX_CHANNELS)):
  block i: 3x3 conv c_{i-1} -> c_i at the block's input size s_i (same padding), then a 2x2 max
  pool while s_i >= 2 (s_{i+1} = s_i // 2); head: global average pool, linear c_last -> classes.

centernet (input S x S RGB, w = width, h = head_width, C = num_classes):
  stem   3x3 s2   3 -> w      at S/2
  stage2 3x3 s2   w -> 2w     at S/4,  3x3 2w -> 2w at S/4
  stage3 3x3 s2  2w -> 4w     at S/8,  3x3 4w -> 4w at S/8
  stage4 3x3 s2  4w -> 8w     at S/16, 3x3 8w -> 8w at S/16
  stage5 3x3 s2  8w -> 8w     at S/32, 3x3 8w -> 8w at S/32
  up4    3x3     8w -> 4w     at S/16 (on upsampled stage5 + stage4)
  up3    3x3     4w -> 2w     at S/8  (on upsampled up4 + stage3)
  up2    3x3     2w -> 2w     at S/4  (on upsampled up3 + stage2)
  heads  for out in (C, 2, 2): 3x3 2w -> h at S/4, then 1x1 h -> out at S/4
"""

from __future__ import annotations

from worker.train.spec import CenterNetSpec, CnnSpec, TrainSpec

CNN_MAX_CHANNELS = 512
CENTERNET_STRIDE = 4
BACKWARD_FACTOR = 3


def conv_flops(c_in: int, c_out: int, kernel: int, out_h: int, out_w: int) -> int:
    return 2 * c_in * c_out * kernel * kernel * out_h * out_w


def linear_flops(n_in: int, n_out: int) -> int:
    return 2 * n_in * n_out


def cnn_channels(spec: CnnSpec) -> list[int]:
    """Output channels of each block, shared with the zoo so both build the same network."""
    return [min(spec.width * 2**i, CNN_MAX_CHANNELS) for i in range(spec.depth)]


def cnn_forward_flops(spec: CnnSpec) -> int:
    total = 0
    size = spec.image_size
    c_in: int = spec.in_channels
    for c_out in cnn_channels(spec):
        total += conv_flops(c_in, c_out, 3, size, size)
        if size >= 2:
            size //= 2
        c_in = c_out
    return total + linear_flops(c_in, spec.num_classes)


def centernet_forward_flops(spec: CenterNetSpec) -> int:
    s, w, h = spec.image_size, spec.width, spec.head_width
    s2, s4, s8, s16, s32 = s // 2, s // 4, s // 8, s // 16, s // 32
    layers = [
        (3, w, 3, s2),
        (w, 2 * w, 3, s4), (2 * w, 2 * w, 3, s4),
        (2 * w, 4 * w, 3, s8), (4 * w, 4 * w, 3, s8),
        (4 * w, 8 * w, 3, s16), (8 * w, 8 * w, 3, s16),
        (8 * w, 8 * w, 3, s32), (8 * w, 8 * w, 3, s32),
        (8 * w, 4 * w, 3, s16), (4 * w, 2 * w, 3, s8), (2 * w, 2 * w, 3, s4),
    ]
    for out in (spec.num_classes, 2, 2):
        layers += [(2 * w, h, 3, s4), (h, out, 1, s4)]
    return sum(conv_flops(ci, co, k, hw, hw) for ci, co, k, hw in layers)


def forward_flops(model: CnnSpec | CenterNetSpec) -> int:
    """FLOPs of one image through the model (inference)."""
    if isinstance(model, CnnSpec):
        return cnn_forward_flops(model)
    return centernet_forward_flops(model)


def training_flops(spec: TrainSpec, dataset_size: int) -> int:
    """FLOPs of the whole job: 3 x forward x images seen (batch_size x total steps)."""
    images = spec.batch_size * spec.total_steps(dataset_size)
    return BACKWARD_FACTOR * forward_flops(spec.model) * images
