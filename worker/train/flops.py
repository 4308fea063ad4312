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

from chain import compute_units as units
from chain.compute_units import BACKWARD_FACTOR, CNN_MAX_CHANNELS, conv_flops, linear_flops
from worker.train.spec import CenterNetSpec, CnnSpec, TrainSpec

CENTERNET_STRIDE = 4
__all__ = [
    "BACKWARD_FACTOR", "CENTERNET_STRIDE", "CNN_MAX_CHANNELS", "cnn_channels", "conv_flops",
    "forward_flops", "linear_flops", "training_flops",
]


def cnn_channels(spec: CnnSpec) -> list[int]:
    """Output channels of each block, shared with the zoo so both build the same network."""
    return [min(spec.width * 2**i, CNN_MAX_CHANNELS) for i in range(spec.depth)]


def forward_flops(model: CnnSpec | CenterNetSpec) -> int:
    """FLOPs of one image through the model (inference): the chain's own arithmetic, since
    validators price jobs with it (one formula, in `chain.compute_units`)."""
    if isinstance(model, CnnSpec):
        return units.cnn_forward_flops(
            model.image_size, model.in_channels, model.width, model.depth, model.num_classes
        )
    return units.centernet_forward_flops(model.image_size, model.width, model.head_width, model.num_classes)


def training_flops(spec: TrainSpec, dataset_size: int) -> int:
    """FLOPs of the whole job: 3 x forward x images seen (batch_size x total steps)."""
    return units.training_units(forward_flops(spec.model), spec.batch_size, spec.total_steps(dataset_size))
