"""The node's `chain.market_rules.Adjudicator`: the worker's deterministic CPU renderer.

A fraud proof claims that item ``index`` of a render job is not what the worker committed to;
validators settle it by rendering that one item from the job's spec on the numpy reference path
and taking its item id (the leaf's ``check``). The renderer is therefore consensus code: every
spec names a renderer version, and what a version draws never changes (worker/render/README.md).

The work is bounded by the chain (`max_challenges_per_block` re-renders per block, each one item
of a spec capped at `max_spec_bytes`) and by the mempool, which judges a proof once and penalises
the peer that relayed a false one.
"""

from __future__ import annotations

import json
from typing import Any

from chain.errors import InvalidTransaction
from chain.market_types import Service


class RenderAdjudicator:
    """Re-renders one item of a generate job (the worker is imported on first use)."""

    def item_check(self, service: int, spec: bytes, index: int) -> bytes:
        if service != Service.GENERATE:
            raise InvalidTransaction("no-fraud-proof-for-service")
        from worker.errors import WorkerError
        from worker.render.dataset import load_render_spec, render_item

        doc: dict[str, Any] = json.loads(spec)
        try:
            render_spec = load_render_spec(doc["spec"])
            return render_item(render_spec, int(doc.get("seed", 0)), index).item_hash
        except (WorkerError, KeyError, TypeError, ValueError) as exc:
            raise InvalidTransaction("bad-job-spec", f"the worker cannot render it: {exc}") from None
