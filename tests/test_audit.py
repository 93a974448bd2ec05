"""An auditor recomputes a sealed batch from the raw records; tampering is named."""

from __future__ import annotations

from sqlalchemy import select, update

from api.cli.main import main
from ledger.audit import audit_batch
from ledger.entries import entry_row
from ledger.hashing import keccak
from ledger.intake.service import submit_records
from ledger.merkle import build_tree, hash_leaf, root
from ledger.store.models import ActivityRecord, Batch, LedgerEntry
from tests.conftest import a_record


def _sealed_batch(db, make_partner, make_citizen, sealer):  # type: ignore[no-untyped-def]
    partner, citizen = make_partner(), make_citizen()
    records = [a_record(citizen.pseudonym, quantity=q) for q in (3000, 4000, 30000, 45000)]
    with db.session(write_lock=True) as s:
        outcomes = submit_records(s, partner=s.merge(partner), records=records).outcomes
    assert any(o.capped for o in outcomes)  # the daily cap bit: a capped credit to justify
    [batch] = sealer.seal()
    return batch


def test_an_honest_batch_recomputes(db, make_partner, make_citizen, sealer) -> None:
    batch = _sealed_batch(db, make_partner, make_citizen, sealer)
    with db.session() as s:
        report = audit_batch(s, batch.id)
    assert report.ok, report.problems
    assert report.credits == report.entries == batch.leaf_count
    assert report.capped >= 1


def test_an_edited_raw_record_is_named(db, make_partner, make_citizen, sealer) -> None:
    batch = _sealed_batch(db, make_partner, make_citizen, sealer)
    with db.session(write_lock=True) as s:
        first = s.scalar(select(ActivityRecord).order_by(ActivityRecord.id))
        first.raw = first.raw.replace('"quantity":3000', '"quantity":3001')
    with db.session() as s:
        report = audit_batch(s, batch.id)
    assert not report.ok
    assert any("does not hash" in p for p in report.problems)


def test_an_inflated_credit_is_named_and_breaks_the_root(db, make_partner, make_citizen,
                                                         sealer, tmp_path, monkeypatch) -> None:
    batch = _sealed_batch(db, make_partner, make_citizen, sealer)
    with db.session(write_lock=True) as s:
        e = s.scalar(select(LedgerEntry).order_by(LedgerEntry.seq))
        account = s.scalar(select(LedgerEntry.leaf).where(LedgerEntry.seq == e.seq))[32:64]
        forged = entry_row(entry_id=e.entry_id, citizen_id=e.citizen_id, account=account,
                           kind=e.kind, behaviour=e.behaviour, quantity=e.quantity,
                           reduction_grams=e.reduction_grams * 10, points=e.points * 10,
                           methodology=e.methodology, occurred_at=e.occurred_at,
                           record_hash=e.record_hash, partner_address=e.partner_address)
        s.execute(update(LedgerEntry).where(LedgerEntry.seq == e.seq).values(
            reduction_grams=forged["reduction_grams"], points=forged["points"], leaf=forged["leaf"]))
    with db.session() as s:
        problems = audit_batch(s, batch.id).problems
    assert any("the factors give only" in p for p in problems)
    assert any("sealed 0x" in p for p in problems)  # the root no longer matches
    monkeypatch.setenv("CARBON_LEDGER_DATABASE_URL", db.url)
    args = ["--data-dir", str(tmp_path)]
    assert main(["audit", str(batch.id), *args]) == 1
    assert main(["audit", "99", *args]) == 3


def test_an_honest_batch_matches_what_the_chain_holds(db, make_partner, make_citizen,
                                                      sealer, anchor) -> None:
    batch = _sealed_batch(db, make_partner, make_citizen, sealer)
    with db.session() as s:
        report = audit_batch(s, batch.id, chain=anchor.reader())
    assert report.ok, report.problems


def test_a_rewritten_history_agrees_with_itself_but_not_with_the_chain(
        db, make_partner, make_citizen, sealer, anchor) -> None:
    """An entry moved to another citizen's account, its batch's root and content hash
    rewritten to match: the database holds together, the chain's state and event do not."""
    batch = _sealed_batch(db, make_partner, make_citizen, sealer)
    with db.session(write_lock=True) as s:
        e = s.scalar(select(LedgerEntry).order_by(LedgerEntry.seq))
        e.leaf = e.leaf[:32] + b"\x01" * 32 + e.leaf[64:]
        s.flush()
        hashes = [hash_leaf(x.leaf) for x in s.scalars(select(LedgerEntry).where(
            LedgerEntry.seq.between(batch.first_seq, batch.last_seq)).order_by(LedgerEntry.seq))]
        s.execute(update(Batch).where(Batch.id == batch.id).values(
            root=root(build_tree(sorted(hashes))), content_hash=keccak(b"".join(hashes))))
    with db.session() as s:
        assert audit_batch(s, batch.id).ok
        problems = audit_batch(s, batch.id, chain=anchor.reader()).problems
    assert [p.split(" 0x")[0] for p in problems] == ["the chain holds root",
                                                     "the chain holds content hash"], problems
    assert "(the contract's state)" in problems[0]
    assert f"(the event of tx 0x{batch.tx_hash.hex()})" in problems[1]
