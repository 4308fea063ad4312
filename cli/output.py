"""How the CLI talks to people and scripts: rich tables, `--json`, and one-line errors.

Every command is wrapped by `guarded`: whatever goes wrong ends as ONE line on stderr,
`error (<reason>): <message>`, and exit code 1 — a known error with its own reason and hint, an
unexpected one with its type, never a traceback. Scripts read `--json` on stdout.
"""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable, Iterable, Sequence
from typing import Any, NoReturn, ParamSpec, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

P = ParamSpec("P")
R = TypeVar("R")

# Piped output is read by people too (`| less`, logs): do not fold 64-hex hashes at 80 columns.
PIPE_WIDTH = 200
console = Console(highlight=False, width=None if sys.stdout.isatty() else PIPE_WIDTH)
errors = Console(stderr=True, highlight=False, soft_wrap=True)

EXIT_ERROR = 1
# What to do next, by reason: appended to the message so one line says the cause and the fix.
HINTS = {
    "wrong-password": "check --password-file / NEURO_PASSWORD",
    "insufficient-balance": "check `neuro wallet balance`",
    "nonce-too-low": "that nonce was already used (a replay, or a stale --nonce)",
    "fee-too-low": "raise --fee",
}


class CliError(Exception):
    """Base of the CLI's own errors; ``reason`` is kebab-case, as in every package."""

    def __init__(self, message: str, reason: str = "cli-error") -> None:
        self.reason = reason
        super().__init__(message)


def fail(message: str, reason: str) -> NoReturn:
    hint = HINTS.get(reason)
    text = f"{message}; {hint}" if hint and hint not in message else message
    errors.print(f"[red]error[/red] ({reason}): {_one_line(text)}", markup=True)
    raise typer.Exit(code=EXIT_ERROR)


def _one_line(text: str) -> str:
    return escape(" ".join(text.split()))


def guarded(command: Callable[P, R]) -> Callable[P, R]:
    """Turn every exception of ``command`` into a one-line error and exit code 1."""

    @functools.wraps(command)
    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        from chain.errors import ChainError
        from wallet.keys import WalletError
        from wallet.node_client import NodeClientError

        try:
            return command(*args, **kwargs)
        except (typer.Exit, typer.Abort, SystemExit):
            raise
        except (CliError, WalletError, NodeClientError) as exc:
            fail(str(exc), exc.reason)
        except ChainError as exc:
            fail(exc.detail or exc.reason, exc.reason)
        except KeyboardInterrupt:
            fail("interrupted", "interrupted")
        except OSError as exc:
            where = f" {exc.filename}" if exc.filename else ""
            fail(f"{exc.strerror or exc}{where}".strip(), "io-error")
        except Exception as exc:  # noqa: BLE001 - the last line of defence: still one line
            fail(f"unexpected {type(exc).__name__}: {exc}", "internal-error")

    return run


def show_flags_as_flags() -> None:
    """Help lists an on/off option as `--json`, not `--json <bool>`: typer's rich help prints every
    option's type, a flag's too (typer 0.29 with click 8.5); click's own help never did."""
    from typer.core import TyperOption

    shown = TyperOption.display_type_rich
    if getattr(shown, "flags_hidden", False):
        return

    def display_type_rich(self: TyperOption, ctx: Any) -> str | None:
        return None if self.is_flag and not self.count else shown(self, ctx)

    display_type_rich.flags_hidden = True  # type: ignore[attr-defined]
    TyperOption.display_type_rich = display_type_rich  # type: ignore[method-assign]


def print_json(value: Any) -> None:
    """JSON on stdout exactly (no rich markup or wrapping), for scripts."""
    sys.stdout.write(json.dumps(value, indent=2, sort_keys=False) + "\n")
    sys.stdout.flush()


def table(title: str | None, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    view = Table(title=title, title_justify="left", header_style="bold cyan")
    for column in columns:
        view.add_column(column, overflow="fold")
    for row in rows:
        view.add_row(*(_cell(cell) for cell in row))
    console.print(view)


def _cell(value: Any) -> Text:
    """Data is shown as is (a `[` in a key name is not markup); pass a `Text` to style a cell."""
    return value if isinstance(value, Text) else Text(str(value))


def fields(title: str | None, items: Iterable[tuple[str, Any]]) -> None:
    """A two-column key/value view of one object."""
    view = Table(title=title, title_justify="left", show_header=False, box=None, padding=(0, 2))
    view.add_column(style="bold")
    view.add_column(overflow="fold")
    for name, value in items:
        view.add_row(name, _cell(value))
    console.print(view)


def note(message: str) -> None:
    """Progress or a warning for people: stderr, so stdout stays clean for pipes."""
    errors.print(message, markup=True)


def warn(message: str) -> None:
    errors.print(f"[yellow]warning[/yellow]: {message}", markup=True)
