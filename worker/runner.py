"""Run one built-in task in a child process, with a wall-time limit, a memory cap and atomic output.

Why a child process: torch work must leave the daemon's event loop, a runaway task must be
killable without killing the daemon, and ``RLIMIT_AS`` can only cap a whole process. The parent
imports neither torch nor the task code; it only speaks a small JSON-lines protocol.

Protocol. The parent starts ``python -m worker.runner --child FD`` in its own session, writes one
JSON job on the child's stdin (task, spec, partial dir, device, memory cap) and reads events the
child writes on the inherited pipe FD, one JSON object a line:

- ``{"event": "progress", "stage": str, "done": int, "total": int}``
- ``{"event": "result", "summary": {...}}``: the task finished; the parent then renames the dir
- ``{"event": "error", "reason": str, "message": str}``: a named failure (bad spec, out of memory)

The child's stdout and stderr go to a log file whose tail is quoted when the child dies unnamed.

Atomic output: the task writes into ``<out>.partial-<random>`` beside ``<out>``; only after a
``result`` event and a clean exit is it renamed (one ``rename``, atomic on one file system) to
``<out>``. On any failure the partial dir is removed, so no half-written artifact ever carries the
final name.

Memory cap: on the CPU, ``RLIMIT_AS`` (address space, not resident memory) set in the child
before anything heavy is imported; torch alone maps ~0.8 GB of address space, so caps start at
1 GB. With ``device="cuda"`` the driver's huge address-space reservations rule RLIMIT_AS out, so
the parent polls the child's resident memory instead and kills it over the cap.

Only the task names of ``worker.tasks.TASKS`` run; the spec is data, never code.
"""

from __future__ import annotations

import json
import os
import resource
import secrets
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from worker.errors import SpecError, TaskFailed, WorkerError

DEFAULT_TIMEOUT_S = 3600.0
DEFAULT_MEMORY_MB = 4096
MIN_MEMORY_MB = 1024
LOG_TAIL_CHARS = 400
SUMMARY_FILE = "task.json"
KILL_GRACE_S = 2.0
RSS_POLL_S = 0.25
# events larger than this are a broken or hostile child, not progress
MAX_EVENT_BYTES = 1 << 20

Event = dict[str, Any]
EventSink = Callable[[Event], None]


class TaskTimeout(WorkerError):
    reason = "task-timeout"


class TaskOutOfMemory(WorkerError):
    reason = "task-oom"


@dataclass(frozen=True, slots=True)
class TaskResult:
    """What a finished task left: its final dir, the task's own summary and the wall time."""

    task: str
    out: Path
    summary: dict[str, Any]
    wall_s: float
    events: int = 0


def partial_dir_for(out: Path) -> Path:
    """A fresh sibling of ``out`` (same file system, so the final rename is atomic)."""
    return out.with_name(f"{out.name}.partial-{secrets.token_hex(6)}")


PATH_FIELDS = ("weights", "images")  # top-level fields of a task spec that name files
SOURCE_FIELDS = ("data", "validation")  # data sources whose "path" names a file or folder


def resolve_spec_paths(spec: dict[str, Any], base: Path) -> dict[str, Any]:
    """``spec`` with its relative file paths made relative to ``base`` (the spec file's folder), so
    that a spec runs the same from any working directory; absolute and `~` paths are kept."""

    def resolve(value: Any) -> Any:
        if not isinstance(value, str) or not value:
            return value
        given = Path(value).expanduser()
        return str(given if given.is_absolute() else (base / given).resolve())

    resolved = {k: resolve(v) if k in PATH_FIELDS else v for k, v in spec.items()}
    for key in SOURCE_FIELDS:
        source = spec.get(key)
        if isinstance(source, dict) and "path" in source:
            resolved[key] = {**source, "path": resolve(source["path"])}
    return resolved


def load_spec_file(path: Path) -> dict[str, Any]:
    """A spec file as a JSON object, its file paths resolved against its own folder
    (`resolve_spec_paths`); one-line SpecError for anything else."""
    try:
        data = json.loads(path.read_text())
    except OSError as exc:
        raise SpecError(f"cannot read spec {path}: {exc.strerror or exc}") from exc
    except json.JSONDecodeError as exc:
        raise SpecError(f"{path} is not JSON: {exc.msg} at line {exc.lineno}") from exc
    if not isinstance(data, dict):
        raise SpecError(f"{path}: a spec is a JSON object, got {type(data).__name__}")
    return resolve_spec_paths(data, path.expanduser().absolute().parent)


def run_task(
    task: str,
    spec: dict[str, Any],
    out: Path,
    *,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    memory_mb: int | None = DEFAULT_MEMORY_MB,
    device: str = "cpu",
    on_event: EventSink | None = None,
) -> TaskResult:
    """Run ``task`` on ``spec`` in a child process and leave its artifact at ``out``.

    Raises TaskTimeout, TaskOutOfMemory, SpecError or TaskFailed; ``out`` then does not exist.
    """
    from worker.tasks import TASK_NAMES, check_kind  # a name list only: no torch in the parent

    if task not in TASK_NAMES:
        raise SpecError(f"unknown task {task!r}; built-in tasks: {', '.join(TASK_NAMES)}")
    check_kind(task, spec)
    if memory_mb is not None and memory_mb < MIN_MEMORY_MB:
        raise SpecError(f"memory cap {memory_mb} MB is under the {MIN_MEMORY_MB} MB torch needs")
    if timeout_s <= 0:
        raise SpecError(f"timeout must be positive, got {timeout_s}")
    out = Path(out)
    if out.exists():
        raise WorkerError(f"output {out} already exists", reason="output-exists")
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = partial_dir_for(out)
    job = {"task": task, "spec": spec, "out": str(partial), "device": device, "memory_mb": memory_mb}
    started = time.monotonic()
    try:
        summary, count = _supervise(job, timeout_s, on_event or (lambda _event: None))
        summary = {**summary, "task": task, "wall_s": round(time.monotonic() - started, 3)}
        # the spec travels with the artifact: verifiers re-render or replay from it
        record = {**summary, "spec": spec}
        (partial / SUMMARY_FILE).write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
        os.rename(partial, out)
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    return TaskResult(task=task, out=out, summary=summary, wall_s=summary["wall_s"], events=count)


def _supervise(job: Event, timeout_s: float, on_event: EventSink) -> tuple[dict[str, Any], int]:
    read_fd, write_fd = os.pipe()
    deadline = time.monotonic() + timeout_s
    with tempfile.TemporaryFile() as log:
        try:
            child = subprocess.Popen(
                [sys.executable, "-m", "worker.runner", "--child", str(write_fd)],
                stdin=subprocess.PIPE,
                stdout=log,
                stderr=subprocess.STDOUT,
                pass_fds=(write_fd,),
                start_new_session=True,
                env=_child_env(),
            )
        finally:
            os.close(write_fd)
        try:
            assert child.stdin is not None
            child.stdin.write(json.dumps(job).encode())
            child.stdin.close()
            watch = _RssWatch(child.pid, job["memory_mb"] if job["device"] == "cuda" else None)
            return _collect(child, read_fd, deadline, timeout_s, on_event, log, watch)
        finally:
            os.close(read_fd)
            _kill_group(child)


def _child_env() -> dict[str, str]:
    """This process's environment, with our source root first on the path of the child."""
    env = dict(os.environ)
    root = str(Path(__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH", "")) if p)
    return env


def _collect(
    child: subprocess.Popen[bytes],
    read_fd: int,
    deadline: float,
    timeout_s: float,
    on_event: EventSink,
    log: BinaryIO,
    watch: _RssWatch,
) -> tuple[dict[str, Any], int]:
    """Forward events until the pipe closes; then judge the exit."""
    buffer = b""
    result: dict[str, Any] | None = None
    error: Event | None = None
    count = 0
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TaskTimeout(f"task exceeded its {timeout_s:g} s time limit")
        ready, _, _ = select.select([read_fd], [], [], min(remaining, watch.interval_s))
        watch.check()
        if not ready:
            continue
        chunk = os.read(read_fd, 65536)
        if not chunk:
            break
        buffer += chunk
        if len(buffer) > MAX_EVENT_BYTES and b"\n" not in buffer:
            raise TaskFailed("task sent an oversized event", reason="task-failed")
        *lines, buffer = buffer.split(b"\n")
        for line in lines:
            event = _parse_event(line)
            count += 1
            if event["event"] == "result":
                result = dict(event.get("summary") or {})
            elif event["event"] == "error":
                error = event
            else:
                on_event(event)
    try:
        code = child.wait(timeout=max(0.0, deadline - time.monotonic()))
    except subprocess.TimeoutExpired as exc:
        raise TaskTimeout(f"task exceeded its {timeout_s:g} s time limit") from exc
    if error is not None:
        raise _error_from_event(error)
    if code == 0 and result is not None:
        return result, count
    raise _error_from_exit(code, _log_tail(log))


class _RssWatch:
    """The memory cap of a CUDA task: resident memory polled from /proc, not RLIMIT_AS.

    The CUDA driver reserves tens of GB of virtual address space at start-up, so an address-space
    cap makes every CUDA task fail at ``cuInit``; resident host memory is what the cap protects.
    """

    interval_s = RSS_POLL_S

    def __init__(self, pid: int, cap_mb: int | None) -> None:
        self.status = Path(f"/proc/{pid}/status")
        self.cap_kb = cap_mb * 1024 if cap_mb else None
        if self.cap_kb is None:
            self.interval_s = 3600.0

    def check(self) -> None:
        if self.cap_kb is None:
            return
        try:
            lines = self.status.read_text().splitlines()
        except OSError:
            return  # already gone: the exit status tells the rest
        for line in lines:
            if line.startswith("VmRSS:") and int(line.split()[1]) > self.cap_kb:
                raise TaskOutOfMemory(f"task exceeded its {self.cap_kb // 1024} MB memory cap")


def _parse_event(line: bytes) -> Event:
    try:
        event = json.loads(line)
    except json.JSONDecodeError as exc:
        raise TaskFailed(f"task sent a malformed event: {line[:80]!r}") from exc
    if not isinstance(event, dict) or not isinstance(event.get("event"), str):
        raise TaskFailed(f"task sent a malformed event: {line[:80]!r}")
    return event


def _error_from_event(event: Event) -> WorkerError:
    reason = str(event.get("reason", "task-failed"))
    message = str(event.get("message", "task failed"))
    if reason == TaskOutOfMemory.reason:
        return TaskOutOfMemory(message)
    if event.get("spec_error"):
        return SpecError(message, reason=reason)
    return WorkerError(message, reason=reason)


def _error_from_exit(code: int, tail: str) -> WorkerError:
    # SIGKILL we did not send is the kernel's OOM killer; a failed allocation deep in C code
    # under RLIMIT_AS usually aborts (SIGABRT) or segfaults after malloc returns NULL.
    if code in (-signal.SIGKILL, -signal.SIGABRT, -signal.SIGSEGV, -signal.SIGBUS):
        return TaskOutOfMemory(f"task killed by signal {-code} (out of memory?); {tail}")
    return TaskFailed(f"task exited with status {code}: {tail}")


def _log_tail(log: BinaryIO) -> str:
    log.flush()
    log.seek(0, os.SEEK_END)
    size = log.tell()
    log.seek(max(0, size - LOG_TAIL_CHARS))
    text = log.read().decode("utf-8", "replace").strip()
    lines = [line for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else "no output"


def _kill_group(child: subprocess.Popen[bytes]) -> None:
    """Kill the child's whole session (it may have started data-loader processes)."""
    if child.poll() is not None:
        return
    try:
        os.killpg(child.pid, signal.SIGKILL)
    except ProcessLookupError:
        return
    try:
        child.wait(timeout=KILL_GRACE_S)
    except subprocess.TimeoutExpired:
        child.kill()
        child.wait()


# --------------------------------------------------------------------------- child side


def _child_main(event_fd: int) -> int:
    """Entry point of the task process: cap memory, run the task, report one final event."""
    events = os.fdopen(event_fd, "w", buffering=1)

    def emit(event: Event) -> None:
        events.write(json.dumps(event, separators=(",", ":")) + "\n")

    job: Any = {}
    try:
        job = json.loads(sys.stdin.read())
        if job.get("memory_mb") and job.get("device") != "cuda":
            limit = int(job["memory_mb"]) * 1024 * 1024
            resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
        from worker.tasks import run_builtin

        out = Path(job["out"])
        out.mkdir(parents=True)
        summary = run_builtin(job["task"], job["spec"], out, emit, job.get("device", "cpu"))
        emit({"event": "result", "summary": summary})
        return 0
    except MemoryError:
        emit({"event": "error", "reason": "task-oom", "message": _oom_message(job)})
        return 1
    except WorkerError as exc:
        spec_error = isinstance(exc, SpecError)
        emit({"event": "error", "reason": exc.reason, "message": str(exc), "spec_error": spec_error})
        return 1
    except RuntimeError as exc:
        # torch reports a refused allocation as RuntimeError ("can't allocate memory")
        if "allocate" in str(exc).lower():
            emit({"event": "error", "reason": "task-oom", "message": _oom_message(job)})
        else:
            emit({"event": "error", "reason": "task-failed", "message": _first_line(exc)})
        return 1
    except Exception as exc:  # noqa: BLE001 - the parent gets one named line, not a traceback
        emit({"event": "error", "reason": "task-failed", "message": _first_line(exc)})
        return 1
    finally:
        events.close()


def _oom_message(job: Any) -> str:
    cap = job.get("memory_mb") if isinstance(job, dict) else None
    return f"task ran out of memory under its {cap} MB cap" if cap else "task ran out of memory"


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}".rstrip(": ")


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--child":
        sys.exit(_child_main(int(sys.argv[2])))
    sys.exit("usage: python -m worker.runner --child FD (started by worker.runner.run_task)")
