"""Retail-shelf scenes: plan the layout from the item's RNG, composite it, read labels off the id map.

Compositing keeps an instance-id map next to the pixels: every paste stamps its id under its mask,
and occluders (price tags) stamp 0. After the last paste the id map says, for every pixel, which
product is visible there, so an instance's mask is exactly the set of its visible pixels and its
box is the tight box of that mask (`worker.render.masks`). Lighting, blur and noise then change
pixels only.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from worker.render.catalog import Sku, build_catalog, draw_color, draw_sku
from worker.render.masks import Instance, measure
from worker.render.ops import Backend, Compositor, compositor
from worker.render.rng import ItemRng
from worker.render.shelf_scene import Paste, draw_background, draw_tag
from worker.render.shelf_spec import ShelfSpec

MIN_SPRITE_PX = 4


@dataclass(frozen=True, slots=True)
class ShelfItem:
    """A rendered image; pixel (y, x) shows instance ``idmap[y, x]`` (1-based; 0 = no product)."""

    image: np.ndarray  # (H, W, 3) uint8
    idmap: np.ndarray  # (H, W) uint16, ids 1..len(instances) in annotation order
    instances: tuple[Instance, ...]
    rle_counts: tuple[list[int], ...]  # uncompressed COCO RLE of each instance's mask


@dataclass(frozen=True, slots=True)
class ShelfPlan:
    """What every item of a spec shares: the spec hash and the catalog."""

    spec: ShelfSpec
    digest: bytes
    catalog: tuple[Sku, ...]


@lru_cache(maxsize=16)
def shelf_plan(spec: ShelfSpec) -> ShelfPlan:
    digest = spec.spec_hash()
    return ShelfPlan(spec=spec, digest=digest, catalog=build_catalog(digest, spec.catalog))


def plan_scene(plan: ShelfPlan, rng: ItemRng) -> tuple[np.ndarray, list[Paste]]:
    """Background image and the ordered pastes of one scene (products, then tags)."""
    spec = plan.spec
    height, width = spec.height, spec.width
    background = draw_background(rng, spec.background, height, width)
    layout, place = spec.shelf, spec.placement
    rows = rng.pick(layout.rows)
    board_px = rng.pick(layout.board_px)
    # a whole row of board pixels: a bare colour would be broadcast into the image pixel by pixel
    board_row = np.tile(np.asarray(draw_color(rng, layout.board), dtype=np.uint8), (width, 1))
    scale = rng.pick(place.scale_pct)
    facing_pct = rng.pick(place.facing_pct)
    occlusion_pct = rng.pick(place.occlusion_pct)
    shift_y, shift_x = _camera_shift(rng, spec.photometric.jitter_px)
    pastes: list[Paste] = []
    tags: list[Paste] = []
    budget = place.max_instances
    for row in range(rows):
        bottom = (row + 1) * height // rows + shift_y
        board_top = bottom - board_px
        background[max(board_top, 0) : max(min(bottom, height), 0)] = board_row
        room = board_top - (row * height // rows + shift_y) - 2
        back = _fill_row(
            plan, rng, board_top, room, scale, facing_pct, shift_x, budget - len(pastes)
        )
        front = _occluders(
            plan, rng, back, board_top, board_px, occlusion_pct, budget - len(pastes) - len(back)
        )
        pastes += back + front
        tags += [
            draw_tag(rng, board_top, p.left + p.mask.shape[1] // 2, board_px)
            for p in back
            if rng.chance(layout.tag_pct)
        ]
    return background, pastes + tags


def _camera_shift(rng: ItemRng, jitter: tuple[int, int]) -> tuple[int, int]:
    """Whole-scene shift (dy, dx): each a magnitude from the spec range with a random sign."""
    dy, dx = rng.pick(jitter), rng.pick(jitter)
    return (dy if rng.chance(50) else -dy), (dx if rng.chance(50) else -dx)


def _sprite(sku: Sku, scale: int, room: int) -> tuple[np.ndarray, np.ndarray]:
    h = max(MIN_SPRITE_PX, sku.height * scale // 100)
    w = max(MIN_SPRITE_PX, sku.width * scale // 100)
    if h > room >= MIN_SPRITE_PX:  # shrink to fit under the board above, keeping the aspect
        w, h = max(MIN_SPRITE_PX, w * room // h), room
    return draw_sku(sku, h, w)


def _fill_row(
    plan: ShelfPlan,
    rng: ItemRng,
    board_top: int,
    room: int,
    scale: int,
    facing_pct: int,
    shift_x: int,
    budget: int,
) -> list[Paste]:
    place = plan.spec.placement
    pastes: list[Paste] = []
    x = shift_x + rng.pick(place.gap_px)
    while x < plan.spec.width and len(pastes) < budget:
        sku = plan.catalog[rng.choice(len(plan.catalog))]
        rgb, mask = _sprite(sku, scale, room)
        for _ in range(rng.pick(place.group)):
            if x >= plan.spec.width or len(pastes) >= budget:
                break
            if rng.chance(facing_pct):
                pastes.append(Paste(rgb, mask, board_top - mask.shape[0], x, sku.category_id))
            x += mask.shape[1] + rng.pick(place.gap_px)
    return pastes


def _occluders(
    plan: ShelfPlan,
    rng: ItemRng,
    back: list[Paste],
    board_top: int,
    board_px: int,
    occlusion_pct: int,
    budget: int,
) -> list[Paste]:
    """Products standing in front of the row, partly hiding the ones behind."""
    front: list[Paste] = []
    for behind in back:
        if len(front) >= budget or not rng.chance(occlusion_pct):
            continue
        sku = plan.catalog[rng.choice(len(plan.catalog))]
        height = behind.mask.shape[0] * rng.draw(60, 95) // 100
        rgb, mask = _sprite(sku, 100 * height // max(sku.height, 1), height)
        half = behind.mask.shape[1] // 2
        left = behind.left + rng.draw(-half, half)
        top = board_top + rng.draw(1, max(1, board_px // 2)) - mask.shape[0]
        front.append(Paste(rgb, mask, top, left, sku.category_id))
    return front


def composite(
    ops: Compositor, background: np.ndarray, pastes: list[Paste]
) -> tuple[object, object]:
    """Paste in order; product ``k`` (1-based among products) stamps id ``k``, tags stamp 0."""
    image, idmap = ops.canvas(background, np.zeros(background.shape[:2], dtype=np.uint16))
    instance = 0
    for paste in pastes:
        if paste.category_id:
            instance += 1
        ops.paste(
            image,
            idmap,
            paste.rgb,
            paste.mask,
            paste.top,
            paste.left,
            instance if paste.category_id else 0,
        )
    return image, idmap


def photometric(ops: Compositor, rng: ItemRng, image: object, spec: ShelfSpec) -> object:
    """Lighting gradient, then blur, then noise: always drawn, in this order, so RNG use is fixed."""
    light = spec.photometric
    gain = rng.pick(light.gain_q8)
    gradient = rng.pick(light.gradient_q8)
    offset = rng.pick(light.offset)
    width = spec.width
    columns = np.arange(width, dtype=np.int32)
    gain_q8 = np.maximum(gain + (gradient * (2 * columns - width)) // (2 * width), 0)
    image = ops.light(image, gain_q8, offset)
    blur = rng.chance(light.blur_pct)
    radius = rng.pick(light.blur_radius)
    if blur:
        image = ops.blur(image, radius)
    noisy = rng.chance(light.noise_pct)
    amplitude = rng.pick(light.noise_amplitude)
    if noisy:
        image = ops.add_noise(image, rng.byte_noise((spec.height, width, 3), amplitude))
    return image


def render_shelf(
    spec: ShelfSpec,
    seed: int,
    index: int,
    *,
    backend: Backend = "numpy",
    device: str = "cpu",
    effects: bool = True,
) -> ShelfItem:
    """Item ``index`` of the dataset ``(spec, seed)``: the same bytes on every machine and backend.

    ``effects=False`` skips lighting, blur and noise (for checking masks against pixels); such an
    image is not a dataset item.
    """
    plan = shelf_plan(spec)
    rng = ItemRng.for_item(plan.digest, seed, index)
    ops = compositor(backend, device)
    background, pastes = plan_scene(plan, rng)
    image, idmap = composite(ops, background, pastes)
    if effects:
        image = photometric(ops, rng, image, spec)
    categories = [p.category_id for p in pastes if p.category_id]
    labels = measure(ops.to_numpy(idmap).astype(np.uint16, copy=False), categories)
    return ShelfItem(ops.to_numpy(image), labels.idmap, labels.instances, labels.rle_counts)
