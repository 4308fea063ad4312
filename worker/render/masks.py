"""Instance labels read off a composited id map in one pass over its column runs.

The map is cut into vertical runs of equal id (COCO's column-major order, cut at every column
end). From the runs alone come each instance's area, its tight box and its COCO run-length
counts, so no per-instance full-size mask is ever built; products that ended up fully hidden are
dropped and the rest renumbered 1..n in paste order.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import pairwise

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
    """Labels of a map whose id ``k`` (1-based) belongs to a product of ``categories[k - 1]``.

    When every product is visible the ids are already 1..n and ``idmap`` itself is returned.
    """
    height, width = idmap.shape
    total = width * height
    # run starts found in the map's own (row-major) memory order, then sorted column-major:
    # reading the map or the change flags column by column is twice as slow
    change = np.empty((height, width), dtype=bool)
    change[0] = True
    np.not_equal(idmap[1:], idmap[:-1], out=change[1:])
    row, column = np.divmod(np.flatnonzero(change), width)
    starts = np.sort(column * height + row)  # column-major positions, as COCO counts
    ends = np.append(starts[1:], total)
    column, row = np.divmod(starts, height)
    values = idmap[row, column]
    keep = np.flatnonzero(values)
    if len(keep) == 0:
        return Labels(np.zeros_like(idmap), (), ())
    order = keep[np.argsort(values[keep], kind="stable")]  # product runs by id, then position
    ids, first, last = values[order], starts[order], ends[order]
    group = np.flatnonzero(np.append(True, ids[1:] != ids[:-1]))  # each instance's first run
    group_last = np.append(group[1:], len(order)) - 1
    length = last - first
    top = row[order]
    bottom = top + length - 1  # a run never crosses a column end
    x0, x1 = column[order[group]], column[order[group_last]]  # runs are in position order
    y0, y1 = np.minimum.reduceat(top, group), np.maximum.reduceat(bottom, group)
    area = np.add.reduceat(length, group)
    visible = ids[group].tolist()
    instances = tuple(
        Instance(categories[k - 1], (a, b, c - a + 1, d - b + 1), e)
        for k, a, b, c, d, e in zip(
            visible, x0.tolist(), y0.tolist(), x1.tolist(), y1.tolist(), area.tolist(), strict=True
        )
    )
    rle_counts = _rle(first, last, group, total)
    if len(visible) == len(categories):
        return Labels(idmap, instances, rle_counts)
    renumber = np.zeros(len(categories) + 1, dtype=np.uint16)
    renumber[visible] = np.arange(1, len(visible) + 1)
    return Labels(renumber[idmap], instances, rle_counts)


def _rle(
    first: np.ndarray, last: np.ndarray, group: np.ndarray, total: int
) -> tuple[list[int], ...]:
    """COCO counts (background, mask, background, ...) per instance, runs joined across columns.

    ``first``/``last`` are the runs of all instances, grouped by instance (``group`` holds each
    group's first run) and sorted by position within a group. Each instance's counts are the
    differences of its boundary list ``0, start, end, start, end, ..., total``.
    """
    new_group = np.zeros(len(first), dtype=bool)
    new_group[group] = True
    opens = new_group.copy()
    opens[1:] |= first[1:] != last[:-1]  # a run that does not continue the previous one
    owner = np.cumsum(new_group)[opens] - 1  # instance of each joined run
    run_starts = first[opens]
    run_ends = last[np.append(opens[1:], True)]
    runs_per = np.bincount(owner, minlength=len(group))
    ends_at = np.cumsum(2 * runs_per + 1)  # each instance: 2 entries per run, then the tail
    points = np.full(ends_at[-1], total, dtype=np.int64)
    base = 2 * np.arange(len(owner)) + owner  # each earlier instance adds one tail entry
    points[base] = run_starts
    points[base + 1] = run_ends
    previous = np.empty_like(points)
    previous[0] = 0
    previous[1:] = points[:-1]
    previous[ends_at[:-1]] = 0  # an instance's first count starts from position 0
    counts = (points - previous).tolist()
    bounds = [0, *ends_at.tolist()]
    return tuple(counts[a:b] for a, b in pairwise(bounds))
