"""The statement audit recomputes every leaf from the anchored batches: a statement tree
that is sound in itself but says more (or less) than the ledger holds is named."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import pytest
from sqlalchemy import delete, select, update

from chain.statements import EvmStatements
from ledger import accounts, merkle
from ledger.leaf import KIND_DEBIT, decode_leaf
from ledger.statement_audit import audit_statements, statement_chain_problems
from ledger.statement_builder import anchor_statements, build_statement
from ledger.statements import content_hash, decode_statement_leaf, entries_commitment
from ledger.store.database import Database
from ledger.store.models import Citizen, LedgerEntry, Statement, StatementLeaf, StatementTreeChunk
from ledger.store.trees import STATEMENT_TREES, store_tree
from tests.conftest import fresh_database
from tests.statement_ledger import Entry, add_entries, at


@pytest.fixture
def db(request: pytest.FixtureRequest, tmp_path) -> Iterator[Database]:  # type: ignore[no-untyped-def]
    """SQLite only: the audit's reads are plain SELECTs, and the builder they check against
    runs on both backends in tests/test_statements.py."""
    with fresh_database(request, "sqlite", tmp_path, at_head=True) as url:
        database = Database(url)
        yield database
        database.engine.dispose()


def _ledger(db, sealer, make_citizen):  # type: ignore[no-untyped-def]
    alice, bob = make_citizen(), make_citizen()
    add_entries(db, [Entry(alice, at(2026, 11, 2), 500, 5), Entry(bob, at(2026, 11, 3), 80, 0),
                     Entry(alice, at(2026, 11, 9), 1200, 12),
                     Entry(alice, at(2026, 11, 20), 0, 10, kind=KIND_DEBIT)])
    sealer.seal()
    build_statement(db, now=at(2026, 12, 3))
    return alice, bob


def _forge(db, citizen, change) -> None:  # type: ignore[no-untyped-def]
    """The operator rewrites one leaf and rebuilds the tree around it, so the statement
    stays sound in itself: only the recomputation from the entries can tell."""
    with db.session(write_lock=True) as s:
        row = s.get(StatementLeaf, (202611, citizen.id))
        row.leaf = change(decode_statement_leaf(bytes(row.leaf))).encode()
        s.flush()
        leaves = sorted((decode_statement_leaf(bytes(x)) for x in s.scalars(
            select(StatementLeaf.leaf).where(StatementLeaf.period == 202611))),
            key=lambda v: v.account)
        hashes = [v.leaf_hash() for v in leaves]
        nodes = merkle.build_tree(sorted(hashes))
        s.execute(delete(StatementTreeChunk).where(StatementTreeChunk.period == 202611))
        store_tree(s.connection(), 202611, nodes, rows=STATEMENT_TREES)
        s.execute(update(Statement).where(Statement.period == 202611).values(
            root=merkle.root(nodes), content_hash=content_hash(hashes)))


def test_an_honest_statement_recomputes(db, anchor, sealer, make_citizen) -> None:
    _ledger(db, sealer, make_citizen)
    with db.session() as s:
        [report] = audit_statements(s)
    assert report.ok, report.problems
    assert (report.accounts, report.entries) == (2, 4)


def test_an_inflated_leaf_is_named(db, anchor, sealer, make_citizen) -> None:
    alice, _ = _ledger(db, sealer, make_citizen)
    _forge(db, alice, lambda v: dataclasses.replace(v, reduction_grams=v.reduction_grams + 1000))
    with db.session() as s:
        [report] = audit_statements(s)
    assert report.problems == [f"account 0x{alice.account.hex()}: reductionGrams 2700 in the "
                               "leaf, 1700 from the anchored entries"]


def test_an_entry_missing_from_a_commitment_is_named(db, anchor, sealer, make_citizen) -> None:
    alice, _ = _ledger(db, sealer, make_citizen)
    with db.session() as s:
        leaves = [decode_leaf(bytes(x)) for x in s.scalars(
            select(LedgerEntry.leaf).where(LedgerEntry.citizen_id == alice.id)
            .order_by(LedgerEntry.seq))]
    fewer = entries_commitment(v.leaf_hash() for v in leaves[:-1])  # the debit left out
    _forge(db, alice, lambda v: dataclasses.replace(v, entries=fewer))
    with db.session() as s:
        [report] = audit_statements(s)
    assert report.problems == [f"account 0x{alice.account.hex()}: the entries commitment "
                               "differs from the 3 anchored entries in ledger order"]


def test_an_account_left_out_is_named(db, anchor, sealer, make_citizen) -> None:
    _, bob = _ledger(db, sealer, make_citizen)
    with db.session(write_lock=True) as s:
        s.delete(s.get(StatementLeaf, (202611, bob.id)))
    with db.session() as s:
        [report] = audit_statements(s)
    assert f"account 0x{bob.account.hex()} has 1 counted entries but no leaf in 2026-11's " \
           "statement" in report.problems


def test_an_erased_citizens_statements_still_audit_and_match_the_chain(
        db, anchor, sealer, make_citizen) -> None:
    alice, _ = _ledger(db, sealer, make_citizen)
    chain = EvmStatements(anchor)
    anchor_statements(db, chain)
    with db.session(write_lock=True) as s:
        accounts.erase_citizen(s, s.get(Citizen, alice.id))
    with db.session() as s:
        [report] = audit_statements(s)
        statements = list(s.scalars(select(Statement)))
        assert s.get(Citizen, alice.id).salt is None
    assert report.ok, report.problems
    assert statement_chain_problems(chain, statements) == []


def test_chain_problems_name_a_root_the_chain_does_not_hold(db, anchor, sealer,
                                                            make_citizen) -> None:
    alice, _ = _ledger(db, sealer, make_citizen)
    chain = EvmStatements(anchor)
    anchor_statements(db, chain)
    _forge(db, alice, lambda v: dataclasses.replace(v, points_spent=0))
    with db.session() as s:
        [problem] = statement_chain_problems(chain, list(s.scalars(select(Statement))))
    assert problem.period == 202611 and problem.problem.startswith("root differs: chain 0x")


def test_statement_audit_command_exits_1_naming_the_check(db, anchor, sealer, make_citizen,
                                                          tmp_path, monkeypatch, capsys) -> None:
    from api.cli.main import main

    alice, _ = _ledger(db, sealer, make_citizen)
    monkeypatch.setenv("CARBON_LEDGER_DATABASE_URL", db.url)
    assert main(["statement", "audit", "--data-dir", str(tmp_path / "cli")]) == 0
    assert "2026-11: 2 accounts, 4 entries recomputed: ok" in capsys.readouterr().out
    _forge(db, alice, lambda v: dataclasses.replace(v, entry_count=v.entry_count + 1))
    assert main(["statement", "audit", "--data-dir", str(tmp_path / "cli")]) == 1
    captured = capsys.readouterr()
    assert "entryCount 4 in the leaf, 3 from the anchored entries" in captured.out
    assert "refused (statement-audit)" in captured.err
