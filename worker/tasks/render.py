"""The `render` task: items [start, stop) of a digits or shelf spec, in shards, with progress.

The output is one render artifact (`worker.render.shard`, format in `worker.artifact`)::

    manifest.json   every file (size, BLAKE3), every item's leaf, items root, root (the id)
    spec.json       the canonical spec
    shard-NNNN/     images/NNNNNNNN.png and annotations.json of items [start, stop) of the shard

Shards are what progress is reported on, and what a pool of workers would split a job into;
the items root is over the items' leaves in index order, so it does not depend on the shard size.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from worker.errors import SpecError
from worker.tasks.envelope import RenderTask
from worker.tasks.progress import Emit, stage_progress

TARGET_SHARDS = 20  # progress granularity
MIN_SHARD_ITEMS = 64
MAX_SHARD_ITEMS = 5_000


def item_range(task: RenderTask, count: int) -> tuple[int, int]:
    stop = count if task.stop is None else task.stop
    if not 0 <= task.start < stop <= count:
        raise SpecError(f"item range [{task.start}, {stop}) is outside [0, {count})",
                        reason="bad-item-range")
    return task.start, stop


def shard_bounds(start: int, stop: int) -> list[tuple[int, int]]:
    """Contiguous shards of about ``(stop - start) / TARGET_SHARDS`` items, within size limits."""
    size = min(MAX_SHARD_ITEMS, max(MIN_SHARD_ITEMS, -(-(stop - start) // TARGET_SHARDS)))
    return [(low, min(low + size, stop)) for low in range(start, stop, size)]


def run_render(task: RenderTask, out: Path, emit: Emit, device: str) -> dict[str, Any]:
    """Render into ``out`` (the runner's partial dir) and return the summary."""
    from worker.render.dataset import load_render_spec
    from worker.render.shard import shard_folder, write_render_artifact

    del device  # rendering is the numpy reference path: its pixels are what consensus checks
    spec = load_render_spec(task.spec)
    start, stop = item_range(task, spec.count)
    report = stage_progress(emit, "render")
    shards = [(shard_folder(n), low, high) for n, (low, high) in enumerate(shard_bounds(start, stop))]
    manifest = write_render_artifact(spec, task.seed, shards, out,
                                     on_shard=lambda done: report(done - start, stop - start))
    return {
        "artifact_root": manifest.root.hex(),
        "kind": spec.kind,
        "items": stop - start,
        "shards": len(shards),
        "spec_hash": spec.spec_hash().hex(),
        "compute_units": render_units_of(spec, stop - start),
        "unit": "pixel",
    }


def render_units_of(spec: Any, items: int) -> int:
    """chain.compute_units over the spec's plain values (see worker/README.md for the factors)."""
    from chain.compute_units import render_units
    from worker.render.digits import SUPERSAMPLE

    if spec.kind == "digits":
        effects = [name for name, pct in (("blur", spec.blur_pct), ("noise", spec.noise_pct)) if pct]
        if spec.invert_pct:
            effects.append("contrast")
        return render_units(spec.size, spec.size, 1, items, effects=effects,
                            supersample=SUPERSAMPLE)
    photo = spec.photometric
    effects = ["lighting"]
    effects += ["blur"] if photo.blur_pct else []
    effects += ["noise"] if photo.noise_pct else []
    effects += ["occlusion"] if spec.placement.occlusion_pct[1] else []
    # products cover most of a shelf image: count one more full-image pass of pasted pixels
    return render_units(spec.width, spec.height, 3, items, effects=effects,
                        object_pixels=spec.width * spec.height)
