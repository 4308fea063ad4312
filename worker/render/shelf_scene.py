"""Scene pieces that are not products: backgrounds, price tags, and the paste record."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from worker.render.catalog import draw_color
from worker.render.rng import ItemRng
from worker.render.shelf_spec import BackgroundSpec

TAG_COLORS = ((250, 250, 245), (255, 220, 40), (255, 140, 120))
TAG_CACHE_SIZE = 2048  # holds every tag there is: heights up to 67 px, 7 widths, 3 colours


@dataclass(frozen=True, slots=True)
class Paste:
    """One sprite placed at (top, left); ``category_id`` 0 marks an occluder that is no product."""

    rgb: np.ndarray
    mask: np.ndarray
    top: int
    left: int
    category_id: int


def draw_background(rng: ItemRng, spec: BackgroundSpec, height: int, width: int) -> np.ndarray:
    """A fresh (H, W, 3) uint8 background: solid, vertical gradient, stripes or checker."""
    style = spec.styles[rng.choice(len(spec.styles))]
    first = np.asarray(draw_color(rng, spec.color), dtype=np.int32)
    second = np.asarray(draw_color(rng, spec.color), dtype=np.int32)
    period = rng.pick(spec.period_px)
    palette = np.stack([first, second]).astype(np.uint8)
    if style == "solid":
        return _repeat_across(np.tile(palette[0], (height, 1)), width)
    if style == "vertical":
        ys = np.arange(height, dtype=np.int32)[:, None]
        column = (first + (second - first) * ys // max(height - 1, 1)).astype(np.uint8)
        return _repeat_across(column, width)
    bands = np.arange(width) // period % 2
    stripe_rows = palette[np.stack([bands, 1 - bands])]  # (2, W, 3): a row and its opposite
    if style == "stripes":
        return np.broadcast_to(stripe_rows[0], (height, width, 3)).copy()
    return stripe_rows[np.arange(height) // period % 2]


def draw_tag(rng: ItemRng, board_top: int, center_x: int, board_px: int) -> Paste:
    """A shelf-edge price tag that sticks up over the bottom of the products above it."""
    height = max(3, board_px + rng.draw(1, 3))
    width = rng.draw(8, 14)
    rgb, mask = _tag_sprite(height, width, rng.choice(len(TAG_COLORS)))
    top = board_top - rng.draw(1, 3)
    return Paste(rgb, mask, top, center_x - width // 2 + rng.draw(-3, 3), 0)


@lru_cache(maxsize=TAG_CACHE_SIZE)
def _tag_sprite(height: int, width: int, color: int) -> tuple[np.ndarray, np.ndarray]:
    """``(rgb, mask)`` of a tag; read-only arrays shared through the cache, as SKU sprites are."""
    rgb = np.empty((height, width, 3), dtype=np.uint8)
    rgb[:] = TAG_COLORS[color]
    rgb[height // 2 : height // 2 + 1, 2 : width - 2] = 30  # the price, as a dark bar
    mask = np.ones((height, width), dtype=bool)
    rgb.flags.writeable = False
    mask.flags.writeable = False
    return rgb, mask


def _repeat_across(column: np.ndarray, width: int) -> np.ndarray:
    """An (H, W, 3) uint8 image whose row ``y`` is the colour ``column[y]`` all along.

    Filled by doubling the filled width (a dozen block copies): numpy broadcasting a 3-byte
    pixel across a row copies pixel by pixel, about 8x slower at 256x256.
    """
    image = np.empty((column.shape[0], width, 3), dtype=np.uint8)
    image[:, 0] = column
    filled = 1
    while filled < width:
        step = min(filled, width - filled)
        image[:, filled : filled + step] = image[:, :step]
        filled += step
    return image
