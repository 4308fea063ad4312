"""Compute units: the deterministic price base of every job, in plain integer arithmetic.

Every validator must compute the same number from the same spec, so this module takes plain ints
(the worker maps its validated spec models onto these arguments), uses no floats, no clock and
imports nothing outside `chain`. Units of different task kinds are not comparable: a render unit
is a pixel, a train/evaluate/label unit is a FLOP; the market quotes a unit price per kind.

Render (units = pixels written, counting every full-image pass):
    width * height * channels * items * supersample^2 * (1 + sum of effect passes)
    A supersampled renderer draws (s*W) x (s*H) then averages down: s^2 the pixels. Each
    per-pixel effect is one more pass over the image; its weight is EFFECT_PASSES[name]
    (blur = 2 because a separable blur is two 1-D passes, elastic warp = 2: field + resample).
    Objects composited onto a scene add their own pixels: ``object_pixels`` (sum of object areas
    per image, times channels) is added per item.

Train (units = FLOPs; one multiply-add = 2 FLOPs; BatchNorm, ReLU, pooling and biases ignored):
    conv k x k, Cin -> Cout, output H x W : 2 * Cin * Cout * k * k * H * W
    linear In -> Out                      : 2 * In * Out
    training                              : 3 * forward * batch_size * total_steps
                                            (backward costs about twice forward)
    The per-architecture forward formulas copy `worker/train/flops.py` (cnn, centernet); a unit
    test there and here pins both to the same hand-computed values.

Evaluate / label (units = FLOPs): forward * images.
"""

from __future__ import annotations

from collections.abc import Iterable

from chain.errors import ChainError

BACKWARD_FACTOR = 3
CNN_MAX_CHANNELS = 512
MAX_SUPERSAMPLE = 8

# extra full-image passes per effect; a renderer version that adds an effect adds it here
EFFECT_PASSES: dict[str, int] = {
    "affine": 1,
    "blur": 2,
    "contrast": 1,
    "elastic": 2,
    "erase": 1,
    "lighting": 1,
    "noise": 1,
    "occlusion": 1,
    "shadow": 1,
    "thickness": 1,
}


class UnitsError(ChainError):
    """A spec whose units cannot be computed (negative size, unknown effect)."""

    reason = "bad-units"


def _require_positive(**values: int) -> None:
    for name, value in values.items():
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise UnitsError(detail=f"{name} must be a non-negative int", got=value)


def effect_passes(effects: Iterable[str]) -> int:
    """Extra passes of the named effects; an unknown name is an error, not a free effect."""
    total = 0
    for name in sorted(set(effects)):
        if name not in EFFECT_PASSES:
            raise UnitsError(detail=f"unknown render effect {name!r}")
        total += EFFECT_PASSES[name]
    return total


def render_units(
    width: int,
    height: int,
    channels: int,
    items: int,
    *,
    effects: Iterable[str] = (),
    supersample: int = 1,
    object_pixels: int = 0,
) -> int:
    """Pixels a render job writes (see the module docstring for the formula)."""
    _require_positive(
        width=width, height=height, channels=channels, items=items, object_pixels=object_pixels
    )
    if not 1 <= supersample <= MAX_SUPERSAMPLE:
        raise UnitsError(detail=f"supersample must be 1..{MAX_SUPERSAMPLE}", got=supersample)
    passes = 1 + effect_passes(effects)
    per_item = width * height * channels * supersample * supersample * passes
    return items * (per_item + object_pixels * channels)


def conv_flops(c_in: int, c_out: int, kernel: int, out_h: int, out_w: int) -> int:
    return 2 * c_in * c_out * kernel * kernel * out_h * out_w


def linear_flops(n_in: int, n_out: int) -> int:
    return 2 * n_in * n_out


def cnn_forward_flops(
    image_size: int, in_channels: int, width: int, depth: int, num_classes: int
) -> int:
    """The zoo's `cnn`: per block a 3x3 same conv then a 2x2 max pool; global pool; linear."""
    _require_positive(
        image_size=image_size, in_channels=in_channels, width=width, depth=depth,
        num_classes=num_classes,
    )
    total = 0
    size = image_size
    c_in = in_channels
    for block in range(depth):
        c_out = min(width * 2**block, CNN_MAX_CHANNELS)
        total += conv_flops(c_in, c_out, 3, size, size)
        if size >= 2:
            size //= 2
        c_in = c_out
    return total + linear_flops(c_in, num_classes)


def centernet_forward_flops(image_size: int, width: int, head_width: int, num_classes: int) -> int:
    """The zoo's `centernet`: stride-2 backbone to S/32, upsampling path to S/4, three heads."""
    _require_positive(
        image_size=image_size, width=width, head_width=head_width, num_classes=num_classes
    )
    s, w, h = image_size, width, head_width
    s2, s4, s8, s16, s32 = s // 2, s // 4, s // 8, s // 16, s // 32
    layers = [
        (3, w, 3, s2),
        (w, 2 * w, 3, s4), (2 * w, 2 * w, 3, s4),
        (2 * w, 4 * w, 3, s8), (4 * w, 4 * w, 3, s8),
        (4 * w, 8 * w, 3, s16), (8 * w, 8 * w, 3, s16),
        (8 * w, 8 * w, 3, s32), (8 * w, 8 * w, 3, s32),
        (8 * w, 4 * w, 3, s16), (4 * w, 2 * w, 3, s8), (2 * w, 2 * w, 3, s4),
    ]
    for out in (num_classes, 2, 2):
        layers += [(2 * w, h, 3, s4), (h, out, 1, s4)]
    return sum(conv_flops(ci, co, k, hw, hw) for ci, co, k, hw in layers)


def training_units(forward_flops: int, batch_size: int, total_steps: int) -> int:
    """FLOPs of a training job: forward + backward (3x forward) for every image seen."""
    _require_positive(forward_flops=forward_flops, batch_size=batch_size, total_steps=total_steps)
    return BACKWARD_FACTOR * forward_flops * batch_size * total_steps


def inference_units(forward_flops: int, images: int) -> int:
    """FLOPs of an evaluate or label job: one forward pass per image."""
    _require_positive(forward_flops=forward_flops, images=images)
    return forward_flops * images
