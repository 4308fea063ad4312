"""A job's spec as consensus reads it: canonical JSON, its service, its items and compute units.

The spec a client posts is the worker's own task document (`worker/examples/*.json`). The chain
never imports the worker, so the few fields that set the price are read here, with the worker's
defaults, and fed to `chain.compute_units`; `tests/unit/chain/test_job_spec.py` pins the units
to the worker's own `units_of` for every example and for random specs, so the two cannot drift.
Anything else in the spec is the worker's business (it refuses what it cannot run).

Prices are quoted per `QUOTE_UNITS` compute units of the service's kind: a megapixel for
renders, a GFLOP for training, labelling and evaluation. A shard's payment is
``shard_units * unit_price // QUOTE_UNITS[service]``.

A train job's data is a digits spec (rendered by the trainer) or artifacts named by their roots
(`"source": "artifacts"`, e.g. the shards of a generate job bought earlier); the latter gives
``train.steps``, since the chain cannot count items it never sees.

Label and evaluate jobs name their model (``"model"``, a zoo model spec) and their image count
(``"images"``) in the spec: the inputs are artifacts the worker fetches, so the chain prices
from the declared count.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from chain import compute_units as cu
from chain.errors import InvalidTransaction
from chain.jobs import MAX_UNITS
from chain.market_types import Service

QUOTE_UNITS = {Service.GENERATE: 10**6, Service.TRAIN: 10**9, Service.LABEL: 10**9, Service.EVALUATE: 10**9}
TASK_OF_SERVICE = {Service.GENERATE: "render", Service.TRAIN: "train", Service.LABEL: "label",
                   Service.EVALUATE: "evaluate"}
DIGITS_SUPERSAMPLE = 4  # worker.render.digits.SUPERSAMPLE: the digits renderer draws at 4x
MAX_ITEMS = 10_000_000
MAX_CNN_DEPTH = 64  # bounds the per-block loop of `cnn_forward_flops` (the worker allows 6)


@dataclass(frozen=True, slots=True)
class JobTerms:
    """What the chain needs of a spec: the service, how many items it shards, its units."""

    service: Service
    items: int  # render items (a shard's item range splits these), images, or 1 for training
    units: int
    seed: int  # render seed (re-rendering an item needs it); 0 otherwise

    def shard_range(self, shard: int, shards: int) -> tuple[int, int]:
        """Items [start, stop) of ``shard``: contiguous, sizes differing by at most one."""
        return shard * self.items // shards, (shard + 1) * self.items // shards

    def shard_units(self, shard: int, shards: int) -> int:
        start, stop = self.shard_range(shard, shards)
        return self.units * (stop - start) // self.items

    def payment(self, shard: int, shards: int, unit_price: int) -> int:
        return self.shard_units(shard, shards) * unit_price // QUOTE_UNITS[self.service]


def _bad(detail: str) -> InvalidTransaction:
    return InvalidTransaction("bad-job-spec", detail)


def canonical_spec(spec: bytes) -> Any:
    """The decoded spec; it must be canonical JSON (sorted keys, no spaces, ASCII), an object.

    Only the canonical re-encoding decides: a duplicated key parses to one entry and re-encodes
    shorter, and NaN or Infinity (which Python's parser accepts) fail to re-encode, so neither
    needs a parser hook of its own (the hooks cost a third of a post's parse)."""
    try:
        value = json.loads(spec.decode("ascii"))
        if not isinstance(value, dict):
            raise _bad("the spec is a JSON object")
        again = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False)
    except (ValueError, RecursionError) as exc:
        # UnicodeDecodeError and JSONDecodeError are ValueErrors; so are a float out of range
        # (1e400 parses to inf, which allow_nan refuses) and an integer past Python's digit limit;
        # nesting deeper than the interpreter's recursion limit is a RecursionError. Every one is
        # the poster's fault, never a crash of the node judging the block.
        raise _bad(f"not ASCII JSON: {exc}") from None
    if again.encode() != spec:
        raise _bad("not canonical JSON (sorted keys, no whitespace, ASCII)")
    return value


def _int(doc: dict[str, Any], key: str, default: int, where: str) -> int:
    value = doc.get(key, default)
    if type(value) is not int:  # bool is not an integer here
        raise _bad(f"{where}{key} must be an integer, got {value!r}")
    return value


def _object(doc: dict[str, Any], key: str, where: str) -> dict[str, Any]:
    value = doc.get(key, {})
    if not isinstance(value, dict):
        raise _bad(f"{where}{key} must be an object")
    return value


def _range_high(doc: dict[str, Any], key: str, default: int, where: str) -> int:
    value = doc.get(key, [0, default])
    if not (isinstance(value, list) and len(value) == 2 and all(type(v) is int for v in value)):
        raise _bad(f"{where}{key} must be [low, high]")
    return int(value[1])


def render_items_units(spec: dict[str, Any], where: str = "spec.") -> tuple[int, int]:
    """Items and pixel units of a render spec (digits or shelf)."""
    kind = spec.get("kind")
    count = _int(spec, "count", 10_000 if kind == "digits" else 1000, where)
    if not 1 <= count <= MAX_ITEMS:
        raise _bad(f"{where}count must be 1..{MAX_ITEMS}")
    try:
        if kind == "digits":
            size = _int(spec, "size", 28, where)
            effects = [n for n, default in (("blur", 5), ("noise", 10)) if _int(spec, f"{n}_pct", default, where)]
            if _int(spec, "invert_pct", 0, where):
                effects.append("contrast")
            return count, cu.render_units(size, size, 1, count, effects=effects, supersample=DIGITS_SUPERSAMPLE)
        if kind == "shelf":
            width, height = _int(spec, "width", 256, where), _int(spec, "height", 256, where)
            photo = _object(spec, "photometric", where)
            placement = _object(spec, "placement", where)
            effects = ["lighting"]
            effects += ["blur"] if _int(photo, "blur_pct", 30, f"{where}photometric.") else []
            effects += ["noise"] if _int(photo, "noise_pct", 50, f"{where}photometric.") else []
            effects += ["occlusion"] if _range_high(placement, "occlusion_pct", 20, f"{where}placement.") else []
            return count, cu.render_units(width, height, 3, count, effects=effects, object_pixels=width * height)
    except cu.UnitsError as exc:
        raise _bad(f"{where.rstrip('.')}: {exc.detail}") from None
    raise _bad(f"{where}kind must be digits or shelf, got {kind!r}")


def forward_flops(model: dict[str, Any], where: str) -> int:
    """Forward FLOPs of one image through a zoo model spec (the worker's defaults)."""
    name = model.get("name")
    try:
        if name == "cnn":
            depth = _int(model, "depth", 3, where)
            if depth > MAX_CNN_DEPTH:  # the units loop runs once per layer: a 10^12-layer spec never ends
                raise _bad(f"{where}depth must be at most {MAX_CNN_DEPTH}")
            return cu.cnn_forward_flops(
                _int(model, "image_size", 28, where), _int(model, "in_channels", 1, where),
                _int(model, "width", 16, where), depth,
                _int(model, "num_classes", 10, where),
            )
        if name == "centernet":
            return cu.centernet_forward_flops(
                _int(model, "image_size", 256, where), _int(model, "width", 16, where),
                _int(model, "head_width", 32, where), _int(model, "num_classes", 1, where),
            )
    except cu.UnitsError as exc:
        raise _bad(f"{where.rstrip('.')}: {exc.detail}") from None
    raise _bad(f"{where}name must be cnn or centernet, got {name!r}")


def _train_units(doc: dict[str, Any]) -> int:
    train = _object(doc, "train", "")
    batch = _int(train, "batch_size", 32, "train.")
    if batch < 1:
        raise _bad("train.batch_size must be at least 1")
    if "steps" in train:
        steps = _int(train, "steps", 0, "train.")
    else:
        data = _object(doc, "data", "")
        if data.get("source") != "digits":  # data named by roots, or files: no count in the spec
            raise _bad("train: give steps when the data is not a digits spec (epochs need its count)")
        count = _int(_object(data, "spec", "data."), "count", 10_000, "data.spec.")
        steps = _int(train, "epochs", 0, "train.") * (count // batch)
    if steps < 1:
        raise _bad("train: give steps, or epochs over a data spec of at least one batch")
    flops = forward_flops(_object(train, "model", "train."), "train.model.")
    return cu.training_units(flops, batch, steps)


def job_terms(service: int, spec: bytes, max_spec_bytes: int) -> JobTerms:
    """Parse a posted spec; raises ``bad-job-spec`` naming the field."""
    terms = _job_terms(service, spec, max_spec_bytes)
    if terms.units > MAX_UNITS:  # the job record holds 128 bits: far past any spec the worker runs
        raise _bad(f"{terms.units} units: at most {MAX_UNITS}")
    return terms


def _job_terms(service: int, spec: bytes, max_spec_bytes: int) -> JobTerms:
    if len(spec) > max_spec_bytes:
        raise InvalidTransaction("spec-too-large", expected=f"<= {max_spec_bytes}", got=len(spec))
    doc = canonical_spec(spec)
    kind = Service(service)
    task = doc.get("task")
    if task != TASK_OF_SERVICE[kind]:
        raise _bad(f"task must be {TASK_OF_SERVICE[kind]!r} for service {kind.name.lower()}, got {task!r}")
    if kind is Service.GENERATE:
        seed = _int(doc, "seed", 0, "")
        if not 0 <= seed < 2**63:
            raise _bad("seed must be 0..2^63-1")
        items, units = render_items_units(_object(doc, "spec", ""))
        return JobTerms(kind, items, units, seed)
    if kind is Service.TRAIN:
        return JobTerms(kind, 1, _train_units(doc), 0)
    images = _int(doc, "images", 0, "")
    if not 1 <= images <= MAX_ITEMS:
        raise _bad(f"images must be 1..{MAX_ITEMS}")
    flops = forward_flops(_object(doc, "model", ""), "model.")
    return JobTerms(kind, images, cu.inference_units(flops, images), 0)
