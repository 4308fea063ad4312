"""`chain.job_spec` pinned to the worker: the units a validator prices a spec at are the units the
worker's own `units_of` computes from its parsed task, for every example and for random specs
(fields left out take the defaults on both sides). And what consensus refuses: non-canonical JSON,
duplicate keys, NaN, a task that is not the service's, an unknown render kind, specs whose
units would not fit the job record or whose pricing would never end.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chain import job_spec
from chain.compute_units import cnn_forward_flops
from chain.errors import InvalidTransaction
from chain.job_spec import MAX_ITEMS, JobTerms, job_terms
from chain.jobs import MAX_UNITS
from chain.market_types import Service
from worker.tasks import parse_task
from worker.tasks.units import units_of

EXAMPLES = Path(__file__).resolve().parents[3] / "worker" / "examples"
MAX_SPEC_BYTES = 4096


def canonical(doc: dict[str, Any]) -> bytes:
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def chain_units(service: Service, doc: dict[str, Any]) -> int:
    return job_terms(service, canonical(doc), MAX_SPEC_BYTES).units


def worker_units(doc: dict[str, Any]) -> int:
    return units_of(parse_task(doc)).units


@pytest.mark.parametrize(("name", "service"), [
    ("digits_render", Service.GENERATE), ("shelf_render", Service.GENERATE), ("cnn_train", Service.TRAIN),
])
def test_examples_price_as_the_worker_counts(name: str, service: Service) -> None:
    doc = json.loads((EXAMPLES / f"{name}.json").read_text())
    terms = job_terms(service, canonical(doc), MAX_SPEC_BYTES)
    assert terms.units == worker_units(doc) > 0
    if service is Service.GENERATE:
        assert terms.items == doc["spec"]["count"] and terms.seed == doc["seed"]
    else:
        assert terms.items == 1 and terms.seed == 0


def _optional(required: dict[str, Any], optional: dict[str, Any]) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries(required, optional=optional)


PCT = st.one_of(st.just(0), st.integers(0, 100))
DIGITS = _optional({"kind": st.just("digits")}, {
    "count": st.integers(1, 5_000), "size": st.integers(16, 64), "blur_pct": PCT, "noise_pct": PCT,
    "invert_pct": PCT, "renderer_version": st.sampled_from([1, 2]),
})
OCCLUSION = st.tuples(st.integers(0, 100), st.integers(0, 100)).map(lambda p: [min(p), max(p)])
SHELF = _optional({"kind": st.just("shelf")}, {
    "count": st.integers(1, 1_000_000), "width": st.integers(32, 2048), "height": st.integers(32, 2048),
    "photometric": _optional({}, {"blur_pct": PCT, "noise_pct": PCT}),
    "placement": _optional({}, {"occlusion_pct": OCCLUSION}),
})
RENDER = st.fixed_dictionaries({"task": st.just("render"), "spec": st.one_of(DIGITS, SHELF)},
                               optional={"seed": st.integers(0, 2**63 - 1)})

CNN = _optional({"name": st.just("cnn")}, {
    "image_size": st.integers(8, 128), "in_channels": st.sampled_from([1, 3]), "width": st.integers(4, 256),
    "depth": st.integers(1, 6), "num_classes": st.integers(2, 1000),
})
CENTERNET = _optional({"name": st.just("centernet")}, {
    "image_size": st.integers(2, 16).map(lambda k: 32 * k), "width": st.integers(8, 128),
    "head_width": st.integers(8, 256), "num_classes": st.integers(1, 80),
})


@st.composite
def train_docs(draw: st.DrawFn) -> dict[str, Any]:
    batch = draw(st.one_of(st.none(), st.integers(1, 1024)))
    train: dict[str, Any] = {"model": draw(st.one_of(CNN, CENTERNET))}
    if batch is not None:
        train["batch_size"] = batch
    data_spec: dict[str, Any] = {"kind": "digits"}
    if draw(st.booleans()):
        train["steps"] = draw(st.integers(1, 1_000_000))
        if draw(st.booleans()):
            data_spec["count"] = draw(st.integers(1, 5_000_000))
    else:
        train["epochs"] = draw(st.integers(1, 1_000))
        count = draw(st.one_of(st.none(), st.integers(batch or 32, 5_000_000)))
        if count is not None:
            data_spec["count"] = count
    return {"task": "train", "train": train, "data": {"source": "digits", "spec": data_spec}}


@settings(max_examples=60, deadline=None)
@given(RENDER)
def test_random_render_specs_price_as_the_worker_counts(doc: dict[str, Any]) -> None:
    terms = job_terms(Service.GENERATE, canonical(doc), MAX_SPEC_BYTES)
    assert terms.units == worker_units(doc)
    assert terms.items == doc["spec"].get("count", 10_000 if doc["spec"]["kind"] == "digits" else 1000)
    assert terms.seed == doc.get("seed", 0)


@settings(max_examples=60, deadline=None)
@given(train_docs())
def test_random_train_specs_price_as_the_worker_counts(doc: dict[str, Any]) -> None:
    assert job_terms(Service.TRAIN, canonical(doc), MAX_SPEC_BYTES).units == worker_units(doc)


def test_shard_payments_split_the_units() -> None:
    terms = job_terms(Service.GENERATE, canonical({"task": "render", "seed": 3, "spec": {"kind": "digits", "count": 10}}),
                      MAX_SPEC_BYTES)
    assert [terms.shard_range(k, 3) for k in range(3)] == [(0, 3), (3, 6), (6, 10)]
    assert sum(terms.shard_units(k, 3) for k in range(3)) == terms.units
    assert terms.payment(2, 3, 10**6) == terms.shard_units(2, 3)


# ---- refusals ----------------------------------------------------------------------------------

DIGITS_DOC = {"task": "render", "seed": 7, "spec": {"kind": "digits", "count": 8}}
TRAIN_DOC = json.loads((EXAMPLES / "cnn_train.json").read_text())
ARTIFACT_DATA = {"source": "artifacts", "roots": ["ab" * 32, "cd" * 32]}


def test_a_train_job_on_bought_data_prices_its_steps_as_the_worker_counts() -> None:
    doc = {**TRAIN_DOC, "train": {**TRAIN_DOC["train"], "steps": 300}, "data": ARTIFACT_DATA}
    del doc["train"]["epochs"]
    terms = job_terms(Service.TRAIN, canonical(doc), MAX_SPEC_BYTES)
    assert (terms.items, terms.units) == (1, worker_units(doc))


def bad(service: Service, spec: bytes, max_bytes: int = MAX_SPEC_BYTES) -> InvalidTransaction:
    with pytest.raises(InvalidTransaction) as info:
        job_terms(service, spec, max_bytes)
    return info.value


@pytest.mark.parametrize(("service", "spec", "detail"), [
    (Service.GENERATE, json.dumps(DIGITS_DOC).encode(),
     "not canonical JSON (sorted keys, no whitespace, ASCII)"),  # spaces
    (Service.GENERATE, json.dumps(DIGITS_DOC, separators=(",", ":")).encode(),
     "not canonical JSON (sorted keys, no whitespace, ASCII)"),  # unsorted keys
    (Service.GENERATE, canonical(DIGITS_DOC) + b"\n",
     "not canonical JSON (sorted keys, no whitespace, ASCII)"),
    (Service.GENERATE, b'{"seed":7,"seed":7,"spec":{"count":8,"kind":"digits"},"task":"render"}',
     "not canonical JSON (sorted keys, no whitespace, ASCII)"),
    (Service.GENERATE, b'{"seed":7,"spec":{"count":8,"count":8,"kind":"digits"},"task":"render"}',
     "not canonical JSON (sorted keys, no whitespace, ASCII)"),
    (Service.GENERATE, b'{"seed":NaN,"spec":{"count":8,"kind":"digits"},"task":"render"}',
     "not ASCII JSON: Out of range float values are not JSON compliant"),
    (Service.GENERATE, b'{"seed":-Infinity,"spec":{"count":8,"kind":"digits"},"task":"render"}',
     "not ASCII JSON: Out of range float values are not JSON compliant"),
    (Service.GENERATE, b'{"seed":1e400,"spec":{"count":8,"kind":"digits"},"task":"render"}',
     "not ASCII JSON: Out of range float values are not JSON compliant"),
    (Service.GENERATE, b'{"seed":7.0,"spec":{"count":8,"kind":"digits"},"task":"render"}',
     "seed must be an integer, got 7.0"),
    (Service.GENERATE, b'{"a":' + b"[" * 2000 + b"]" * 2000 + b"}",
     "not ASCII JSON: "),
    (Service.GENERATE, b"\xff",
     "not ASCII JSON: "),
    (Service.GENERATE, b'"render"',
     "the spec is a JSON object"),
    (Service.GENERATE, canonical({**DIGITS_DOC, "spec": {"kind": "faces", "count": 8}}),
     "spec.kind must be digits or shelf, got 'faces'"),
    (Service.GENERATE, canonical({**DIGITS_DOC, "spec": {"count": 8}}),
     "spec.kind must be digits or shelf, got None"),
    (Service.GENERATE, canonical({**DIGITS_DOC, "spec": {"kind": "digits", "count": True}}),
     "spec.count must be an integer, got True"),
    (Service.GENERATE, canonical({**DIGITS_DOC, "spec": {"kind": "digits", "count": 10_000_001}}),
     "spec.count must be 1..10000000"),
    (Service.GENERATE, canonical({**DIGITS_DOC, "spec": {"kind": "shelf", "placement": {"occlusion_pct": 5}}}),
     "spec.placement.occlusion_pct must be [low, high]"),
    (Service.GENERATE, canonical({**DIGITS_DOC, "spec": "digits"}),
     "spec must be an object"),
    (Service.GENERATE, canonical({**DIGITS_DOC, "seed": 2**63}),
     "seed must be 0..2^63-1"),
    (Service.GENERATE, canonical(TRAIN_DOC),
     "task must be 'render' for service generate, got 'train'"),  # a training spec posted as a render job
    (Service.TRAIN, canonical(DIGITS_DOC),
     "task must be 'train' for service train, got 'render'"),  # and the other way round
    (Service.LABEL, canonical(DIGITS_DOC),
     "task must be 'label' for service label, got 'render'"),
    (Service.EVALUATE, canonical({"task": "evaluate", "images": 0, "model": {"name": "cnn"}}),
     "images must be 1..10000000"),
    (Service.TRAIN, canonical({**TRAIN_DOC, "train": {**TRAIN_DOC["train"], "model": {"name": "resnet"}}}),
     "train.model.name must be cnn or centernet, got 'resnet'"),
    (Service.TRAIN, canonical({**TRAIN_DOC, "train": {**TRAIN_DOC["train"], "batch_size": 0}}),
     "train.batch_size must be at least 1"),
    (Service.TRAIN, canonical({**TRAIN_DOC, "train": {**TRAIN_DOC["train"], "batch_size": 10**6}}),
     "train: give steps, or epochs over a data spec of at least one batch"),  # no steps
    (Service.TRAIN, canonical({**TRAIN_DOC, "data": ARTIFACT_DATA}),
     "train: give steps when the data is not a digits spec (epochs need its count)"),  # epochs over data the chain cannot count
    (Service.TRAIN, canonical({**TRAIN_DOC, "train": {**TRAIN_DOC["train"], "model": {"name": "cnn", "depth": 65}}}),
     "train.model.depth must be at most 64"),
    (Service.TRAIN, canonical({**TRAIN_DOC, "train": {"model": {"name": "cnn", "depth": 10**300}, "steps": 1}}),
     "train.model.depth must be at most 64"),
    (Service.TRAIN, canonical({**TRAIN_DOC, "train": {"model": {"name": "cnn"}, "steps": 10**40, "batch_size": 1}}),
     "115192320000000000000000000000000000000000000000 units: at most 340282366920938463463374607431768211455"),
    (Service.TRAIN, canonical({**TRAIN_DOC, "train": {**TRAIN_DOC["train"], "batch_size": "32"}}),
     "train.batch_size must be an integer, got '32'"),
    (Service.TRAIN, canonical({**TRAIN_DOC, "train": {**TRAIN_DOC["train"], "steps": 1.5}}),
     "train.steps must be an integer, got 1.5"),
    (Service.TRAIN, canonical({**TRAIN_DOC, "train": {**TRAIN_DOC["train"], "epochs": "2"}}),
     "train.epochs must be an integer, got '2'"),
    (Service.TRAIN, canonical({**TRAIN_DOC, "train": {k: v for k, v in TRAIN_DOC["train"].items() if k != "epochs"}}),
     "train: give steps, or epochs over a data spec of at least one batch"),  # neither: no default epoch
    (Service.TRAIN, canonical({**TRAIN_DOC, "train": {**TRAIN_DOC["train"], "model": "cnn"}}),
     "train.model must be an object"),
    (Service.TRAIN, canonical({**TRAIN_DOC, "data": "digits"}), "data must be an object"),
    *[(Service.TRAIN, canonical({**TRAIN_DOC, "train": {**TRAIN_DOC["train"], "model": model}}), detail) for model, detail in [
        ({"name": "cnn", "depth": "3"}, "train.model.depth must be an integer, got '3'"),
        ({"name": "cnn", "image_size": -1}, "train.model: image_size must be a non-negative int"),
        ({"name": "cnn", "image_size": "28"}, "train.model.image_size must be an integer, got '28'"),
        ({"name": "cnn", "in_channels": -2}, "train.model: in_channels must be a non-negative int"),
        ({"name": "cnn", "in_channels": 1.0}, "train.model.in_channels must be an integer, got 1.0"),
        ({"name": "cnn", "width": "w"}, "train.model.width must be an integer, got 'w'"),
        ({"name": "cnn", "num_classes": None}, "train.model.num_classes must be an integer, got None"),
        ({"name": "centernet", "image_size": "a"}, "train.model.image_size must be an integer, got 'a'"),
        ({"name": "centernet", "width": 1.0}, "train.model.width must be an integer, got 1.0"),
        ({"name": "centernet", "head_width": "x"}, "train.model.head_width must be an integer, got 'x'"),
        ({"name": "centernet", "num_classes": -1}, "train.model: num_classes must be a non-negative int"),
        ({"name": "centernet", "num_classes": False}, "train.model.num_classes must be an integer, got False"),
    ]],
    (Service.GENERATE, canonical({**DIGITS_DOC, "spec": {"kind": "digits", "count": 8, "noise_pct": "10"}}),
     "spec.noise_pct must be an integer, got '10'"),
    (Service.GENERATE, canonical({**DIGITS_DOC, "spec": {"kind": "digits", "count": 8, "blur_pct": 0.5}}),
     "spec.blur_pct must be an integer, got 0.5"),
    (Service.GENERATE, canonical({**DIGITS_DOC, "spec": {"kind": "digits", "count": 8, "invert_pct": True}}),
     "spec.invert_pct must be an integer, got True"),
    (Service.GENERATE, canonical({**DIGITS_DOC, "spec": {"kind": "shelf", "photometric": {"blur_pct": "30"}}}),
     "spec.photometric.blur_pct must be an integer, got '30'"),
    (Service.GENERATE, canonical({**DIGITS_DOC, "spec": {"kind": "shelf", "photometric": {"noise_pct": None}}}),
     "spec.photometric.noise_pct must be an integer, got None"),
    (Service.GENERATE, canonical({**DIGITS_DOC, "spec": {"kind": "digits", "count": 8, "size": -1}}),
     "spec: width must be a non-negative int"),
    (Service.TRAIN, canonical({**TRAIN_DOC, "data": {**TRAIN_DOC["data"], "spec": []}}), "data.spec must be an object"),
    (Service.TRAIN, canonical({**TRAIN_DOC, "data": {**TRAIN_DOC["data"], "spec": {"count": "many"}}}),
     "data.spec.count must be an integer, got 'many'"),
    (Service.GENERATE, canonical({"task": "render", "spec": {"kind": "shelf", "width": 10**20, "height": 10**20}}),
     "210000000000000000000000000000000000000000000 units: at most 340282366920938463463374607431768211455"),
])
def test_bad_job_spec(service: Service, spec: bytes, detail: str) -> None:
    error = bad(service, spec)
    assert error.reason == "bad-job-spec" and error.detail.startswith(detail)
    assert error.detail == detail or detail == "not ASCII JSON: "


def test_units_at_the_limit_are_taken_and_past_it_refused() -> None:
    # digits at size 28 with the default effects: 28 * 28 * 16 * 4 = 50,176 units per item
    per_item = job_terms(Service.GENERATE, canonical(DIGITS_DOC), MAX_SPEC_BYTES).units // 8
    assert per_item * 10_000_000 < MAX_UNITS  # no digits spec comes near
    flops = cnn_forward_flops(28, 1, 16, 1, 10)  # a 1-layer cnn on 28 px
    assert flops == 2 * 16 * 9 * 28 * 28 + 2 * 16 * 10
    steps = MAX_UNITS // (3 * flops)
    doc: dict[str, Any] = {"task": "train",
                           "train": {"model": {"name": "cnn", "depth": 1}, "batch_size": 1, "steps": steps}}
    units = job_terms(Service.TRAIN, canonical(doc), MAX_SPEC_BYTES).units
    assert MAX_UNITS - 3 * flops < units <= MAX_UNITS
    doc["train"]["steps"] = steps + 1
    assert bad(Service.TRAIN, canonical(doc)).reason == "bad-job-spec"


def test_a_cnn_of_the_greatest_depth_is_priced() -> None:
    """Consensus prices up to `MAX_CNN_DEPTH` layers: the bound of its own pricing loop (the
    worker's zoo has its own, smaller limit)."""
    def units(depth: int) -> int:
        doc = {**TRAIN_DOC, "train": {**TRAIN_DOC["train"], "model": {"name": "cnn", "depth": depth}}}
        return job_terms(Service.TRAIN, canonical(doc), MAX_SPEC_BYTES).units

    assert units(64) > units(63) > 0


def test_spec_too_large() -> None:
    spec = canonical({**DIGITS_DOC, "pad": "x" * 200})
    assert job_terms(Service.GENERATE, spec, len(spec)).items == 8
    error = bad(Service.GENERATE, spec, len(spec) - 1)
    assert (error.reason, error.got) == ("spec-too-large", len(spec))


def test_a_spec_with_an_escaped_non_ascii_string_is_canonical() -> None:
    """Canonical JSON is ASCII: a non-ASCII character travels as its \\u escape, and that form is
    the one taken (the raw UTF-8 form is not ASCII, so it is refused)."""
    spec = canonical({**DIGITS_DOC, "note": "café"})
    assert b"caf\\u00e9" in spec
    assert job_terms(Service.GENERATE, spec, MAX_SPEC_BYTES).items == 8
    raw = json.dumps({**DIGITS_DOC, "note": "café"}, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert bad(Service.GENERATE, raw.encode()).detail.startswith("not ASCII JSON: ")


@pytest.mark.parametrize("service", [Service.LABEL, Service.EVALUATE])
def test_inference_jobs_take_one_to_max_items_images(service: Service) -> None:
    def doc(**fields: Any) -> bytes:
        return canonical({"task": service.name.lower(), "model": {"name": "cnn"}, **fields})

    for images in (1, MAX_ITEMS):
        terms = job_terms(service, doc(images=images), MAX_SPEC_BYTES)
        assert (terms.items, terms.units) == (images, images * cnn_forward_flops(28, 1, 16, 3, 10))
    for fields in ({}, {"images": 0}, {"images": MAX_ITEMS + 1}):
        assert bad(service, doc(**fields)).detail == f"images must be 1..{MAX_ITEMS}"
    assert bad(service, doc(images="3")).detail == "images must be an integer, got '3'"
    assert bad(service, canonical({"task": service.name.lower(), "images": 2, "model": "cnn"})).detail == (
        "model must be an object")
    assert bad(service, doc(images=2, model={"name": "cnn", "width": "w"})).detail == (
        "model.width must be an integer, got 'w'")


def test_units_exactly_at_the_record_limit_are_taken(monkeypatch: pytest.MonkeyPatch) -> None:
    """The job record holds units in 128 bits: `job_terms` takes `MAX_UNITS` and refuses one
    more, whatever spec priced them (the parsing is replaced here: a spec that prices at exactly
    2^128 - 1 units is not practical to construct)."""
    for units in (MAX_UNITS, MAX_UNITS + 1):
        monkeypatch.setattr(job_spec, "_job_terms", lambda *_, units=units: JobTerms(Service.TRAIN, 1, units, 0))
        if units == MAX_UNITS:
            assert job_terms(Service.TRAIN, b"{}", MAX_SPEC_BYTES).units == MAX_UNITS
        else:
            assert bad(Service.TRAIN, b"{}").detail == f"{units} units: at most {MAX_UNITS}"
