"""The label check (`neurod.market.label_check`): agreement as defined, the threshold between an
honest labeler and a random one, and the whole check on real shards labelled by real models.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from neurod.market.inputs import InputsUnavailable, named_roots
from neurod.market.label_check import (
    AGREEMENT_THRESHOLD,
    SAMPLES,
    SCORE_BAND,
    agreement,
    boxes_agreement,
    iou,
    item_agreement,
    label_shard,
    verify_label_delivery,
)
from tests.support.labelling import LabelInputs, classifier_inputs, detector_inputs
from worker.label_job import LABELS_FILE, delivered_records, parse_label_job, write_labels

BEACON = b"\x07" * 32


def box(x: float, y: float, w: float = 10, h: float = 10, cls: int = 1, score: float = 0.9) -> dict[str, object]:
    return {"bbox": [x, y, w, h], "category_id": cls, "score": score}


# ---- agreement, pure ---------------------------------------------------------------------------


def test_iou_of_boxes() -> None:
    assert iou([0, 0, 10, 10], [0, 0, 10, 10]) == 1.0
    assert iou([0, 0, 10, 10], [5, 0, 10, 10]) == pytest.approx(50 / 150)
    assert iou([0, 0, 10, 10], [20, 20, 5, 5]) == 0.0
    assert iou([3, 4, 0, 0.2], [3, 4, 0, 0.2]) == 1.0  # degenerate twins: sides taken as 1 px
    assert iou([3, 4, 0, 0], [5, 4, 0, 0]) == 0.0


def test_boxes_match_one_to_one_by_class_and_iou() -> None:
    assert boxes_agreement([], [], 0.3) == 1.0
    assert boxes_agreement([box(0, 0)], [box(0.01, 0)], 0.3) == 1.0  # a rounding apart: the same box
    assert boxes_agreement([box(0, 0, cls=2)], [box(0, 0)], 0.3) == 0.0  # another class
    assert boxes_agreement([box(6, 0)], [box(0, 0)], 0.3) == 0.0  # IoU 0.25 < 0.5
    # two delivered boxes on one reference: one matches, one is extra
    assert boxes_agreement([box(0, 0), box(1, 0)], [box(0, 0)], 0.3) == 0.5
    # one missed of two
    assert boxes_agreement([box(0, 0)], [box(0, 0), box(50, 50)], 0.3) == 0.5


def test_reference_boxes_at_the_cut_off_may_go_either_way() -> None:
    """A box within SCORE_BAND of the cut-off is optional: neither missed nor required."""
    near = box(50, 50, score=0.3 + SCORE_BAND / 2)
    assert boxes_agreement([box(0, 0)], [box(0, 0), near], 0.3) == 1.0  # dropped by the labeler
    assert boxes_agreement([box(0, 0), box(50, 50)], [box(0, 0), near], 0.3) == 1.0  # kept by it
    far = box(50, 50, score=0.3 + 2 * SCORE_BAND)
    assert boxes_agreement([box(0, 0)], [box(0, 0), far], 0.3) == 0.5


def test_classifier_items_agree_on_the_class_and_a_missing_or_malformed_record_on_nothing() -> None:
    assert item_agreement("classification", {"label": 3}, {"label": 3}, 0.3) == 1.0
    assert item_agreement("classification", {"label": 2}, {"label": 3}, 0.3) == 0.0
    assert item_agreement("classification", None, {"label": 3}, 0.3) == 0.0
    assert item_agreement("detection", {"boxes": "junk"}, {"boxes": [box(0, 0)]}, 0.3) == 0.0


def test_agreement_is_the_mean_and_names_the_worst_item() -> None:
    reference = {i: {"label": i % 4} for i in range(10)}
    delivered = {**reference, 7: {"label": 0}, 8: {"label": 1}}
    found = agreement("classification", delivered, reference, 0.3)
    assert (found.rate, found.items, found.worst) == (0.8, 10, 7)
    assert found.ok and AGREEMENT_THRESHOLD == 0.8  # at the threshold passes; under it fails
    assert not agreement("classification", {**delivered, 9: {"label": 0}}, reference, 0.3).ok


# ---- real shards -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def classifier(tmp_path_factory: pytest.TempPathFactory) -> LabelInputs:
    return classifier_inputs(tmp_path_factory.mktemp("cnn"), images=48)


@pytest.fixture(scope="module")
def detector(tmp_path_factory: pytest.TempPathFactory) -> LabelInputs:
    return detector_inputs(tmp_path_factory.mktemp("det"), images=12)


def check(inputs: LabelInputs, out: Path, start: int, stop: int, samples: int = SAMPLES) -> object:
    return verify_label_delivery(str(out), json.dumps(inputs.job), start, stop, BEACON, samples, inputs.folders)


def test_the_job_names_its_inputs_by_root(classifier: LabelInputs) -> None:
    assert named_roots(classifier.job) == [classifier.images_root, classifier.weights_root]
    assert parse_label_job(classifier.job).images == 48


def test_an_honest_classifier_shard_agrees_fully_and_a_random_one_fails(classifier: LabelInputs, tmp_path: Path) -> None:
    spec = json.dumps(classifier.job)
    root = label_shard(spec, 8, 40, str(tmp_path / "honest"), classifier.folders)
    manifest, records = delivered_records(tmp_path / "honest", bytes.fromhex(root))
    assert [item.index for item in manifest.items] == list(range(8, 40)) and set(records) == set(range(8, 40))
    verdict = check(classifier, tmp_path / "honest", 8, 40)
    assert verdict.ok and "agreement 1.000 over 32" in verdict.detail, verdict  # type: ignore[attr-defined]

    label_shard(spec, 8, 40, str(tmp_path / "random"), classifier.folders, fault="random-labels")
    verdict = check(classifier, tmp_path / "random", 8, 40)
    assert not verdict.ok and verdict.reason == "low-agreement", verdict  # type: ignore[attr-defined]
    assert 8 <= verdict.index < 40  # type: ignore[attr-defined]


def test_an_honest_detector_shard_agrees_and_random_boxes_fail(detector: LabelInputs, tmp_path: Path) -> None:
    spec = json.dumps(detector.job)
    label_shard(spec, 0, 12, str(tmp_path / "honest"), detector.folders)
    document = json.loads((tmp_path / "honest" / LABELS_FILE).read_text())
    assert document["annotations"] and all(a["score"] >= 0.05 for a in document["annotations"])
    verdict = check(detector, tmp_path / "honest", 0, 12)
    assert verdict.ok and "agreement 1.000 over 12" in verdict.detail, verdict  # type: ignore[attr-defined]
    label_shard(spec, 0, 12, str(tmp_path / "random"), detector.folders, fault="random-labels")
    verdict = check(detector, tmp_path / "random", 0, 12)
    assert not verdict.ok and verdict.reason == "low-agreement", verdict  # type: ignore[attr-defined]


def test_labels_changed_after_sealing_or_for_another_shard_are_refused(classifier: LabelInputs, tmp_path: Path) -> None:
    spec = json.dumps(classifier.job)
    out = tmp_path / "shard"
    label_shard(spec, 0, 24, str(out), classifier.folders)
    assert check(classifier, out, 24, 48).reason == "wrong-job"  # type: ignore[attr-defined]
    document = json.loads((out / LABELS_FILE).read_text())
    document["predictions"][3]["label"] = (document["predictions"][3]["label"] + 1) % 4
    (out / LABELS_FILE).write_text(json.dumps(document))
    verdict = check(classifier, out, 0, 24)
    assert not verdict.ok and verdict.reason in ("file-hash", "item-labels"), verdict  # type: ignore[attr-defined]


def test_a_labeler_that_resealed_a_few_wrong_labels_is_measured_by_how_many(classifier: LabelInputs,
                                                                            tmp_path: Path) -> None:
    """Re-sealed (so the artifact is consistent) with k of 32 labels changed: agreement 1 - k/32."""
    spec = json.dumps(classifier.job)
    out = tmp_path / "shard"
    label_shard(spec, 0, 32, str(out), classifier.folders)
    _, records = delivered_records(out)
    changed = [dict(r) for r in records.values()]
    for record in changed[:4]:
        record["label"] = (record["label"] + 1) % 4
    (out / LABELS_FILE).unlink()
    (out / "manifest.json").unlink()
    meta = {"images_root": classifier.images_root, "weights_root": classifier.weights_root, "start": 0, "stop": 32,
            "min_score_pct": 30}
    write_labels(out, "classification", changed, 4, meta)
    verdict = check(classifier, out, 0, 32)
    assert verdict.ok and "agreement 0.875 over 32" in verdict.detail, verdict  # type: ignore[attr-defined]


def test_inputs_the_checker_lacks_are_no_verdict(classifier: LabelInputs, tmp_path: Path) -> None:
    label_shard(json.dumps(classifier.job), 0, 8, str(tmp_path / "s"), classifier.folders)
    with pytest.raises(InputsUnavailable):
        verify_label_delivery(str(tmp_path / "s"), json.dumps(classifier.job), 0, 8, BEACON, SAMPLES,
                              {classifier.images_root: str(classifier.images)})


def test_weights_that_are_not_the_declared_model_are_refused(classifier: LabelInputs, tmp_path: Path) -> None:
    from worker.label_job import LabelJobError

    job = {**classifier.job, "model": {**classifier.job["model"], "width": 16}}
    with pytest.raises(LabelJobError, match="the job declared"):
        label_shard(json.dumps(job), 0, 8, str(tmp_path / "s"), classifier.folders)


def test_the_chain_prices_a_label_job_at_its_models_forward_passes(classifier: LabelInputs,
                                                                   detector: LabelInputs) -> None:
    """`chain.job_spec` reads the declared model and count; the worker counts the same units."""
    from chain.compute_units import inference_units
    from chain.job_spec import job_terms
    from chain.market_types import Service
    from worker.tasks.units import forward_flops_of
    from worker.train.spec import load_model_spec

    for inputs in (classifier, detector):
        spec = json.dumps(inputs.job, sort_keys=True, separators=(",", ":")).encode()
        terms = job_terms(Service.LABEL, spec, 4096)
        flops = forward_flops_of(load_model_spec(inputs.job["model"]))
        assert (terms.items, terms.units) == (inputs.job["images"], inference_units(flops, inputs.job["images"]))
