"""Instance labels read off a composited id map in one pass over its column runs.

The map is cut into vertical runs of equal id (COCO's column-major order, cut at every column
end). From the runs alone come each instance's area, its tight box and its COCO run-length
counts, so no per-instance full-size mask is ever built; products that ended up fully hidden are
dropped and the rest renumbered 1..n in paste order.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, slots=True)
class Instance:
    """One visible product: COCO category, tight box ``(x, y, w, h)`` of its mask, mask area."""

    category_id: int
    bbox: tuple[int, int, int, int]
    area: int


@dataclass(frozen=True, slots=True)
class Labels:
    """The renumbered id map, the visible instances and their uncompressed COCO RLE counts."""

    idmap: np.ndarray
    instances: tuple[Instance, ...]
    rle_counts: tuple[list[int], ...]


def measure(idmap: np.ndarray, categories: list[int]) -> Labels:
    """Labels of a map whose id ``k`` (1-based) belongs to a product of ``categories[k - 1]``."""
    height, width = idmap.shape
    total = width * height
    columns = idmap.T
    change = np.empty((width, height), dtype=bool)
    change[:, 0] = True
    np.not_equal(columns[:, 1:], columns[:, :-1], out=change[:, 1:])
    starts = np.flatnonzero(change)  # column-major positions, as COCO counts
    ends = np.append(starts[1:], total)
    values = idmap[starts % height, starts // height].astype(np.intp)
    keep = np.flatnonzero(values)
    order = keep[np.argsort(values[keep], kind="stable")]  # product runs by id, then position
    if len(order) == 0:
        return Labels(np.zeros_like(idmap), (), ())
    ids, first, last = values[order], starts[order], ends[order]
    group = np.flatnonzero(np.append(True, ids[1:] != ids[:-1]))  # each instance's first run
    visible = ids[group]
    area = np.add.reduceat(last - first, group)
    x0, x1 = (
        np.minimum.reduceat(first // height, group),
        np.maximum.reduceat(first // height, group),
    )
    y0, y1 = (
        np.minimum.reduceat(first % height, group),
        np.maximum.reduceat((last - 1) % height, group),
    )
    instances = tuple(
        Instance(categories[k - 1], (int(a), int(b), int(c - a + 1), int(d - b + 1)), int(e))
        for k, a, b, c, d, e in zip(visible, x0, y0, x1, y1, area, strict=True)
    )
    renumber = np.zeros(len(categories) + 1, dtype=np.uint16)
    renumber[visible] = np.arange(1, len(visible) + 1)
    return Labels(renumber[idmap], instances, _rle(first, last, group, total))


def _rle(
    first: np.ndarray, last: np.ndarray, group: np.ndarray, total: int
) -> tuple[list[int], ...]:
    """COCO counts (background, mask, background, ...) per instance, runs joined across columns.

    ``first``/``last`` are the runs of all instances, grouped by instance (``group`` holds each
    group's first run) and sorted by position within a group.
    """
    new_group = np.zeros(len(first), dtype=bool)
    new_group[group] = True
    opens = new_group.copy()
    opens[1:] |= first[1:] != last[:-1]  # a run that does not continue the previous one
    owner = np.cumsum(new_group)[opens] - 1  # instance of each joined run
    run_starts = first[opens]
    run_ends = last[np.append(opens[1:], True)]
    gaps = run_starts - np.where(new_group[opens], 0, np.append(0, run_ends[:-1]))
    runs_per = np.bincount(owner, minlength=len(group))
    ends_at = np.cumsum(2 * runs_per + 1)  # each instance: 2 entries per run, then the tail
    flat = np.empty(ends_at[-1], dtype=np.int64)
    local = np.arange(len(owner)) - np.repeat(np.cumsum(runs_per) - runs_per, runs_per)
    base = ends_at[owner] - (2 * runs_per[owner] + 1) + 2 * local
    flat[base] = gaps
    flat[base + 1] = run_ends - run_starts
    last_run = np.cumsum(runs_per) - 1
    flat[ends_at - 1] = total - run_ends[last_run]
    return tuple(part.tolist() for part in np.split(flat, ends_at[:-1]))
