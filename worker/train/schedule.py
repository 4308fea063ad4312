"""Batch order and augmentation as pure functions of (seed, step).

Proof-of-learning replays any segment of a run on its own: the verifier must know which items
each step saw and how they were flipped or shifted without replaying what came before. So each
epoch's permutation comes from a generator seeded with (seed, epoch), a step takes its slice of
it, and a step's augmentation draws from a generator seeded with (seed, step). Nothing here
depends on the device or the thread count.
"""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass

import torch

from worker.train.spec import AugmentSpec, steps_per_epoch


def upload(tensor: torch.Tensor, device: torch.device) -> torch.Tensor:
    """Copy a small host tensor to `device` without stalling the host.

    A copy from pageable memory synchronises the CUDA stream, which would stop the host from
    queueing the next step while the GPU works; from pinned memory it is truly asynchronous.
    """
    if device.type != "cuda":
        return tensor.to(device)
    return tensor.pin_memory().to(device, non_blocking=True)


def derive_seed(seed: int, purpose: bytes, counter: int) -> int:
    """A 63-bit seed for one (purpose, counter): independent streams from one job seed."""
    data = seed.to_bytes(8, "little") + purpose + counter.to_bytes(8, "little")
    return int.from_bytes(hashlib.blake2b(data, digest_size=8).digest(), "little") >> 1


@functools.lru_cache(maxsize=4)
def epoch_permutation(seed: int, epoch: int, dataset_size: int) -> torch.Tensor:
    gen = torch.Generator().manual_seed(derive_seed(seed, b"epoch", epoch))
    return torch.randperm(dataset_size, generator=gen)


def batch_indices(seed: int, step: int, dataset_size: int, batch_size: int) -> torch.Tensor:
    """Item indices (int64, CPU) of 0-based `step`: slice `step % spe` of its epoch's permutation."""
    per_epoch = steps_per_epoch(dataset_size, batch_size)
    epoch, slot = divmod(step, per_epoch)
    perm = epoch_permutation(seed, epoch, dataset_size)
    return perm[slot * batch_size:(slot + 1) * batch_size]


@dataclass(frozen=True, slots=True)
class Augmentation:
    """Per-item draws of one step: horizontal flip and an integer (dx, dy) shift, CPU tensors."""

    flip: torch.Tensor
    dx: torch.Tensor
    dy: torch.Tensor

    def item(self, i: int) -> tuple[bool, int, int]:
        return bool(self.flip[i]), int(self.dx[i]), int(self.dy[i])


def augmentation(spec: AugmentSpec, seed: int, step: int, batch_size: int) -> Augmentation | None:
    """The draws of `step`, or None when the spec asks for no augmentation."""
    if not spec.hflip and spec.shift == 0:
        return None
    gen = torch.Generator().manual_seed(derive_seed(seed, b"augment", step))
    flip = torch.rand(batch_size, generator=gen) < 0.5
    span = 2 * spec.shift + 1
    dx = torch.randint(0, span, (batch_size,), generator=gen) - spec.shift
    dy = torch.randint(0, span, (batch_size,), generator=gen) - spec.shift
    if not spec.hflip:
        flip = torch.zeros_like(flip)
    return Augmentation(flip=flip, dx=dx, dy=dy)


def augment_images(images: torch.Tensor, aug: Augmentation) -> torch.Tensor:
    """Flip and shift a float batch (N, C, H, W) on its device; shifted-in pixels are zero."""
    device = images.device
    n, _, h, w = images.shape
    flip = upload(aug.flip, device)
    images = torch.where(flip[:, None, None, None], images.flip(3), images)
    dx, dy = upload(aug.dx, device), upload(aug.dy, device)
    rows = torch.arange(h, device=device)[None, :] - dy[:, None]
    cols = torch.arange(w, device=device)[None, :] - dx[:, None]
    valid = ((rows >= 0) & (rows < h))[:, :, None] & ((cols >= 0) & (cols < w))[:, None, :]
    batch = torch.arange(n, device=device)[:, None, None]
    moved = images.permute(0, 2, 3, 1)[batch, rows.clamp(0, h - 1)[:, :, None],
                                       cols.clamp(0, w - 1)[:, None, :]]
    return moved.permute(0, 3, 1, 2) * valid[:, None, :, :].to(images.dtype)
