"""A train output is one statement: these weights came out of this log, for this spec, on this data.

Replaying segments (`worker.train.replay`) proves that the checkpoints follow from training; the
checks here prove that what was delivered is what those checkpoints say, so a changed weight, an
edited metadata record or a shortened log cannot ride on an honest replay. They cost no training
and run first, cheapest first (as block validation does), each rejection with its reason:

1. `check_log_spec`: the log's spec is the job's spec (``pol-spec-mismatch``);
2. `check_weights_meta`: the weights metadata names the same spec and this log's digest
   (``weights-spec-mismatch``, ``weights-log-mismatch``);
3. `check_log_data`: the log's data digest is the data's (``pol-data-mismatch``);
4. `check_log_coverage`: the log runs from step 0 to the spec's total step count over the data,
   with a record every ``pol_interval`` steps: a dropped last record would leave the last steps
   unchecked (``pol-incomplete``);
5. `check_weights_final`: the delivered tensors hash to the last record's ``weights_hash``: the
   model is the last checkpoint, which the always-replayed final segment ties to training
   (``weights-not-final-checkpoint``).
"""

from __future__ import annotations

from typing import Any

from torch import nn

from worker.errors import VerificationFailed
from worker.train.data import ClassificationData, DetectionData
from worker.train.pol import PolLog, data_digest, record_steps
from worker.train.spec import TrainSpec, load_train_spec
from worker.train.state import model_tensors, weights_digest
from worker.train.weights import WeightsMeta


def check_log_spec(log: PolLog, spec: TrainSpec | None = None) -> TrainSpec:
    """The log's spec, which must hash to the log's spec hash and be the job's ``spec`` if given."""
    logged = load_train_spec(log.header["spec"])
    if logged.spec_hash().hex() != log.header["spec_hash"]:
        raise VerificationFailed("log spec does not match its spec hash", reason="pol-spec-mismatch")
    if spec is not None and spec.spec_hash() != logged.spec_hash():
        raise VerificationFailed(
            f"the log was trained for spec {log.header['spec_hash']}, the job is "
            f"{spec.spec_hash().hex()}", reason="pol-spec-mismatch")
    return logged


def check_log_data(log: PolLog, data: ClassificationData | DetectionData) -> None:
    if data_digest(data) != log.header["data_digest"]:
        raise VerificationFailed("training data differs from the data the log names",
                                 reason="pol-data-mismatch")


def check_log_binding(log: PolLog, data: ClassificationData | DetectionData,
                      spec: TrainSpec | None = None) -> TrainSpec:
    """`check_log_spec` and `check_log_data`; returns the log's spec."""
    logged = check_log_spec(log, spec)
    check_log_data(log, data)
    return logged


def check_weights_meta(meta: WeightsMeta, spec: TrainSpec, log: PolLog) -> None:
    """The weights metadata names ``spec`` (hash, body and model) and ``log`` (its digest)."""
    if (meta.spec_hash != spec.spec_hash().hex() or meta.train_spec != spec.model_dump(mode="json")
            or meta.model != spec.model):
        raise VerificationFailed(
            f"the weights name spec {meta.spec_hash or '(none)'}, the job is "
            f"{spec.spec_hash().hex()}", reason="weights-spec-mismatch")
    if meta.pol_log_hash != log.digest().hex():
        raise VerificationFailed(
            f"the weights name proof-of-learning log {meta.pol_log_hash or '(none)'}, the log "
            f"delivered is {log.digest().hex()}", reason="weights-log-mismatch")


def check_log_coverage(log: PolLog, spec: TrainSpec, dataset_size: int) -> None:
    """Records at exactly `record_steps` of the spec's run over ``dataset_size`` items."""
    total = spec.total_steps(dataset_size)
    expected = record_steps(total, spec.pol_interval)
    steps = [record.step for record in log.records]
    header: dict[str, Any] = log.header
    if header.get("total_steps") != total or header.get("interval") != spec.pol_interval:
        raise VerificationFailed(
            f"the log claims {header.get('total_steps')} steps every {header.get('interval')}, the "
            f"spec runs {total} steps every {spec.pol_interval}", reason="pol-incomplete")
    if steps != expected:
        missing = sorted(set(expected) - set(steps))
        extra = sorted(set(steps) - set(expected))
        found = [f"no records at steps {_few(missing)}"] if missing else []
        found += [f"records at unexpected steps {_few(extra)}"] if extra else []
        raise VerificationFailed(
            f"the log does not cover steps 0..{total} every {spec.pol_interval}: "
            f"{'; '.join(found) or 'records out of order'}", reason="pol-incomplete")


def check_weights_final(model: nn.Module, log: PolLog) -> None:
    """The delivered model's tensors are the last checkpoint's (digest of the last record)."""
    last = log.records[-1]
    if weights_digest(model_tensors(model)).hex() != last.weights_hash:
        raise VerificationFailed(
            f"the delivered weights are not the last proof-of-learning checkpoint (step "
            f"{last.step})", reason="weights-not-final-checkpoint")


def _few(steps: list[int]) -> str:
    shown = ", ".join(str(s) for s in steps[:5])
    return f"[{shown}{', ...' if len(steps) > 5 else ''}]"
