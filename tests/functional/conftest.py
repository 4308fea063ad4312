from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.support.daemons import Daemon


@pytest.fixture
def daemons(tmp_path: Path) -> Iterator[Callable[..., Daemon]]:
    """A factory of started daemons; all are stopped at the end, their logs shown on failure."""
    started: list[Daemon] = []

    def make(name: str, **kwargs: object) -> Daemon:
        daemon = Daemon(tmp_path / name, **kwargs)  # type: ignore[arg-type]
        started.append(daemon)
        return daemon.start()

    yield make
    for daemon in started:
        try:
            daemon.stop()
        except Exception:  # noqa: BLE001 - always reap what we started
            daemon.kill()
        # captured: pytest shows it with a failing test's report, and only then
        print(f"---- {daemon.datadir.name}: last lines of its log ----\n{daemon.log_tail(80)}")
