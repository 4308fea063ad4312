"""`neuro wallet`: keys in the encrypted keystore (this module) and funds (`cli.wallet_funds`).

Nothing here needs a daemon. Raw seeds only cross the terminal on explicit request (`import --raw`,
`export --raw`), with a warning on stderr.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from cli.config import (
    NEW_PASSWORD_ENV,
    DatadirOpt,
    JsonOpt,
    KeystoreOpt,
    NetworkOpt,
    PasswordFileOpt,
    Where,
    read_password,
    warn_if_light_kdf,
)
from cli.output import CliError, console, fields, guarded, note, print_json, table, warn

if TYPE_CHECKING:
    from wallet.keyfile import KeyFile

wallet_app = typer.Typer(
    help="Keys and funds: create, import, export, balance, send, history.", no_args_is_help=True
)

NameArg = Annotated[str, typer.Argument(help="key name")]
OptionalNameArg = Annotated[
    str | None, typer.Argument(help="key name or address (default: the default key)")
]


def key_json(keyfile: KeyFile, default: str | None) -> dict[str, Any]:
    return {
        "name": keyfile.name,
        "address": keyfile.address,
        "public_key": keyfile.public_key.hex(),
        "created": keyfile.created,
        "default": keyfile.name == default,
        "kdf": {"name": "scrypt", "n": keyfile.kdf.n, "r": keyfile.kdf.r, "p": keyfile.kdf.p},
    }


@wallet_app.command("new")
@guarded
def new(
    name: NameArg,
    network: NetworkOpt = "main",
    datadir: DatadirOpt = None,
    keystore: KeystoreOpt = None,
    password_file: PasswordFileOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Create a new random key, encrypted with a password (asked twice)."""
    store = Where(network, datadir, keystore).keystore()
    from wallet.keystore import check_name

    check_name(name)
    password = read_password(password_file, confirm=True)
    warn_if_light_kdf()
    keyfile = store.create(name, password)
    _report_key(keyfile, store.default_name(), json_out, "created")


@wallet_app.command("list")
@guarded
def list_keys(
    network: NetworkOpt = "main",
    datadir: DatadirOpt = None,
    keystore: KeystoreOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """List the keys in the keystore."""
    store = Where(network, datadir, keystore).keystore()
    keys, default = store.list(), store.default_name()
    if json_out:
        print_json([key_json(keyfile, default) for keyfile in keys])
        return
    if not keys:
        note(f"no keys in {store.path}: create one with `neuro wallet new NAME`")
        return
    rows = [("*" if k.name == default else "", k.name, k.address, k.created) for k in keys]
    table(f"keys in {store.path}", ("default", "name", "address", "created"), rows)


@wallet_app.command("show")
@guarded
def show(
    name: OptionalNameArg = None,
    network: NetworkOpt = "main",
    datadir: DatadirOpt = None,
    keystore: KeystoreOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Show a key's address and public data (never its seed)."""
    store = Where(network, datadir, keystore).keystore()
    _report_key(store.resolve(name), store.default_name(), json_out, None)


def _report_key(keyfile: KeyFile, default: str | None, json_out: bool, verb: str | None) -> None:
    data = key_json(keyfile, default)
    if json_out:
        print_json(data)
        return
    if verb:
        note(f"[green]{verb}[/green] key {keyfile.name}")
    kdf = data["kdf"]
    fields(
        None,
        [
            ("name", keyfile.name),
            ("address", keyfile.address),
            ("public key", data["public_key"]),
            ("created", keyfile.created),
            ("default", "yes" if data["default"] else "no"),
            ("kdf", f"scrypt n=2^{kdf['n'].bit_length() - 1} r={kdf['r']} p={kdf['p']}"),
        ],
    )


@wallet_app.command("import")
@guarded
def import_key(
    name: NameArg,
    keyfile_path: Annotated[
        Path | None, typer.Option("--file", help="an exported key file")
    ] = None,
    raw: Annotated[
        bool, typer.Option("--raw", help="import a raw hex seed (asked hidden, or --raw-file)")
    ] = False,
    raw_file: Annotated[
        Path | None,
        typer.Option("--raw-file", help="read the hex seed from this file ('-' for stdin)"),
    ] = None,
    network: NetworkOpt = "main",
    datadir: DatadirOpt = None,
    keystore: KeystoreOpt = None,
    password_file: PasswordFileOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Import a key: an encrypted key file (--file, same password), or a raw hex seed (--raw)."""
    from wallet.keys import Key
    from wallet.keystore import check_name

    store = Where(network, datadir, keystore).keystore()
    check_name(name)
    if (keyfile_path is None) == (not raw and raw_file is None):
        raise CliError("give exactly one of --file KEYFILE, --raw or --raw-file PATH", "bad-usage")
    if keyfile_path is not None:
        password = read_password(password_file, prompt="Password of the key file")
        warn_if_light_kdf()
        keyfile = store.import_file(name, keyfile_path, password)
    else:
        key = Key.from_hex(_read_seed(raw_file))
        warn("importing a raw seed: anyone who saw it can spend from this key; prefer key files")
        password = read_password(password_file, confirm=True)
        warn_if_light_kdf()
        keyfile = store.create(name, password, key)
    _report_key(keyfile, store.default_name(), json_out, "imported")


def _read_seed(raw_file: Path | None) -> str:
    if raw_file is None:
        if not sys.stdin.isatty():
            raise CliError("no seed: pass --raw-file PATH or '-' for stdin", "no-seed")
        text: str = typer.prompt("Hex seed", hide_input=True)
        return text
    if str(raw_file) == "-":
        return sys.stdin.readline()
    try:
        return raw_file.read_text()
    except OSError as exc:
        raise CliError(f"cannot read {raw_file}: {exc.strerror}", "io-error") from None


@wallet_app.command("export")
@guarded
def export(
    name: OptionalNameArg = None,
    out: Annotated[Path | None, typer.Option("--out", help="write here (default: stdout)")] = None,
    raw: Annotated[bool, typer.Option("--raw", help="print the UNENCRYPTED hex seed")] = False,
    yes: Annotated[
        bool, typer.Option("--yes", help="do not ask before printing a raw seed")
    ] = False,
    network: NetworkOpt = "main",
    datadir: DatadirOpt = None,
    keystore: KeystoreOpt = None,
    password_file: PasswordFileOpt = None,
) -> None:
    """Export a key: its encrypted key file, or with --raw the bare seed (needs the password)."""
    store = Where(network, datadir, keystore).keystore()
    keyfile = store.resolve(name)
    if not raw:
        _write_out(out, store.export_file(keyfile.name))
        return
    warn(f"the raw seed of {keyfile.name!r} controls its funds: never share it or paste it online")
    if not yes:
        if not sys.stdin.isatty():
            raise CliError(
                "refusing to print a raw seed without a terminal: add --yes", "not-confirmed"
            )
        typer.confirm("Print the raw seed?", abort=True)
    key = store.unlock(keyfile.name, read_password(password_file))
    _write_out(out, (key.seed.hex() + "\n").encode())


def _write_out(out: Path | None, data: bytes) -> None:
    if out is None:
        sys.stdout.write(data.decode())
        sys.stdout.flush()
        return
    from wallet.keyfile import write_atomic
    from wallet.keys import WalletError

    try:
        write_atomic(out.expanduser().absolute(), data, overwrite=False)
    except WalletError:
        raise CliError(f"{out} exists: choose another --out", "file-exists") from None
    note(f"wrote {out}")


@wallet_app.command("rename")
@guarded
def rename(
    old: NameArg,
    new: Annotated[str, typer.Argument(help="new name")],
    network: NetworkOpt = "main",
    datadir: DatadirOpt = None,
    keystore: KeystoreOpt = None,
    password_file: PasswordFileOpt = None,
) -> None:
    """Rename a key (its name is authenticated by the encryption, so this needs the password)."""
    store = Where(network, datadir, keystore).keystore()
    store.load(old)
    from wallet.keystore import check_name

    check_name(new)
    store.rename(old, new, read_password(password_file))
    console.print(f"renamed {old} -> {new}")


@wallet_app.command("default")
@guarded
def default(
    name: Annotated[str | None, typer.Argument(help="make this key the default")] = None,
    network: NetworkOpt = "main",
    datadir: DatadirOpt = None,
    keystore: KeystoreOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Show the default key, or set it."""
    store = Where(network, datadir, keystore).keystore()
    if name is not None:
        store.set_default(name)
    current = store.default_name()
    if json_out:
        print_json({"default": current})
    elif current is None:
        note("no default key")
    else:
        console.print(current)


@wallet_app.command("passwd")
@guarded
def passwd(
    name: OptionalNameArg = None,
    new_password_file: Annotated[
        Path | None, typer.Option("--new-password-file", help="or set NEURO_NEW_PASSWORD")
    ] = None,
    network: NetworkOpt = "main",
    datadir: DatadirOpt = None,
    keystore: KeystoreOpt = None,
    password_file: PasswordFileOpt = None,
) -> None:
    """Change a key's password (the file is replaced atomically)."""
    store = Where(network, datadir, keystore).keystore()
    keyfile = store.resolve(name)
    old = read_password(password_file, prompt="Current password")
    store.unlock(keyfile.name, old)
    new_password = read_password(
        new_password_file, env=NEW_PASSWORD_ENV, confirm=True, prompt="New password"
    )
    store.change_password(keyfile.name, old, new_password)
    console.print(f"password of {keyfile.name} changed")
