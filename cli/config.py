"""Where the CLI's inputs come from: network, data dir, keystore, daemon URL, cookie, passwords.

Precedence is option > environment variable > config file > default, as bitcoin-cli does:
`--network` / NEURO_NETWORK (main), `--datadir` / NEURO_DATADIR (`$NEURO_HOME/<network>`, as
neurod, with NEURO_HOME defaulting to `~/.neuro`),
`--keystore` / NEURO_KEYSTORE (else `keystore` in the config file, else
`$NEURO_HOME/keystore/<network>`), `--rpc` / NEURO_RPC (else the
`rpc_url` the daemon wrote to `<datadir>/node.json`), NEURO_RPC_COOKIE (else `<datadir>/.cookie`),
`--password-file` / NEURO_PASSWORD (else a hidden prompt on a terminal).

The CLI's config file is `$NEURO_HOME/neuro.toml` (neurod's own is `<datadir>/config.toml`). It
holds the key directory: `keystore = "..."` for every network, or in a `[devnet]` / `[main]`
table for that network alone, which wins; a relative path is relative to the file, `~` is home.

Keys live outside every node's data dir, so removing or recreating a node (`neuro devnet up
--fresh`) never touches them. Keys that an older version kept in `<datadir>/keystore` are copied
to the new place on first use, with a note; the old files stay where they were.
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
    from wallet.node_client import RpcTarget

NETWORKS = ("main", "devnet")
LIGHT_KDF_ENV = "NEURO_KEYSTORE_LIGHT_KDF"
PASSWORD_ENV = "NEURO_PASSWORD"
NEW_PASSWORD_ENV = "NEURO_NEW_PASSWORD"
COOKIE_ENV = "NEURO_RPC_COOKIE"
CLI_CONFIG_FILE = "neuro.toml"  # in $NEURO_HOME

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
        "--keystore",
        envvar="NEURO_KEYSTORE",
        help="key directory (else `keystore` in $NEURO_HOME/neuro.toml, else "
        "$NEURO_HOME/keystore/<network>, outside every data dir)",
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
    def home(self) -> Path:
        return Path(os.environ.get("NEURO_HOME", Path.home() / ".neuro")).expanduser()

    @cached_property
    def datadir(self) -> Path:
        if self.datadir_option is not None:
            return self.datadir_option.expanduser()
        return self.home / self.network

    @cached_property
    def genesis(self) -> Genesis:
        """The network's genesis; a devnet's own (`<datadir>/genesis.json`, made by neurod with a
        fresh time) when the data dir has one."""
        from chain.genesis import load_genesis

        own = self.datadir / "genesis.json"
        if self.network == "devnet" and own.exists():
            return load_genesis(own)
        return load_genesis(self.network)

    @property
    def hrp(self) -> str:
        return self.genesis.params.hrp

    def keystore(self) -> Keystore:
        from wallet.keyfile import KdfParams
        from wallet.keystore import Keystore

        kdf = KdfParams.light() if os.environ.get(LIGHT_KDF_ENV) == "1" else KdfParams.standard()
        if self.keystore_option is not None:
            return Keystore(self.keystore_option.expanduser(), self.hrp, kdf)
        path = configured_keystore(self.home / CLI_CONFIG_FILE, self.network)
        store = Keystore(path or self.home / "keystore" / self.network, self.hrp, kdf)
        adopt_legacy_keys(store, Keystore(self.datadir / "keystore", self.hrp, kdf))
        return store

    def start_hint(self) -> str:
        """How to start this daemon: `neuro devnet up` for a node of a devnet cluster."""
        cluster = self.datadir.expanduser().resolve().parent
        if (cluster / "devnet.json").exists():
            return "neuro devnet up" + ("" if cluster.name == "devnet-cluster" else f" --dir {cluster}")
        return f"neurod --network {self.network}"

    def rpc(self) -> RpcTarget:
        """The daemon's URL and cookie: from --rpc/NEURO_RPC, else the node.json it wrote."""
        from wallet.node_client import RpcTarget

        cookie_env = os.environ.get(COOKIE_ENV)
        cookie = Path(cookie_env).expanduser() if cookie_env else self.datadir / ".cookie"
        if self.rpc_option:
            return RpcTarget(self.rpc_option, cookie, self.network, self.start_hint())
        node_file = self.datadir / "node.json"
        try:
            url = json.loads(node_file.read_text())["rpc_url"]
        except FileNotFoundError:
            raise CliError(
                f"neurod is not running for {self.datadir} (no node.json there): start it with "
                f"`{self.start_hint()}`, or pass --rpc URL / --datadir",
                "daemon-not-running",
            ) from None
        except (OSError, ValueError, KeyError, TypeError):
            raise CliError(
                f"{node_file} is unreadable or has no rpc_url: pass --rpc URL", "bad-node-file"
            ) from None
        if not isinstance(url, str):
            raise CliError(f"{node_file}: rpc_url is not a string", "bad-node-file")
        return RpcTarget(url, cookie, self.network, self.start_hint())


def configured_keystore(config_file: Path, network: str) -> Path | None:
    """The key directory the CLI's config file sets for ``network`` (module docstring), or None
    when there is no file or it sets none."""
    import tomllib

    try:
        settings = tomllib.loads(config_file.read_text())
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise CliError(f"{config_file} is unreadable: {exc}", "bad-config") from None
    section = settings.get(network, {})
    if not isinstance(section, dict):
        raise CliError(f"{config_file}: [{network}] must be a table", "bad-config")
    value = section.get("keystore", settings.get("keystore"))
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise CliError(f"{config_file}: keystore must be a path string, got {value!r}", "bad-config")
    return config_file.parent / Path(value).expanduser()


def adopt_legacy_keys(store: Keystore, legacy: Keystore) -> None:
    """Copy keys an older version kept in `<datadir>/keystore` into ``store`` (files byte for byte,
    names kept; one already there by name is left alone), and say so once. Nothing is deleted."""
    import shutil

    if legacy.path.resolve() == store.path.resolve():
        return
    missing = [name for name in legacy.names() if not store.file_of(name).exists()]
    if not missing:
        return
    store.ensure_dir()
    for name in missing:
        shutil.copy2(legacy.file_of(name), store.file_of(name))
    if store.default_name() is None and legacy.default_name() is not None:
        store.set_default(str(legacy.default_name()))
    warn(
        f"keys now live in {store.path}, outside the data dir: copied {', '.join(missing)} there from "
        f"{legacy.path} (the old files are still there; delete them yourself once you have checked)"
    )


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
