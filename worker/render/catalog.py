"""Procedural products: each SKU's look is drawn once from the spec hash, then drawn at any size.

A SKU is a small set of integer parameters (silhouette, colours, label band, glyph bitmap, logo);
`draw_sku` rasterizes it at the exact pixel size a scene needs, with integer formulas, so no
resampling filter is ever involved. Sprites are cached per (sku, height, width): a scene pastes
the same few dozen sprites thousands of times.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from chain.hashing import hash256
from worker.render.rng import ItemRng
from worker.render.shelf_spec import CatalogSpec, ColorRange

CATALOG_PERSON = b"neuro-catalog"
GLYPH_ROWS, GLYPH_COLS = 5, 3  # a glyph is a 5x3 bitmap, like a tiny bitmap font
GLYPHS_PER_ROW = 6
LOGO_KINDS = ("circle", "diamond", "triangle", "square")
SPRITE_CACHE_SIZE = 8192


@dataclass(frozen=True, slots=True)
class Sku:
    """One product's integer description; ``category_id`` is its COCO category."""

    category_id: int
    shape: str
    width: int
    height: int
    body: tuple[int, int, int]
    label: tuple[int, int, int]
    ink: tuple[int, int, int]
    logo_color: tuple[int, int, int]
    band_top_pm: int  # per mille of the package height
    band_pm: int
    glyphs: bytes  # GLYPH_ROWS x (GLYPH_COLS+1)*GLYPHS_PER_ROW bits per text row, row-major 0/1
    glyph_rows: int
    logo: str  # one of LOGO_KINDS or "" for none


def draw_color(rng: ItemRng, colors: ColorRange) -> tuple[int, int, int]:
    return rng.pick(colors.red), rng.pick(colors.green), rng.pick(colors.blue)


def contrast(color: tuple[int, int, int]) -> tuple[int, int, int]:
    """Black or white ink, whichever stands out on ``color`` (integer luma)."""
    luma = (299 * color[0] + 587 * color[1] + 114 * color[2]) // 1000
    return (16, 16, 16) if luma > 128 else (240, 240, 240)


def build_catalog(spec_digest: bytes, catalog: CatalogSpec) -> tuple[Sku, ...]:
    """The spec's SKUs; the same for every seed and shard of a job."""
    entropy = hash256(spec_digest, person=CATALOG_PERSON)
    return tuple(
        _draw_sku(ItemRng.for_item(entropy, 0, k), k + 1, catalog) for k in range(catalog.skus)
    )


def _draw_sku(rng: ItemRng, category_id: int, catalog: CatalogSpec) -> Sku:
    shape = catalog.shapes[rng.choice(len(catalog.shapes))]
    label = draw_color(rng, catalog.label)
    rows = rng.pick(catalog.glyph_rows)
    bits = rng.ints(0, 1, GLYPH_ROWS * (GLYPH_COLS + 1) * GLYPHS_PER_ROW * max(rows, 1))
    bits.reshape(-1, GLYPH_COLS + 1)[:, GLYPH_COLS] = 0  # a blank column between glyphs
    return Sku(
        category_id=category_id,
        shape=shape,
        width=rng.pick(catalog.width_px),
        height=rng.pick(catalog.height_px),
        body=draw_color(rng, catalog.body),
        label=label,
        ink=contrast(label),
        logo_color=draw_color(rng, catalog.body),
        band_top_pm=rng.draw(250, 500),
        band_pm=rng.pick(catalog.band_pct) * 10,
        glyphs=bits.astype(np.uint8).tobytes(),
        glyph_rows=rows,
        logo=LOGO_KINDS[rng.choice(len(LOGO_KINDS))] if rng.chance(catalog.logo_pct) else "",
    )


def silhouette(shape: str, height: int, width: int) -> np.ndarray:
    """Boolean package outline of ``shape`` at exactly ``height`` x ``width`` pixels."""
    ys = np.arange(height, dtype=np.int64)[:, None]
    xs = np.arange(width, dtype=np.int64)[None, :]
    # twice the distance from the vertical axis, so odd and even widths stay symmetric
    off_axis = np.abs(2 * xs - (width - 1))
    if shape == "box":
        return np.ones((height, width), dtype=bool)
    if shape == "can":
        radius = max(1, min(width, height) // 5)
        dx = np.maximum(np.maximum(radius - xs, xs - (width - 1 - radius)), 0)
        dy = np.maximum(np.maximum(radius - ys, ys - (height - 1 - radius)), 0)
        return np.asarray(dx * dx + dy * dy <= radius * radius)
    if shape == "bottle":
        neck_end, shoulder_end = height * 25 // 100, height * 42 // 100
        neck = max(1, width * 40 // 100)
        span = max(1, shoulder_end - neck_end)
        grow = np.clip(ys - neck_end, 0, span)
        row_width = neck + (width - neck) * grow // span
        return np.asarray(off_axis < row_width)
    # bag: a crimped zigzag top and sides that taper towards the top
    tooth = max(2, width // 6)
    depth = max(1, height * 6 // 100)
    crimp = depth * np.abs((xs % tooth) * 2 - tooth) // tooth
    taper = (width * 12 // 100) * (height - ys) // height
    return np.asarray((ys >= crimp) & (off_axis < width - 2 * taper))


@lru_cache(maxsize=SPRITE_CACHE_SIZE)
def draw_sku(sku: Sku, height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """``(rgb, mask)`` of the SKU at this size; read-only arrays, shared through the cache."""
    mask = silhouette(sku.shape, height, width)
    ys = np.arange(height, dtype=np.int32)[:, None]
    xs = np.arange(width, dtype=np.int32)[None, :]
    rgb = np.empty((height, width, 3), dtype=np.uint8)
    rgb[:] = sku.body
    if sku.shape in ("can", "bottle"):
        # cylinder shading: darker towards both sides
        shade = (np.abs(2 * xs - (width - 1)) * 70) // max(width, 1)
        rgb[:] = np.clip(rgb.astype(np.int32) - shade[:, :, None], 0, 255).astype(np.uint8)
    elif sku.shape == "box":
        top = max(1, height // 12)  # the lit top face of a carton
        rgb[:top] = np.clip(np.asarray(sku.body, dtype=np.int32) + 50, 0, 255).astype(np.uint8)
    band_top = height * sku.band_top_pm // 1000
    band_h = max(1, height * sku.band_pm // 1000)
    band = slice(band_top, min(height, band_top + band_h))
    rgb[band] = sku.label
    _draw_glyphs(rgb, sku, band_top, min(height, band_top + band_h), width)
    if sku.logo and band_top >= 6:
        _draw_logo(rgb, sku, band_top, width, ys, xs)
    if sku.shape == "bottle":
        rgb[: max(1, height * 8 // 100)] = sku.logo_color  # the cap
    rgb[~mask] = 0
    rgb.flags.writeable = False
    mask.flags.writeable = False
    return rgb, mask


def _draw_glyphs(rgb: np.ndarray, sku: Sku, top: int, bottom: int, width: int) -> None:
    """Nearest-neighbour blow-up of the SKU's glyph bitmap into the middle of its label band."""
    if sku.glyph_rows == 0 or bottom - top < 3 or width < 6:
        return
    bits_w = (GLYPH_COLS + 1) * GLYPHS_PER_ROW
    bitmap = np.frombuffer(sku.glyphs, dtype=np.uint8).reshape(-1, bits_w)
    rows = bitmap.shape[0]
    area_h = (bottom - top) * 70 // 100
    area_w = width * 80 // 100
    if area_h < 1 or area_w < 1:
        return
    y0 = top + (bottom - top - area_h) // 2
    x0 = (width - area_w) // 2
    src_y = (np.arange(area_h) * rows) // area_h
    src_x = (np.arange(area_w) * bits_w) // area_w
    ink = bitmap[src_y[:, None], src_x[None, :]].astype(bool)
    window = rgb[y0 : y0 + area_h, x0 : x0 + area_w]
    window[ink] = sku.ink


def _draw_logo(
    rgb: np.ndarray, sku: Sku, band_top: int, width: int, ys: np.ndarray, xs: np.ndarray
) -> None:
    cy, cx = band_top // 2, width // 2
    r = max(1, min(band_top, width) * 30 // 100)
    dy, dx = ys - cy, xs - cx
    if sku.logo == "circle":
        inside = dx * dx + dy * dy <= r * r
    elif sku.logo == "diamond":
        inside = np.abs(dx) + np.abs(dy) <= r
    elif sku.logo == "triangle":
        inside = (dy >= -r) & (dy <= r) & (2 * np.abs(dx) <= dy + r)
    else:
        inside = (np.abs(dx) <= r) & (np.abs(dy) <= r)
    rgb[np.broadcast_to(inside, rgb.shape[:2])] = sku.logo_color
