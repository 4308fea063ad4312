"""Forgeries of a trained model, as a dishonest trainer would deliver them: each edit of the
weights, metrics or proof-of-learning log is re-signed and re-sealed, so that only the checks of
`worker.verify` (not a stale manifest) can catch it.

Test-only: the tests of the verifier use them, and so does the devnet worker fault
"skip-training" (`neurod.market.tasks.train`), which makes a daemon that delivers work it never
did so that a dispute committee has something to convict.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Callable
from pathlib import Path
from typing import Any

from worker.artifact import ItemDraft, canonical_json, read_manifest, write_manifest
from worker.tasks.train import WEIGHTS_FILE
from worker.train.pol import LOG_NAME, read_log
from worker.train.weights import read_meta


def weights_metadata(path: Path) -> dict[str, str]:
    """The raw safetensors metadata, read as a buyer's script would."""
    with open(path, "rb") as handle:
        size = struct.unpack("<Q", handle.read(8))[0]
        return dict(json.loads(handle.read(size))["__metadata__"])


def rewrite_weights(out: Path, tensors: Callable[[dict[str, Any]], None] | None = None,
                    meta: Callable[[dict[str, str]], None] | None = None) -> None:
    from safetensors.torch import load_file, save_file

    path = out / WEIGHTS_FILE
    loaded, metadata = load_file(str(path)), weights_metadata(path)
    if tensors is not None:
        tensors(loaded)
    if meta is not None:
        meta(metadata)
    save_file(loaded, str(path), metadata=metadata)


def reseal(out: Path) -> None:
    """What a dishonest worker does after a change: a fresh manifest over the changed files."""
    old = read_manifest(out)
    claims = canonical_json(read_meta(out / WEIGHTS_FILE).metrics)
    write_manifest(out, old.kind, [ItemDraft(0, (WEIGHTS_FILE,), labels=claims)], old.meta)


def forge_log(out: Path, change: Callable[[dict[str, Any]], None]) -> None:
    """Edit the PoL log, then re-sign it into the weights metadata and re-seal the manifest."""
    path = out / "pol" / LOG_NAME
    body = json.loads(path.read_text())
    change(body)
    path.write_text(json.dumps(body, sort_keys=True, separators=(",", ":")))
    digest = read_log(out / "pol").digest().hex()
    rewrite_weights(out, meta=lambda metadata: metadata.update(pol_log_hash=digest))
    reseal(out)


def reverse_batches(body: dict[str, Any]) -> None:
    """The log claims other batches than the seed schedules: the work it names was not done."""
    for record in body["records"][1:]:
        record["batches"] = [list(reversed(b)) for b in record["batches"]]
