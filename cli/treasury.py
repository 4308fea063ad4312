"""Vouchers and buybacks: `neuro treasury voucher issue|status`, `neuro treasury buyback
offer|list|claims` for the treasury key holder, and `neuro wallet redeem VOUCHER` and
`neuro wallet sell-buyback OFFER AMOUNT` for everyone (chain/treasury_types.py has the rules).

Every command checks what it can before it asks for a password or sends anything: a voucher's
string and check, its chain, its beneficiary, its expiry and whether it was redeemed already; an
offer's cap and expiry. On a devnet the treasury's key is the well-known one
(`chain.devnet_keys`), used when no --from is given.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from cli.config import (
    DatadirOpt,
    JsonOpt,
    KeystoreOpt,
    NetworkOpt,
    PasswordFileOpt,
    RpcOpt,
    Where,
    read_password,
)
from cli.output import CliError, fields, guarded, note, print_json, table
from cli.tx import (
    DEFAULT_FEE_NTK,
    FeeOpt,
    WaitOpt,
    address_of,
    client,
    online_chain_id,
    send_payload,
)
from cli.wallet import wallet_app

if TYPE_CHECKING:
    from chain.treasury_types import VoucherTicket
    from wallet.keys import Key
    from wallet.node_client import RpcClient

treasury_app = typer.Typer(help="The treasury's vouchers (token sales) and buyback offers.", no_args_is_help=True)
voucher_app = typer.Typer(help="Issue vouchers (treasury key) and check them.", no_args_is_help=True)
buyback_app = typer.Typer(help="Post buyback offers (treasury key), list them and their claims.",
                          no_args_is_help=True)
treasury_app.add_typer(voucher_app, name="voucher")
treasury_app.add_typer(buyback_app, name="buyback")

DEFAULT_EXPIRY = "30d"
_DURATION = re.compile(r"(\d+)([smhd])")
_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86_400}
FromOpt = Annotated[str | None, typer.Option("--from", help="key name (default: the default key)")]
TreasuryFromOpt = Annotated[str | None, typer.Option(
    "--from", help="the treasury's key name in the keystore (devnet: the well-known key when not given)")]
ExpiresOpt = Annotated[str, typer.Option(
    "--expires", help="a block height (e.g. 5000) or a time from now: 90m, 12h, 30d (in blocks of the network)")]


def expiry_height(text: str, tip: int, block_time: int) -> int:
    """The last valid height: ``text`` itself when a number, else the tip plus a duration's blocks."""
    clean = text.strip().lower()
    if clean.isdecimal():
        height = int(clean)
        if height <= tip:
            raise CliError(f"--expires {height} is not after the tip ({tip})", "expiry-past")
        return height
    match = _DURATION.fullmatch(clean)
    if match is None:
        raise CliError(f"--expires {text!r}: a height or a duration such as 90m, 12h, 30d", "bad-expiry")
    seconds = int(match[1]) * _SECONDS[match[2]]
    return tip + max(1, seconds // block_time)


MAX_VOUCHER_FILE = 16 * 1024  # a ticket is a few hundred characters: anything larger is not one


def read_voucher(text: str) -> VoucherTicket:
    """A voucher ticket from its string, or from a file holding it (read only if it is small
    text: a voucher refused is `bad-voucher`, never an OS or codec error)."""
    from wallet.treasury_json import parse_voucher

    value = text.strip()
    if not value.startswith("ntkv1") and _is_file(value):
        try:
            with open(Path(value).expanduser(), "rb") as handle:
                raw = handle.read(MAX_VOUCHER_FILE + 1)
        except OSError as exc:
            raise CliError(f"cannot read {value}: {exc.strerror}", "io-error") from None
        try:
            if len(raw) > MAX_VOUCHER_FILE:
                raise ValueError
            text = raw.decode("ascii")
        except ValueError:
            raise CliError(f"{value} holds no voucher (a voucher file is one line of text starting with ntkv1)",
                           "bad-voucher") from None
    return parse_voucher(text)


def _is_file(value: str) -> bool:
    try:
        return Path(value).expanduser().is_file()
    except (OSError, ValueError):  # a name too long for the OS, a NUL byte: not a file, so a string
        return False


def _treasury_key(where: Where, sender: str | None, password_file: Path | None) -> Key:
    """The key that signs for the treasury: a keystore key, or on a devnet the well-known one."""
    from chain.devnet_keys import devnet_seed
    from wallet.keys import Key

    if sender is None and where.network == "devnet":
        return Key(devnet_seed("treasury"))
    store = where.keystore()
    keyfile = store.resolve(sender)
    return store.unlock(keyfile.name, read_password(password_file))


def _check_treasury(rpc_client: RpcClient, key: Key, hrp: str) -> None:
    treasury = rpc_client.call("chain_supply").get("treasury")
    if treasury is None:
        raise CliError("this network's genesis names no treasury", "no-treasury")
    if key.address(hrp) != treasury:
        raise CliError(f"{key.address(hrp)} is not the treasury ({treasury}): the chain would refuse it",
                       "not-treasury")


# ---- vouchers ----------------------------------------------------------------------------------


def signed_voucher(chain_id: bytes, key: Key, amount: int, beneficiary: bytes, expiry: int) -> VoucherTicket:
    """A voucher of ``amount`` base units on chain ``chain_id``, signed by the treasury's ``key``,
    redeemable through block ``expiry``: by the account ``beneficiary`` alone, or (``b""``) by
    whoever holds the ticket, which then carries the claim key's secret."""
    from chain.crypto import public_key_of
    from chain.treasury_types import Voucher, VoucherTicket

    claim_seed = b"" if beneficiary else os.urandom(32)
    claim_key = public_key_of(claim_seed) if claim_seed else b""
    voucher = Voucher(chain_id, os.urandom(16), amount, beneficiary, expiry, key.public_key, claim_key).signed(key.seed)
    return VoucherTicket(voucher, claim_seed)


@voucher_app.command("issue")
@guarded
def voucher_issue(
    amount: Annotated[str, typer.Argument(help="NTK the voucher pays (the redeemer's fee comes out of it)")],
    to: Annotated[str | None, typer.Option("--to", help="the only address that may redeem it (default: anyone "
                                                         "holding the string)")] = None,
    expires: ExpiresOpt = DEFAULT_EXPIRY,
    sender: TreasuryFromOpt = None,
    out: Annotated[Path | None, typer.Option("--out", help="also write the voucher string to this file")] = None,
    network: NetworkOpt = "main",
    datadir: DatadirOpt = None,
    keystore: KeystoreOpt = None,
    rpc: RpcOpt = None,
    password_file: PasswordFileOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Sign a voucher with the treasury's key: one string to hand the buyer (nothing is sent). It
    holds the secret that claims the voucher, unless --to names the only account that may: keep it
    as private as the money."""
    from chain.crypto import decode_address
    from wallet.payload_json import ntk_param
    from wallet.treasury_json import voucher_json

    where = Where(network, datadir, keystore, rpc)
    units = ntk_param(amount, "amount")
    beneficiary = decode_address(address_of(where, to), where.hrp) if to is not None else b""
    rpc_client = client(where)
    chain_id = online_chain_id(rpc_client, where)
    expiry = expiry_height(expires, int(rpc_client.call("chain_head")["height"]), where.genesis.params.target_block_time)
    key = _treasury_key(where, sender, password_file)
    _check_treasury(rpc_client, key, where.hrp)
    ticket = signed_voucher(chain_id, key, units, beneficiary, expiry)
    voucher, text = ticket.voucher, ticket.to_text()
    if out is not None:
        out.write_text(text + "\n")
    if json_out:
        print_json({"voucher": text, **voucher_json(voucher, where.hrp), "chain": chain_id.hex()})
        return
    if out is not None:
        note(f"wrote {out}")
    note(f"{amount} NTK, valid through block {expiry}" + (f", for {to}" if to else ", for whoever holds it"))
    typer.echo(text)


@voucher_app.command("status")
@guarded
def voucher_status(
    voucher: Annotated[str, typer.Argument(help="the voucher string, a file holding it, or its id (32 hex)")],
    network: NetworkOpt = "main",
    datadir: DatadirOpt = None,
    rpc: RpcOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Whether a voucher was redeemed, when and by whom (and, given the voucher, if it is still good)."""
    where = Where(network, datadir, None, rpc)
    wanted = voucher.strip() if len(voucher.strip()) == 32 else read_voucher(voucher).voucher.encode().hex()
    found = client(where).call("voucher_status", voucher=wanted)
    if json_out:
        print_json(found)
        return
    rows: list[tuple[str, Any]] = [("voucher", found["voucher_id"]), ("amount", f"{found['amount_ntk']} NTK")]
    if found["redeemed"]:
        rows += [("status", f"redeemed in block {found['height']}"), ("by", found["account"]),
                 ("fee", f"{found['fee_ntk']} NTK")]
    elif "expired" in found:
        rows += [("status", "expired" if found["expired"] else "not redeemed"), ("expiry", found["expiry"]),
                 ("beneficiary", found["beneficiary"] or "anyone holding it")]
    else:
        rows.append(("status", "not redeemed"))
    fields(None, rows)


@wallet_app.command("redeem")
@guarded
def redeem(
    voucher: Annotated[str, typer.Argument(help="the voucher string (ntkv1...) or a file holding it")],
    sender: FromOpt = None,
    fee: FeeOpt = DEFAULT_FEE_NTK,
    wait: WaitOpt = None,
    network: NetworkOpt = "main",
    datadir: DatadirOpt = None,
    keystore: KeystoreOpt = None,
    rpc: RpcOpt = None,
    password_file: PasswordFileOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Redeem a treasury voucher into a key's account in one step (the default key): the fee is paid
    out of the voucher, so an empty, new account can redeem it."""
    from chain.amounts import format_ntk
    from chain.crypto import decode_address, encode_address
    from wallet.payload_json import ntk_param

    where = Where(network, datadir, keystore, rpc)
    ticket = read_voucher(voucher)
    decoded = ticket.voucher
    store = where.keystore()
    keyfile = store.resolve(sender)
    if ntk_param(fee, "fee") > decoded.amount:
        raise CliError(f"the fee {fee} NTK is more than the voucher's {format_ntk(decoded.amount)} NTK",
                       "fee-above-voucher")
    if decoded.beneficiary and encode_address(decoded.beneficiary, where.hrp) != keyfile.address:
        raise CliError(f"this voucher is for {encode_address(decoded.beneficiary, where.hrp)}, not {keyfile.name} "
                       f"({keyfile.address}): redeem it with that key (--from)", "voucher-beneficiary-mismatch")
    rpc_client = client(where)
    if decoded.chain_id != online_chain_id(rpc_client, where):
        raise CliError(f"this voucher pays on another chain ({decoded.chain_id.hex()[:16]}...), not this {network}",
                       "voucher-wrong-chain")
    status = rpc_client.call("voucher_status", voucher=decoded.encode().hex())
    if status["redeemed"]:
        raise CliError(f"voucher {status['voucher_id']} was redeemed in block {status['height']} by "
                       f"{status['account']}", "voucher-already-redeemed")
    if status["expired"]:
        raise CliError(f"voucher {status['voucher_id']} expired at block {status['expiry']}", "voucher-expired")
    key = store.unlock(keyfile.name, read_password(password_file))
    if not json_out:
        note(f"redeeming {format_ntk(decoded.amount)} NTK into {keyfile.name} ({keyfile.address}); "
             f"the {fee} NTK fee comes out of it")
    send_payload(rpc_client, where, key, ticket.redeem(decode_address(keyfile.address, where.hrp)), fee, wait,
                 json_out)


# ---- buybacks ----------------------------------------------------------------------------------


@buyback_app.command("offer")
@guarded
def buyback_offer(
    price: Annotated[str, typer.Option("--price", help="reference price per NTK in the currency, e.g. 1.25")],
    cap: Annotated[str, typer.Option("--cap", help="the most NTK the offer buys")],
    currency: Annotated[str, typer.Option("--currency", help="the currency of the price (code)")] = "USD",
    expires: ExpiresOpt = DEFAULT_EXPIRY,
    sender: TreasuryFromOpt = None,
    fee: FeeOpt = DEFAULT_FEE_NTK,
    wait: WaitOpt = None,
    network: NetworkOpt = "main",
    datadir: DatadirOpt = None,
    keystore: KeystoreOpt = None,
    rpc: RpcOpt = None,
    password_file: PasswordFileOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Post a buyback offer from the treasury: holders sell into it (their tokens are burned) and
    the treasury pays each claim off chain at this price. The offer's id is the txid."""
    from chain.treasury_types import BuybackOffer
    from wallet.payload_json import payload_from_json

    where = Where(network, datadir, keystore, rpc)
    fields_in = {"currency": currency, "price": price, "cap": cap, "expiry": 0}
    payload_from_json(BuybackOffer, fields_in, where.hrp)  # a bad price, cap or currency before anything else
    rpc_client = client(where)
    tip = int(rpc_client.call("chain_head")["height"])
    fields_in["expiry"] = expiry_height(expires, tip, where.genesis.params.target_block_time)
    payload = payload_from_json(BuybackOffer, fields_in, where.hrp)
    key = _treasury_key(where, sender, password_file)
    _check_treasury(rpc_client, key, where.hrp)
    send_payload(rpc_client, where, key, payload, fee, wait, json_out)


@buyback_app.command("list")
@guarded
def buyback_list(
    open_only: Annotated[bool, typer.Option("--open", help="only offers still open")] = False,
    network: NetworkOpt = "main",
    datadir: DatadirOpt = None,
    rpc: RpcOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Buyback offers, newest first."""
    offers = client(Where(network, datadir, None, rpc)).call("buyback_offers", open_only=open_only)
    if json_out:
        print_json(offers)
        return
    if not offers:
        note("no buyback offers")
        return
    table("buyback offers", ("offer", "price", "cap NTK", "sold NTK", "expiry", "open"),
          [(o["offer"], f"{o['price']} {o['currency']}", o["cap_ntk"], o["sold_ntk"], o["expiry"],
            "yes" if o["open"] else "no") for o in offers])


@buyback_app.command("claims")
@guarded
def buyback_claims(
    offer: Annotated[str | None, typer.Option("--offer", help="only claims on this offer (hex)")] = None,
    seller: Annotated[str | None, typer.Option("--seller", help="only this seller's (address or key name)")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=1000, help="newest first")] = 100,
    network: NetworkOpt = "main",
    datadir: DatadirOpt = None,
    keystore: KeystoreOpt = None,
    rpc: RpcOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """What the treasury owes off chain: tokens burned into its offers, at each offer's price."""
    where = Where(network, datadir, keystore, rpc)
    params: dict[str, Any] = {"limit": limit, "offer": offer}
    if seller is not None:
        params["seller"] = address_of(where, seller)
    claims = client(where).call("buyback_claims", **params)
    if json_out:
        print_json(claims)
        return
    if not claims:
        note("no claims")
        return
    table("buyback claims", ("claim", "height", "seller", "NTK burned", "owed"),
          [(c["claim"][:16], c["height"], c["seller"], c["amount_ntk"], f"{c['value']} {c['currency']}")
           for c in claims])


@wallet_app.command("sell-buyback")
@guarded
def sell_buyback(
    offer: Annotated[str, typer.Argument(help="the buyback offer's id (64 hex; `neuro treasury buyback list`)")],
    amount: Annotated[str, typer.Argument(help="NTK to sell; they are burned")],
    sender: FromOpt = None,
    fee: FeeOpt = DEFAULT_FEE_NTK,
    wait: WaitOpt = None,
    network: NetworkOpt = "main",
    datadir: DatadirOpt = None,
    keystore: KeystoreOpt = None,
    rpc: RpcOpt = None,
    password_file: PasswordFileOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Sell tokens into the treasury's buyback offer: they are burned, and a claim at the offer's
    price is recorded on chain for the treasury to pay off chain."""
    from chain.treasury_types import BuybackSell
    from wallet.payload_json import payload_from_json

    where = Where(network, datadir, keystore, rpc)
    payload = payload_from_json(BuybackSell, {"offer": offer, "amount": amount}, where.hrp)
    assert isinstance(payload, BuybackSell)
    store = where.keystore()
    keyfile = store.resolve(sender)
    rpc_client = client(where)
    found = rpc_client.call("buyback_offer", offer=payload.offer_id.hex())
    if not found["open"]:
        raise CliError(f"offer {found['offer'][:16]}... is closed (expiry {found['expiry']}, "
                       f"{found['remaining_ntk']} NTK left)", "offer-expired")
    if payload.amount > int(found["remaining"]):
        raise CliError(f"the offer buys {found['remaining_ntk']} NTK more at most", "offer-over-cap")
    account = rpc_client.call("account_get", address=keyfile.address)
    if not json_out:
        note(f"selling {amount} NTK at {found['price']} {found['currency']} per NTK: the tokens are burned")
    if payload.amount > int(account["balance"]):
        raise CliError(f"{keyfile.name} has {account['balance_ntk']} NTK", "insufficient-balance")
    key = store.unlock(keyfile.name, read_password(password_file))
    send_payload(rpc_client, where, key, payload, fee, wait, json_out)
