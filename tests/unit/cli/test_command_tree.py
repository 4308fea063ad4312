"""The whole `neuro` command tree: every read command takes `--json`, help shows flags as flags,
and `--version` answers (issue 16, findings 9 and 10).

A read command is one that only reports: every command is one unless it is listed in
`CHANGES_STATE` (it changes the chain, a store, the keystore or a devnet, or writes a file that is
its product), so a new command is checked for `--json` unless someone says why not.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import typer.main
from typer.testing import CliRunner

from cli.main import app
from neurod.version import version

CHANGES_STATE = frozenset({
    "ui",
    "wallet new", "wallet import", "wallet export", "wallet rename", "wallet passwd", "wallet send",
    "wallet redeem", "wallet sell-buyback",
    "tx build", "tx bid", "tx sign", "tx send",
    "task run", "label review",
    "devnet up", "devnet faucet", "devnet down", "devnet demo",
    "artifact import", "artifact export", "artifact pin", "artifact rm", "artifact fetch",
    "job submit", "job fetch", "job cancel", "job loop",
    "stake add", "stake remove",
    "market sell", "market delist", "market buy",
    "treasury voucher issue", "treasury buyback offer",
})


def commands() -> Iterator[tuple[str, Any]]:
    """(path, click command) of every leaf of the tree."""
    root = typer.main.get_command(app)
    context = type(root).context_class(root)

    def walk(command: Any, path: list[str]) -> Iterator[tuple[str, Any]]:
        if hasattr(command, "list_commands"):
            for name in command.list_commands(context):
                yield from walk(command.get_command(context, name), [*path, name])
        else:
            yield " ".join(path), command

    return walk(root, [])


ALL = dict(commands())
READ = sorted(set(ALL) - CHANGES_STATE)


def test_the_list_of_state_changing_commands_names_real_commands() -> None:
    assert CHANGES_STATE <= set(ALL), sorted(CHANGES_STATE - set(ALL))
    assert len(READ) >= 30  # the tree was walked, not found empty


@pytest.mark.parametrize("path", READ)
def test_every_read_command_takes_json(path: str) -> None:
    options = {opt for param in ALL[path].params for opt in getattr(param, "opts", ())}
    assert "--json" in options, f"`neuro {path}` reports but has no --json"


@pytest.mark.parametrize("path", sorted(ALL))
def test_help_shows_flags_without_a_type(path: str) -> None:
    shown = CliRunner().invoke(app, [*path.split(), "--help"], terminal_width=200)
    assert shown.exit_code == 0, shown.output
    assert "<bool>" not in shown.output, shown.output
    assert "--help" in shown.output


def test_version() -> None:
    shown = CliRunner().invoke(app, ["--version"])
    assert (shown.exit_code, shown.output.strip()) == (0, f"neuro {version()}")


def test_neurod_version(capsys: pytest.CaptureFixture[str]) -> None:
    from neurod.main import parse_args

    with pytest.raises(SystemExit) as done:
        parse_args(["--version"])
    assert done.value.code == 0 and capsys.readouterr().out.strip() == f"neurod {version()}"
