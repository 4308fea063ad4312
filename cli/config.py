"""Where the CLI's inputs come from: network, data dir, keystore, daemon URL, cookie, passwords.

Precedence is option > environment variable > default, as bitcoin-cli does:
`--network` / NEURO_NETWORK (main), `--datadir` / NEURO_DATADIR (`$NEURO_HOME/<network>`, as
neurod, with NEURO_HOME defaulting to `~/.neuro`),
`--keystore` / NEURO_KEYSTORE (`<datadir>/keystore`), `--rpc` / NEURO_RPC (else the `rpc_url` the
daemon wrote to `<datadir>/node.json`), NEURO_RPC_COOKIE (else `<datadir>/.cookie`),
`--password-file` / NEURO_PASSWORD (else a hidden prompt on a terminal).
"""

from __future__ import annotations

import hmac
import json
import os
import sys
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from cli.output import CliError, warn

if TYPE_CHECKING:
    from chain.genesis import Genesis
    from wallet.keystore import Keystore

NETWORKS = ("main", "devnet")
LIGHT_KDF_ENV = "NEURO_KEYSTORE_LIGHT_KDF"
PASSWORD_ENV = "NEURO_PASSWORD"
NEW_PASSWORD_ENV = "NEURO_NEW_PASSWORD"
COOKIE_ENV = "NEURO_RPC_COOKIE"

NetworkOpt = Annotated[
    str, typer.Option("--network", envvar="NEURO_NETWORK", help="main | devnet", show_default=True)
]
DatadirOpt = Annotated[
    Path | None,
    typer.Option(
        "--datadir",
        envvar="NEURO_DATADIR",
        help="data dir (default: $NEURO_HOME/<network>, NEURO_HOME=~/.neuro)",
    ),
]
KeystoreOpt = Annotated[
    Path | None,
    typer.Option(
        "--keystore", envvar="NEURO_KEYSTORE", help="key directory (default: <datadir>/keystore)"
    ),
]
RpcOpt = Annotated[
    str | None,
    typer.Option(
        "--rpc", envvar="NEURO_RPC", help="daemon URL (default: from <datadir>/node.json)"
    ),
]
PasswordFileOpt = Annotated[
    Path | None,
    typer.Option(
        "--password-file", help="read the password from this file (or set NEURO_PASSWORD)"
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="print JSON for scripts")]


@dataclass(frozen=True)
class Where:
    """The network and directories a command works on, resolved once from options and env."""

    network: str
    datadir_option: Path | None = None
    keystore_option: Path | None = None
    rpc_option: str | None = None

    def __post_init__(self) -> None:
        if self.network not in NETWORKS:
            raise CliError(
                f"unknown network {self.network!r}: choose {' or '.join(NETWORKS)}", "bad-network"
            )

    @cached_property
    def datadir(self) -> Path:
        if self.datadir_option is not None:
            return self.datadir_option.expanduser()
        return (
            Path(os.environ.get("NEURO_HOME", Path.home() / ".neuro")).expanduser() / self.network
        )

    @cached_property
    def genesis(self) -> Genesis:
        from chain.genesis import load_genesis

        return load_genesis(self.network)

    @property
    def hrp(self) -> str:
        return self.genesis.params.hrp

    def keystore(self) -> Keystore:
        from wallet.keyfile import KdfParams
        from wallet.keystore import Keystore

        path = (self.keystore_option or self.datadir / "keystore").expanduser()
        kdf = KdfParams.light() if os.environ.get(LIGHT_KDF_ENV) == "1" else KdfParams.standard()
        return Keystore(path, self.hrp, kdf)

    def rpc(self) -> RpcTarget:
        """The daemon's URL and cookie: from --rpc/NEURO_RPC, else the node.json it wrote."""
        cookie_env = os.environ.get(COOKIE_ENV)
        cookie = Path(cookie_env).expanduser() if cookie_env else self.datadir / ".cookie"
        if self.rpc_option:
            return RpcTarget(self.rpc_option, cookie, self.network)
        node_file = self.datadir / "node.json"
        try:
            url = json.loads(node_file.read_text())["rpc_url"]
        except FileNotFoundError:
            raise CliError(
                f"neurod is not running for {self.datadir} (no node.json there): start it with "
                f"`neurod --network {self.network}`, or pass --rpc URL / --datadir",
                "daemon-not-running",
            ) from None
        except (OSError, ValueError, KeyError, TypeError):
            raise CliError(
                f"{node_file} is unreadable or has no rpc_url: pass --rpc URL", "bad-node-file"
            ) from None
        if not isinstance(url, str):
            raise CliError(f"{node_file}: rpc_url is not a string", "bad-node-file")
        return RpcTarget(url, cookie, self.network)


@dataclass(frozen=True, slots=True)
class RpcTarget:
    url: str
    cookie: Path
    network: str


def read_password(
    password_file: Path | None,
    *,
    env: str = PASSWORD_ENV,
    confirm: bool = False,
    prompt: str = "Password",
) -> str:
    """The password from a file, the environment, or a hidden prompt (typed twice if ``confirm``).

    Without a terminal and without a file or env value this is an error, not a silent hang.
    """
    if password_file is not None:
        try:
            text = password_file.expanduser().read_text()
        except OSError as exc:
            raise CliError(
                f"cannot read password file {password_file}: {exc.strerror}", "io-error"
            ) from None
        return text.rstrip("\r\n")
    if env in os.environ:
        return os.environ[env]
    if not sys.stdin.isatty():
        raise CliError(
            f"no password: pass --password-file or set {env} (stdin is not a terminal)",
            "no-password",
        )
    first: str = typer.prompt(prompt, hide_input=True)
    if confirm:
        again: str = typer.prompt("Repeat to confirm", hide_input=True)
        if not hmac.compare_digest(first.encode(), again.encode()):
            raise CliError("the two passwords differ", "password-mismatch")
    return first


def warn_if_light_kdf() -> None:
    if os.environ.get(LIGHT_KDF_ENV) == "1":
        warn(f"{LIGHT_KDF_ENV}=1: this key uses a test-only weak KDF; never use it for real funds")
