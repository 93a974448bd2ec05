"""Green credit's figures: statement build time, credential and presentation sizes, and a
bank's verify time, on a real node.

Makes a ledger of ``--citizens`` citizens with three credits and a debit a month for
``--months`` months (entries written straight into the ledger, so any past month can be
had), seals and anchors each month's on a managed anvil node (each batch dated the night
after its month, as a live ledger's), builds and anchors each month's
statement, then issues credentials of 1, 6 and 12 months (totals only, and with areas) and
verifies presentations of them through the node's JSON-RPC as a bank would, in
interleaved rounds. Prints medians; sizes are the files' bytes as the CLI writes them
(indented JSON).

    .venv/bin/python scripts/bench_green_credit.py                  # 1,000 citizens, 12 months
    .venv/bin/python scripts/bench_green_credit.py --citizens 20000 --rounds 9
"""

from __future__ import annotations

import argparse
import json
import random
import secrets
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from eth_account import Account  # noqa: E402
from sqlalchemy import insert, update  # noqa: E402

from chain.client import ChainKind  # noqa: E402
from chain.connect import connect_anchor  # noqa: E402
from chain.nodes import ManagedAnvil, rpc_web3  # noqa: E402
from chain.statements import EvmStatements  # noqa: E402
from ledger import accounts  # noqa: E402
from ledger.entries import entry_row  # noqa: E402
from ledger.green_credit import present  # noqa: E402
from ledger.green_credit_issue import CredentialRequest, issue_credential  # noqa: E402
from ledger.green_credit_verify import verify_presentation  # noqa: E402
from ledger.leaf import KIND_CREDIT, KIND_DEBIT, credit_entry_id, debit_entry_id  # noqa: E402
from ledger.sealing import Sealer, SealOptions  # noqa: E402
from ledger.statement_builder import anchor_statements, build_statement  # noqa: E402
from ledger.statements import next_period, period_label  # noqa: E402
from ledger.store.database import Database  # noqa: E402
from ledger.store.models import Batch, LedgerEntry  # noqa: E402
from ledger.store.schema import create_schema  # noqa: E402

CST = timedelta(hours=8)
BEHAVIOURS = ("CYCLING", "METRO", "NO_DISPOSABLE_TABLEWARE", "PAPERLESS_BILL",
              "EXPRESS_BOX_REUSE")
FIRST_PERIOD = 202501


def month_start(period: int) -> int:
    return int((datetime(period // 100, period % 100, 1, tzinfo=UTC) - CST).timestamp())


def fill(db: Database, citizens: list[Any], periods: list[int], rng: random.Random) -> int:
    partner = bytes.fromhex(Account.create().address[2:])
    rows = []
    for period in periods:
        start = month_start(period)
        for c in citizens:
            for _ in range(3):
                grams = rng.randrange(50, 2000)
                rows.append(entry_row(
                    entry_id=credit_entry_id(partner, secrets.token_hex(8)), citizen_id=c.id,
                    account=c.account, kind=KIND_CREDIT, behaviour=rng.choice(BEHAVIOURS),
                    quantity=1000, reduction_grams=grams, points=grams, methodology=2,
                    occurred_at=start + rng.randrange(0, 27 * 86400),
                    record_hash=secrets.token_bytes(32), partner_address=partner))
            rows.append(entry_row(
                entry_id=debit_entry_id(secrets.token_bytes(16)), citizen_id=c.id,
                account=c.account, kind=KIND_DEBIT, behaviour="REDEMPTION", quantity=1,
                reduction_grams=0, points=rng.randrange(1, 100), methodology=2,
                occurred_at=start + 27 * 86400, record_hash=b"\0" * 32, partner_address=partner))
    rows.sort(key=lambda r: r["occurred_at"])
    with db.session(write_lock=True) as s:
        s.execute(insert(LedgerEntry), rows)
    return len(rows)


def host_reference() -> float:
    """Seconds for 200,000 keccaks of 32 bytes, none of our code in it: a busier stretch of
    the host shows here first."""
    from ledger.hashing import keccak

    started = time.perf_counter()
    value = b"\0" * 32
    for _ in range(200_000):
        value = keccak(value)
    return time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--citizens", type=int, default=1000)
    parser.add_argument("--months", type=int, default=12)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args(argv)
    rng = random.Random(20)
    periods = [FIRST_PERIOD]
    while len(periods) < args.months:
        periods.append(next_period(periods[-1]))
    print(f"host reference: 200,000 keccaks in {host_reference():.3f} s")
    with tempfile.TemporaryDirectory() as tmp, ManagedAnvil(Path(tmp) / "anvil") as node:
        db = Database(f"sqlite:///{tmp}/ledger.db")
        create_schema(db.engine)
        anchor = connect_anchor(rpc_web3(node.url), ChainKind.ANVIL, Account.create(), db)
        with db.session(write_lock=True) as s:
            citizens = [accounts.create_citizen(s) for _ in range(args.citizens)]
        entries = 0
        sealer = Sealer(db, anchor, SealOptions(confirmations=1, workers=1))
        for period in periods:  # a month's records, sealed the night after it, as live
            entries += fill(db, citizens, [period], rng)
            [batch] = sealer.seal()
            with db.session(write_lock=True) as s:
                s.execute(update(Batch).where(Batch.id == batch.id).values(
                    sealed_at=month_start(next_period(period)) + 3600))
        chain = EvmStatements(anchor)
        builds, gas = [], []
        now = month_start(next_period(periods[-1])) + 2 * 86400
        for _ in periods:
            started = time.perf_counter()
            st = build_statement(db, now=now)
            builds.append(time.perf_counter() - started)
            anchor_statements(db, chain)
            with db.session() as s:
                gas.append(s.get(type(st), st.period).gas_used)
        print(f"{args.citizens:,} citizens, {entries:,} entries over {len(periods)} months "
              f"({period_label(periods[0])} to {period_label(periods[-1])}), anvil {node.url}")
        print(f"statement build (one month, {args.citizens:,} leaves): median "
              f"{statistics.median(builds):.2f} s; anchor gas {gas[0]:,} first, "
              f"{statistics.median(gas[1:] or gas):,.0f} a later month")
        reader = EvmStatements(anchor.reader())
        holder = Account.create()
        cases = {}
        for months in (1, 6, 12):
            if months > len(periods):
                continue
            for areas in (False, True):
                request = CredentialRequest(citizens[0].id, holder.address, periods[0],
                                            periods[months - 1], areas=areas)
                credential = issue_credential(db, request, issuer=anchor._signer,
                                              chain_id=anchor.chain_id,
                                              contract=anchor.contract_address)
                cases[(months, areas)] = credential
        times: dict[tuple[int, bool], list[float]] = {k: [] for k in cases}
        sizes: dict[tuple[int, bool], tuple[int, int]] = {}
        for _ in range(args.rounds):  # interleaved: each round verifies every case once
            for key, credential in cases.items():
                nonce = secrets.token_hex(16)
                presentation = present(credential, holder, nonce=nonce, audience="Bench Bank")
                sizes[key] = (len(json.dumps(credential, indent=2)) + 1,
                              len(json.dumps(presentation, indent=2)) + 1)
                started = time.perf_counter()
                verify_presentation(presentation, reader=reader, challenge=nonce,
                                    audience="Bench Bank", now=int(time.time()))
                times[key].append(time.perf_counter() - started)
        depth = len(cases[(1, False)]["credentialSubject"]["statements"][0]["proof"])
        print(f"proof depth {depth} (statement trees of {args.citizens:,} leaves); "
              f"verify over JSON-RPC, median of {args.rounds} interleaved rounds")
        print(f"{'months':>6} {'areas':>6} {'credential B':>13} {'presentation B':>15} "
              f"{'verify ms':>10}")
        for (months, areas), spent in times.items():
            credential_size, presentation_size = sizes[(months, areas)]
            print(f"{months:>6} {'yes' if areas else 'no':>6} {credential_size:>13,} "
                  f"{presentation_size:>15,} {statistics.median(spent) * 1000:>10.1f}")
        db.engine.dispose()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
