"""Progress events of a task process, throttled so a fast loop does not flood the parent's pipe."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

Emit = Callable[[dict[str, Any]], None]
Report = Callable[..., None]
MIN_INTERVAL_S = 0.1


def stage_progress(emit: Emit, stage: str, min_interval_s: float = MIN_INTERVAL_S) -> Report:
    """A reporter ``report(done, total, **extra)`` for one stage; the last step always goes out."""
    last = [0.0]

    def report(done: int, total: int, **extra: Any) -> None:
        now = time.monotonic()
        if done < total and now - last[0] < min_interval_s:
            return
        last[0] = now
        emit({"event": "progress", "stage": stage, "done": done, "total": total, **extra})

    return report
