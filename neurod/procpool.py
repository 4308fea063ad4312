"""Worker process pools of the daemon (mining, signature checks) that die with it.

A `ProcessPoolExecutor` worker blocks reading its task pipe, and it holds a copy of that pipe's
write end itself, so when the daemon is killed with SIGKILL (or crashes) no end-of-file ever
arrives and the worker lives on as an orphan: a node restarted after ``kill -9`` would add two
more each time. Each worker therefore watches its parent and exits when it is gone.
"""

from __future__ import annotations

import multiprocessing
import os
import threading
import time
from concurrent.futures import ProcessPoolExecutor

PARENT_POLL_S = 1.0


def process_pool(workers: int) -> ProcessPoolExecutor:
    """A pool of ``workers`` processes, started by spawn (no fork of a threaded trio process) on
    first use, each exiting within a second of the daemon's death."""
    return ProcessPoolExecutor(
        max(1, workers),
        mp_context=multiprocessing.get_context("spawn"),
        initializer=_exit_with_parent,
        initargs=(os.getpid(),),
    )


def _exit_with_parent(parent: int) -> None:
    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(PARENT_POLL_S)
        os._exit(0)  # orphaned: re-parented to init (or a subreaper)

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()
