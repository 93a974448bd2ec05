"""Month statements' anchors after a reorg, on a real anvil (``anvil_reorg``), held against
the chain by the same walk as batches' (:mod:`ledger.reanchoring`).

A statement counts as anchored once mined, so any reorg can take it away: the next
``build_due_statements`` (the serving process's chore, ``carbon-ledger statement build``)
finds the month missing and anchors it again with the same root; an anchor mined again in
another block gets its row corrected. ``chain check``'s comparison names both first."""

from __future__ import annotations

import logging

from eth_account import Account
from sqlalchemy import select

from chain.statements import EvmStatements
from ledger.statement_audit import statement_chain_problems, stored_statements
from ledger.statement_builder import build_due_statements
from ledger.store.database import Database
from ledger.store.models import Statement
from tests.conftest import needs_anvil
from tests.fault_support import anvil_call, anvil_sealer
from tests.statement_ledger import Entry, add_entries, at

pytestmark = needs_anvil()

DEC_3 = at(2026, 12, 3)


def statements(db: Database) -> dict[int, Statement]:
    with db.session() as s:
        return {st.period: st for st in s.scalars(select(Statement).order_by(Statement.period))}


def problems(db: Database, chain: EvmStatements) -> list[tuple[int, str]]:
    with db.session() as s:
        found = statement_chain_problems(chain, stored_statements(s))
    return [(p.period, p.problem) for p in found]


def two_stated_months(db: Database, url: str, make_citizen) -> EvmStatements:  # type: ignore[no-untyped-def]
    """October and November 2026 sealed, stated and anchored on the node at ``url``,
    November's statement the node's last transaction."""
    alice, bob = make_citizen(), make_citizen()
    add_entries(db, [Entry(alice, at(2026, 10, 5), 400, 4), Entry(bob, at(2026, 10, 9), 90, 1),
                     Entry(alice, at(2026, 11, 2), 500, 5), Entry(bob, at(2026, 11, 3), 80, 0)])
    sealer = anvil_sealer(db, url, Account.create(), confirmations=1)
    sealer.seal()
    chain = EvmStatements(sealer.anchor)  # type: ignore[arg-type]
    built = build_due_statements(db, chain, now=DEC_3)
    assert [st.period for st in built] == [202610, 202611]
    assert problems(db, chain) == []
    return chain


def test_a_statement_a_reorg_took_away_is_anchored_again_with_the_same_root(
        db, node, make_citizen, caplog) -> None:
    chain = two_stated_months(db, node.url, make_citizen)
    before = statements(db)
    anvil_call(node.url, "anvil_reorg", [1, []])  # November's anchor's block is gone
    assert chain.statement_root(202611) is None
    assert problems(db, chain) == [(202611, "missing on chain")]

    with caplog.at_level(logging.ERROR, logger="carbon_ledger.sealer"):
        assert build_due_statements(db, chain, now=DEC_3) == []  # nothing new is due
    assert "statements 202611..202611 were anchored but the chain's latest statement is " \
           "now 202610" in caplog.text
    after = statements(db)
    assert {p: (st.root, st.status) for p, st in after.items()} == {
        p: (st.root, "anchored") for p, st in before.items()}
    assert chain.statement_root(202611) == before[202611].root
    assert after[202610].block_number == before[202610].block_number
    assert problems(db, chain) == []


def test_a_statement_anchor_mined_again_in_a_later_block_is_put_right(
        db, node, make_citizen) -> None:
    chain = two_stated_months(db, node.url, make_citizen)
    november = statements(db)[202611]
    assert november.raw_tx is not None and november.block_number is not None
    anvil_call(node.url, "anvil_mine", [2])  # two empty blocks on top of November's
    anvil_call(node.url, "anvil_reorg", [3, [["0x" + november.raw_tx.hex(), 2]]])
    moved_to = november.block_number + 2
    assert problems(db, chain) == [
        (202611, f"its anchoring transaction is in block {moved_to}, the ledger says "
                 f"{november.block_number}")]

    assert build_due_statements(db, chain, now=DEC_3) == []
    after = statements(db)[202611]
    assert (after.status, after.tx_hash, after.block_number) == (
        "anchored", november.tx_hash, moved_to)
    assert problems(db, chain) == []
