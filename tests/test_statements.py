"""Month statements: built once a month is over and anchored, one leaf per account, each
entry counted in exactly one statement; the contract holds months in strict order."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from eth_account import Account
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from chain.client import ChainKind
from chain.connect import connect_anchor
from chain.nodes import in_process_web3
from chain.statements import EvmStatements
from ledger import accounts, merkle
from ledger.errors import ChainError, Conflict
from ledger.hashing import keccak
from ledger.leaf import KIND_CREDIT, KIND_DEBIT
from ledger.methodology import local_day_offset
from ledger.sealing import Sealer, SealOptions
from ledger.statement_audit import audit_statements
from ledger.statement_builder import anchor_statements, build_statement
from ledger.statements import decode_statement_leaf, period_bounds
from ledger.store.database import Database
from ledger.store.models import Batch, LedgerEntry, Statement, StatementLeaf
from ledger.store.trees import STATEMENT_TREES, read_tree
from tests.conftest import BACKENDS, fresh_database
from tests.statement_ledger import Entry, add_entries, at

DEC_3 = at(2026, 12, 3)


def _leaves(db, period):  # type: ignore[no-untyped-def]
    with db.session() as s:
        rows = s.execute(select(StatementLeaf.citizen_id, StatementLeaf.leaf)
                         .where(StatementLeaf.period == period)).all()
    return {cid: decode_statement_leaf(bytes(leaf)) for cid, leaf in rows}


def test_a_month_statement_totals_each_account_and_its_root_is_anchored(
        db, anchor, sealer, make_citizen) -> None:
    alice, bob, carol = make_citizen(), make_citizen(), make_citizen()
    add_entries(db, [Entry(alice, at(2026, 11, 2), 500, 5), Entry(bob, at(2026, 11, 3), 80, 0),
                     Entry(alice, at(2026, 11, 30, 23), 1200, 12),
                     Entry(alice, at(2026, 11, 20), 0, 10, kind=KIND_DEBIT),
                     Entry(bob, at(2026, 12, 1, 1), 999, 9)])  # December's, sealed with them
    sealer.seal()
    statement = build_statement(db, now=DEC_3)
    assert statement.period == 202611 and statement.leaf_count == 3
    chain = EvmStatements(anchor)
    assert anchor_statements(db, chain) == [202611]
    assert chain.statement_root(202611) == statement.root
    assert chain.latest_statement() == (202611, statement.through_batch_id)
    [event] = chain.statement_events(chain.find_statement_receipt(202611).tx_hash)
    assert (event.leaf_count, event.content_hash) == (3, statement.content_hash)

    leaves = _leaves(db, 202611)
    a, b, c = leaves[alice.id], leaves[bob.id], leaves[carol.id]
    assert (a.reduction_grams, a.points_earned, a.points_spent, a.entry_count) == (1700, 17, 10, 3)
    assert (b.reduction_grams, b.entry_count) == (80, 1)
    assert (c.reduction_grams, c.entry_count) == (0, 0)  # a quiet month has its leaf too
    assert a.account == alice.account and len({a.salt, b.salt, c.salt}) == 3
    with db.session() as s:
        nodes = read_tree(s.connection(), 202611, 3, rows=STATEMENT_TREES)
        alice_hashes = [merkle.hash_leaf(bytes(leaf)) for leaf in s.scalars(
            select(LedgerEntry.leaf).where(LedgerEntry.citizen_id == alice.id,
                                           LedgerEntry.occurred_at < at(2026, 12, 1, 0))
            .order_by(LedgerEntry.seq))]
    assert a.entries == keccak(b"".join(alice_hashes))
    index = merkle.find_leaf(nodes, a.leaf_hash())
    assert anchor._contract.functions.verifyStatement(
        202611, a.leaf_hash(), merkle.inclusion_proof(nodes, index)).call()


def test_a_late_entry_is_counted_by_the_next_months_statement(db, anchor, sealer,
                                                               make_citizen) -> None:
    alice = make_citizen()
    add_entries(db, [Entry(alice, at(2026, 10, 5), 100, 1)])
    sealer.seal()
    chain = EvmStatements(anchor)
    build_statement(db, now=at(2026, 11, 3))
    anchor_statements(db, chain)
    add_entries(db, [Entry(alice, at(2026, 10, 30), 40, 0),  # October's, received late
                     Entry(alice, at(2026, 11, 9), 7, 0)])
    sealer.seal()
    build_statement(db, now=DEC_3)
    anchor_statements(db, chain)
    assert _leaves(db, 202610)[alice.id].reduction_grams == 100
    november = _leaves(db, 202611)[alice.id]
    assert (november.reduction_grams, november.entry_count) == (47, 2)


def test_a_month_is_stated_only_when_over_and_its_entries_anchored(db, anchor, sealer,
                                                                  make_citizen) -> None:
    alice = make_citizen()
    add_entries(db, [Entry(alice, at(2026, 11, 5), 100, 1)])
    with pytest.raises(Conflict, match="not in an anchored batch"):
        build_statement(db, now=DEC_3)
    sealer.seal()
    with pytest.raises(Conflict, match="is not over"):
        build_statement(db, now=at(2026, 11, 30))
    with pytest.raises(Conflict, match="months are stated in order"):
        build_statement(db, now=DEC_3, period=202612)
    build_statement(db, now=DEC_3)
    with pytest.raises(Conflict, match="not anchored yet"):
        build_statement(db, now=at(2027, 1, 3))


@pytest.fixture
def chain(request: pytest.FixtureRequest, tmp_path) -> Iterator[EvmStatements]:  # type: ignore[no-untyped-def]
    """The contract alone, on a fresh in-process chain (its ledger on SQLite only: these
    tests read the chain, not the database)."""
    with fresh_database(request, "sqlite", tmp_path, at_head=True) as url:
        db = Database(url)
        yield EvmStatements(connect_anchor(in_process_web3(), ChainKind.TESTER,
                                           Account.create(), db))
        db.engine.dispose()


def _anchor(chain, period, root=b"\x01" * 32, count=1, through=0):  # type: ignore[no-untyped-def]
    prepared = chain.prepare_statement(period=period, root=root, leaf_count=count,
                                       through_batch_id=through, content_hash=b"\0" * 32)
    chain.broadcast(prepared.raw)
    return chain.wait_for_receipt(prepared.tx_hash, timeout=10)


@pytest.mark.parametrize("period, why", [(202613, "InvalidPeriod(202613)"),
                                         (202600, "InvalidPeriod(202600)")])
def test_a_period_that_is_not_a_month_is_refused(chain, period, why) -> None:
    with pytest.raises(ChainError, match=re.escape(f"rejected: {why}")):
        _anchor(chain, period)


def test_statement_months_run_strictly_and_count_only_anchored_batches(chain) -> None:
    with pytest.raises(ChainError, match=r"StatementBatchOutOfRange\(1, 0, 0\)"):
        _anchor(chain, 202612, through=1)
    assert _anchor(chain, 202612).succeeded
    with pytest.raises(ChainError, match=r"StatementAlreadyAnchored\(202612\)"):
        _anchor(chain, 202612)
    with pytest.raises(ChainError, match=r"StatementPeriodGap\(202702, 202701\)"):
        _anchor(chain, 202702)
    with pytest.raises(ChainError, match=r"ZeroRoot\(202701\)"):
        _anchor(chain, 202701, root=b"\0" * 32)
    with pytest.raises(ChainError, match=r"EmptyBatch\(202701\)"):
        _anchor(chain, 202701, count=0)
    assert _anchor(chain, 202701).succeeded  # December to January
    assert chain.statement_root(202611) is None and chain.statement_root(202702) is None


def test_only_an_issuer_revokes_and_the_bit_reads_back(chain) -> None:
    prepared = chain.prepare_revocation([3, 300])
    chain.broadcast(prepared.raw)
    assert chain.wait_for_receipt(prepared.tx_hash, timeout=10).succeeded
    assert [chain.credential_revoked(i) for i in (2, 3, 299, 300)] == [False, True, False, True]
    assert chain.is_issuer(chain.anchor._signer.address)
    assert not chain.is_issuer(Account.create().address)


# -- the property: statements are the sums of the anchored entries --------------------------

_MONTHS = [(2026, 9), (2026, 10), (2026, 11)]
entry_plans = st.lists(st.tuples(st.integers(0, 2), st.sampled_from(_MONTHS), st.integers(1, 28),
                                 st.booleans(), st.integers(0, 5000), st.integers(0, 50)),
                       min_size=1, max_size=12)


@pytest.mark.parametrize("backend", BACKENDS)
@settings(max_examples=3, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(plans=entry_plans, waves=st.integers(1, 3))
def test_statement_totals_equal_the_anchored_entries_of_each_account_and_month(
        request, tmp_path_factory, backend, plans, waves) -> None:
    """Over random small ledgers (credits and debits of three citizens over three months,
    sealed in one to three batches), every statement leaf is its account's sums."""
    with fresh_database(request, backend, tmp_path_factory.mktemp("ledger"), at_head=True) as url:
        db = Database(url)
        try:
            _check_sums(db, plans, waves)
        finally:
            db.engine.dispose()


def _sealed_after_their_entries(db) -> None:  # type: ignore[no-untyped-def]
    """Date each batch as if sealed an hour after its newest entry (and after the batch
    before), as a live ledger's are: the builder's seq floor depends on it."""
    with db.session(write_lock=True) as s:
        previous = 0
        for batch in s.scalars(select(Batch).order_by(Batch.id)):
            newest = s.scalar(select(func.max(LedgerEntry.occurred_at)).where(
                LedgerEntry.seq >= batch.first_seq, LedgerEntry.seq <= batch.last_seq))
            batch.sealed_at = previous = max(previous, int(newest) + 3600)


def _check_sums(db, plans, waves) -> None:  # type: ignore[no-untyped-def]
    anchor = connect_anchor(in_process_web3(), ChainKind.TESTER, Account.create(), db)
    sealer = Sealer(db, anchor, SealOptions(confirmations=1, workers=1, receipt_timeout=30))
    with db.session(write_lock=True) as s:
        citizens = [accounts.create_citizen(s) for _ in range(3)]
    chain = EvmStatements(anchor)
    chunk = -(-len(plans) // waves)
    for start in range(0, len(plans), chunk):
        add_entries(db, [Entry(citizens[c], at(y, m, d), g if credit else 0, p,
                               kind=KIND_CREDIT if credit else KIND_DEBIT)
                         for c, (y, m), d, credit, g, p in plans[start:start + chunk]])
        sealer.seal()
        _sealed_after_their_entries(db)
    for _ in range(6):
        try:
            build_statement(db, now=at(2027, 1, 5))
        except Conflict as exc:
            assert "is not over" in exc.message
            break
        anchor_statements(db, chain)
    offset = local_day_offset()
    with db.session() as s:
        periods = list(s.scalars(select(Statement.period).order_by(Statement.period)))
    assert periods[-1] == 202612 and {y * 100 + m for _, (y, m), *_ in plans} <= set(periods)
    with db.session() as s:  # the audit's independent recount agrees
        assert [r.problems for r in audit_statements(s)] == [[] for _ in periods]
    for period in periods:
        assert chain.statement_root(period) is not None
        start, end = period_bounds(period, offset)
        leaves = _leaves(db, period)
        assert set(leaves) == {c.id for c in citizens}
        for c in citizens:
            mine = [(credit, g, p) for i, (y, m), d, credit, g, p in plans
                    if citizens[i].id == c.id and start <= at(y, m, d) < end]
            leaf = leaves[c.id]
            assert leaf.account == c.account
            assert leaf.reduction_grams == sum(g for credit, g, _ in mine if credit)
            assert leaf.points_earned == sum(p for credit, _, p in mine if credit)
            assert leaf.points_spent == sum(p for credit, _, p in mine if not credit)
            assert leaf.entry_count == len(mine)
