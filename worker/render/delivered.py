"""Opening a delivered render artifact: every byte checked, labels per item, items rebuilt.

Why one place: a verifier (`worker.verify.verify_render_dir`) and a buyer loading the folder (the
train task's ``rendered`` source) must accept exactly the same folders. `open_render_artifact`
runs `worker.artifact.verify_files` with the render labels (so a changed label names its item),
then checks the render ``meta`` against ``spec.json``. `RenderArtifact.check_delivered`
compares a sampled item's PNG pixels and labels with the re-rendered item's (a worker could
commit to files that are not what it rendered).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import orjson
from PIL import Image

from worker.artifact import (
    MANIFEST_FILE,
    PATH_PART,
    ArtifactManifest,
    content_hash,
    mismatch,
    verify_files,
)
from worker.errors import SpecError
from worker.render.dataset import RenderedItem, RenderSpec, load_render_spec
from worker.render.labels import (
    LABEL_FILE,
    ShardLabels,
    image_name,
    read_shard_labels,
    rendered_labels,
)
from worker.render.shard import SPEC_FILE, Shard, artifact_path

META_KEYS = ("count", "renderer_version", "seed", "shards", "spec_hash", "start", "stop")


@dataclass(frozen=True, slots=True)
class RenderArtifact:
    """A render artifact whose files all match its manifest, and whose meta matches its spec."""

    folder: Path
    manifest: ArtifactManifest
    spec: RenderSpec
    seed: int
    shards: tuple[Shard, ...]
    labels: tuple[ShardLabels, ...]  # one per shard

    def shard_of(self, index: int) -> int:
        return next(n for n, (_p, start, stop) in enumerate(self.shards) if start <= index < stop)

    def check_delivered(self, position: int, rendered: RenderedItem) -> None:
        """The delivered PNG and labels of item ``position`` are exactly those of ``rendered``.

        The labels are compared through the leaf (already checked against the label file); the
        PNG is decoded, since two encoders may write the same pixels differently.
        """
        item = self.manifest.items[position]
        _records, labels = rendered_labels(self.spec, rendered)
        if content_hash(labels) != item.labels:
            path = self.labels[self.shard_of(item.index)].path
            raise mismatch("delivered-item", "the labels are not the re-rendered item's", path,
                           item.index)
        try:
            with Image.open(self.folder / item.files[0]) as png:
                pixels = np.asarray(png)
        except (OSError, ValueError) as exc:
            raise mismatch("delivered-item", f"not a readable PNG ({exc})", item.files[0],
                           item.index) from None
        if pixels.shape != rendered.image.shape or not np.array_equal(pixels, rendered.image):
            raise mismatch("delivered-item", "the pixels are not the re-rendered item's",
                           item.files[0], item.index)


def open_render_artifact(folder: str | Path, expected_root: bytes | None = None) -> RenderArtifact:
    """Verify every file of a render artifact and return it ready for sampling.

    Raises `worker.artifact.ArtifactMismatch` naming the file and the item that differ.
    """
    folder = Path(folder)
    read: list[tuple[tuple[Shard, ...], tuple[ShardLabels, ...]]] = []

    def item_labels(manifest: ArtifactManifest) -> list[tuple[str, bytes]]:
        read.append(read_labels(folder, manifest))
        return item_label_bytes(*read[-1])

    manifest = verify_files(folder, item_labels, expected_root)
    spec = _check_spec(folder, manifest)
    shards, labels = read[-1]
    return RenderArtifact(folder, manifest, spec, manifest.meta["seed"], shards, labels)


def read_labels(folder: Path, manifest: ArtifactManifest,
                ) -> tuple[tuple[Shard, ...], tuple[ShardLabels, ...]]:
    """The manifest's shards and each shard's delivered labels, grouped by item."""
    shards = render_shards(manifest)
    return shards, tuple(_read_labels(folder, manifest.kind, shard) for shard in shards)


def item_label_bytes(shards: tuple[Shard, ...],
                     labels: tuple[ShardLabels, ...]) -> list[tuple[str, bytes]]:
    """(label file, canonical label bytes) of every item, in index order."""
    return [(shard_labels.path, shard_labels.label_bytes(index))
            for (_prefix, start, stop), shard_labels in zip(shards, labels, strict=True)
            for index in range(start, stop)]


def render_shards(manifest: ArtifactManifest) -> tuple[Shard, ...]:
    """The manifest's shards, checked to tile its items, each item listing its own image."""
    meta = manifest.meta
    try:
        if tuple(sorted(meta)) != META_KEYS:
            raise ValueError(f"meta keys must be {', '.join(META_KEYS)}")
        if any(type(meta[key]) is not int for key in ("count", "seed", "start", "stop")):
            raise TypeError("count, seed, start and stop are integers")
        shards = tuple((s["path"], s["start"], s["stop"]) for s in meta["shards"])
        edge = meta["start"]
        for prefix, start, stop in shards:
            if prefix and not PATH_PART.fullmatch(prefix):
                raise ValueError(f"bad shard folder {str(prefix)[:40]!r}")
            if type(start) is not int or type(stop) is not int or not edge == start < stop:
                raise ValueError("shards must be non-empty and contiguous from start")
            edge = stop
        if not shards or edge != meta["stop"]:
            raise ValueError("shards must cover start to stop")
    except (KeyError, TypeError, ValueError) as exc:
        raise mismatch("bad-manifest", f"render meta: {exc}", MANIFEST_FILE) from None
    listed = {f.path for f in manifest.files}
    expected = [(i, (artifact_path(p, image_name(i)),)) for p, a, b in shards for i in range(a, b)]
    for position, item in enumerate(manifest.items):
        if position >= len(expected) or (item.index, item.files) != expected[position]:
            raise mismatch("bad-manifest", "not the next item of its shard, with its image",
                           MANIFEST_FILE, item.index)
    if len(manifest.items) != len(expected):
        raise mismatch("bad-manifest", f"{len(manifest.items)} items, the shards hold "
                       f"{len(expected)}", MANIFEST_FILE)
    for prefix, _start, _stop in shards:
        if artifact_path(prefix, LABEL_FILE) not in listed:
            raise mismatch("bad-manifest", "a shard's label file is not listed", MANIFEST_FILE)
    return shards


def _read_labels(folder: Path, kind: str, shard: Shard) -> ShardLabels:
    prefix, start, stop = shard
    path = artifact_path(prefix, LABEL_FILE)
    try:
        data: Any = orjson.loads((folder / path).read_bytes())
    except (OSError, orjson.JSONDecodeError) as exc:
        raise mismatch("bad-labels", f"unreadable label file ({exc})", path) from None
    return read_shard_labels(path, data, kind, start, stop)


def _check_spec(folder: Path, manifest: ArtifactManifest) -> RenderSpec:
    """``spec.json`` is the spec the manifest names: same hash, kind, version and count."""
    try:
        spec = load_render_spec(folder / SPEC_FILE)
    except SpecError as exc:
        raise mismatch("bad-spec", str(exc), SPEC_FILE) from None
    meta = manifest.meta
    got = {"kind": spec.kind, "spec_hash": spec.spec_hash().hex(),
           "renderer_version": spec.renderer_version, "count": spec.count}
    claimed = {**{k: meta[k] for k in got if k in meta}, "kind": manifest.kind}
    if got != claimed or not meta["stop"] <= spec.count:
        differ = sorted(k for k in got if got[k] != claimed.get(k)) or ["stop"]
        raise mismatch("spec-mismatch", f"the manifest's {', '.join(differ)} do not match the "
                       "spec", SPEC_FILE)
    return spec
