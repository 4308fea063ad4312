"""Shelf labels against pixels: masks are exactly the visible pixels, boxes are tight."""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from worker.render.masks import measure
from worker.render.rng import ItemRng
from worker.render.shelf import ShelfItem, plan_scene, render_shelf, shelf_plan
from worker.render.shelf_spec import (
    CatalogSpec,
    PhotometricSpec,
    PlacementSpec,
    ShelfLayoutSpec,
    ShelfSpec,
)

SPEC = ShelfSpec(
    width=160,
    height=128,
    count=50,
    placement=PlacementSpec(occlusion_pct=(40, 80), scale_pct=(60, 120)),
)


def debug_ids(spec: ShelfSpec, seed: int, index: int) -> np.ndarray:
    """An independent render: every product painted a unique flat colour, decoded back to an id.

    Uses only the scene plan and plain numpy boolean assignment, not the compositor or id map.
    """
    plan = shelf_plan(spec)
    _, pastes = plan_scene(plan, ItemRng.for_item(plan.digest, seed, index))
    canvas = np.zeros((spec.height, spec.width, 3), dtype=np.uint8)
    number = 0
    for paste in pastes:
        number += 1 if paste.category_id else 0
        color = (number & 255, number >> 8, 200) if paste.category_id else (0, 0, 0)
        for y in range(paste.mask.shape[0]):
            for x in np.flatnonzero(paste.mask[y]):
                cy, cx = paste.top + y, paste.left + int(x)
                if 0 <= cy < spec.height and 0 <= cx < spec.width:
                    canvas[cy, cx] = color
    raw = canvas[:, :, 0].astype(np.int64) + 256 * canvas[:, :, 1].astype(np.int64)
    visible = [k for k in range(1, number + 1) if (raw == k).any()]  # paste order, as annotations
    renumber = np.zeros(number + 1, dtype=np.int64)
    renumber[visible] = np.arange(1, len(visible) + 1)
    return renumber[raw]


def check_labels(item: ShelfItem) -> None:
    """Every mask is non-empty, its box is tight, its area is its pixel count."""
    assert item.idmap.dtype == np.uint16 and item.image.dtype == np.uint8
    assert int(item.idmap.max(initial=0)) == len(item.instances)
    for k, instance in enumerate(item.instances, start=1):
        mask = item.idmap == k
        ys, xs = np.nonzero(mask)
        assert instance.area == mask.sum() > 0
        x, y, w, h = instance.bbox
        assert (x, y, x + w - 1, y + h - 1) == (xs.min(), ys.min(), xs.max(), ys.max())


def test_masks_equal_an_independent_instance_coloured_render() -> None:
    for index in range(6):
        item = render_shelf(SPEC, 5, index, effects=False)
        check_labels(item)
        assert np.array_equal(debug_ids(SPEC, 5, index), item.idmap)
    assert any(len(render_shelf(SPEC, 5, i, effects=False).instances) > 10 for i in range(3))


def test_mask_pixels_show_their_product_sprite() -> None:
    """With effects off, the pixels under mask k are those of product k's sprite, nothing else."""
    plan = shelf_plan(SPEC)
    for index in range(4):
        item = render_shelf(SPEC, 5, index, effects=False)
        _, pastes = plan_scene(plan, ItemRng.for_item(plan.digest, 5, index))
        products = [p for p in pastes if p.category_id]
        categories = [i.category_id for i in item.instances]
        shown = [p for p in products if p.category_id in categories]
        for k, instance in enumerate(item.instances, start=1):
            ys, xs = np.nonzero(item.idmap == k)
            candidates = [p for p in shown if p.category_id == instance.category_id]
            assert any(
                np.array_equal(item.image[ys, xs], p.rgb[ys - p.top, xs - p.left])
                for p in candidates
                if (ys - p.top).min() >= 0
                and (xs - p.left).min() >= 0
                and (ys - p.top).max() < p.mask.shape[0]
                and (xs - p.left).max() < p.mask.shape[1]
                and p.mask[ys - p.top, xs - p.left].all()
            )


def test_photometric_effects_change_pixels_not_labels() -> None:
    for index in range(4):
        plain = render_shelf(SPEC, 9, index, effects=False)
        final = render_shelf(SPEC, 9, index)
        assert plain.instances == final.instances
        assert np.array_equal(plain.idmap, final.idmap)
    assert any(
        not np.array_equal(
            render_shelf(SPEC, 9, i).image, render_shelf(SPEC, 9, i, effects=False).image
        )
        for i in range(4)
    )


def test_occlusion_hides_parts_of_products() -> None:
    """Some instance's visible area is smaller than its box: it is partly covered."""
    items = [render_shelf(SPEC, 2, i, effects=False) for i in range(4)]
    partial = [
        inst
        for item in items
        for inst in item.instances
        if inst.area < inst.bbox[2] * inst.bbox[3] * 6 // 10
    ]
    assert partial


def pair(low: int, high: int) -> st.SearchStrategy[tuple[int, int]]:
    """A random ``(min, max)`` spec range within [low, high]."""
    ends = st.tuples(st.integers(low, high), st.integers(low, high))
    return ends.map(lambda e: (min(e), max(e)))


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    size=st.tuples(st.integers(32, 120), st.integers(32, 120)),
    rows=pair(1, 8),
    board=pair(1, 64),
    scale=pair(25, 400),
    occlusion=pair(0, 100),
    facing=pair(0, 100),
    gap=pair(0, 64),
    jitter=pair(0, 256),
    skus=st.integers(1, 30),
    shapes=st.lists(
        st.sampled_from(["box", "can", "bottle", "bag"]), min_size=1, max_size=4, unique=True
    ),
    max_instances=st.integers(1, 64),
    seed=st.integers(0, 2**32),
    index=st.integers(0, 99),
)
def test_labels_stay_consistent_over_random_specs(
    size: tuple[int, int],
    rows: tuple[int, int],
    board: tuple[int, int],
    scale: tuple[int, int],
    occlusion: tuple[int, int],
    facing: tuple[int, int],
    gap: tuple[int, int],
    jitter: tuple[int, int],
    skus: int,
    shapes: list[str],
    max_instances: int,
    seed: int,
    index: int,
) -> None:
    spec = ShelfSpec(
        width=size[0],
        height=size[1],
        count=100,
        catalog=CatalogSpec(skus=skus, shapes=tuple(shapes)),
        shelf=ShelfLayoutSpec(rows=rows, board_px=board, tag_pct=50),
        placement=PlacementSpec(
            scale_pct=scale,
            occlusion_pct=occlusion,
            facing_pct=facing,
            gap_px=gap,
            max_instances=max_instances,
        ),
        photometric=PhotometricSpec(jitter_px=jitter, blur_pct=50, noise_pct=50),
    )
    item = render_shelf(spec, seed, index)
    check_labels(item)
    assert item.image.shape == (size[1], size[0], 3)
    assert len(item.instances) <= max_instances
    assert {i.category_id for i in item.instances} <= set(range(1, skus + 1))
    assert np.array_equal(debug_ids(spec, seed, index), item.idmap)


def test_measure_matches_naive_masks_and_handles_empty_maps() -> None:
    rng = np.random.default_rng(0)
    idmap = np.zeros((30, 20), dtype=np.uint16)
    idmap[2:9, 3:7] = 2  # id 1 never shows: it must be dropped and 2 renumbered to 1
    idmap[5:30, 6:20] = 3
    idmap[rng.integers(0, 30, 40), rng.integers(0, 20, 40)] = 4
    labels = measure(idmap, [7, 8, 9, 10])
    assert [i.category_id for i in labels.instances] == [8, 9, 10]
    for k, (instance, counts) in enumerate(zip(labels.instances, labels.rle_counts), start=1):
        mask = labels.idmap == k
        assert np.array_equal(mask, idmap == k + 1)
        flat = np.repeat(np.arange(len(counts)) % 2, counts).astype(bool)  # COCO RLE, by hand
        assert np.array_equal(flat.reshape(20, 30).T, mask)
        assert instance.area == mask.sum()
    empty = measure(np.zeros((8, 8), dtype=np.uint16), [1, 2])
    assert empty.instances == () and empty.rle_counts == () and not empty.idmap.any()
