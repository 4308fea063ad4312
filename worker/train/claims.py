"""The metrics a trained model claims, and how a verifier holds each claim against its recomputation.

A train output states its metrics three times: in the weights metadata (which travels with the
model), in ``metrics.json`` and in the task summary (``task.json``). Every key there is either a
*claim*, which a verifier recomputes from what was delivered and which must match, or *report*,
the worker's own account of the run (``train_seconds``: wall time is not reproducible;
``loss_curve``: its points lie mostly outside the replayed segments). Report keys are bound to the
output by the artifact manifest like every byte, but nobody can check them: they must never be
read as facts. A key that is neither is refused: a model cannot claim what no check recomputes.

Claims:
- ``steps``: the spec's total step count over the data; the log must end there;
- ``final_loss``: mean training loss over the final proof-of-learning segment (`LossMeter`),
  recomputed while the verifier replays that segment (every verifier replays it);
- ``validation_accuracy`` and ``validation_items``, with a validation source: one forward pass of
  the delivered weights over it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from worker.errors import VerificationFailed

CLAIM_DECIMALS = 5  # claims are rounded for people; a verifier rounds its recomputation alike
REPORT_KEYS = frozenset({"train_seconds", "loss_curve"})
# The final segment's replay is bit-exact with the logged thread count and CPU vector ISA; on
# another ISA the weights drift up to 5.8e-4 relative L2 after a segment (worker.train.replay)
# and its mean loss by as much. 2e-3 relative absorbs that; a worker gains nothing from it.
FINAL_LOSS_RTOL = 2e-3
FINAL_LOSS_ATOL = 10.0 ** -CLAIM_DECIMALS  # the rounding of the claim itself


def train_claims(steps: int, final_loss: float | None,
                 validation: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The claims of a training run, rounded as they are published."""
    claims: dict[str, Any] = {
        "steps": steps,
        "final_loss": None if final_loss is None else round(final_loss, CLAIM_DECIMALS),
    }
    if validation is not None:
        claims.update(validation)
    return claims


def claims_of(document: Mapping[str, Any]) -> dict[str, Any]:
    """The claim keys of a metrics document (``metrics.json``, a summary): all but report keys."""
    return {key: value for key, value in document.items() if key not in REPORT_KEYS}


def check_claims(claimed: Mapping[str, Any], recomputed: Mapping[str, Any], where: str) -> None:
    """Raise `VerificationFailed` unless ``claimed`` states exactly the ``recomputed`` claims.

    ``metrics-unverifiable`` for a key no check recomputes (``"accuracy": 0.99``),
    ``metrics-mismatch`` for a missing claim or a value the recomputation does not give.
    """
    unknown = sorted(set(claimed) - set(recomputed) - REPORT_KEYS)
    if unknown:
        raise VerificationFailed(
            f"{where}: claims {', '.join(unknown)}, which no verifier recomputes",
            reason="metrics-unverifiable")
    for key, value in recomputed.items():
        if key not in claimed:
            raise VerificationFailed(f"{where}: the {key} claim is missing (recomputed {value})",
                                     reason="metrics-mismatch")
        if not _agrees(key, claimed[key], value):
            raise VerificationFailed(
                f"{where}: claims {key} = {claimed[key]!r}, the verifier recomputes {value!r}",
                reason="metrics-mismatch")


def _agrees(key: str, claimed: Any, recomputed: Any) -> bool:
    if key == "final_loss" and recomputed is not None:
        return type(claimed) is float and abs(claimed - recomputed) <= max(
            FINAL_LOSS_RTOL * abs(recomputed), FINAL_LOSS_ATOL)
    # the type too: JSON `true` is not 1, `"0.99"` is not 0.99
    return type(claimed) is type(recomputed) and claimed == recomputed
