"""`statement …` (operator, auditor) and `credential …` (citizen, bank, operator): month
statements anchored on chain, and green-credit credentials built on them
(docs/green-credit.md)."""

from __future__ import annotations

import json
import time
from contextlib import suppress
from pathlib import Path
from typing import Annotated, Any

import typer
from eth_account import Account

from api.cli.base import Chain, DataDir, Json, RpcUrl, app, emit_json, err, out, print_table
from api.cli.files import write_atomically
from api.cli.partner import PasswordFile, _password
from api.cli.trust_store import TrustStore
from api.cli.verify import ChainIdOpt, ContractOpt, LedgerOpt, pin_trust_root
from api.composition import container, statement_reader
from ledger.errors import Conflict, InvalidInput, VerificationError
from ledger.green_credit import (
    DEFAULT_PRESENTATION_SECONDS,
    DEFAULT_VALID_DAYS,
    MAX_PRESENTATION_SECONDS,
    parse_credential,
    present,
)
from ledger.green_credit_issue import (
    CredentialRequest,
    anchoring_turn,
    issue_credential,
    revoke,
)
from ledger.green_credit_verify import verify_presentation
from ledger.json_input import read_json_file
from ledger.statements import parse_period, period_label

statement_app = typer.Typer(no_args_is_help=True, help="Month statements: build and anchor "
                            "(operator), list, audit (auditor).")
credential_app = typer.Typer(no_args_is_help=True, help="Green-credit credentials: a holder "
                             "key and a presentation (citizen), verify (bank), issue and "
                             "revoke (operator).")
app.add_typer(statement_app, name="statement")
app.add_typer(credential_app, name="credential")

#: A credential of 24 months with areas is ~40 KB; anything far larger is not one.
MAX_DOCUMENT_BYTES = 1024 * 1024
FromMonth = Annotated[str, typer.Option("--from", help="the first local month, YYYY-MM")]
ToMonth = Annotated[str, typer.Option("--to", help="the last local month, YYYY-MM")]
KeyFile = Annotated[Path, typer.Option("--key", help="the holder keystore (`credential keygen`)")]


# -- statements -----------------------------------------------------------------------------

@statement_app.command("build")
def statement_build(data_dir: DataDir = None, chain: Chain = None, rpc: RpcUrl = None,
                    settle_hours: Annotated[int, typer.Option(
                        min=0, max=24 * 31, help="hours after a month's end before it is "
                                                 "stated")] = 24) -> None:
    """Build and anchor the statement of every month that is over and sealed, in order;
    then send any pending credential revocation (erased citizens' included)."""
    from ledger.statement_builder import build_due_statements

    c = container(data_dir, chain, rpc)
    with c.anchor() as anchor, anchoring_turn(c.db):
        statements = c.statement_chain(anchor)
        built = build_due_statements(c.db, statements, settle_seconds=settle_hours * 3600)
        for st in built:
            out.print(f"statement {period_label(st.period)}: {st.leaf_count} accounts, batches "
                      f"1-{st.through_batch_id}, root 0x{st.root.hex()} anchored", highlight=False)
        if not built:
            err.print("no month to state: the next is not over, or not all its entries are in "
                      "anchored batches (`carbon-ledger seal`)", highlight=False)
        revoked = revoke(c.db, statements)
    if revoked:
        out.print(f"revoked on chain: credentials {', '.join(map(str, revoked))}", highlight=False)


@statement_app.command("list")
def statement_list(data_dir: DataDir = None, as_json: Json = False) -> None:
    """The built statements: month, accounts, batches counted, status, block."""
    from sqlalchemy import select

    from ledger.store.models import Statement

    c = container(data_dir)
    with c.db.session() as s:
        rows = [{"month": period_label(st.period), "accounts": st.leaf_count,
                 "throughBatchId": st.through_batch_id, "status": st.status,
                 "block": st.block_number, "gasUsed": st.gas_used, "root": "0x" + st.root.hex()}
                for st in s.scalars(select(Statement)
                                   .order_by(Statement.period))]
    if as_json:
        emit_json(rows, None)
        return
    print_table("statements", ["month", "accounts", "batches", "status", "block", "root"],
                [[r["month"], r["accounts"], f"1-{r['throughBatchId']}", r["status"], r["block"],
                  r["root"]] for r in rows], ids=["root"])


@statement_app.command("audit")
def statement_audit(data_dir: DataDir = None, month: Annotated[str | None, typer.Option(
                        help="only this month, YYYY-MM")] = None, as_json: Json = False) -> None:
    """Recompute every statement leaf from the anchored batches; exit 1 naming what differs."""
    from ledger.statement_audit import audit_statements

    periods = [parse_period(month, field="--month")] if month else None
    c = container(data_dir)
    with c.db.session(snapshot=True) as s:
        reports = audit_statements(s, periods)
    if as_json:
        emit_json([{"month": period_label(r.period), "accounts": r.accounts,
                    "entries": r.entries, "problems": r.problems} for r in reports], None)
    else:
        for r in reports:
            verdict = "ok" if r.ok else f"{len(r.problems)} problem(s)"
            out.print(f"{period_label(r.period)}: {r.accounts} accounts, {r.entries} entries "
                      f"recomputed: {verdict}", highlight=False)
            for p in r.problems:
                out.print(f"  {p}", highlight=False, soft_wrap=True)
    bad = [r for r in reports if not r.ok]
    if bad:
        raise VerificationError(f"{len(bad)} statement(s) differ from the anchored entries",
                                field="statements", check="statement-audit")


# -- credentials: the citizen ---------------------------------------------------------------

@credential_app.command("keygen")
def keygen(keystore: Annotated[Path, typer.Argument(help="the keystore file to write (JSON)")],
           password_file: PasswordFile = None) -> None:
    """Make your holder key (an encrypted keystore) and print its address: credentials are
    bound to it, and only you can present them. The operator never sees the key."""
    if keystore.exists():
        raise InvalidInput(f"{keystore} exists: a keystore is never overwritten", field="KEYSTORE")
    password = _password(password_file, new=True)
    account = Account.create()
    write_atomically(keystore, json.dumps(Account.encrypt(account.key, password)) + "\n",
                     mode=0o600)
    print(account.address)


def _holder_key(keystore: Path, password_file: Path | None) -> bytes:
    if not keystore.is_file():
        raise InvalidInput(f"no keystore file {keystore}", field="--key")
    try:
        return bytes(Account.decrypt(json.loads(keystore.read_text()),
                                     _password(password_file, new=False)))
    except (OSError, ValueError, KeyError) as exc:  # unreadable, not a keystore, wrong password
        raise InvalidInput(f"cannot open the keystore: {exc}", field="--key") from None


def _read_document(path: Path, field: str) -> Any:
    return read_json_file(path, field=field, max_bytes=MAX_DOCUMENT_BYTES)


@credential_app.command("request")
def request_cmd(url: Annotated[str, typer.Option("--url", help="the ledger API's base URL")],
                token: Annotated[str, typer.Option("--token", envvar="CARBON_LEDGER_TOKEN",
                                                   help="your citizen token")],
                holder: Annotated[str, typer.Option(help="your holder key's address "
                                                         "(`credential keygen`)")],
                first: FromMonth, last: ToMonth,
                out_file: Annotated[Path, typer.Option("--out", help="where to write it")],
                areas: Annotated[bool, typer.Option(help="disclose totals per area too")] = False
                ) -> None:
    """Ask the ledger's API for a credential of your months (POST /v1/me/credentials)."""
    import requests

    body: dict[str, Any] = {"holder": holder, "from": first, "to": last, "areas": areas}
    try:
        answer = requests.post(url.rstrip("/") + "/v1/me/credentials", json=body, timeout=60,
                               headers={"Authorization": f"Bearer {token}"})
    except requests.RequestException as exc:
        raise InvalidInput(f"cannot reach {url}: {exc}", field="--url") from None
    if answer.status_code != 200:
        try:
            problem = answer.json()
            detail = f"{problem.get('field') or ''}: {problem.get('detail')}"
        except ValueError:
            detail = answer.text[:200]
        raise Conflict(f"the ledger refused ({answer.status_code}) {detail}", field="request")
    write_atomically(out_file, answer.text if answer.text.endswith("\n") else answer.text + "\n")
    out.print(f"credential written to {out_file}", highlight=False)


@credential_app.command("present")
def present_cmd(credential_file: Annotated[Path, typer.Argument(help="your credential (JSON)")],
                key: KeyFile,
                nonce: Annotated[str, typer.Option(help="the bank's challenge")],
                bank: Annotated[str, typer.Option(help="the bank's name, as it gave it")],
                out_file: Annotated[Path, typer.Option("--out", help="where to write it")],
                valid_for: Annotated[int, typer.Option(
                    min=1, max=MAX_PRESENTATION_SECONDS, help="seconds it stays good")
                ] = DEFAULT_PRESENTATION_SECONDS,
                password_file: PasswordFile = None) -> None:
    """Answer a bank's challenge: the credential, signed with your holder key for this
    nonce and bank; it expires after --valid-for seconds."""
    credential = _read_document(credential_file, "CREDENTIAL")
    presentation = present(credential, _holder_key(key, password_file), nonce=nonce,
                           audience=bank, valid_seconds=valid_for)
    write_atomically(out_file, json.dumps(presentation, indent=2) + "\n")
    out.print(f"presentation for {bank!r} written to {out_file} (good for {valid_for} s)",
              highlight=False)


# -- credentials: the bank ------------------------------------------------------------------

class _NonceLog:
    """The challenges a bank has seen answered, one a line, so a presentation is used once."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def seen(self, nonce: str) -> bool:
        known = self.path.read_text().splitlines() if self.path.exists() else []
        if nonce in known:
            return True
        with self.path.open("a") as f:
            f.write(nonce + "\n")
        return False


@credential_app.command("verify")
def verify_cmd(presentation_file: Annotated[Path, typer.Argument(help="the presentation (JSON)")],
               challenge: Annotated[str, typer.Option(help="the nonce you sent")],
               bank: Annotated[str, typer.Option(help="your name, as you gave it")],
               rpc: Annotated[str | None, typer.Option("--rpc", help="the chain's JSON-RPC URL")]
               = None,
               contract: ContractOpt = None, chain_id: ChainIdOpt = None, ledger: LedgerOpt = None,
               nonce_log: Annotated[Path | None, typer.Option(
                   help="a file of challenges answered before: refuse a replay")] = None,
               as_json: Json = False) -> None:
    """Check a presentation against the pinned ledger's chain alone: the issuer's signature
    and role, every month's statement proof against its anchored root, the holder's
    signature over your challenge, the expiry, and the revocation bit. Prints the verified
    totals; exit 1 names the failed check."""
    doc = _read_document(presentation_file, "PRESENTATION")
    bundle_chain = None
    with suppress(KeyError, IndexError, TypeError, VerificationError):  # named below
        bundle_chain = parse_credential(doc["verifiableCredential"][0]).chain_id
    trusted, url = pin_trust_root(rpc=rpc, contract=contract, chain_id=chain_id, ledger=ledger,
                                  save=True, store=TrustStore(), bundle_chain=bundle_chain)
    started = time.perf_counter()
    verified = verify_presentation(doc, reader=statement_reader(url, trusted.contract),
                                   challenge=challenge, audience=bank, now=int(time.time()),
                                   nonce_seen=_NonceLog(nonce_log).seen if nonce_log else None)
    took = time.perf_counter() - started
    result = verified.to_json()
    if as_json:
        emit_json(result, None)
        return
    out.print(f"verified: holder {verified.holder}, credential {verified.index}, for {bank!r}, "
              f"against chain {trusted.chain_id} contract {trusted.contract} ({took:.2f} s)",
              highlight=False)
    print_table("verified months (g CO2e, points)",
                ["month", "reductionGrams", "pointsEarned", "pointsSpent", "entries", "areas"],
                [[m["month"], m["reductionGrams"], m["pointsEarned"], m["pointsSpent"],
                  m["entryCount"], " ".join(f"{a}={g}" for a, g in m.get("areaTotals", {}).items())
                  or "-"] for m in result["months"]])
    out.print(f"total: {result['totalReductionGrams']} g CO2e", highlight=False)


# -- credentials: the operator --------------------------------------------------------------

@credential_app.command("issue")
def issue_cmd(citizen: Annotated[str, typer.Argument(help="the citizen's pseudonym")],
              holder: Annotated[str, typer.Option(help="the citizen's holder key address")],
              first: FromMonth, last: ToMonth,
              out_file: Annotated[Path, typer.Option("--out", help="where to write it")],
              areas: Annotated[bool, typer.Option(help="disclose totals per area too")] = False,
              valid_days: Annotated[int, typer.Option(min=1, max=366)] = DEFAULT_VALID_DAYS,
              data_dir: DataDir = None, chain: Chain = None, rpc: RpcUrl = None) -> None:
    """Issue a citizen's credential at the counter (the API's POST /v1/me/credentials does
    the same for the citizen's app)."""
    from ledger.accounts import get_citizen

    c = container(data_dir, chain, rpc)
    with c.db.session() as s:
        citizen_id = get_citizen(s, citizen).id
    with c.anchor() as anchor:
        request = CredentialRequest(citizen_id, holder, parse_period(first, field="--from"),
                                    parse_period(last, field="--to"), areas, valid_days)
        credential = issue_credential(c.db, request, issuer=c.signer, chain_id=anchor.chain_id,
                                      contract=anchor.contract_address)
    write_atomically(out_file, json.dumps(credential, indent=2) + "\n")
    out.print(f"credential {credential['credentialStatus']['statusIndex']} written to {out_file}",
              highlight=False)


@credential_app.command("revoke")
def revoke_cmd(indices: Annotated[list[int] | None, typer.Argument(
                   help="status indices to revoke (none: only what is pending)")] = None,
               data_dir: DataDir = None, chain: Chain = None, rpc: RpcUrl = None) -> None:
    """Revoke credentials on chain, with every credential of an erased citizen."""
    c = container(data_dir, chain, rpc)
    with c.anchor() as anchor, anchoring_turn(c.db):
        sent = revoke(c.db, c.statement_chain(anchor), indices or [])
    out.print(f"revoked on chain: {', '.join(map(str, sent)) or 'nothing pending'}",
              highlight=False)
