"""``carbon-ledger partner …``: what a partner runs on its own machine, against a ledger's
HTTP API: make a signing key (an encrypted keystore), sign and send records, check the
operator's receipt (docs/partners.md). The same as a library: :mod:`api.partner`."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated, Any

import typer
from eth_account import Account

from api.cli.base import Json, app, emit_json, err, out
from api.cli.files import read_records, write_atomically
from api.partner import Client, PartnerClientError, ReceiptInvalid
from ledger.errors import (
    Conflict,
    Forbidden,
    InvalidInput,
    LedgerError,
    NotFound,
    Unauthenticated,
    VerificationError,
)
from ledger.signing import MAX_VALIDITY_SECONDS

partner_app = typer.Typer(no_args_is_help=True, help="For partners: make a signing key, sign "
                          "and send records to a ledger's API, check its receipts.")
app.add_typer(partner_app, name="partner")

PASSWORD_ENV = "CARBON_LEDGER_KEY_PASSWORD"
API_KEY_ENV = "CARBON_LEDGER_API_KEY"
#: The largest records file read (the API's default body limit).
MAX_FILE_BYTES = 32 * 1024 * 1024

PasswordFile = Annotated[Path | None, typer.Option(
    "--password-file", help=f"read the keystore's password from this file (else ${PASSWORD_ENV}, "
                            "else a prompt)")]


def _password(password_file: Path | None, *, new: bool) -> str:
    if password_file is not None:
        try:
            return password_file.read_text().rstrip("\r\n")
        except OSError as exc:
            raise InvalidInput(f"cannot read {password_file}: {exc.strerror}",
                               field="--password-file") from None
    if os.environ.get(PASSWORD_ENV):
        return os.environ[PASSWORD_ENV]
    password = typer.prompt("keystore password", hide_input=True, confirmation_prompt=new,
                            err=True)
    if new and len(password) < 8:
        raise InvalidInput("at least 8 characters", field="password")
    return str(password)


@partner_app.command("keygen")
def keygen(keystore: Annotated[Path, typer.Argument(help="the keystore file to write (JSON)")],
           partner: Annotated[str | None, typer.Option(
               help="your partner code, recorded in the keystore for `partner submit`")] = None,
           password_file: PasswordFile = None) -> None:
    """Make a new signing key in an encrypted keystore (Web3 Secret Storage, as geth and
    eth-account write it) and print its address: give the address to the operator, who
    registers it with `carbon-ledger admin partner-add CODE KIND --address ADDRESS`."""
    if keystore.exists():
        raise InvalidInput(f"{keystore} exists: a keystore is never overwritten", field="KEYSTORE")
    password = _password(password_file, new=True)
    account = Account.create()
    encrypted: dict[str, Any] = Account.encrypt(account.key, password)
    if partner:
        encrypted["carbonLedgerPartner"] = partner
    write_atomically(keystore, json.dumps(encrypted, indent=2) + "\n", mode=0o600)
    print(account.address)
    err.print(f"keystore written to {keystore} (owner-only). Register the address: `carbon-ledger "
              f"admin partner-add {partner or 'CODE'} KIND --address {account.address}`; keep "
              "the keystore and its password safe.", highlight=False)


@partner_app.command("submit")
def submit(records_file: Annotated[Path, typer.Argument(
               help="records: a JSON array, or NDJSON (.ndjson/.jsonl), one record a line")],
           url: Annotated[str, typer.Option("--url", help="the ledger API's base URL")],
           key: Annotated[Path, typer.Option("--key", help="your keystore (`partner keygen`)")],
           api_key: Annotated[str | None, typer.Option(
               "--api-key", envvar=API_KEY_ENV, show_envvar=True,
               help="your API key from the operator (better in the environment)")] = None,
           partner: Annotated[str | None, typer.Option(
               help="your partner code (default: the one in the keystore)")] = None,
           operator: Annotated[str | None, typer.Option(
               help="the operator's receipt key, from the ledger descriptor you pinned "
                    "(default: the one GET /v1/info names)")] = None,
           valid_for: Annotated[int, typer.Option(
               min=30, max=MAX_VALIDITY_SECONDS,
               help="seconds the signature stays good; retries stop at its end")] = 600,
           password_file: PasswordFile = None, as_json: Json = False) -> None:
    """Sign the records (EIP-712, docs/signing.md), send them, retry safely (the same signed
    request: the ledger records a nonce once), check the operator's receipt, and print the
    outcome: the summary first, then each rejected record by its line."""
    if not api_key:
        raise InvalidInput(f"give --api-key or set ${API_KEY_ENV}", field="--api-key")
    records, numbers, unit = read_records(records_file, MAX_FILE_BYTES)
    if not records:
        raise InvalidInput("no records in the file", field="records")
    if not key.is_file():
        raise InvalidInput(f"no keystore file {key}", field="--key")
    try:
        client = Client.from_keystore(key, _password(password_file, new=False), url=url,
                                      api_key=api_key, partner=partner, operator=operator,
                                      valid_for=valid_for)
    except (OSError, ValueError, KeyError) as exc:  # unreadable, not a keystore, wrong password
        raise InvalidInput(f"cannot open the keystore: {exc}", field="--key") from None
    except PartnerClientError as exc:
        raise InvalidInput(str(exc), field="--partner") from None
    try:
        result = client.submit(records)
    except ReceiptInvalid as exc:
        raise VerificationError(str(exc), field="receipt", check="receipt") from None
    except PartnerClientError as exc:
        raise _as_ledger_error(exc) from None
    if as_json:
        answer = dict(result.answer)
        if isinstance(answer.get("records"), list):
            answer["records"] = [{**o, unit: numbers[o["index"]]} for o in answer["records"]]
        emit_json({**answer, "receiptChecked": True, "attempts": result.attempts,
                   "replayed": result.replayed}, None)
        return
    out.print(result.summary(), highlight=False, soft_wrap=True)
    for o in result.rejected:
        out.print(f"{unit} {numbers[o['index']]} ({o.get('record_id') or 'no record_id'}): "
                  f"rejected, {o.get('field')}: {o.get('reason')}", highlight=False,
                  markup=False, soft_wrap=True)


_BY_STATUS: dict[int, type[LedgerError]] = {401: Unauthenticated, 403: Forbidden, 404: NotFound,
                                             409: Conflict, 413: InvalidInput, 415: InvalidInput,
                                             422: InvalidInput}


def _as_ledger_error(exc: PartnerClientError) -> LedgerError:
    """The ledger's refusal, as this command line shows errors (code, field, exit code)."""
    error = _BY_STATUS.get(exc.status or 0, LedgerError)(
        str(exc) if exc.status is None or exc.code == "wrong-signer"
        else exc.problem.get("detail") or str(exc), field=exc.field)
    error.code = exc.code or ("unreachable" if exc.status is None else f"http-{exc.status}")
    return error
