"""Fail points: named places where a crash test kills the process (FreeBSD's fail(9), fail-rs).

A crash test that SIGKILLs a process at a random moment lands inside the few microseconds of a
reorg commit once in thousands of runs; a fail point lands there every time. Code calls
``hit("reorg-after-undo")`` at the exact place; the call does nothing unless the environment
variable ``NEURO_FAILPOINT`` names that point, in which case the process kills itself with
SIGKILL there: no `finally`, no atexit, no flush, as a power cut or the OOM killer would.

``NEURO_FAILPOINT`` is a comma-separated list of ``name`` or ``name@N`` (die at the N-th hit of
that point, counting from 1), e.g. ``NEURO_FAILPOINT=block-after-commit@5``. Every point is
declared in `POINTS`, so a typo in a test or in the code fails loudly instead of never firing.
Unset (the normal case) a hit costs one set lookup.
"""

from __future__ import annotations

import os
import signal

ENV = "NEURO_FAILPOINT"

POINTS: dict[str, str] = {
    "block-before-commit": "a block connected in memory, its batch not yet written",
    "block-after-commit": "a block's batch written and synced, the in-memory tip not yet moved",
    "reorg-after-undo": "a reorg's old branch undone in memory, the new branch not yet connected",
    "reorg-before-commit": "a reorg's whole batch built in memory, not yet written",
    "mempool-save-partial": "half of mempool.dat's temporary file written, not yet renamed",
    "mempool-save-before-rename": "mempool.dat's temporary file written and synced, not yet renamed",
    "mempool-journal-partial": "half of one journal write (an RPC call's records) appended, the rest not",
    "keystore-write-partial": "half of a keystore file's temporary copy written, not yet renamed",
    "keystore-write-before-rename": "a keystore file's temporary copy synced, not yet renamed",
}


class FailpointError(ValueError):
    pass


def _parse(spec: str) -> dict[str, int]:
    armed: dict[str, int] = {}
    for item in filter(None, (part.strip() for part in spec.split(","))):
        name, _, nth = item.partition("@")
        if name not in POINTS:
            raise FailpointError(f"{ENV}: unknown fail point {name!r} (known: {', '.join(POINTS)})")
        if nth and (not nth.isdigit() or int(nth) < 1):
            raise FailpointError(f"{ENV}: {item!r}: the hit count after @ must be a positive integer")
        armed[name] = int(nth or 1)
    return armed


def _from_environment() -> tuple[dict[str, int], FailpointError | None]:
    """Never raise at import (a bad spec would be a traceback wherever this module is first
    imported): the error is kept for `check_environment` and for the first `hit`."""
    try:
        return _parse(os.environ.get(ENV, "")), None
    except FailpointError as exc:
        return {}, exc


_armed, _error = _from_environment()
_hits: dict[str, int] = {}


def check_environment() -> None:
    """Raise `FailpointError` if ``NEURO_FAILPOINT`` is malformed (daemons call it at start)."""
    if _error is not None:
        raise _error


def hit(name: str) -> None:
    """Die here if ``name`` is armed and this is its chosen hit; otherwise return at once."""
    if not _armed:
        if _error is not None:
            raise _error
        return
    if name not in POINTS:
        raise FailpointError(f"fail point {name!r} is not declared in chain.failpoints.POINTS")
    nth = _armed.get(name)
    if nth is None:
        return
    _hits[name] = count = _hits.get(name, 0) + 1
    if count == nth:
        os.kill(os.getpid(), signal.SIGKILL)


def armed(name: str) -> bool:
    """Whether ``name`` may fire: code that must split one write in two to give a point a
    place to land asks this, so that an unarmed process keeps its single write."""
    return name in _armed


def arm(spec: str) -> None:
    """Re-read a ``NEURO_FAILPOINT``-style spec (tests that arm a point inside one process)."""
    global _armed, _error
    _armed, _error = _parse(spec), None
    _hits.clear()
